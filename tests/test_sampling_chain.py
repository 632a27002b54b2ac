"""The reverse chain, driven by the oracle's exact x0-sampler, reproduces the true marginals."""

import numpy as np
import pytest

from ddgan_core.errors import DDGANError
from ddgan_core.mixture import GaussianMixture
from ddgan_core.ops import NumpyOps
from ddgan_core.oracle import MixtureOracle
from ddgan_core.sampling import chain_levels, sample_chain
from ddgan_core.schedule import make_schedule

TRIMODAL = GaussianMixture([1 / 3] * 3, [[-2.0], [0.5], [2.5]], [0.09, 0.04, 0.16])
N = 40_000
KS_LIMIT = 0.015  # well above the 99.9% Kolmogorov-Smirnov critical value 1.95 / sqrt(N) = 0.0098


def _ks_to(mixture: GaussianMixture, samples: np.ndarray) -> float:
    sorted_samples = np.sort(samples[:, 0])
    empirical = np.arange(1, len(sorted_samples) + 1) / len(sorted_samples)
    return float(np.max(np.abs(empirical - mixture.cdf(sorted_samples))))


@pytest.mark.parametrize("timesteps, levels", [(4, [4, 3, 2, 1, 0]), (4, [4, 2, 0]), (4, [4, 0]), (2, [2, 1, 0])])
def test_exact_chain_reproduces_every_marginal(timesteps, levels):
    schedule = make_schedule(timesteps)
    oracle = MixtureOracle(TRIMODAL, schedule)
    rng = np.random.default_rng(7)
    ops = NumpyOps(rng)
    x_T = rng.standard_normal((N, 1))
    _, trajectory = sample_chain(
        lambda x, label: oracle.sample_x0(x, label + 1, rng), x_T, schedule, ops, levels, return_trajectory=True
    )
    assert len(trajectory) == len(levels)
    for level, x in zip(levels, trajectory):
        assert _ks_to(oracle.marginal(level), x) < KS_LIMIT, f"level {level}"


def test_chain_without_the_exact_sampler_is_detected():
    """Control: a generator that ignores x_t and returns the data mean does not match q(x_0)."""
    schedule = make_schedule(4)
    rng = np.random.default_rng(0)
    x0 = sample_chain(lambda x, label: np.zeros_like(x), rng.standard_normal((N, 1)), schedule, NumpyOps(rng))
    assert _ks_to(TRIMODAL, x0) > 0.2


def test_chain_levels():
    assert chain_levels(4) == [4, 3, 2, 1, 0]
    assert chain_levels(4, 2) == [4, 2, 0]
    assert chain_levels(4, 1) == [4, 0]
    assert chain_levels(8, 3) == [8, 5, 3, 0]
    for bad in (0, 5, -1):
        with pytest.raises(DDGANError, match="steps"):
            chain_levels(4, bad)


def test_one_step_from_a_given_level_is_the_true_denoising_distribution():
    schedule = make_schedule(4)
    oracle = MixtureOracle(TRIMODAL, schedule)
    rng = np.random.default_rng(5)
    x_t = np.full((N, 1), 0.3)
    x_prev = sample_chain(lambda x, label: oracle.sample_x0(x, label + 1, rng), x_t, schedule, NumpyOps(rng), [2, 1])
    assert _ks_to(oracle.denoising(x_t[0], 2), x_prev) < KS_LIMIT


def test_labels_passed_to_the_generator_follow_the_index_convention():
    seen = []
    sample_chain(lambda x, label: seen.append(label) or x, np.zeros((2, 1)), make_schedule(4), NumpyOps(), [4, 2, 0])
    assert seen == [3, 1]  # from level t the generator is asked with step label t - 1


@pytest.mark.parametrize("levels", [[5, 0], [4], [2, -1], [4, 2, 2, 0], [4, 1, 2, 0]])
def test_invalid_level_lists_are_refused(levels):
    with pytest.raises(DDGANError, match="levels"):
        sample_chain(lambda x, label: x, np.zeros((2, 1)), make_schedule(4), NumpyOps(), levels)
