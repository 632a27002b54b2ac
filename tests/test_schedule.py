"""The schedule of DESIGN 2.1: pinned reference values and properties of random schedules."""

import warnings

import numpy as np
import pytest
from hypothesis import given

from ddgan_core.schedule import ScheduleError, make_schedule
from tests.strategies import schedules


def test_vp_t4_reproduces_design_table():
    s = make_schedule(4)
    np.testing.assert_allclose(s.betas, [0.47826, 0.84921, 0.95642, 0.98740], atol=5e-6)
    np.testing.assert_allclose(np.sqrt(s.alphas_cumprod[1:]), [0.72232, 0.28049, 0.05856, 0.00657], atol=5e-6)


@pytest.mark.parametrize("timesteps, betas", [(2, [0.92132, 0.99945]), (1, [0.99996])])
def test_vp_t1_t2_reproduce_design_table(timesteps, betas):
    np.testing.assert_allclose(make_schedule(timesteps).betas, betas, atol=5e-6)


def test_vp_t4_first_beta_from_the_continuous_marginal():
    s1, s0 = 1e-3 + (1 - 1e-3) / 4, 1e-3
    abar = lambda s: np.exp(-0.5 * s**2 * 19.9 - 0.1 * s)  # noqa: E731
    assert make_schedule(4).betas[0] == pytest.approx(1 - abar(s1) / abar(s0), rel=1e-12)


@given(schedules())
def test_alphabar_decreases_within_unit_interval(s):
    abar = s.alphas_cumprod
    assert abar[0] == 1.0
    assert np.all(np.diff(abar) < 0)
    assert np.all((abar[1:] > 0) & (abar[1:] < 1))
    np.testing.assert_allclose(abar, np.concatenate([[1.0], np.cumprod(1 - s.betas)]), rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(timesteps=0), "timesteps"),
        (dict(timesteps=2.5), "timesteps"),
        (dict(timesteps=10**20), "timesteps must be an integer from 1 to 1000"),  # not a 10^20-entry array
        (dict(beta_max=float("nan")), "beta_max must be a finite number"),  # blames beta_max, not beta_min
        (dict(beta_max=float("inf")), "beta_max must be a finite number"),
        (dict(beta_min=0.0), "beta_min"),
        (dict(beta_min=-1.0), "beta_min"),
        (dict(beta_min=5.0, beta_max=5.0), "beta_max"),
        (dict(beta_min=1.0, beta_max=0.5), "beta_max"),
        (dict(kind="cosine"), "kind"),
        (dict(kind="geometric"), "geometric"),  # default betas give variances > 1: refused, not NaN
        (dict(kind="geometric", beta_min=0.01, beta_max=1.5), "geometric"),
    ],
)
def test_invalid_parameters_are_refused_with_a_message(kwargs, message):
    with pytest.raises(ScheduleError, match=message):
        make_schedule(**kwargs)


@pytest.mark.parametrize(
    "timesteps, beta_max",
    [(4, 1e10), (1, 1e5)],  # 1e10: alphabar is 0 everywhere, 0/0; 1e5, T = 1: alphabar(1) is 0, one beta of exactly 1
)
def test_a_beta_max_that_underflows_alphabar_is_refused_without_a_numpy_warning(timesteps, beta_max):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the 0/0 of an underflowed alphabar must not warn first
        with pytest.raises(ScheduleError, match="betas outside"):
            make_schedule(timesteps, beta_max=beta_max)


def test_geometric_schedule_matches_its_definition():
    s = make_schedule(3, 0.01, 0.9, "geometric")
    grid = 1e-3 + (1 - 1e-3) * np.arange(4) / 3
    abar = 1 - 0.01 * (0.9 / 0.01) ** grid
    np.testing.assert_allclose(s.alphas_cumprod, abar / abar[0], rtol=1e-12)
