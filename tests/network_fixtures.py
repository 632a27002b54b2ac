"""Torch networks moved off the published initialisation, for tests that need every path to matter.

At the published initialisation the last layer of each residual path and the output layers are
near zero (scale 1e-10), so a generator's samples sit near 0 and the R1 penalty near 1e-15: two
implementations would agree whatever they computed. These helpers give those layers ordinary scale.
"""

from __future__ import annotations

import torch

from backends.torch_cuda.networks.layers import variance_scaling_uniform_


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
