"""Mode coverage of point data and of Stacked MNIST (the VEEGAN / PacGAN protocol).

Point data (grid25, ring8; Srivastava et al. 2017, Lin et al. 2018): each sample is assigned
to its nearest centre; it is high quality when that distance is below `threshold_sigmas`
standard deviations of the mode (3 sigma). Only high-quality samples enter the per-mode
histogram, exactly as PacGAN's evaluation code (synthetic_data_experiments, MetricLogger)
builds it:
- modes_covered: modes with at least one high-quality sample;
- high_quality_fraction: high-quality samples / all samples;
- reverse_kl: KL(q || u) = sum_i q_i log(K q_i), q the normalised histogram of the
  high-quality samples over the K modes and u uniform (= log K - entropy(q)); infinite when
  no sample is high quality.
Stacked MNIST (Metz et al. 2017 and the papers above): the 1000 modes are the digit triples
read by a classifier; the modes count is the number of triples seen and the KL is the same
KL(q || uniform) over all samples' triples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ddgan_core.metrics.checks import MetricError, as_matrix


@dataclass(frozen=True)
class ModeCoverage:
    """Scores of samples against K known modes (see the module docstring for definitions)."""

    modes_covered: int
    n_modes: int
    high_quality_fraction: float
    reverse_kl: float
    counts: np.ndarray  # (K,) high-quality samples assigned to each mode


def kl_to_uniform(counts: np.ndarray) -> float:
    """KL(q || uniform over len(counts)) for q = counts / counts.sum(); inf for no counts."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return float("inf")
    q = counts[counts > 0] / total
    return float(np.sum(q * np.log(q * counts.shape[0])))


def mode_coverage(
    samples: np.ndarray, centres: np.ndarray, sigma: float, threshold_sigmas: float = 3.0
) -> ModeCoverage:
    """Score (N, D) samples against (K, D) mode centres of standard deviation sigma."""
    samples = as_matrix("samples", samples).astype(np.float64, copy=False)
    centres = as_matrix("centres", centres).astype(np.float64, copy=False)
    if samples.shape[1] != centres.shape[1]:
        raise MetricError(f"samples are {samples.shape[1]}-D but centres are {centres.shape[1]}-D")
    if not (np.isfinite(sigma) and sigma > 0):
        raise MetricError(f"sigma must be a positive number, got {sigma!r}")
    if not (np.isfinite(threshold_sigmas) and threshold_sigmas > 0):
        raise MetricError(f"threshold_sigmas must be a positive number, got {threshold_sigmas!r}")
    distances = np.sqrt(((samples[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1))
    nearest = distances.argmin(axis=1)
    high_quality = distances[np.arange(samples.shape[0]), nearest] < threshold_sigmas * sigma
    counts = np.bincount(nearest[high_quality], minlength=centres.shape[0])
    return ModeCoverage(
        modes_covered=int(np.count_nonzero(counts)),
        n_modes=int(centres.shape[0]),
        high_quality_fraction=float(high_quality.mean()),
        reverse_kl=kl_to_uniform(counts),
        counts=counts,
    )


def stacked_mnist_coverage(labels: np.ndarray, n_modes: int = 1000) -> tuple[int, float]:
    """(modes seen, KL(q || uniform)) of (N,) integer mode labels in 0..n_modes-1.

    For Stacked MNIST a label encodes the classified digit triple, e.g. 100 * first + 10 *
    second + third.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] == 0:
        raise MetricError(f"labels must be a non-empty (N,) array, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise MetricError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= n_modes:
        raise MetricError(f"labels must lie in 0..{n_modes - 1}, got {labels.min()}..{labels.max()}")
    counts = np.bincount(labels, minlength=n_modes)
    return int(np.count_nonzero(counts)), kl_to_uniform(counts)
