"""Mode coverage (VEEGAN / PacGAN protocol) on the 25-Gaussian grid and Stacked MNIST labels."""

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from ddgan_core.errors import DDGANError
from ddgan_core.metrics import mode_coverage, stacked_mnist_coverage

GRID = np.array([[x, y] for x in (-4.0, -2.0, 0.0, 2.0, 4.0) for y in (-4.0, -2.0, 0.0, 2.0, 4.0)])
SIGMA = 0.05


def test_samples_on_every_centre_cover_all_25_modes():
    result = mode_coverage(np.repeat(GRID, 100, axis=0), GRID, SIGMA)
    assert (result.modes_covered, result.n_modes, result.high_quality_fraction) == (25, 25, 1.0)
    assert result.reverse_kl == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_array_equal(result.counts, np.full(25, 100))


@given(st.integers(1, 25), st.integers(1, 20), st.integers(0, 2**32 - 1))
def test_samples_spread_evenly_over_k_modes_score_k_and_log_25_over_k(k, per_mode, seed):
    rng = np.random.default_rng(seed)
    covered = rng.choice(25, size=k, replace=False)
    samples = np.repeat(GRID[covered], per_mode, axis=0) + rng.uniform(-SIGMA, SIGMA, (k * per_mode, 2))
    result = mode_coverage(samples, GRID, SIGMA)
    assert result.modes_covered == k
    assert result.high_quality_fraction == 1.0
    assert result.reverse_kl == pytest.approx(math.log(25 / k), abs=1e-12)


def test_missing_a_third_of_the_grid_scores_exactly_that():
    kept = np.arange(25) % 3 != 0  # drops 9 of 25 modes
    samples = np.repeat(GRID[kept], 40, axis=0) + np.random.default_rng(3).normal(0, SIGMA, (16 * 40, 2))
    result = mode_coverage(samples, GRID, SIGMA)
    assert result.modes_covered == 16
    np.testing.assert_array_equal(result.counts > 0, kept)


def test_reverse_kl_is_kl_of_the_high_quality_histogram_to_uniform():
    """Uneven counts, and off-manifold samples that must not enter the histogram."""
    counts = np.array([50, 30, 20] + [0] * 22)
    good = np.repeat(GRID, counts, axis=0)
    bad = np.array([[1.0, 1.0]] * 40)  # 1.41 from every nearest centre: 28 sigma
    result = mode_coverage(np.concatenate([good, bad]), GRID, SIGMA)
    q = counts / counts.sum()
    assert result.reverse_kl == pytest.approx(scipy.stats.entropy(q, np.full(25, 1 / 25)), rel=1e-12)
    assert result.high_quality_fraction == pytest.approx(100 / 140)
    assert result.modes_covered == 3


def test_the_threshold_is_three_sigma_from_the_nearest_centre():
    inside = GRID[7] + [2.99 * SIGMA, 0.0]
    outside = GRID[7] + [0.0, 3.01 * SIGMA]
    result = mode_coverage(np.stack([inside, outside]), GRID, SIGMA)
    assert result.high_quality_fraction == 0.5
    assert result.counts[7] == 1 and result.modes_covered == 1
    assert mode_coverage(outside[None], GRID, SIGMA, threshold_sigmas=4.0).modes_covered == 1


def test_scattered_noise_has_a_low_high_quality_share():
    noise = np.random.default_rng(4).uniform(-5, 5, (2500, 2))
    result = mode_coverage(noise, GRID, SIGMA)
    # a uniform point is within 3 sigma of a centre with probability 25 pi (0.15)^2 / 100 = 0.018
    assert result.high_quality_fraction < 0.05


def test_no_high_quality_sample_gives_no_modes_and_infinite_kl():
    result = mode_coverage(np.array([[1.0, 1.0]]), GRID, SIGMA)
    assert result.modes_covered == 0 and result.high_quality_fraction == 0.0
    assert result.reverse_kl == math.inf


def test_stacked_mnist_counts_modes_and_kl_to_uniform():
    labels = np.repeat(np.arange(0, 1000, 2), 3)  # 500 modes, evenly
    assert stacked_mnist_coverage(labels) == (500, pytest.approx(math.log(2)))
    assert stacked_mnist_coverage(np.arange(1000)) == (1000, pytest.approx(0.0, abs=1e-12))
    skewed = np.array([0] * 7 + [1] * 3)
    q = np.array([0.7, 0.3])
    assert stacked_mnist_coverage(skewed)[1] == pytest.approx(np.sum(q * np.log(q * 1000)))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mode_coverage(np.zeros((5, 3)), GRID, SIGMA), "3-D but centres are 2-D"),
        (lambda: mode_coverage(np.zeros((5, 2)), GRID, 0.0), "sigma must be"),
        (lambda: mode_coverage(np.zeros((5, 2)), GRID, SIGMA, threshold_sigmas=-1.0), "threshold_sigmas"),
        (lambda: stacked_mnist_coverage(np.array([0, 1000])), "0..999"),
        (lambda: stacked_mnist_coverage(np.array([0.5])), "integers"),
        (lambda: stacked_mnist_coverage(np.array([], dtype=int)), "non-empty"),
    ],
)
def test_bad_input_is_refused_in_one_line(call, message):
    with pytest.raises(DDGANError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
