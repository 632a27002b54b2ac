"""The DDGAN time-dependent discriminators D(x_k, x_{k+1}, k) -> logit in tinygrad (DESIGN 3).

The same networks, parameter names and maths as backends/torch_cuda/networks/discriminator.py
(read its docstring for the architecture): "small" for 32x32 data, "large" for 256x256.
"""

from __future__ import annotations

import math

from tinygrad import Tensor

from backends.tinygrad.networks.layers import (
    conv2d,
    fir_downsample_2x,
    linear,
    sinusoidal_embedding,
)

SKIP_SCALE = 1.0 / math.sqrt(2.0)
NEGATIVE_SLOPE = 0.2
STDDEV_GROUP = 4

# (in, out, downsample) per DownConvBlock, in units of ngf.
SMALL_PLAN = ((2, 2, False), (2, 4, True), (4, 8, True), (8, 8, True))
LARGE_PLAN = ((2, 4, True), (4, 8, True), (8, 8, True), (8, 8, True), (8, 8, True), (8, 8, True))


def _act(x: Tensor) -> Tensor:
    return x.leaky_relu(NEGATIVE_SLOPE)


class DownConvBlock:
    """LeakyReLU, 3x3 conv, + time bias, LeakyReLU, [FIR downsample], 3x3 conv (near-zero init);
    plus a bias-free 1x1 convolution of the (down-sampled) input; the sum is scaled by 1/sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int, t_emb_dim: int, downsample: bool) -> None:
        self.conv_0 = conv2d(in_ch, out_ch, 3, mode="fan_out")
        self.time_dense = linear(t_emb_dim, out_ch, mode="fan_out")
        self.conv_1 = conv2d(out_ch, out_ch, 3, init_scale=0.0, mode="fan_out")
        self.skip = conv2d(in_ch, out_ch, 1, bias=False, mode="fan_out")
        self.downsample = downsample

    def __call__(self, x: Tensor, time_features: Tensor) -> Tensor:
        h = self.conv_0(_act(x))
        h = _act(h + self.time_dense(time_features)[:, :, None, None])
        if self.downsample:
            h, x = fir_downsample_2x(h), fir_downsample_2x(x)
        return (self.conv_1(h) + self.skip(x)) * SKIP_SCALE


def minibatch_stddev(h: Tensor, group_size: int = STDDEV_GROUP) -> Tensor:
    """Append one channel: the mean over (C, H, W) of the per-group standard deviation of features.

    Sample i is grouped with samples i + j * (N / G); G is the largest divisor of N not above
    `group_size` (as in the PyTorch backend).
    """
    n, c, height, width = h.shape
    group = max(g for g in range(1, min(group_size, n) + 1) if n % g == 0)
    grouped = h.reshape(group, n // group, c, height, width)
    std = (grouped.var(axis=0, correction=0) + 1e-8).sqrt()  # (N/G, C, H, W)
    feature = std.mean(axis=(1, 2, 3)).reshape(n // group, 1, 1, 1).repeat(group, 1, height, width)
    return h.cat(feature, dim=1)


class TimeDependentDiscriminator:
    """D(x_prev (N, C, H, W), x_t (N, C, H, W), t (N,)) -> logits (N,)."""

    def __init__(self, image_channels: int, ngf: int, t_emb_dim: int, plan: tuple[tuple[int, int, bool], ...], final_init_scale: float) -> None:
        self.t_emb_dim = t_emb_dim
        self.time_embed = [linear(t_emb_dim, t_emb_dim, mode="fan_out"), linear(t_emb_dim, t_emb_dim, mode="fan_out")]
        self.conv_in = conv2d(2 * image_channels, plan[0][0] * ngf, 1, mode="fan_out")
        self.blocks = [DownConvBlock(i * ngf, o * ngf, t_emb_dim, down) for i, o, down in plan]
        top = plan[-1][1] * ngf
        self.conv_out = conv2d(top + 1, top, 3, init_scale=final_init_scale, mode="fan_out")
        self.linear_out = linear(top, 1, mode="fan_out")

    def __call__(self, x_prev: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        first, second = self.time_embed
        time_features = _act(second(_act(first(sinusoidal_embedding(t, self.t_emb_dim)))))
        h = self.conv_in(x_prev.cat(x_t, dim=1))
        for block in self.blocks:
            h = block(h, time_features)
        h = _act(self.conv_out(minibatch_stddev(h)))
        return self.linear_out(h.sum(axis=(2, 3))).squeeze(1)


def small_discriminator(image_channels: int, ngf: int, t_emb_dim: int) -> TimeDependentDiscriminator:
    """The published 32x32 (CIFAR-10) discriminator: 12,741,633 parameters at ngf 64, t_emb_dim 256."""
    return TimeDependentDiscriminator(image_channels, ngf, t_emb_dim, SMALL_PLAN, final_init_scale=0.0)


def large_discriminator(image_channels: int, ngf: int, t_emb_dim: int) -> TimeDependentDiscriminator:
    """The published 256x256 discriminator: 27,737,217 parameters at ngf 64, t_emb_dim 256."""
    return TimeDependentDiscriminator(image_channels, ngf, t_emb_dim, LARGE_PLAN, final_init_scale=1.0)
