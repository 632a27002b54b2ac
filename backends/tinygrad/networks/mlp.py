"""MLP generator and discriminator for point data in tinygrad (mirrors backends/torch_cuda/networks/mlp.py).

Both read the step label through a fixed sinusoidal embedding concatenated to their inputs, and
optionally a positional encoding of the point coordinates, and use LeakyReLU(0.2) between layers.
Layers keep tinygrad's (PyTorch-equal) default initialisation.
"""

from __future__ import annotations

import itertools

from tinygrad import Tensor, nn

from backends.tinygrad.networks.layers import materialize, sinusoidal_embedding

NEGATIVE_SLOPE = 0.2
GENERATOR_TIME_DIM = 32  # width of G's step-label embedding, as in the PyTorch backend


def _mlp(widths: list[int]) -> list[nn.Linear]:
    return [nn.Linear(a, b) for a, b in itertools.pairwise(widths)]


def positional_encoding(x: Tensor, frequencies: int) -> Tensor:
    """(N, D) -> (N, D (1 + 2L)): [x, sin(2^j x), cos(2^j x)] for j < L (x itself when L = 0)."""
    if frequencies == 0:
        return x
    angles = Tensor.stack(*[x * 2.0**j for j in range(frequencies)], dim=2).flatten(1)  # (N, D, L) order
    return x.cat(angles.sin(), angles.cos(), dim=1)


def _run(layers: list[nn.Linear], h: Tensor) -> Tensor:
    h = materialize(h)
    for layer in layers[:-1]:
        h = materialize(layer(h)).leaky_relu(NEGATIVE_SLOPE)
    return layers[-1](h)


class MLPGenerator:
    """G(x_t (N, D), t (N,), z (N, nz)) -> x_0 prediction (N, D), linear output."""

    def __init__(self, data_dim: int, nz: int, hidden: int, layers: int, frequencies: int = 0) -> None:
        self.frequencies = frequencies
        width = data_dim * (1 + 2 * frequencies) + nz + GENERATOR_TIME_DIM
        self.layers = _mlp([width] + [hidden] * layers + [data_dim])

    def __call__(self, x: Tensor, t: Tensor, z: Tensor) -> Tensor:
        h = positional_encoding(x, self.frequencies).cat(z, sinusoidal_embedding(t, GENERATOR_TIME_DIM), dim=1)
        return _run(self.layers, h)


class MLPDiscriminator:
    """D(x_prev (N, D), x_t (N, D), t (N,)) -> logits (N,)."""

    def __init__(self, data_dim: int, t_emb_dim: int, hidden: int, layers: int, frequencies: int = 0) -> None:
        self.t_emb_dim, self.frequencies = t_emb_dim, frequencies
        self.layers = _mlp([2 * data_dim * (1 + 2 * frequencies) + t_emb_dim] + [hidden] * layers + [1])

    def __call__(self, x_prev: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        encoded = [positional_encoding(x, self.frequencies) for x in (x_prev, x_t)]
        h = encoded[0].cat(encoded[1], sinusoidal_embedding(t, self.t_emb_dim), dim=1)
        return _run(self.layers, h).squeeze(1)
