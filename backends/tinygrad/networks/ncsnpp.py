"""The DDGAN generator in tinygrad: NCSN++ with adaptive group normalisation (DESIGN 3).

The same network, parameter names and maths as backends/torch_cuda/networks/ncsnpp.py (read its
docstring for the architecture): G(x_{k+1}, k, z) -> x_0 prediction in [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from tinygrad import Tensor

from backends.tinygrad.networks.layers import (
    AdaptiveGroupNormSiLU,
    FirDownsampleConv,
    conv2d,
    fir_downsample_2x,
    fir_upsample_2x,
    group_norm,
    linear,
    materialize,
    sinusoidal_embedding,
    variance_scaling_uniform,
)
from ddgan_core.config import GeneratorConfig

SKIP_SCALE = 1.0 / math.sqrt(2.0)

Resample = Literal["none", "up", "down"]
_RESAMPLERS: dict[str, Callable[[Tensor], Tensor]] = {"up": fir_upsample_2x, "down": fir_downsample_2x}


class ResBlock:
    """BigGAN-style residual block: AdaGN-SiLU, [resample], conv, + time bias, AdaGN-SiLU, dropout, conv;
    the shortcut is resampled alike and passes a 1x1 `skip` convolution when the shape changes."""

    def __init__(self, in_ch: int, out_ch: int, time_dim: int, style_dim: int, dropout: float, resample: Resample = "none") -> None:
        self.norm_0 = AdaptiveGroupNormSiLU(in_ch, style_dim)
        self.conv_0 = conv2d(in_ch, out_ch, 3)
        self.time_dense = linear(time_dim, out_ch)
        self.norm_1 = AdaptiveGroupNormSiLU(out_ch, style_dim)
        self.dropout = dropout
        self.conv_1 = conv2d(out_ch, out_ch, 3, init_scale=0.0)
        self.skip = conv2d(in_ch, out_ch, 1) if in_ch != out_ch or resample != "none" else None
        self.resample = resample

    def __call__(self, x: Tensor, time_features: Tensor, style: Tensor) -> Tensor:
        h = self.norm_0(x, style)
        if self.resample != "none":
            resample = _RESAMPLERS[self.resample]
            h, x = resample(h), resample(x)
        h = self.conv_0(h) + self.time_dense(time_features)[:, :, None, None]
        h = self.conv_1(self.norm_1(h, style).dropout(self.dropout))  # dropout acts only under Tensor.training
        if self.skip is not None:
            x = self.skip(x)
        return (x + h) * SKIP_SCALE


class SelfAttention:
    """Single-head self-attention over the pixels with a (x + h)/sqrt(2) residual; `qkv` stacks the
    query, key and value projections (3C, C)."""

    def __init__(self, channels: int) -> None:
        self.norm = group_norm(channels)
        self.qkv = linear(channels, 3 * channels)
        self.qkv.weight = variance_scaling_uniform((3 * channels, channels), 0.1, "fan_avg", fan_shape=(channels, channels))
        self.out = linear(channels, channels, init_scale=0.0)

    def __call__(self, x: Tensor) -> Tensor:
        n, c, height, width = x.shape
        tokens = self.norm(x).reshape(n, c, height * width).transpose(1, 2)  # (N, HW, C)
        q, k, v = materialize(self.qkv(tokens)).chunk(3, dim=-1)
        weights = materialize((materialize(q @ k.transpose(1, 2)) / math.sqrt(c)).softmax(-1))  # stored: read twice
        h = self.out(weights @ v)  # softmax(q k^T / sqrt(C)) v
        return (x + h.transpose(1, 2).reshape(n, c, height, width)) * SKIP_SCALE


class DownLevel:
    """One encoder resolution: residual blocks (with attention at attention resolutions), then, except
    at the lowest resolution, a down-sampling block merged with the input pyramid."""

    def __init__(self, blocks: list[ResBlock], attentions: list[SelfAttention], downsample: ResBlock | None,
                 pyramid_downsample: FirDownsampleConv | None) -> None:
        self.blocks, self.attentions = blocks, attentions
        self.downsample, self.pyramid_downsample = downsample, pyramid_downsample

    def __call__(self, h: Tensor, pyramid: Tensor, time_features: Tensor, style: Tensor, skips: list[Tensor]) -> tuple[Tensor, Tensor]:
        for i, block in enumerate(self.blocks):
            h = block(h, time_features, style)
            if self.attentions:
                h = self.attentions[i](h)
            skips.append(h)
        if self.downsample is not None:
            h = self.downsample(h, time_features, style)
            pyramid = (self.pyramid_downsample(pyramid) + h) * SKIP_SCALE
            h = pyramid
            skips.append(h)
        return h, pyramid


class UpLevel:
    """One decoder resolution: residual blocks on [h, encoder skip], attention at attention
    resolutions, then, except at the highest resolution, an up-sampling block."""

    def __init__(self, blocks: list[ResBlock], attention: SelfAttention | None, upsample: ResBlock | None) -> None:
        self.blocks, self.attention, self.upsample = blocks, attention, upsample

    def __call__(self, h: Tensor, time_features: Tensor, style: Tensor, skips: list[Tensor]) -> Tensor:
        for block in self.blocks:
            h = block(h.cat(skips.pop(), dim=1), time_features, style)
        if self.attention is not None:
            h = self.attention(h)
        if self.upsample is not None:
            h = self.upsample(h, time_features, style)
        return h


class NCSNppGenerator:
    """G(x_t (N, C, H, W), t (N,) step labels, z (N, nz)) -> x_0 prediction in [-1, 1], shape of x_t."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        nf, channels = cfg.nf, cfg.channels
        time_dim, style_dim = 4 * nf, cfg.z_emb_dim
        self.nf = nf

        def block(in_ch: int, out_ch: int, resample: Resample = "none") -> ResBlock:
            return ResBlock(in_ch, out_ch, time_dim, style_dim, cfg.dropout, resample)

        self.z_mapping = [linear(cfg.nz, style_dim, mode="fan_out")] + [linear(style_dim, style_dim, mode="fan_out") for _ in range(cfg.n_mlp)]
        self.time_embed = [linear(nf, time_dim), linear(time_dim, time_dim)]
        self.conv_in = conv2d(channels, nf, 3)

        resolutions = [cfg.image_size >> level for level in range(len(cfg.ch_mult))]
        last = len(cfg.ch_mult) - 1
        skip_channels = [nf]
        in_ch, pyramid_ch = nf, channels
        self.down: list[DownLevel] = []
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
            self.down.append(DownLevel(blocks, attentions, downsample, pyramid_downsample))
            in_ch = out_ch

        self.mid_block_0 = block(in_ch, in_ch)
        self.mid_attention = SelfAttention(in_ch)
        self.mid_block_1 = block(in_ch, in_ch)

        self.up: list[UpLevel] = []
        for level in reversed(range(len(cfg.ch_mult))):
            out_ch = nf * cfg.ch_mult[level]
            blocks = []
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(block(in_ch + skip_channels.pop(), out_ch))
                in_ch = out_ch
            attention = SelfAttention(out_ch) if resolutions[level] in cfg.attn_resolutions else None
            upsample = block(out_ch, out_ch, "up") if level != 0 else None
            self.up.insert(0, UpLevel(blocks, attention, upsample))  # up[level] works at resolutions[level]

        self.norm_out = group_norm(in_ch)
        self.conv_out = conv2d(in_ch, channels, 3, init_scale=0.0)

    def style(self, z: Tensor) -> Tensor:
        """The mapping network: PixelNorm, then linear + SiLU layers."""
        h = z * ((z * z).mean(axis=1, keepdim=True) + 1e-8).rsqrt()
        for layer in self.z_mapping:
            h = layer(h).silu()
        return h

    def time_features(self, t: Tensor) -> Tensor:
        """SiLU of the step-label embedding MLP: what every residual block's `time_dense` reads."""
        first, second = self.time_embed
        return second(first(sinusoidal_embedding(t, self.nf)).silu()).silu()

    def __call__(self, x: Tensor, t: Tensor, z: Tensor) -> Tensor:
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
        return self.conv_out(self.norm_out(h).silu()).tanh()
