"""Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019).

Each set's manifold is the union of balls around its points, a point's radius being the
distance to its k-th nearest neighbour in the same set (k = 3 in the paper; the point itself
is not counted). precision = share of fake points inside the real manifold; recall = share
of real points inside the fake manifold. A point lies inside when its distance to some
manifold point is <= that point's radius.

Distances are computed in blocks of `batch_size` x `batch_size` (squared distances by the
|a|^2 + |b|^2 - 2 a.b expansion in float64): beyond the inputs, working memory is
O(batch_size^2 + batch_size * F) (tens of MB for 50,000 x 2048 features), never N x N.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ddgan_core.metrics.checks import MetricError, as_matrix, require_int


def _blocks(features: np.ndarray, batch_size: int) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, block) for consecutive row blocks of `features`, each block as float64."""
    for start in range(0, features.shape[0], batch_size):
        rows = slice(start, min(start + batch_size, features.shape[0]))
        yield rows, features[rows].astype(np.float64, copy=False)


def _squared_norms(features: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([np.einsum("ij,ij->i", block, block) for _, block in _blocks(features, batch_size)])


def _squared_distances(a: np.ndarray, a_norms: np.ndarray, b: np.ndarray, b_norms: np.ndarray) -> np.ndarray:
    return np.maximum(a_norms[:, None] + b_norms[None, :] - 2.0 * (a @ b.T), 0.0)


def kth_neighbour_squared_radii(features: np.ndarray, k: int = 3, batch_size: int = 1000) -> np.ndarray:
    """Squared distance from each row of (N, F) features to its k-th nearest other row, (N,).

    The row itself (distance 0) is the first of the k + 1 smallest distances kept while the
    column blocks stream past, so the (k + 1)-th smallest is the k-th true neighbour.
    """
    features = as_matrix("features", features, min_rows=k + 1)
    norms = _squared_norms(features, batch_size)
    radii = np.empty(features.shape[0])
    for rows, row_block in _blocks(features, batch_size):
        smallest = np.full((row_block.shape[0], k + 1), np.inf)
        for cols, col_block in _blocks(features, batch_size):
            distances = _squared_distances(row_block, norms[rows], col_block, norms[cols])
            candidates = np.concatenate([smallest, distances], axis=1)
            smallest = np.partition(candidates, k, axis=1)[:, : k + 1]
        radii[rows] = smallest.max(axis=1)
    return radii


def inside_manifold(
    points: np.ndarray, manifold: np.ndarray, squared_radii: np.ndarray, batch_size: int = 1000
) -> np.ndarray:
    """Boolean (N,): whether each point is within the radius of some manifold point."""
    point_norms = _squared_norms(points, batch_size)
    manifold_norms = _squared_norms(manifold, batch_size)
    inside = np.zeros(points.shape[0], dtype=bool)
    for rows, row_block in _blocks(points, batch_size):
        for cols, col_block in _blocks(manifold, batch_size):
            distances = _squared_distances(row_block, point_norms[rows], col_block, manifold_norms[cols])
            inside[rows] |= np.any(distances <= squared_radii[None, cols], axis=1)
    return inside


def precision_recall(
    real_features: np.ndarray, fake_features: np.ndarray, k: int = 3, batch_size: int = 1000
) -> tuple[float, float]:
    """(precision, recall) of fake against real features, both (N, F) with the same F."""
    k = require_int("k", k, 1)
    batch_size = require_int("batch_size", batch_size, 1)
    real = as_matrix("real features", real_features, min_rows=k + 1)
    fake = as_matrix("fake features", fake_features, min_rows=k + 1)
    if real.shape[1] != fake.shape[1]:
        raise MetricError(f"real and fake features differ in size: {real.shape[1]} and {fake.shape[1]}")
    real_radii = kth_neighbour_squared_radii(real, k, batch_size)
    fake_radii = kth_neighbour_squared_radii(fake, k, batch_size)
    precision = inside_manifold(fake, real, real_radii, batch_size).mean()
    recall = inside_manifold(real, fake, fake_radii, batch_size).mean()
    return float(precision), float(recall)
