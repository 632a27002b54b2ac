"""Torch networks moved off the published initialisation, for tests that need every path to matter.

At the published initialisation the last layer of each residual path and the output layers are
near zero (scale 1e-10), so a generator's samples sit near 0 and the R1 penalty near 1e-15: two
implementations would agree whatever they computed. These helpers give those layers ordinary scale.
"""

from __future__ import annotations

import pathlib

import torch

from backends.torch_cuda.networks import build_generator
from backends.torch_cuda.networks.layers import variance_scaling_uniform_
from ddgan_core.checkpoint import GENERATOR_EMA, save_checkpoint
from ddgan_core.config import Config


def wake_near_zero_layers(module: torch.nn.Module, bias_scale: float = 0.0) -> torch.nn.Module:
    """Re-draw the near-zero weights at unit variance scaling (fan_avg), in place; with `bias_scale`,
    draw every bias from U(-bias_scale, bias_scale) too (they start at zero). Returns the module."""
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() >= 2 and p.abs().max() < 1e-4:
                variance_scaling_uniform_(p, 1.0, "fan_avg")
            elif p.dim() == 1 and bias_scale > 0:
                p.uniform_(-bias_scale, bias_scale)
    return module


def visible_generator(config: Config, device: torch.device = torch.device("cpu")) -> torch.nn.Module:
    """The config's generator (seed 0) with its near-zero layers re-drawn at unit scale: samples spread over [-1, 1]."""
    torch.manual_seed(0)
    return wake_near_zero_layers(build_generator(config).eval()).to(device)


def visible_generator_checkpoint(config: Config, path: pathlib.Path) -> pathlib.Path:
    """A checkpoint whose EMA generator is visible_generator(config)."""
    state = {f"{GENERATOR_EMA}.{k}": v.numpy() for k, v in visible_generator(config).state_dict().items()}
    return save_checkpoint(path, state, step=0, config=config)
