"""Building blocks shared by the DDGAN networks: initialisers, time embedding, FIR resampling, AdaGN.

Initialisation follows the published networks (NCSN++ / DDPM and the DDGAN discriminator):
weights are drawn uniformly with variance `scale / fan` ("variance scaling"), biases start at zero,
and the last convolution of each residual path and the output convolution use a near-zero
scale (`NEAR_ZERO_SCALE`) so every block starts close to the identity and the generator's first
output is close to tanh(0) = 0.

FIR resampling uses the separable filter [1, 3, 3, 1] with zero padding outside the image, as
`upfirdn2d` defines it (StyleGAN2): downsampling keeps the mean of a constant image, upsampling
keeps the value of a constant image, away from the borders. Both are plain PyTorch depthwise
(transposed) convolutions, so no compiled extension is needed.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ddgan_core.config import ConfigError

# The published code replaces an initialisation scale of 0 by 1e-10 ("init_scale=0."): the weights
# are near zero but not exactly zero, so gradients reach the layers before them from the first step.
NEAR_ZERO_SCALE = 1e-10

# Separable FIR filter of the published networks (a binomial low-pass filter).
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)

FanMode = Literal["fan_avg", "fan_out"]


def variance_scaling_uniform_(weight: torch.Tensor, scale: float, mode: FanMode, fan_shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Fill `weight` in place with U(-b, b), b = sqrt(3 scale / fan), and return it.

    `fan_shape` is the (out, in, *kernel) shape the fans are computed from (default: the weight's
    own shape; a fused projection passes the shape of one of its parts). `mode="fan_avg"` is the
    DDPM/NCSN++ `default_init`; `mode="fan_out"` reproduces the published discriminator and
    mapping-network `dense`/`conv2d` helpers, whose "fan_avg" mode in fact divides by fan_out.
    """
    shape = fan_shape if fan_shape is not None else tuple(weight.shape)
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    fan = (fan_in + fan_out) / 2 if mode == "fan_avg" else max(1, fan_out)
    scale = NEAR_ZERO_SCALE if scale == 0 else scale
    bound = math.sqrt(3.0 * scale / fan)
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


def conv2d(
    in_ch: int,
    out_ch: int,
    kernel: int,
    *,
    bias: bool = True,
    init_scale: float = 1.0,
    mode: FanMode = "fan_avg",
    stride: int = 1,
    padding: int | None = None,
) -> nn.Conv2d:
    """A Conv2d with variance-scaling weights and zero bias; 'same' padding unless told otherwise."""
    conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2 if padding is None else padding, bias=bias)
    variance_scaling_uniform_(conv.weight, init_scale, mode)
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


def linear(in_features: int, out_features: int, *, init_scale: float = 1.0, mode: FanMode = "fan_avg") -> nn.Linear:
    """A Linear layer with variance-scaling weights and zero bias."""
    layer = nn.Linear(in_features, out_features)
    variance_scaling_uniform_(layer.weight, init_scale, mode)
    nn.init.zeros_(layer.bias)
    return layer


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Transformer-style embedding of integer step labels t (N,) -> (N, dim): [sin(t f_i), cos(t f_i)].

    Frequencies f_i = max_period^(-i / (dim/2 - 1)), i = 0 .. dim/2 - 1 (DDPM's convention); an odd
    `dim` gets one zero column.
    """
    half = dim // 2
    exponent = torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(max_period) / (half - 1))
    angles = t.to(torch.float32)[:, None] * torch.exp(exponent)[None, :]
    embedding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return F.pad(embedding, (0, 1)) if dim % 2 else embedding


def fir_kernel_2d() -> torch.Tensor:
    """The normalised separable FIR kernel outer(k, k) / sum(k)^2, shaped (1, 1, 4, 4), float32."""
    taps = torch.tensor(FIR_TAPS, dtype=torch.float64)
    return (torch.outer(taps, taps) / taps.sum() ** 2).to(torch.float32)[None, None]


class FirFilter(nn.Module):
    """FIR resampling (upfirdn2d with [1, 3, 3, 1]) as depthwise (transposed) convolutions.

    The kernel is a non-persistent buffer (no checkpoint entry): it moves with the module, so a
    compiled graph reads it from the device like a weight. Built inside `forward`, it would be a
    host tensor copied to the GPU on every call: a synchronisation, and illegal in a CUDA graph.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", fir_kernel_2d(), persistent=False)

    def _depthwise(self, x: torch.Tensor, gain: float) -> torch.Tensor:
        """The kernel times `gain` as a depthwise weight (C, 1, 4, 4) for x's channels and dtype."""
        return (self.kernel.to(x.dtype) * gain).expand(x.shape[1], 1, -1, -1)

    def downsample_2x(self, x: torch.Tensor) -> torch.Tensor:
        """upfirdn2d(x, k, down=2, pad=(1, 1)): blur with [1,3,3,1]/8 per axis and keep every 2nd pixel."""
        return F.conv2d(x, self._depthwise(x, 1.0), stride=2, padding=1, groups=x.shape[1])

    def upsample_2x(self, x: torch.Tensor) -> torch.Tensor:
        """upfirdn2d(x, 4 k, up=2, pad=(2, 1)): zero-insert, then blur with [1,3,3,1]/4 per axis.

        Interior pixels become 3/4 of the nearest input plus 1/4 of the next one (bilinear weights);
        beyond the border the input counts as zero.
        """
        return F.conv_transpose2d(x, self._depthwise(x, 4.0), stride=2, padding=1, groups=x.shape[1])

    def blur_pad2(self, x: torch.Tensor) -> torch.Tensor:
        """upfirdn2d(x, k, pad=(2, 2)): the blur before a stride-2 3x3 convolution; (H, W) -> (H+1, W+1)."""
        return F.conv2d(x, self._depthwise(x, 1.0), padding=2, groups=x.shape[1])


class FirDownsampleConv(nn.Module):
    """3x3 convolution with FIR downsampling (StyleGAN2's fused conv_downsample_2d): blur, then stride 2.

    Maps (N, in_ch, H, W) -> (N, out_ch, H/2, W/2). Used by the generator's input pyramid.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.fir = FirFilter()
        self.conv = conv2d(in_ch, out_ch, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.fir.blur_pad2(x))


def group_count(channels: int) -> int:
    """Number of GroupNorm groups of the published networks, min(channels // 4, 32), or ConfigError
    when `channels` cannot be split into that many equal groups."""
    groups = min(channels // 4, 32)
    if groups < 1 or channels % groups:
        raise ConfigError(
            f"generator: {channels} channels cannot be split into min(channels // 4, 32) GroupNorm groups; "
            "choose nf and ch_mult so every width is a multiple of 4 (of 32 from 128 up)"
        )
    return groups


class AdaptiveGroupNormSiLU(nn.Module):
    """AdaGN followed by SiLU: silu(gamma(z) * GroupNorm(x) + beta(z)), gamma and beta from a linear map of z.

    The style layer's bias starts at gamma = 1, beta = 0 (published initialisation; its weights are
    ordinary, so each z adds a small modulation). SiLU is fused in place to save a pass over x.
    """

    def __init__(self, channels: int, style_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.groups = group_count(channels)
        self.eps = eps
        self.style = linear(style_dim, 2 * channels, mode="fan_out")
        with torch.no_grad():
            self.style.bias[:channels] = 1.0

    def forward(self, x: torch.Tensor, z_embedding: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.style(z_embedding)[:, :, None, None].chunk(2, dim=1)
        normalized = F.group_norm(x, self.groups, eps=self.eps)
        return F.silu(torch.addcmul(beta, normalized, gamma), inplace=True)
