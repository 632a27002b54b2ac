"""Building blocks shared by the tinygrad DDGAN networks, mirroring the PyTorch backend's layers.

Same initialisation rule (variance scaling, zero biases, near-zero last convolutions), same FIR
[1, 3, 3, 1] resampling with zero padding (`upfirdn2d` semantics), same AdaGN; see
backends/torch_cuda/networks/layers.py for the published sources of each choice. Only the
distributions of the initial weights match the PyTorch backend (the random streams differ):
weights are shared between backends through checkpoints, not seeds.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np
from tinygrad import Tensor, UOp, nn
from tinygrad.function import function

NEAR_ZERO_SCALE = 1e-10  # the published code's stand-in for an initialisation scale of 0
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)

FanMode = Literal["fan_avg", "fan_out"]


def variance_scaling_uniform(shape: tuple[int, ...], scale: float, mode: FanMode, fan_shape: tuple[int, ...] | None = None) -> Tensor:
    """U(-b, b) of `shape`, b = sqrt(3 scale / fan); fans from `fan_shape` (default `shape`).

    `mode="fan_avg"` is the DDPM/NCSN++ rule, `mode="fan_out"` the published discriminator's.
    """
    fans = fan_shape if fan_shape is not None else shape
    receptive = math.prod(fans[2:])
    fan_in, fan_out = fans[1] * receptive, fans[0] * receptive
    fan = (fan_in + fan_out) / 2 if mode == "fan_avg" else max(1, fan_out)
    bound = math.sqrt(3.0 * (NEAR_ZERO_SCALE if scale == 0 else scale) / fan)
    return Tensor.uniform(*shape, low=-bound, high=bound)


def _materialize_gradient(grad: UOp, call: UOp) -> tuple[UOp]:
    return (materialize(Tensor(grad)).uop,)


@function(grad_fxn=_materialize_gradient)
def materialize(x: Tensor) -> Tensor:
    """x itself, stored in a buffer, in the forward pass and in every order of gradient.

    tinygrad fuses lazily computed tensors into the kernels that read them. For a value read by
    several reductions (an activation that feeds a matmul and its backward, or a first-order
    gradient that R1 differentiates again) that recomputes it inside each of them: a matmul
    recomputed per output element. `contiguous()` stores a value once, and `contiguous_backward()`
    also the first-order gradient, but neither the gradient of a gradient; this marks all orders.
    """
    return x.contiguous()


class Conv2d:
    """A 2-D convolution (weight (out, in, k, k), bias (out) or None) computed as one matrix product.

    The input's k x k neighbourhoods are gathered into columns (im2col, stored once), and the
    output is weight.reshape(out, in k k) @ columns: forward, input gradient and weight gradient
    are then plain matrix products, which tinygrad generates faster (1.8x for a 3x3 layer) and
    runs about four times faster on a CPU than its generic pooled convolution. Same maths as
    torch.nn.Conv2d with the same stride and zero padding.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None, stride: int, padding: int) -> None:
        self.weight, self.bias, self.stride, self.padding = weight, bias, stride, padding

    def __call__(self, x: Tensor) -> Tensor:
        n, channels, height, width = x.shape
        out_ch, _, k, _ = self.weight.shape
        s, p = self.stride, self.padding
        out_h, out_w = (height + 2 * p - k) // s + 1, (width + 2 * p - k) // s + 1
        if k == 1 and s == 1 and p == 0:
            columns = x.reshape(n, channels, height * width)
        else:
            padded = x.pad((None, None, (p, p), (p, p))) if p else x
            taps = [padded[:, :, i : i + s * (out_h - 1) + 1 : s, j : j + s * (out_w - 1) + 1 : s] for i in range(k) for j in range(k)]
            columns = Tensor.stack(*taps, dim=2).reshape(n, channels * k * k, out_h * out_w)
        out = materialize(self.weight.reshape(out_ch, -1) @ materialize(columns)).reshape(n, out_ch, out_h, out_w)
        return out if self.bias is None else out + self.bias.reshape(1, -1, 1, 1)


def conv2d(
    in_ch: int, out_ch: int, kernel: int, *, bias: bool = True, init_scale: float = 1.0,
    mode: FanMode = "fan_avg", stride: int = 1, padding: int | None = None,
) -> Conv2d:
    """A Conv2d with variance-scaling weights and zero bias; 'same' padding unless told otherwise."""
    weight = variance_scaling_uniform((out_ch, in_ch, kernel, kernel), init_scale, mode)
    return Conv2d(weight, Tensor.zeros(out_ch) if bias else None, stride, kernel // 2 if padding is None else padding)


def linear(in_features: int, out_features: int, *, init_scale: float = 1.0, mode: FanMode = "fan_avg") -> nn.Linear:
    """A Linear layer with variance-scaling weights and zero bias."""
    layer = nn.Linear(in_features, out_features)
    layer.weight = variance_scaling_uniform((out_features, in_features), init_scale, mode)
    layer.bias = Tensor.zeros(out_features)
    return layer


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Integer step labels t (N,) -> (N, dim): [sin(t f_i), cos(t f_i)], f_i = max_period^(-i / (dim/2 - 1))."""
    half = dim // 2
    frequencies = (Tensor.arange(half, dtype="float32") * (-math.log(max_period) / (half - 1))).exp()
    angles = t.float()[:, None] * frequencies[None, :]
    embedding = angles.sin().cat(angles.cos(), dim=1)
    return embedding.pad((None, (0, 1))) if dim % 2 else embedding


@functools.cache
def _fir_kernel(channels: int, gain: float, device: str) -> Tensor:
    """The depthwise FIR kernel outer(k, k) / sum^2 * gain for `channels` channels, (C, 1, 4, 4), realised once."""
    taps = np.asarray(FIR_TAPS)
    kernel = (np.outer(taps, taps) / taps.sum() ** 2 * gain).astype(np.float32)
    return Tensor(np.ascontiguousarray(np.broadcast_to(kernel, (channels, 1, 4, 4))), device=device).realize()


def fir_downsample_2x(x: Tensor) -> Tensor:
    """upfirdn2d(x, k, down=2, pad=(1, 1)): blur with [1,3,3,1]/8 per axis and keep every 2nd pixel."""
    return x.conv2d(_fir_kernel(x.shape[1], 1.0, x.device), stride=2, padding=1, groups=x.shape[1])


def fir_upsample_2x(x: Tensor) -> Tensor:
    """upfirdn2d(x, 4 k, up=2, pad=(2, 1)): zero-insert, then blur with [1,3,3,1]/4 per axis."""
    return x.conv_transpose2d(_fir_kernel(x.shape[1], 4.0, x.device), stride=2, padding=1, groups=x.shape[1])


def fir_blur_pad2(x: Tensor) -> Tensor:
    """upfirdn2d(x, k, pad=(2, 2)): the blur before a stride-2 3x3 convolution; (H, W) -> (H+1, W+1)."""
    return x.conv2d(_fir_kernel(x.shape[1], 1.0, x.device), padding=2, groups=x.shape[1])


class FirDownsampleConv:
    """3x3 convolution with FIR downsampling: blur, then stride 2; (N, in, H, W) -> (N, out, H/2, W/2)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        self.conv = conv2d(in_ch, out_ch, 3, stride=2, padding=0)

    def __call__(self, x: Tensor) -> Tensor:
        return self.conv(fir_blur_pad2(x))


def group_count(channels: int) -> int:
    """Number of GroupNorm groups of the published networks: min(channels // 4, 32)."""
    return min(channels // 4, 32)


def group_norm(channels: int) -> nn.GroupNorm:
    """An affine GroupNorm with the published group count and eps 1e-6."""
    return nn.GroupNorm(group_count(channels), channels, eps=1e-6)


class AdaptiveGroupNormSiLU:
    """silu(gamma(z) * GroupNorm(x) + beta(z)), gamma and beta from a linear map of the style vector."""

    def __init__(self, channels: int, style_dim: int, eps: float = 1e-6) -> None:
        self.norm = nn.GroupNorm(group_count(channels), channels, eps=eps, affine=False)
        self.style = linear(style_dim, 2 * channels, mode="fan_out")
        self.style.bias = Tensor([1.0] * channels + [0.0] * channels)  # gamma = 1, beta = 0 at the start

    def __call__(self, x: Tensor, z_embedding: Tensor) -> Tensor:
        gamma, beta = self.style(z_embedding)[:, :, None, None].chunk(2, dim=1)
        return (self.norm(x) * gamma + beta).silu()

