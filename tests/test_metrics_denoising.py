"""The denoising-distribution test: exact samplers score near 0, best Gaussian steps do not."""

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from ddgan_core.errors import DDGANError
from ddgan_core.metrics.denoising import (
    best_gaussian_step,
    best_gaussian_step_distance,
    marginal_distances,
    sample_best_gaussian_chain,
    step_distance,
)
from ddgan_core.mixture import GaussianMixture
from ddgan_core.ops import NumpyOps
from ddgan_core.oracle import MixtureOracle
from ddgan_core.sampling import sample_chain
from ddgan_core.schedule import make_schedule

TRIMODAL = GaussianMixture([1 / 3] * 3, [[-2.0], [0.5], [2.5]], [0.09, 0.04, 0.16])
N = 4000
NEAR_ZERO = 0.06  # W1 of 4000 exact draws from these mixtures is about 0.02-0.04


class _FixedNormal:
    """A stand-in generator whose 'standard normal' draws are a fixed value, for exact moments."""

    def __init__(self, value: float) -> None:
        self.value = value

    def standard_normal(self, size: int) -> np.ndarray:
        return np.full(size, self.value)


def test_best_gaussian_step_matches_the_mixture_moments():
    mixture = GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [0.1, 0.1])
    assert best_gaussian_step(mixture) == pytest.approx((0.0, 1.1))
    skewed = GaussianMixture([0.25, 0.75], [[0.0], [4.0]], [1.0, 2.0])
    # mean 3, E[x^2] = 0.25 * 1 + 0.75 * (2 + 16) = 13.75, variance 4.75
    assert best_gaussian_step(skewed) == pytest.approx((3.0, 4.75))


def test_best_gaussian_step_distance_is_the_exact_cdf_integral():
    mixture = GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [0.1, 0.1])
    gaussian_cdf = scipy.stats.norm(0.0, np.sqrt(1.1)).cdf
    component = scipy.stats.norm(0.0, np.sqrt(0.1)).cdf
    reference, _ = scipy.integrate.quad(
        lambda x: abs(0.5 * component(x + 1) + 0.5 * component(x - 1) - gaussian_cdf(x)), -15, 15, limit=200
    )
    assert best_gaussian_step_distance(mixture) == pytest.approx(reference, rel=1e-6)
    assert best_gaussian_step_distance(GaussianMixture([1.0], [[0.7]], [0.3])) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("timesteps", [1, 2, 4])
def test_exact_steps_score_near_zero_and_the_best_gaussian_step_does_not(timesteps):
    """At the largest step (into x_0) the true step is trimodal: a Gaussian cannot follow it."""
    oracle = MixtureOracle(TRIMODAL, make_schedule(timesteps))
    rng = np.random.default_rng(timesteps)
    step = oracle.denoising(np.array([0.3]), 1)
    assert step_distance(step.sample(N, rng), step) < NEAR_ZERO
    mean, variance = best_gaussian_step(step)
    gaussian_samples = rng.normal(mean, np.sqrt(variance), N)
    gaussian_score = step_distance(gaussian_samples, step)
    assert gaussian_score == pytest.approx(best_gaussian_step_distance(step), abs=NEAR_ZERO)
    assert gaussian_score > 0.25


def test_chain_marginals_of_the_exact_sampler_are_near_zero_and_the_gaussian_chain_drifts():
    schedule = make_schedule(4)
    oracle = MixtureOracle(TRIMODAL, schedule)
    rng = np.random.default_rng(0)
    x_T = rng.standard_normal((N, 1))
    _, exact_chain = sample_chain(
        lambda x, label: oracle.sample_x0(x, label + 1, rng), x_T, schedule, NumpyOps(rng), return_trajectory=True
    )
    marginals = [oracle.marginal(level) for level in (4, 3, 2, 1, 0)]
    exact = marginal_distances(exact_chain, marginals)
    gaussian = marginal_distances(sample_best_gaussian_chain(oracle, x_T, rng), marginals)
    assert exact.shape == gaussian.shape == (5,)
    assert np.all(exact < NEAR_ZERO)
    assert gaussian[-1] > 0.2 and gaussian[-1] > 5 * exact[-1]


@given(st.sampled_from([[4, 3, 2, 1, 0], [4, 2, 0], [4, 0]]), st.floats(-3, 3))
@settings(max_examples=20, deadline=None)
def test_gaussian_chain_steps_have_the_moments_of_the_true_step(levels, x_t):
    """Draws fixed at +1 and -1 sd give mean +- sd: compare with the oracle's step mixture moments."""
    oracle = MixtureOracle(TRIMODAL, make_schedule(4))
    t, s = levels[0], levels[1]
    upper = sample_best_gaussian_chain(oracle, np.array([x_t]), _FixedNormal(1.0), levels)[1][0]
    lower = sample_best_gaussian_chain(oracle, np.array([x_t]), _FixedNormal(-1.0), levels)[1][0]
    mean, variance = best_gaussian_step(oracle.denoising(np.array([x_t]), t, s))
    assert 0.5 * (upper + lower) == pytest.approx(mean, abs=1e-9)
    assert (0.5 * (upper - lower)) ** 2 == pytest.approx(variance, rel=1e-7, abs=1e-12)


def test_chain_trajectory_runs_from_noise_to_data():
    oracle = MixtureOracle(TRIMODAL, make_schedule(2))
    chain = sample_best_gaussian_chain(oracle, np.zeros((7, 1)), np.random.default_rng(0))
    assert len(chain) == 3 and all(level.shape == (7,) for level in chain)
    np.testing.assert_array_equal(chain[0], np.zeros(7))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: marginal_distances([np.zeros(3)], []), "one exact marginal per level"),
        (lambda: best_gaussian_step(GaussianMixture([1.0], [[0.0, 0.0]], [1.0])), "1-D"),
        (lambda: step_distance(np.zeros((3, 2)), TRIMODAL), r"\(N,\) or \(N, 1\)"),
    ],
)
def test_bad_input_is_refused_in_one_line(call, message):
    with pytest.raises(DDGANError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
