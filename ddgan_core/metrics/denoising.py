"""The denoising-distribution test: a model's reverse chain against the exact one (DESIGN 2.5).

For 1-D Gaussian-mixture data the oracle gives the exact marginals q(x_k) and the exact step
distributions q(x_k | x_{k+1}) as mixtures. A model is scored by 1-D Wasserstein-1 distances
(a) between its chain's samples at each level and q(x_k), and (b) between its step samples
at a fixed x_{k+1} and q(x_k | x_{k+1}). The reference is the best Gaussian step: the
Gaussian with the first two moments of q(x_k | x_{k+1}), which is the Gaussian closest to the
true step in KL(q || N), the projection that a diffusion model's likelihood training aims
for. DDGAN's claim is that its GAN steps beat it when the steps are large.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ddgan_core import kernels
from ddgan_core.metrics.checks import MetricError, as_points_1d
from ddgan_core.metrics.wasserstein import wasserstein1_between_cdfs, wasserstein1_to_cdf
from ddgan_core.mixture import GaussianMixture
from ddgan_core.oracle import MixtureOracle
from ddgan_core.sampling import chain_levels, validate_levels

N_GRID = 20_001
"""Quadrature points over a mixture's support (+- 10 sd): far finer than its narrowest mode."""


def _one_dimensional(mixture: GaussianMixture) -> GaussianMixture:
    if mixture.dim != 1:
        raise MetricError(f"the denoising-distribution test is defined for 1-D mixtures, got {mixture.dim}-D")
    return mixture


def mixture_support(mixture: GaussianMixture, n_sd: float = 10.0) -> tuple[float, float]:
    """An interval [lo, hi] holding all but a negligible tail of a 1-D mixture's mass."""
    means = _one_dimensional(mixture).means[:, 0]
    half_width = n_sd * np.sqrt(mixture.variances) + 1e-9
    return float(np.min(means - half_width)), float(np.max(means + half_width))


def step_distance(step_samples: np.ndarray, exact_step: GaussianMixture, n_grid: int = N_GRID) -> float:
    """W1 between a model's samples of x_k at one fixed x_{k+1} and the exact q(x_k | x_{k+1})."""
    lo, hi = mixture_support(exact_step)
    return wasserstein1_to_cdf(step_samples, exact_step.cdf, lo, hi, n_grid)


def marginal_distances(
    level_samples: Sequence[np.ndarray], exact_marginals: Sequence[GaussianMixture], n_grid: int = N_GRID
) -> np.ndarray:
    """W1 between a chain's samples at each level and the exact q(x_k), in the order given.

    level_samples[i] are (N,) or (N, 1) samples of the level whose exact marginal is
    exact_marginals[i] (e.g. the trajectory [x_T, ..., x_0] with oracle.marginal(T..0)).
    """
    if len(level_samples) != len(exact_marginals) or len(level_samples) == 0:
        raise MetricError(
            f"need one exact marginal per level: {len(level_samples)} sample sets, {len(exact_marginals)} marginals"
        )
    return np.array([step_distance(samples, exact, n_grid) for samples, exact in zip(level_samples, exact_marginals)])


def best_gaussian_step(mixture: GaussianMixture) -> tuple[float, float]:
    """(mean, variance) of the moment-matched Gaussian of a 1-D mixture.

    mean = sum_i w_i m_i; variance = sum_i w_i (s_i^2 + m_i^2) - mean^2 (law of total variance).
    """
    _one_dimensional(mixture)
    return float(mixture.mean()[0]), float(mixture.covariance()[0, 0])


def best_gaussian_step_distance(exact_step: GaussianMixture, n_grid: int = N_GRID) -> float:
    """Exact W1 between q(x_k | x_{k+1}) and its moment-matched Gaussian (no sampling)."""
    mean, variance = best_gaussian_step(exact_step)
    gaussian = GaussianMixture([1.0], [[mean]], [variance])
    lo_a, hi_a = mixture_support(exact_step)
    lo_b, hi_b = mixture_support(gaussian)
    return wasserstein1_between_cdfs(exact_step.cdf, gaussian.cdf, min(lo_a, lo_b), max(hi_a, hi_b), n_grid)


def sample_best_gaussian_chain(
    oracle: MixtureOracle, x_T: np.ndarray, rng: np.random.Generator, levels: Sequence[int] | None = None
) -> list[np.ndarray]:
    """The chain [x_T, ..., x_0] whose every step is the best Gaussian step of the true one.

    At x_t the true step to level s has, through x_0 ~ q(x_0 | x_t) and the bridge
    x_s = a x_0 + b x_t + sqrt(v) eps: mean a E[x_0 | x_t] + b x_t and variance
    a^2 Var[x_0 | x_t] + v, computed for all samples at once from the oracle's posterior.
    """
    _one_dimensional(oracle.data)
    schedule = oracle.schedule
    levels = validate_levels(chain_levels(schedule.timesteps) if levels is None else levels, schedule.timesteps)
    x = as_points_1d("x_T", x_T)
    trajectory = [x]
    for t, s in zip(levels, levels[1:]):
        weights, means, variances = oracle.x0_posterior_batch(x[:, None], t)
        x0_mean = np.sum(weights * means[:, :, 0], axis=1)
        x0_var = np.sum(weights * (variances[None, :] + means[:, :, 0] ** 2), axis=1) - x0_mean**2
        a, b, v = (float(c) for c in kernels.bridge(schedule, s, t))
        step_var = np.maximum(a**2 * x0_var + v, 0.0)
        x = a * x0_mean + b * x + np.sqrt(step_var) * rng.standard_normal(x.shape[0])
        trajectory.append(x)
    return trajectory
