"""Fréchet distance between Gaussians fitted to feature sets: the maths of FID.

FID (Heusel et al. 2017) = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}), with the
statistics of pool3 Inception features. The feature network lives in a backend; this module
holds only the statistics and the distance, in float64 numpy.
"""

from __future__ import annotations

import numpy as np

from ddgan_core.metrics.checks import MetricError, as_matrix


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and unbiased covariance (F, F) of (N, F) features, N >= 2, in float64.

    Unbiased (divide by N - 1) like pytorch-fid's `np.cov(act, rowvar=False)`, so reference
    statistics computed here and there agree.
    """
    features = as_matrix("features", features, min_rows=2).astype(np.float64, copy=False)
    mu = features.mean(axis=0)
    sigma = np.atleast_2d(np.cov(features, rowvar=False))
    return mu, sigma


def _psd_eigenvalues(eigenvalues: np.ndarray) -> np.ndarray:
    """A symmetric PSD matrix's computed eigenvalues with those within the solver's round-off of
    zero (lambda <= n eps max|lambda|, np.linalg.matrix_rank's tolerance; round-off negatives
    included) set to zero.

    Why: a zero eigenvalue comes back as about +-eps |M|, and its square root, about 1e-8 |M|^{1/2},
    is not round-off any more; a covariance of N < F samples has F - N + 1 of them, so without
    this tr((S1 S2)^{1/2}) carries a bias that grows with the rank deficiency.
    """
    floor = eigenvalues.size * np.finfo(np.float64).eps * float(np.abs(eigenvalues).max(initial=0.0))
    return np.where(eigenvalues > floor, eigenvalues, 0.0)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix."""
    eigenvalues, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(_psd_eigenvalues(eigenvalues))) @ vectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((S1 S2)^{1/2}) for symmetric PSD S1, S2.

    S1 S2 has the same eigenvalues as the symmetric PSD matrix S1^{1/2} S2 S1^{1/2} (AB and BA
    share their spectrum), so the trace is sum sqrt(eigvalsh(S1^{1/2} S2 S1^{1/2})). Only
    symmetric eigen-solvers are used: no complex round-off as with a general sqrtm, and
    singular covariances (fewer samples than features) need no eps offset, because the
    symmetric route is defined, and exact to round-off, for PSD matrices of any rank.
    """
    root = _psd_sqrt(sigma1)
    middle = root @ sigma2 @ root
    eigenvalues = np.linalg.eigvalsh(0.5 * (middle + middle.T))
    return float(np.sqrt(_psd_eigenvalues(eigenvalues)).sum())


def _statistics(name: str, mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise MetricError(f"{name}: mean must be (F,) and covariance (F, F), got {mu.shape} and {sigma.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise MetricError(f"{name}: statistics must be finite")
    scale = max(float(np.abs(sigma).max()), 1e-300)
    if not np.allclose(sigma, sigma.T, rtol=0.0, atol=1e-8 * scale):
        raise MetricError(f"{name}: covariance must be symmetric")
    return mu, 0.5 * (sigma + sigma.T)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """d^2(N(mu1, S1), N(mu2, S2)) = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}).

    The squared Fréchet (2-Wasserstein) distance between the Gaussians, as FID reports it.
    """
    mu1, sigma1 = _statistics("first statistics", mu1, sigma1)
    mu2, sigma2 = _statistics("second statistics", mu2, sigma2)
    if mu1.shape != mu2.shape:
        raise MetricError(f"statistics have different feature sizes: {mu1.shape[0]} and {mu2.shape[0]}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))
