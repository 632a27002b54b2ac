"""The closed-form oracle of DESIGN 2.5 against hand derivations and Monte-Carlo from the kernels."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddgan_core import kernels
from ddgan_core.mixture import GaussianMixture
from ddgan_core.oracle import MixtureOracle
from ddgan_core.schedule import make_schedule
from tests.strategies import schedules

TRIMODAL = GaussianMixture([0.3, 0.5, 0.2], [[-2.0], [0.5], [2.5]], [0.09, 0.04, 0.16])


@given(schedules(), st.data())
def test_one_gaussian_denoising_distribution_is_the_hand_derived_gaussian(s, data):
    m, s2 = data.draw(st.floats(-2, 2)), data.draw(st.floats(0.01, 2.0))
    t = data.draw(st.integers(1, s.timesteps))
    xt = data.draw(st.floats(-3, 3))
    oracle = MixtureOracle(GaussianMixture([1.0], [[m]], [s2]), s)
    # joint Gaussian of (x_{t-1}, x_t) built from the forward process alone
    abar_prev, abar = s.alphas_cumprod[t - 1], s.alphas_cumprod[t]
    alpha, beta = 1 - s.betas[t - 1], s.betas[t - 1]
    var_prev = abar_prev * s2 + 1 - abar_prev
    cov = np.sqrt(alpha) * var_prev
    var_t = alpha * var_prev + beta
    mean = np.sqrt(abar_prev) * m + cov / var_t * (xt - np.sqrt(abar) * m)
    var = var_prev - cov**2 / var_t
    step = oracle.denoising(np.array([xt]), t)
    assert step.n_components == 1
    assert step.means[0, 0] == pytest.approx(mean, rel=1e-9, abs=1e-9)
    assert step.variances[0] == pytest.approx(var, rel=1e-7, abs=1e-10)


@given(schedules(max_timesteps=6), st.data())
@settings(max_examples=30)
def test_mixture_densities_integrate_to_one(s, data):
    t = data.draw(st.integers(1, s.timesteps))
    xt = data.draw(st.floats(-3, 3))
    oracle = MixtureOracle(TRIMODAL, s)
    grid = np.linspace(-12, 12, 48001)
    for dist in (oracle.marginal(t), oracle.x0_posterior(np.array([xt]), t), oracle.denoising(np.array([xt]), t)):
        if dist.variances.min() < 1e-6:
            continue  # a near point mass: not resolvable on this grid
        assert np.trapezoid(dist.prob(grid), grid) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("timesteps, t, xt", [(4, 2, 0.3), (4, 1, -1.1), (2, 1, 1.5), (4, 4, 0.0)])
def test_denoising_distribution_matches_monte_carlo_from_the_kernels(timesteps, t, xt):
    """Self-normalised importance sampling of q(x_{t-1} | x_t) ∝ q(x_{t-1}) q(x_t | x_{t-1})."""
    s = make_schedule(timesteps)
    rng = np.random.default_rng(1)
    n = 400_000
    x0 = TRIMODAL.sample(n, rng)[:, 0]
    mean_prev, var_prev = kernels.marginal(s, t - 1)
    x_prev = mean_prev * x0 + np.sqrt(var_prev) * rng.standard_normal(n)
    step_mean, step_var = kernels.one_step(s, t)
    w = np.exp(-0.5 * (xt - step_mean * x_prev) ** 2 / step_var)
    w /= w.sum()
    exact = MixtureOracle(TRIMODAL, s).denoising(np.array([xt]), t)
    smooth = (lambda x: x, lambda x: x**2, lambda x: np.cos(2 * x))
    cases = [(f, float(np.sum(exact.weights * _gauss_expectation(f, exact.means[:, 0], exact.variances)))) for f in smooth]
    cases.append((lambda x: (x < 0.0).astype(float), float(exact.cdf(0.0))))
    for f, reference in cases:
        estimate = float(np.sum(w * f(x_prev)))
        ess = 1.0 / np.sum(w**2)
        spread = np.sqrt(np.sum(w * (f(x_prev) - estimate) ** 2))
        assert abs(estimate - reference) < 5 * spread / np.sqrt(ess) + 1e-9


def _gauss_expectation(f, means, variances):
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    return (weights * f(means[:, None] + np.sqrt(variances)[:, None] * nodes)).sum(1) / np.sqrt(2 * np.pi)


def test_large_steps_make_the_denoising_distribution_multimodal():
    """Figure 2's point: the one-step true denoising density has several modes only for a large step."""
    grid = np.linspace(-4, 4, 8001)

    def modes(timesteps):  # the step that ends at diffusion time s = 1/2, seen from x_t = 0
        density = MixtureOracle(TRIMODAL, make_schedule(timesteps)).denoising(np.array([0.0]), timesteps // 2).prob(grid)
        return int(np.sum((density[1:-1] > density[:-2]) & (density[1:-1] > density[2:])))

    assert modes(1000) == 1
    assert modes(2) == 3


def test_exact_sampler_matches_the_posterior_moments():
    oracle = MixtureOracle(TRIMODAL, make_schedule(4))
    xt = np.full((200_000, 1), 0.4)
    draws = oracle.sample_x0(xt, 2, np.random.default_rng(3))[:, 0]
    post = oracle.x0_posterior(xt[0], 2)
    assert draws.mean() == pytest.approx(post.mean()[0], abs=0.01)
    assert draws.var() == pytest.approx(post.covariance()[0, 0], rel=0.02)


def test_mixture_cdf_and_moments():
    grid = np.linspace(-10, 10, 200001)
    cdf = TRIMODAL.cdf(grid)
    assert cdf[0] == pytest.approx(0.0, abs=1e-12) and cdf[-1] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(np.gradient(cdf, grid), TRIMODAL.prob(grid), atol=1e-5)
    assert TRIMODAL.mean()[0] == pytest.approx(0.3 * -2 + 0.5 * 0.5 + 0.2 * 2.5)


def test_an_outlying_x_t_has_a_finite_posterior_on_the_nearest_mode():
    """A generator's outliers are scored through q(x_0 | x_t): far from every mode the component
    log-likelihoods are all hugely negative, and only their shift keeps the weights finite."""
    post = MixtureOracle(TRIMODAL, make_schedule(4)).x0_posterior(np.array([40.0]), 1)
    np.testing.assert_allclose(post.weights, [0.0, 0.0, 1.0], atol=1e-12)
    assert np.isfinite(post.means).all()
