"""The training step's forward draws (DiffusionProcess) against the closed forms, T = 4 (DESIGN 2.1-2.4).

The draws are made from a constant x_0 = 1 with many samples, so each one's mean and spread
must match the kernels' coefficients to a few standard errors; the coefficients are the DESIGN
table (sqrt(alphabar_k), beta_k) and the posterior formulas of DESIGN 2.2 evaluated at T = 4.
"""

import numpy as np
import pytest

from ddgan_core.diffusion import DiffusionProcess
from ddgan_core.ops import NumpyOps
from ddgan_core.schedule import make_schedule

N = 200_000
TOLERANCE = 6 / np.sqrt(N)  # six standard errors of a unit-variance mean
SQRT_ALPHABAR = np.array([1.0, 0.72232, 0.28049, 0.05856, 0.00657])  # levels 0..4 (DESIGN 2.1)
BETA = np.array([0.47826, 0.84921, 0.95642, 0.98740])  # beta_1..beta_4
POSTERIOR_X0 = np.array([1.0, 0.66578, 0.26919, 0.05782])  # c0 of q(x_k | x_{k+1}, x_0), labels k = 0..3
POSTERIOR_XT = np.array([0.0, 0.20158, 0.19300, 0.11185])  # ct
POSTERIOR_VAR = np.array([0.0, 0.44082, 0.88420, 0.98406])  # var


@pytest.fixture(scope="module")
def process():
    return DiffusionProcess(make_schedule(4), NumpyOps(np.random.default_rng(0)))


@pytest.mark.parametrize("level", range(5))
def test_q_sample_has_the_marginal_mean_and_spread(process, level):
    x_t = process.q_sample(np.ones((N, 1)), np.full(N, level))
    assert x_t.mean() == pytest.approx(SQRT_ALPHABAR[level], abs=TOLERANCE)
    assert x_t.std() == pytest.approx(np.sqrt(1 - SQRT_ALPHABAR[level] ** 2), abs=TOLERANCE)


@pytest.mark.parametrize("label", range(4))
def test_a_real_pair_is_x_k_then_one_forward_step(process, label):
    x_k, x_next = process.real_pair(np.ones((N, 1)), np.full(N, label))
    assert x_k.mean() == pytest.approx(SQRT_ALPHABAR[label], abs=TOLERANCE)
    assert x_next.mean() == pytest.approx(SQRT_ALPHABAR[label + 1], abs=TOLERANCE)
    assert x_next.std() == pytest.approx(np.sqrt(1 - SQRT_ALPHABAR[label + 1] ** 2), abs=TOLERANCE)
    # Cov(x_k, x_{k+1}) = sqrt(alpha_{k+1}) Var(x_k) = sqrt(1 - beta_{k+1}) (1 - alphabar_k)
    covariance = np.mean((x_k - x_k.mean()) * (x_next - x_next.mean()))
    assert covariance == pytest.approx(np.sqrt(1 - BETA[label]) * (1 - SQRT_ALPHABAR[label] ** 2), abs=TOLERANCE)


@pytest.mark.parametrize("label", range(4))
def test_the_posterior_draw_has_the_posterior_mean_and_variance(process, label):
    x0, x_next = np.ones((N, 1)), np.full((N, 1), 0.5)
    x_k = process.posterior_sample(x0, x_next, np.full(N, label))
    assert x_k.mean() == pytest.approx(POSTERIOR_X0[label] + 0.5 * POSTERIOR_XT[label], abs=TOLERANCE)
    assert x_k.var() == pytest.approx(POSTERIOR_VAR[label], abs=TOLERANCE)
    if label == 0:
        np.testing.assert_array_equal(x_k, x0)  # the last step returns x_0 exactly
