"""ArrayOps for tinygrad tensors (the few operations ddgan_core's maths needs), and where noise comes from.

Noise is drawn on the host from a numpy Generator and handed to tinygrad as tensors: the draws of a
training step are then inputs of its TinyJit (fresh every call, never frozen at capture), they can
be injected (the cross-backend parity test feeds both backends the same arrays), and the random
state is an ordinary numpy state that a checkpoint stores, so a resumed run draws what the
uninterrupted run would have drawn.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

import numpy as np
from tinygrad import Tensor, dtypes

NoiseSource = Callable[[tuple[int, ...]], Tensor]
"""shape -> a float32 tensor of standard normal noise of that shape."""


def host_noise(rng: np.random.Generator, device: str) -> NoiseSource:
    """Noise from a numpy Generator (float32), placed on `device`."""
    return lambda shape: Tensor(rng.standard_normal(shape, dtype=np.float32), device=device)


class QueuedNoise:
    """Hands out given noise tensors in order: how a jitted step consumes the noise it was passed."""

    def __init__(self, tensors: Iterable[Tensor]) -> None:
        self._queue = deque(tensors)

    def __call__(self, shape: tuple[int, ...]) -> Tensor:
        if not self._queue:
            raise RuntimeError("a step asked for more noise than it was given")
        noise = self._queue.popleft()
        if noise.shape != tuple(shape):
            raise RuntimeError(f"noise of shape {noise.shape} given where {tuple(shape)} was asked for")
        return noise


class TinygradOps:
    """ddgan_core.ops.ArrayOps over tinygrad tensors; `noise` supplies randn_like (replaceable per step)."""

    def __init__(self, noise: NoiseSource) -> None:
        self.noise = noise
        # keyed by the table's identity; the table itself is kept so its id cannot be reused
        self._tables: dict[tuple[int, str], tuple[np.ndarray, Tensor]] = {}

    def per_sample(self, table: np.ndarray, index: Tensor, like: Tensor) -> Tensor:
        key = (id(table), like.device)
        if key not in self._tables:  # realised once, so a TinyJit reads the same buffer on every replay
            values = Tensor(np.asarray(table, dtype=np.float32), device=like.device).realize()
            self._tables[key] = (table, values)
        return self._tables[key][1][index].reshape((-1,) + (1,) * (like.ndim - 1))

    def randn_like(self, x: Tensor) -> Tensor:
        noise = self.noise(tuple(x.shape))
        return noise if noise.dtype == x.dtype else noise.cast(x.dtype)

    def softplus(self, x: Tensor) -> Tensor:
        return x.softplus()

    def mean(self, x: Tensor) -> Tensor:
        return x.mean()

    def sum_per_sample(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], -1).sum(axis=1)


def labels_tensor(labels: np.ndarray, device: str) -> Tensor:
    """Integer step labels as the int32 tensor the networks and per_sample read."""
    return Tensor(np.asarray(labels, dtype=np.int32), device=device, dtype=dtypes.int32)
