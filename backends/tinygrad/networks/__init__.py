"""The DDGAN networks in tinygrad, built from a `Config`, interchangeable with the PyTorch backend's.

    build_generator(cfg) -> G, with G(x_t, t, z) -> x_0 prediction (same shape as x_t)
    build_discriminator(cfg) -> D, with D(x_prev, x_t, t) -> logits (N,)

Every parameter has the name (`tinygrad.nn.state.get_state_dict`), shape and meaning documented in
backends/torch_cuda/networks/__init__.py, so one safetensors checkpoint loads in either backend.
Modules are plain classes whose attribute names are the PyTorch module paths; lists number their
entries from 0 like nn.ModuleList; no module holds a tensor that is not a parameter.
"""

from __future__ import annotations

from typing import Any

from tinygrad.nn.state import get_state_dict

from backends.tinygrad.networks.discriminator import (
    large_discriminator,
    small_discriminator,
)
from backends.tinygrad.networks.mlp import MLPDiscriminator, MLPGenerator
from backends.tinygrad.networks.ncsnpp import NCSNppGenerator
from ddgan_core.config import Config
from ddgan_core.network_checks import check_discriminator, check_generator


def build_generator(cfg: Config) -> Any:
    """The generator `cfg.generator.kind` names, freshly initialised as published (lazy tensors)."""
    check_generator(cfg)
    g = cfg.generator
    if g.kind == "ncsnpp":
        return NCSNppGenerator(g)
    return MLPGenerator(g.data_dim, g.nz, g.hidden, g.layers, g.input_frequencies)


def build_discriminator(cfg: Config) -> Any:
    """The discriminator `cfg.discriminator.kind` names, freshly initialised as published (lazy tensors)."""
    check_discriminator(cfg)
    d = cfg.discriminator
    if d.kind == "mlp":
        return MLPDiscriminator(cfg.generator.data_dim, d.t_emb_dim, d.hidden, d.layers, d.input_frequencies)
    build = small_discriminator if d.kind == "small" else large_discriminator
    return build(cfg.generator.channels, d.ngf, d.t_emb_dim)


def count_parameters(module: Any) -> int:
    """Number of scalar parameters of `module` (read from the shapes: nothing is computed)."""
    return sum(t.numel() for t in get_state_dict(module).values())


def parameter_counts(cfg: Config) -> dict[str, int]:
    """{"generator": n, "discriminator": m} for `cfg` (the networks stay lazy: no memory, no init cost)."""
    return {"generator": count_parameters(build_generator(cfg)), "discriminator": count_parameters(build_discriminator(cfg))}
