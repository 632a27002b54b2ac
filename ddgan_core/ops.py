"""The few array operations the method needs from a backend (numpy, PyTorch, tinygrad).

The sampling chain, the forward-process draws and the loss specifications are written once,
over arrays that support + - * with scalars and each other, plus this protocol. A backend
implements it in a few lines; `NumpyOps` is the reference implementation used by the tests
and the closed-form oracle.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import numpy as np

A = TypeVar("A")


class ArrayOps(Protocol[A]):
    """Backend operations over arrays of type A (batch axis first)."""

    def per_sample(self, table: np.ndarray, index: A, like: A) -> A:
        """table[index] for each sample, shaped (N, 1, ..., 1) to broadcast against `like`."""

    def randn_like(self, x: A) -> A:
        """Standard normal noise of x's shape, dtype and device."""

    def softplus(self, x: A) -> A:
        """log(1 + exp(x)), numerically stable for |x| up to 1e4 and beyond."""

    def mean(self, x: A) -> A:
        """Mean over all elements (a scalar array)."""

    def sum_per_sample(self, x: A) -> A:
        """Sum over every axis but the first, shape (N,)."""


class NumpyOps:
    """ArrayOps over float64 numpy arrays, with noise from a seeded Generator."""

    def __init__(self, rng: np.random.Generator | None = None) -> None:
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def per_sample(self, table: np.ndarray, index: Any, like: np.ndarray) -> np.ndarray:
        values = np.asarray(table, dtype=np.float64)[np.asarray(index)]
        return values.reshape((-1,) + (1,) * (np.ndim(like) - 1))

    def randn_like(self, x: np.ndarray) -> np.ndarray:
        return self.rng.standard_normal(np.shape(x))

    def softplus(self, x: np.ndarray) -> np.ndarray:
        return np.logaddexp(0.0, x)

    def mean(self, x: np.ndarray) -> np.ndarray:
        return np.mean(x)

    def sum_per_sample(self, x: np.ndarray) -> np.ndarray:
        return np.reshape(x, (np.shape(x)[0], -1)).sum(axis=1)
