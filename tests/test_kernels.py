"""The Gaussian kernels of DESIGN 2.2 against closed forms derived independently here."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddgan_core import kernels
from ddgan_core.errors import DDGANError
from ddgan_core.sampling import chain_steps
from ddgan_core.schedule import make_schedule
from tests.strategies import schedules


@given(schedules())
def test_composed_one_step_kernels_equal_the_marginal(s):
    mean, var = 1.0, 0.0  # x_0 is a point: coefficient of x_0 and accumulated variance
    for t in range(1, s.timesteps + 1):
        step_mean, step_var = kernels.one_step(s, t)
        mean, var = step_mean * mean, step_mean**2 * var + step_var
        marginal_mean, marginal_var = kernels.marginal(s, t)
        assert mean == pytest.approx(marginal_mean, rel=1e-10, abs=1e-12)
        assert var == pytest.approx(marginal_var, rel=1e-10)


@given(schedules(), st.data())
def test_posterior_is_the_bayes_product_of_prior_and_likelihood(s, data):
    t = data.draw(st.integers(1, s.timesteps))
    x0, xt = data.draw(st.floats(-3, 3)), data.draw(st.floats(-3, 3))
    c0, ct, var = kernels.posterior(s, t)
    abar_prev = s.alphas_cumprod[t - 1]
    alpha, beta = 1 - s.betas[t - 1], s.betas[t - 1]
    if t == 1:  # prior q(x_0 | x_0) is a point mass: the posterior returns x_0
        assert (c0, ct, var) == pytest.approx((1.0, 0.0, 0.0), abs=1e-12)
        return
    # prior N(sqrt(abar_{t-1}) x0, 1 - abar_{t-1}); likelihood in x_{t-1}: N(x_t / sqrt(alpha), beta / alpha)
    precision = 1 / (1 - abar_prev) + alpha / beta
    mean = (np.sqrt(abar_prev) * x0 / (1 - abar_prev) + np.sqrt(alpha) * xt / beta) / precision
    assert var == pytest.approx(1 / precision, rel=1e-9)
    assert c0 * x0 + ct * xt == pytest.approx(mean, rel=1e-9, abs=1e-9)


@given(schedules(), st.data())
def test_the_bridge_into_level_zero_is_exactly_the_point_x0(s, data):
    """The fast sampler applies the bridge draw to the step into level 0 as well, relying on this."""
    t = data.draw(st.integers(1, s.timesteps))
    (step,) = chain_steps(s, [t, 0])
    assert (step.a, step.b, step.noise_scale) == (1.0, 0.0, 0.0)
    x0, x_t, noise = np.random.default_rng(t).standard_normal((3, 64)).astype(np.float32)
    coefficients = (np.float32(c) for c in (step.a, step.b, step.noise_scale))  # as the sampler's device tensors
    assert np.array_equal(kernels.bridge_draw(x0, x_t, *coefficients, noise), x0)


@given(schedules(), st.data())
def test_posterior_matches_the_design_formulas(s, data):
    t = data.draw(st.integers(1, s.timesteps))
    abar, abar_prev, beta = s.alphas_cumprod[t], s.alphas_cumprod[t - 1], s.betas[t - 1]
    expected = (
        beta * np.sqrt(abar_prev) / (1 - abar),
        (1 - abar_prev) * np.sqrt(1 - beta) / (1 - abar),
        beta * (1 - abar_prev) / (1 - abar),
    )
    assert kernels.posterior(s, t) == pytest.approx(expected, rel=1e-10, abs=1e-14)


@given(schedules(), st.data())
def test_bridge_integrated_against_the_marginal_gives_the_marginal(s, data):
    t = data.draw(st.integers(1, s.timesteps))
    level = data.draw(st.integers(0, t - 1))
    a, b, v = kernels.bridge(s, level, t)
    mean_t, var_t = kernels.marginal(s, t)
    mean_s, var_s = kernels.marginal(s, level)
    # x_s = a x0 + b x_t + sqrt(v) e with x_t = mean_t x0 + sqrt(var_t) e'
    assert a + b * mean_t == pytest.approx(mean_s, rel=1e-10, abs=1e-12)
    assert b**2 * var_t + v == pytest.approx(var_s, rel=1e-10, abs=1e-12)


def test_bridge_into_level_zero_returns_x0_exactly():
    s = make_schedule(4)
    for t in range(1, 5):
        assert kernels.bridge(s, 0, t) == pytest.approx((1.0, 0.0, 0.0), abs=1e-15)


@pytest.mark.parametrize("call", [lambda s: kernels.bridge(s, 2, 2), lambda s: kernels.marginal(s, 5),
                                  lambda s: kernels.one_step(s, 0), lambda s: kernels.posterior(s, 0)])
def test_out_of_range_levels_are_refused(call):
    with pytest.raises(DDGANError):
        call(make_schedule(4))


def test_coefficient_tables_layout():
    tables = kernels.coefficient_tables(make_schedule(4))
    assert len(tables["betas"]) == 4 and len(tables["alphas_cumprod"]) == 5
    assert tables["alphas_cumprod"][0] == 1.0
    assert all(len(tables["posterior"][key]) == 4 for key in ("coef_x0", "coef_xt", "variance"))
    assert tables["posterior"]["variance"][0] == pytest.approx(0.0, abs=1e-15)
