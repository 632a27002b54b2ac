"""MLP generator and discriminator for point data (the paper's toy experiment, DESIGN 3).

Both read the step label k through a fixed sinusoidal embedding concatenated to their inputs and
use LeakyReLU(0.2) between layers (the usual GAN choice; it keeps gradients for negative inputs).
With `frequencies` L > 0 each point coordinate x is also fed as sin(2^j x), cos(2^j x), j < L
(a fixed positional encoding, no parameters): a plain MLP learns the sharp structure of mode
grids very slowly (spectral bias), which this removes; the toy2d preset uses L = 5.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from backends.torch_cuda.networks.layers import sinusoidal_embedding

NEGATIVE_SLOPE = 0.2
GENERATOR_TIME_DIM = 32  # width of G's step-label embedding (GeneratorConfig has no field for it)


def _mlp(widths: list[int]) -> nn.ModuleList:
    return nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(widths))


def _run(layers: nn.ModuleList, h: torch.Tensor) -> torch.Tensor:
    for layer in layers[:-1]:
        h = F.leaky_relu(layer(h), NEGATIVE_SLOPE)
    return layers[-1](h)


def positional_encoding(x: torch.Tensor, frequencies: int) -> torch.Tensor:
    """(N, D) -> (N, D (1 + 2L)): [x, sin(2^j x), cos(2^j x)] for j < L (x itself when L = 0)."""
    if frequencies == 0:
        return x
    angles = (x[:, :, None] * 2.0 ** torch.arange(frequencies, device=x.device, dtype=x.dtype)).flatten(1)
    return torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=1)


class MLPGenerator(nn.Module):
    """G(x_t (N, D), t (N,), z (N, nz)) -> x_0 prediction (N, D): concat(enc(x_t), z, emb(t)),
    `layers` hidden layers of width `hidden`, linear output (no squashing: point data is unbounded)."""

    def __init__(self, data_dim: int, nz: int, hidden: int, layers: int, frequencies: int = 0) -> None:
        super().__init__()
        self.frequencies = frequencies
        width = data_dim * (1 + 2 * frequencies) + nz + GENERATOR_TIME_DIM
        self.layers = _mlp([width] + [hidden] * layers + [data_dim])

    def forward(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = torch.cat([positional_encoding(x, self.frequencies), z, sinusoidal_embedding(t, GENERATOR_TIME_DIM)], dim=1)
        return _run(self.layers, h)


class MLPDiscriminator(nn.Module):
    """D(x_prev (N, D), x_t (N, D), t (N,)) -> logits (N,): concat(enc(x_prev), enc(x_t), emb(t)),
    `layers` hidden layers of width `hidden`, one linear logit."""

    def __init__(self, data_dim: int, t_emb_dim: int, hidden: int, layers: int, frequencies: int = 0) -> None:
        super().__init__()
        self.t_emb_dim, self.frequencies = t_emb_dim, frequencies
        self.layers = _mlp([2 * data_dim * (1 + 2 * frequencies) + t_emb_dim] + [hidden] * layers + [1])

    def forward(self, x_prev: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        encode = lambda x: positional_encoding(x, self.frequencies)  # noqa: E731
        h = torch.cat([encode(x_prev), encode(x_t), sinusoidal_embedding(t, self.t_emb_dim)], dim=1)
        return _run(self.layers, h).squeeze(1)
