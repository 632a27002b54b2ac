"""The metrics' error type and the input checks they share, so every metric refuses bad
arrays with the same one-line messages."""

from __future__ import annotations

import numpy as np

from ddgan_core.errors import DDGANError


class MetricError(DDGANError, ValueError):
    """Inputs a metric cannot score: wrong shape, too few points, non-finite values."""


def as_matrix(name: str, array: np.ndarray, *, min_rows: int = 1) -> np.ndarray:
    """`array` as a finite (N, F) array with N >= min_rows (dtype kept: callers pick float64)."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise MetricError(f"{name} must be 2-D (N, F), got shape {array.shape}")
    if array.shape[0] < min_rows or array.shape[1] < 1:
        raise MetricError(f"{name} needs at least {min_rows} rows and 1 column, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
        raise MetricError(f"{name} must hold finite numbers")
    return array


def as_points_1d(name: str, array: np.ndarray) -> np.ndarray:
    """Scalar samples given as (N,) or (N, 1), returned as a finite float64 (N,) array, N >= 1."""
    try:
        array = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        raise MetricError(f"{name} must be numeric") from None
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or array.shape[0] == 0:
        raise MetricError(f"{name} must be a non-empty (N,) or (N, 1) array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise MetricError(f"{name} must hold finite numbers")
    return array


def require_int(name: str, value: object, minimum: int) -> int:
    """`value` as an int >= minimum (bools refused), for counts such as k, splits and n_grid."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise MetricError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
