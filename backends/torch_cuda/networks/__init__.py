"""The DDGAN networks in PyTorch, built from a `Config` (DESIGN 3).

    build_generator(cfg) -> G, with G(x_t, t, z) -> x_0 prediction (same shape as x_t)
    build_discriminator(cfg) -> D, with D(x_prev, x_t, t) -> logits (N,)

t holds integer step labels k in 0..T-1 (DESIGN 2.3): G(x_{k+1}, k, z) and D(x_k, x_{k+1}, k).
Images are (N, C, H, W) float32 in [-1, 1] (G ends in tanh); point data is (N, D).

State-dict naming (shared with the tinygrad backend, so checkpoints interchange):
every tensor is a parameter (no buffers) named by its attribute path, with ModuleList entries
numbered from 0. Leaves are Conv2d (`weight` (out, in, kh, kw), `bias` (out)), Linear (`weight`
(out, in), `bias` (out)) and affine GroupNorm (`weight`, `bias` (C)). All tensors are
contiguous float32 in NCHW / (out, in) order.

NCSN++ generator (ncsnpp.py):
    z_mapping.{i}                         Linear; i = 0 maps nz -> z_emb_dim, then n_mlp more
    time_embed.{0,1}                      Linear nf -> 4nf, 4nf -> 4nf
    conv_in                               Conv2d 3x3, C -> nf
    down.{level}.blocks.{i}               ResBlock
    down.{level}.attentions.{i}           SelfAttention after blocks.{i} (attention resolutions)
    down.{level}.downsample               ResBlock with FIR down-sampling (all but the last level)
    down.{level}.pyramid_downsample.conv  Conv2d 3x3 stride 2 after a FIR blur (input pyramid)
    mid_block_0, mid_attention, mid_block_1
    up.{level}.blocks.{i}                 ResBlock on [h, skip]; num_res_blocks + 1 per level
    up.{level}.attention                  SelfAttention (attention resolutions)
    up.{level}.upsample                   ResBlock with FIR up-sampling (all but level 0)
    norm_out, conv_out                    GroupNorm, Conv2d 3x3 nf -> C
  ResBlock: norm_0.style, conv_0, time_dense, norm_1.style, conv_1, [skip (1x1 Conv2d)]
    (norm_*.style is the AdaGN Linear z_emb_dim -> 2 * channels: first half scale, second shift)
  SelfAttention: norm (GroupNorm), qkv (Linear C -> 3C: query, key, value rows), out (Linear C -> C)
Discriminators (discriminator.py), small and large:
    time_embed.{0,1}, conv_in (1x1), blocks.{i}.{conv_0, time_dense, conv_1, skip (no bias)},
    conv_out (3x3 on features + 1 stddev channel), linear_out
MLP networks (mlp.py): layers.{i} (Linear).
"""

from __future__ import annotations

import torch
from torch import nn

from backends.torch_cuda.networks.discriminator import (
    large_discriminator,
    small_discriminator,
)
from backends.torch_cuda.networks.mlp import MLPDiscriminator, MLPGenerator
from backends.torch_cuda.networks.ncsnpp import NCSNppGenerator
from ddgan_core.config import Config
from ddgan_core.network_checks import check_discriminator, check_generator


def build_generator(cfg: Config) -> nn.Module:
    """The generator `cfg.generator.kind` names, freshly initialised as published."""
    check_generator(cfg)
    g = cfg.generator
    if g.kind == "ncsnpp":
        return NCSNppGenerator(g)
    return MLPGenerator(g.data_dim, g.nz, g.hidden, g.layers, g.input_frequencies)


def build_discriminator(cfg: Config) -> nn.Module:
    """The discriminator `cfg.discriminator.kind` names, freshly initialised as published."""
    check_discriminator(cfg)
    d = cfg.discriminator
    if d.kind == "mlp":
        return MLPDiscriminator(cfg.generator.data_dim, d.t_emb_dim, d.hidden, d.layers, d.input_frequencies)
    build = small_discriminator if d.kind == "small" else large_discriminator
    return build(cfg.generator.channels, d.ngf, d.t_emb_dim)


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters (trainable or not) of `module`."""
    return sum(p.numel() for p in module.parameters())


def parameter_counts(cfg: Config) -> dict[str, int]:
    """{"generator": n, "discriminator": m} for `cfg`, built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        return {"generator": count_parameters(build_generator(cfg)), "discriminator": count_parameters(build_discriminator(cfg))}
