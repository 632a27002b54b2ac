"""One-dimensional Wasserstein-1 distances.

In 1-D, W1(P, Q) = integral |F_P(x) - F_Q(x)| dx (Vallender 1974), which gives an exact
formula between two sample sets of any sizes and a deterministic quadrature against a
known CDF (the oracle's exact mixtures), with no optimal-transport solver.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ddgan_core.metrics.checks import MetricError, as_points_1d, require_int

CDF = Callable[[np.ndarray], np.ndarray]


def wasserstein1_samples(a: np.ndarray, b: np.ndarray) -> float:
    """Exact W1 between the empirical distributions of samples a (N,) and b (M,).

    Both empirical CDFs are step functions that only change at the pooled sorted samples, so
    the integral is a finite sum over the gaps between consecutive pooled values.
    """
    a = np.sort(as_points_1d("a", a))
    b = np.sort(as_points_1d("b", b))
    pooled = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(a, pooled[:-1], side="right") / a.shape[0]
    cdf_b = np.searchsorted(b, pooled[:-1], side="right") / b.shape[0]
    return float(np.sum(np.abs(cdf_a - cdf_b) * np.diff(pooled)))


def _grid(lo: float, hi: float, n_grid: int) -> np.ndarray:
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise MetricError(f"need finite lo < hi, got lo={lo!r}, hi={hi!r}")
    return np.linspace(lo, hi, require_int("n_grid", n_grid, 2))


def _evaluate(cdf: CDF, x: np.ndarray) -> np.ndarray:
    values = np.asarray(cdf(x), dtype=np.float64)
    if values.shape != x.shape:
        raise MetricError(f"cdf returned shape {values.shape} for points of shape {x.shape}")
    return values


def wasserstein1_to_cdf(samples: np.ndarray, cdf: CDF, lo: float, hi: float, n_grid: int = 10_001) -> float:
    """W1 between the samples' empirical distribution and the distribution with CDF `cdf`.

    integral |F_emp(x) - F(x)| dx over [lo, hi] widened to contain every sample: [lo, hi]
    must hold the exact distribution's mass (e.g. means +- 10 sd); its tails beyond are
    neglected. Breakpoints are the grid of n_grid points plus the samples; F_emp is constant
    between breakpoints and |F_emp - F| is integrated there by the trapezoid rule (exact
    where F is linear and does not cross F_emp inside a gap).
    """
    samples = np.sort(as_points_1d("samples", samples))
    grid = _grid(lo, hi, n_grid)
    points = np.union1d(grid, samples)
    empirical = np.searchsorted(samples, points[:-1], side="right") / samples.shape[0]
    exact = _evaluate(cdf, points)
    left = np.abs(empirical - exact[:-1])
    right = np.abs(empirical - exact[1:])
    return float(np.sum(0.5 * (left + right) * np.diff(points)))


def wasserstein1_between_cdfs(cdf_a: CDF, cdf_b: CDF, lo: float, hi: float, n_grid: int = 10_001) -> float:
    """W1 between two distributions given by CDFs: trapezoid rule for integral |F_a - F_b| on [lo, hi]."""
    grid = _grid(lo, hi, n_grid)
    gap = np.abs(_evaluate(cdf_a, grid) - _evaluate(cdf_b, grid))
    return float(np.sum(0.5 * (gap[:-1] + gap[1:]) * np.diff(grid)))
