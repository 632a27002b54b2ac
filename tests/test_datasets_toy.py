"""Built-in point data: exact mixture parameters, and draws that match them."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ddgan_core.datasets import load_dataset

seeds = st.integers(min_value=0, max_value=2**32 - 1)


def _grid_centres():
    return np.array([(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)], float)


def _ring_centres():
    return np.array([(math.cos(math.pi * k / 4), math.sin(math.pi * k / 4)) for k in range(8)])


def test_mixtures_are_the_stated_ones():
    grid = load_dataset("grid25").mixture
    order = np.lexsort(grid.means.T[::-1])
    np.testing.assert_allclose(grid.means[order], _grid_centres())
    np.testing.assert_allclose(grid.variances, 0.05**2)
    np.testing.assert_allclose(grid.weights, 1 / 25)

    ring = load_dataset("ring8").mixture
    angles = np.sort(np.mod(np.arctan2(ring.means[:, 1], ring.means[:, 0]), 2 * np.pi))
    np.testing.assert_allclose(angles, np.arange(8) * np.pi / 4, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(ring.means, axis=1), 1.0)
    np.testing.assert_allclose(ring.variances, 0.01**2)
    np.testing.assert_allclose(ring.weights, 1 / 8)

    line = load_dataset("mixture1d").mixture
    np.testing.assert_allclose(line.means[:, 0], [-2.0, 0.5, 2.5])
    np.testing.assert_allclose(line.variances, [0.09, 0.04, 0.16])
    np.testing.assert_allclose(line.weights, 1 / 3)


def _check_separated_components(points, centres, sigma):
    """Points of well-separated components: count, mean and spread of each, within 6 s.e."""
    n, k = len(points), len(centres)
    nearest = np.argmin(((points[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    counts = np.bincount(nearest, minlength=k)
    assert np.abs(counts - n / k).max() < 6 * math.sqrt(n * (1 / k) * (1 - 1 / k))
    for j, centre in enumerate(centres):
        members = points[nearest == j].astype(np.float64)
        assert np.abs(members.mean(0) - centre).max() < 6 * sigma / math.sqrt(len(members))
        assert abs((members - members.mean(0)).std() / sigma - 1) < 6 / math.sqrt(2 * members.size)


@settings(max_examples=4, deadline=None)
@given(seed=seeds)
def test_grid25_draws_match_the_mixture(seed):
    ds = load_dataset("grid25", seed=seed)
    assert ds.shape == (2,) and not ds.is_image and len(ds) == 100_000
    _check_separated_components(ds.get(np.arange(len(ds))), _grid_centres(), 0.05)


@settings(max_examples=4, deadline=None)
@given(seed=seeds)
def test_ring8_draws_match_the_mixture(seed):
    ds = load_dataset("ring8", seed=seed, split="test")
    _check_separated_components(ds.get(np.arange(len(ds))), _ring_centres(), 0.01)


@settings(max_examples=4, deadline=None)
@given(seed=seeds)
def test_mixture1d_draws_match_the_mixture(seed):
    ds = load_dataset("mixture1d", seed=seed)
    x = np.sort(ds.get(np.arange(len(ds)))[:, 0].astype(np.float64))
    assert ds.shape == (1,)
    components = ((-2.0, 0.3), (0.5, 0.2), (2.5, 0.4))
    grid = np.linspace(-3.5, 4.5, 81)
    exact = [sum(0.5 * (1 + math.erf((g - m) / (s * math.sqrt(2)))) for m, s in components) / 3 for g in grid]
    empirical = np.searchsorted(x, grid, side="right") / len(x)
    assert np.abs(empirical - exact).max() < 2.5 / math.sqrt(len(x))  # KS bound: p < 1e-5 per seed
    mean = sum(m for m, _ in components) / 3
    assert abs(x.mean() - mean) < 6 * x.std() / math.sqrt(len(x))


def test_draws_are_a_function_of_seed_and_split():
    first, again = load_dataset("grid25", seed=7), load_dataset("grid25", seed=7)
    np.testing.assert_array_equal(first.get(np.arange(100)), again.get(np.arange(100)))
    for other in (load_dataset("grid25", seed=8), load_dataset("grid25", seed=7, split="test")):
        assert not np.array_equal(first.get(np.arange(100)), other.get(np.arange(100)))
