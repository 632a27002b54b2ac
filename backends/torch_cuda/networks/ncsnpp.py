"""The DDGAN generator: NCSN++ with adaptive group normalisation (DESIGN 3).

G(x_{k+1}, k, z) predicts x_0. A latent z (nz) passes PixelNorm and an MLP (the mapping network)
to a style vector that sets the scale and shift of every GroupNorm in the residual blocks (AdaGN).
The step label k gets a sinusoidal embedding and an MLP; each residual block adds a linear map of
it as a per-channel bias. The U-Net has BigGAN-style residual blocks with FIR up/down-sampling,
(x + h)/sqrt(2) skips, self-attention at the attention resolutions and in the middle, an input
pyramid merged after every down-sampling ("residual" progressive input), and a tanh output.
This is the published configuration (progressive output off, positional embedding, centred data).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from backends.torch_cuda.networks.layers import (
    AdaptiveGroupNormSiLU,
    FirDownsampleConv,
    FirFilter,
    conv2d,
    group_count,
    linear,
    sinusoidal_embedding,
    variance_scaling_uniform_,
)
from ddgan_core.config import GeneratorConfig

SKIP_SCALE = 1.0 / math.sqrt(2.0)  # (x + h) / sqrt(2): keeps the variance of a sum of two paths

Resample = Literal["none", "up", "down"]


class ResBlock(nn.Module):
    """BigGAN-style residual block: AdaGN-SiLU, [resample], conv, + time bias, AdaGN-SiLU, dropout, conv.

    The shortcut is resampled the same way and passes a 1x1 convolution (`skip`) when the channel
    count or resolution changes. `conv_1` starts near zero, so the block starts near the identity
    (up to the 1/sqrt(2) skip scale).
    """

    def __init__(self, in_ch: int, out_ch: int, time_dim: int, style_dim: int, dropout: float, resample: Resample = "none") -> None:
        super().__init__()
        self.norm_0 = AdaptiveGroupNormSiLU(in_ch, style_dim)
        self.conv_0 = conv2d(in_ch, out_ch, 3)
        self.time_dense = linear(time_dim, out_ch)
        self.norm_1 = AdaptiveGroupNormSiLU(out_ch, style_dim)
        self.dropout = nn.Dropout(dropout)
        self.conv_1 = conv2d(out_ch, out_ch, 3, init_scale=0.0)
        self.skip = conv2d(in_ch, out_ch, 1) if in_ch != out_ch or resample != "none" else None
        self.fir = FirFilter() if resample != "none" else None
        self.resample = resample

    def forward(self, x: torch.Tensor, time_features: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h = self.norm_0(x, style)
        if self.fir is not None:
            resample = self.fir.upsample_2x if self.resample == "up" else self.fir.downsample_2x
            h, x = resample(h), resample(x)
        h = self.conv_0(h)
        h = h.add_(self.time_dense(time_features)[:, :, None, None])
        h = self.conv_1(self.dropout(self.norm_1(h, style)))
        if self.skip is not None:
            x = self.skip(x)
        return (x + h).mul_(SKIP_SCALE)


class SelfAttention(nn.Module):
    """Single-head self-attention over the pixels, with a (x + h)/sqrt(2) residual.

    `qkv` holds the query, key and value projections stacked (3C, C), each initialised as the
    published separate 1x1 projections (scale 0.1); the output projection starts near zero.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(group_count(channels), channels, eps=1e-6)
        self.qkv = linear(channels, 3 * channels)
        variance_scaling_uniform_(self.qkv.weight, 0.1, "fan_avg", fan_shape=(channels, channels))
        self.out = linear(channels, channels, init_scale=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, height, width = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (N, HW, C)
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        h = self.out(F.scaled_dot_product_attention(q, k, v))  # softmax(q k^T / sqrt(C)) v
        return (x + h.transpose(1, 2).reshape(n, c, height, width)).mul_(SKIP_SCALE)


class DownLevel(nn.Module):
    """One encoder resolution: residual blocks (each followed by attention at attention resolutions),
    then, except at the lowest resolution, a down-sampling block merged with the input pyramid."""

    def __init__(self, blocks: list[ResBlock], attentions: list[SelfAttention], downsample: ResBlock | None, pyramid_downsample: FirDownsampleConv | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.attentions = nn.ModuleList(attentions)
        self.downsample = downsample
        self.pyramid_downsample = pyramid_downsample

    def forward(self, h: torch.Tensor, pyramid: torch.Tensor, time_features: torch.Tensor, style: torch.Tensor, skips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        for i, block in enumerate(self.blocks):
            h = block(h, time_features, style)
            if len(self.attentions):
                h = self.attentions[i](h)
            skips.append(h)
        if self.downsample is not None:
            h = self.downsample(h, time_features, style)
            pyramid = (self.pyramid_downsample(pyramid) + h).mul_(SKIP_SCALE)
            h = pyramid
            skips.append(h)
        return h, pyramid


class UpLevel(nn.Module):
    """One decoder resolution: residual blocks on [h, encoder skip] concatenations, attention at
    attention resolutions, then, except at the highest resolution, an up-sampling block."""

    def __init__(self, blocks: list[ResBlock], attention: SelfAttention | None, upsample: ResBlock | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.attention = attention
        self.upsample = upsample

    def forward(self, h: torch.Tensor, time_features: torch.Tensor, style: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for block in self.blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), time_features, style)
        if self.attention is not None:
            h = self.attention(h)
        if self.upsample is not None:
            h = self.upsample(h, time_features, style)
        return h


class NCSNppGenerator(nn.Module):
    """G(x_t (N, C, H, W), t (N,) step labels, z (N, nz)) -> x_0 prediction in [-1, 1], shape of x_t."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        nf, channels = cfg.nf, cfg.channels
        time_dim, style_dim = 4 * nf, cfg.z_emb_dim
        self.nf = nf

        def block(in_ch: int, out_ch: int, resample: Resample = "none") -> ResBlock:
            return ResBlock(in_ch, out_ch, time_dim, style_dim, cfg.dropout, resample)

        self.z_mapping = nn.ModuleList(
            [linear(cfg.nz, style_dim, mode="fan_out")] + [linear(style_dim, style_dim, mode="fan_out") for _ in range(cfg.n_mlp)]
        )
        self.time_embed = nn.ModuleList([linear(nf, time_dim), linear(time_dim, time_dim)])
        self.conv_in = conv2d(channels, nf, 3)

        resolutions = [cfg.image_size >> level for level in range(len(cfg.ch_mult))]
        last = len(cfg.ch_mult) - 1
        skip_channels = [nf]
        in_ch, pyramid_ch = nf, channels
        down = []
        for level, mult in enumerate(cfg.ch_mult):
            out_ch = nf * mult
            blocks = [block(in_ch if i == 0 else out_ch, out_ch) for i in range(cfg.num_res_blocks)]
            attentions = [SelfAttention(out_ch) for _ in blocks] if resolutions[level] in cfg.attn_resolutions else []
            skip_channels += [out_ch] * len(blocks)
            downsample = pyramid_downsample = None
            if level != last:
                downsample = block(out_ch, out_ch, "down")
                pyramid_downsample = FirDownsampleConv(pyramid_ch, out_ch)
                pyramid_ch = out_ch
                skip_channels.append(out_ch)
            down.append(DownLevel(blocks, attentions, downsample, pyramid_downsample))
            in_ch = out_ch
        self.down = nn.ModuleList(down)

        self.mid_block_0 = block(in_ch, in_ch)
        self.mid_attention = SelfAttention(in_ch)
        self.mid_block_1 = block(in_ch, in_ch)

        up: list[UpLevel] = []
        for level in reversed(range(len(cfg.ch_mult))):
            out_ch = nf * cfg.ch_mult[level]
            blocks = []
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(block(in_ch + skip_channels.pop(), out_ch))
                in_ch = out_ch
            attention = SelfAttention(out_ch) if resolutions[level] in cfg.attn_resolutions else None
            upsample = block(out_ch, out_ch, "up") if level != 0 else None
            up.insert(0, UpLevel(blocks, attention, upsample))
        self.up = nn.ModuleList(up)  # up[level] works at resolutions[level]; run from the lowest

        self.norm_out = nn.GroupNorm(group_count(in_ch), in_ch, eps=1e-6)
        self.conv_out = conv2d(in_ch, channels, 3, init_scale=0.0)

    def style(self, z: torch.Tensor) -> torch.Tensor:
        """The mapping network: PixelNorm, then linear + SiLU layers."""
        h = z * torch.rsqrt(torch.mean(z * z, dim=1, keepdim=True) + 1e-8)
        for layer in self.z_mapping:
            h = F.silu(layer(h))
        return h

    def time_features(self, t: torch.Tensor) -> torch.Tensor:
        """SiLU of the step-label embedding MLP: what every residual block's `time_dense` reads."""
        first, second = self.time_embed
        return F.silu(second(F.silu(first(sinusoidal_embedding(t, self.nf)))))

    def forward(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        style, time_features = self.style(z), self.time_features(t)
        h = self.conv_in(x)
        skips = [h]
        pyramid = x
        for level in self.down:
            h, pyramid = level(h, pyramid, time_features, style, skips)
        h = self.mid_block_0(h, time_features, style)
        h = self.mid_attention(h)
        h = self.mid_block_1(h, time_features, style)
        for level in reversed(self.up):
            h = level(h, time_features, style, skips)
        h = self.conv_out(F.silu(self.norm_out(h)))
        return torch.tanh(h)
