"""1-D Wasserstein-1 against scipy.stats.wasserstein_distance and closed forms."""

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ddgan_core.errors import DDGANError
from ddgan_core.metrics import wasserstein1_samples, wasserstein1_to_cdf
from ddgan_core.metrics.wasserstein import wasserstein1_between_cdfs

values = hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-100, 100))


def _uniform_cdf(x):
    return np.clip(x, 0.0, 1.0)


def _normal_cdf(x):
    return scipy.stats.norm.cdf(x)


@given(values, values)
def test_samples_match_scipy_for_any_sizes(a, b):
    assert wasserstein1_samples(a, b) == pytest.approx(scipy.stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-9)


@given(values, st.floats(-50, 50))
def test_a_shifted_copy_is_the_shift_away(a, shift):
    assert wasserstein1_samples(a, a + shift) == pytest.approx(abs(shift), rel=1e-9, abs=1e-9)


def test_point_masses_and_unequal_sizes():
    assert wasserstein1_samples([0.0], [1.0]) == 1.0
    assert wasserstein1_samples(np.array([[0.0], [0.0], [1.0]]), [0.0, 1.0]) == pytest.approx(1 / 6)


@given(st.floats(0.0, 1.0), st.integers(1, 5))
def test_a_point_mass_against_the_uniform_cdf(c, copies):
    """W1(delta_c, U[0, 1]) = integral |1{x >= c} - x| dx = c^2 / 2 + (1 - c)^2 / 2."""
    got = wasserstein1_to_cdf(np.full(copies, c), _uniform_cdf, 0.0, 1.0, n_grid=101)
    assert got == pytest.approx(c**2 / 2 + (1 - c) ** 2 / 2, rel=1e-12, abs=1e-15)


def test_the_range_widens_to_cover_samples_outside_it():
    """delta_3 against U[0, 1]: W1 = 3 - 1/2, though the given range stops at 1."""
    assert wasserstein1_to_cdf([3.0], _uniform_cdf, 0.0, 1.0, n_grid=11) == pytest.approx(2.5)


def test_against_a_cdf_agrees_with_scipy_on_a_fine_quantile_sample():
    samples = np.random.default_rng(0).normal(0.3, 1.2, 500)
    reference = scipy.stats.norm.ppf((np.arange(200_000) + 0.5) / 200_000)  # N(0, 1) to ~1e-6 in W1
    got = wasserstein1_to_cdf(samples, _normal_cdf, -10.0, 10.0)
    assert got == pytest.approx(scipy.stats.wasserstein_distance(samples, reference), abs=5e-6)


def test_between_cdfs_gives_the_shift_of_shifted_gaussians():
    shifted = lambda x: scipy.stats.norm.cdf(x, loc=0.75)  # noqa: E731
    assert wasserstein1_between_cdfs(_normal_cdf, shifted, -12.0, 12.0) == pytest.approx(0.75, rel=1e-6)
    scaled = lambda x: scipy.stats.norm.cdf(x, scale=2.0)  # noqa: E731
    # W1(N(0, 1), N(0, 4)) = E|Z| * (2 - 1) = sqrt(2 / pi)
    expected = math.sqrt(2 / math.pi)
    assert wasserstein1_between_cdfs(_normal_cdf, scaled, -20.0, 20.0) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: wasserstein1_samples([], [1.0]), "non-empty"),
        (lambda: wasserstein1_samples(np.zeros((3, 2)), [1.0]), r"\(N,\) or \(N, 1\)"),
        (lambda: wasserstein1_samples([np.nan], [1.0]), "finite"),
        (lambda: wasserstein1_samples(["x"], [1.0]), "numeric"),
        (lambda: wasserstein1_to_cdf([0.5], _uniform_cdf, 1.0, 0.0), "lo < hi"),
        (lambda: wasserstein1_to_cdf([0.5], _uniform_cdf, 0.0, 1.0, n_grid=1), "n_grid"),
        (lambda: wasserstein1_to_cdf([0.5], lambda x: 0.5, 0.0, 1.0), "cdf returned shape"),
    ],
)
def test_bad_input_is_refused_in_one_line(call, message):
    with pytest.raises(DDGANError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
