"""Isotropic Gaussian mixtures: the data of the toy experiments and the language of the oracle.

p(x) = sum_i w_i N(x; m_i, s_i^2 I). Every distribution the oracle returns (DESIGN 2.5) is one
of these, so density, sampling and (in 1-D) the CDF are written once, here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ddgan_core.errors import DDGANError

_ERF = np.frompyfunc(math.erf, 1, 1)


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """weights (K,), means (K, D), variances (K,) of isotropic components."""

    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.float64).reshape(-1)
        m = np.asarray(self.means, dtype=np.float64)
        if m.ndim == 1:
            m = m[:, None]
        v = np.asarray(self.variances, dtype=np.float64).reshape(-1)
        if not (len(w) == len(m) == len(v)) or len(w) == 0:
            raise DDGANError(f"mixture needs matching component counts, got {len(w)}, {len(m)}, {len(v)}")
        if np.any(w < 0) or not np.isclose(w.sum(), 1.0, atol=1e-9):
            raise DDGANError("mixture weights must be non-negative and sum to 1")
        if np.any(v < 0):
            raise DDGANError("mixture variances must be non-negative")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "means", m)
        object.__setattr__(self, "variances", v)

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])

    def component_log_prob(self, x: np.ndarray) -> np.ndarray:
        """log N(x_n; m_i, s_i^2 I) for every point and component, shape (N, K)."""
        x = self._points(x)
        sq = ((x[:, None, :] - self.means[None, :, :]) ** 2).sum(-1)
        v = self.variances[None, :]
        return -0.5 * sq / v - 0.5 * self.dim * np.log(2 * np.pi * v)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log p(x), shape (N,), by a stable log-sum-exp over components."""
        with np.errstate(divide="ignore"):
            joint = self.component_log_prob(x) + np.log(self.weights)[None, :]
        top = joint.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(joint - top).sum(axis=1, keepdims=True)))[:, 0]

    def prob(self, x: np.ndarray) -> np.ndarray:
        return np.exp(self.log_prob(x))

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """P(X <= x) for a 1-D mixture, shape of x."""
        if self.dim != 1:
            raise DDGANError("cdf is defined for 1-D mixtures only")
        x = np.asarray(x, dtype=np.float64)
        z = (x[..., None] - self.means[:, 0]) / np.sqrt(2.0 * self.variances)
        return (self.weights * 0.5 * (1.0 + _ERF(z).astype(np.float64))).sum(-1)

    def mean(self) -> np.ndarray:
        """E[x], shape (D,)."""
        return self.weights @ self.means

    def covariance(self) -> np.ndarray:
        """Cov[x], shape (D, D): within-component plus between-component spread."""
        centred = self.means - self.mean()
        between = (self.weights[:, None, None] * centred[:, :, None] * centred[:, None, :]).sum(0)
        return between + np.eye(self.dim) * (self.weights @ self.variances)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n independent draws, shape (n, D)."""
        which = rng.choice(self.n_components, size=n, p=self.weights)
        noise = rng.standard_normal((n, self.dim))
        return self.means[which] + np.sqrt(self.variances[which])[:, None] * noise

    def _points(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.dim == 1 and x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise DDGANError(f"expected points of shape (N, {self.dim}), got {x.shape}")
        return x
