"""The DDGAN time-dependent discriminators D(x_k, x_{k+1}, k) -> logit (DESIGN 3).

The pair (x_k, x_{k+1}) enters as one 2C-channel image; a 1x1 convolution, residual DownConvBlocks
(LeakyReLU 0.2, a per-channel time bias, FIR [1,3,3,1] down-sampling) and a minibatch-stddev
channel lead to a 3x3 convolution, a sum over pixels and a linear logit. The step label k gets a
sinusoidal embedding and a two-layer MLP. "small" is the published CIFAR-10 network (three
down-samplings: 32x32 -> 4x4, 16x16 -> 2x2); "large" the 256x256 one (six: 256 -> 4).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from backends.torch_cuda.networks.layers import (
    FirFilter,
    conv2d,
    linear,
    sinusoidal_embedding,
)

SKIP_SCALE = 1.0 / math.sqrt(2.0)
NEGATIVE_SLOPE = 0.2
STDDEV_GROUP = 4  # samples per minibatch-stddev group (StyleGAN2's default, as published)

# (in, out, downsample) per DownConvBlock, in units of ngf.
SMALL_PLAN = ((2, 2, False), (2, 4, True), (4, 8, True), (8, 8, True))
LARGE_PLAN = ((2, 4, True), (4, 8, True), (8, 8, True), (8, 8, True), (8, 8, True), (8, 8, True))


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, NEGATIVE_SLOPE)


class DownConvBlock(nn.Module):
    """LeakyReLU, 3x3 conv, + time bias, LeakyReLU, [FIR downsample], 3x3 conv (near-zero init);
    plus a bias-free 1x1 convolution of the (down-sampled) input; the sum is scaled by 1/sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int, t_emb_dim: int, downsample: bool) -> None:
        super().__init__()
        self.conv_0 = conv2d(in_ch, out_ch, 3, mode="fan_out")
        self.time_dense = linear(t_emb_dim, out_ch, mode="fan_out")
        self.conv_1 = conv2d(out_ch, out_ch, 3, init_scale=0.0, mode="fan_out")
        self.skip = conv2d(in_ch, out_ch, 1, bias=False, mode="fan_out")
        self.fir = FirFilter() if downsample else None

    def forward(self, x: torch.Tensor, time_features: torch.Tensor) -> torch.Tensor:
        h = self.conv_0(_act(x))
        h = _act(h + self.time_dense(time_features)[:, :, None, None])
        if self.fir is not None:
            h, x = self.fir.downsample_2x(h), self.fir.downsample_2x(x)
        return (self.conv_1(h) + self.skip(x)) * SKIP_SCALE


def minibatch_stddev(h: torch.Tensor, group_size: int = STDDEV_GROUP) -> torch.Tensor:
    """Append one channel: the mean over (C, H, W) of the per-group standard deviation of features.

    Sample i is grouped with samples i + j * (N / G), j = 0 .. G-1 (StyleGAN2's layout). G is the
    largest divisor of N not above `group_size`, so every batch size works (the published code
    needs N divisible by min(N, 4)).
    """
    n, c, height, width = h.shape
    group = max(g for g in range(1, min(group_size, n) + 1) if n % g == 0)
    grouped = h.reshape(group, n // group, c, height, width)
    std = torch.sqrt(grouped.var(dim=0, unbiased=False) + 1e-8)  # (N/G, C, H, W)
    feature = std.mean(dim=(1, 2, 3))[:, None, None, None].repeat(group, 1, height, width)
    return torch.cat([h, feature.to(h.dtype)], dim=1)


class TimeDependentDiscriminator(nn.Module):
    """D(x_prev (N, C, H, W), x_t (N, C, H, W), t (N,)) -> logits (N,)."""

    def __init__(self, image_channels: int, ngf: int, t_emb_dim: int, plan: tuple[tuple[int, int, bool], ...], final_init_scale: float) -> None:
        super().__init__()
        self.t_emb_dim = t_emb_dim
        self.time_embed = nn.ModuleList([linear(t_emb_dim, t_emb_dim, mode="fan_out"), linear(t_emb_dim, t_emb_dim, mode="fan_out")])
        self.conv_in = conv2d(2 * image_channels, plan[0][0] * ngf, 1, mode="fan_out")
        self.blocks = nn.ModuleList(DownConvBlock(i * ngf, o * ngf, t_emb_dim, down) for i, o, down in plan)
        top = plan[-1][1] * ngf
        self.conv_out = conv2d(top + 1, top, 3, init_scale=final_init_scale, mode="fan_out")
        self.linear_out = linear(top, 1, mode="fan_out")

    def forward(self, x_prev: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        first, second = self.time_embed
        time_features = _act(second(_act(first(sinusoidal_embedding(t, self.t_emb_dim)))))
        h = self.conv_in(torch.cat([x_prev, x_t], dim=1))
        for block in self.blocks:
            h = block(h, time_features)
        h = _act(self.conv_out(minibatch_stddev(h)))
        return self.linear_out(h.sum(dim=(2, 3))).squeeze(1)


def small_discriminator(image_channels: int, ngf: int, t_emb_dim: int) -> TimeDependentDiscriminator:
    """The published 32x32 (CIFAR-10) discriminator: 12,741,633 parameters at ngf 64, t_emb_dim 256."""
    return TimeDependentDiscriminator(image_channels, ngf, t_emb_dim, SMALL_PLAN, final_init_scale=0.0)


def large_discriminator(image_channels: int, ngf: int, t_emb_dim: int) -> TimeDependentDiscriminator:
    """The published 256x256 discriminator: 27,737,217 parameters at ngf 64, t_emb_dim 256."""
    return TimeDependentDiscriminator(image_channels, ngf, t_emb_dim, LARGE_PLAN, final_init_scale=1.0)
