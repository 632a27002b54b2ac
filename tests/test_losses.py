"""Loss specifications of DESIGN 2.4 against their closed forms."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddgan_core import losses
from ddgan_core.ops import NumpyOps

OPS = NumpyOps()
finite = st.floats(-50, 50)


@given(finite)
def test_softplus_identities(x):
    sp = OPS.softplus(np.array(x))
    assert sp - OPS.softplus(np.array(-x)) == pytest.approx(x, abs=1e-12)
    assert sp == pytest.approx(-math.log(1 / (1 + math.exp(x))) if x < 30 else x, rel=1e-9, abs=1e-12)


moderate = st.floats(-15, 15)  # where the naive sigmoid form below is still accurate


@given(st.lists(moderate, min_size=1, max_size=8), st.lists(moderate, min_size=1, max_size=8))
def test_losses_are_the_negative_log_likelihoods_of_the_gan_classifier(real, fake):
    real, fake = np.array(real), np.array(fake)
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    expected_d = -np.mean(np.log(sigmoid(real))) - np.mean(np.log(1 - sigmoid(fake)))
    expected_g = -np.mean(np.log(sigmoid(fake)))
    assert losses.discriminator_loss(real, fake, OPS) == pytest.approx(expected_d, rel=1e-6, abs=1e-9)
    assert losses.generator_loss(fake, OPS) == pytest.approx(expected_g, rel=1e-6, abs=1e-9)


def test_no_overflow_at_extreme_logits():
    big = np.array([1e4, -1e4])
    with np.errstate(over="raise"):
        d = losses.discriminator_loss(big, big, OPS)
        g = losses.generator_loss(big, OPS)
    assert d == pytest.approx((1e4 + 1e4) / 2, rel=1e-12)  # one confident mistake on each side
    assert g == pytest.approx(1e4 / 2, rel=1e-12)
    assert losses.discriminator_loss(np.array([1e4]), np.array([-1e4]), OPS) == 0.0


def test_r1_of_a_quadratic_discriminator_equals_its_closed_form():
    """D(x) = sum_j a_j x_j^2 has grad 2 a x, so R1 = gamma/2 * mean_n sum_j 4 a_j^2 x_nj^2."""
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 2.0, size=(1, 3, 4, 4))
    x = rng.standard_normal((5, 3, 4, 4))
    h = 1e-6
    numeric_grad = a * ((x + h) ** 2 - (x - h) ** 2) / (2 * h)  # central differences, per coordinate
    gamma = 0.05
    expected = gamma / 2 * np.mean(np.sum(4 * a**2 * x**2, axis=(1, 2, 3)))
    assert losses.r1_penalty(numeric_grad, gamma, OPS) == pytest.approx(expected, rel=1e-8)


def test_lazy_regularisation_schedule():
    assert [s for s in range(40) if losses.r1_due(s, 15)] == [0, 15, 30]
    assert all(losses.r1_due(s, 1) for s in range(5))


@given(st.floats(0.0, 1.0), st.floats(-5, 5), st.floats(-5, 5))
def test_ema_rule(decay, ema, param):
    assert losses.ema_update(ema, param, decay) == pytest.approx(decay * ema + (1 - decay) * param, abs=1e-12)


def test_cosine_learning_rate():
    assert losses.cosine_lr(0, 100, 1e-3, 1e-5) == pytest.approx(1e-3)
    assert losses.cosine_lr(50, 100, 1e-3, 1e-5) == pytest.approx((1e-3 + 1e-5) / 2)
    assert losses.cosine_lr(100, 100, 1e-3, 1e-5) == pytest.approx(1e-5)
    assert losses.cosine_lr(500, 100, 1e-3, 1e-5) == pytest.approx(1e-5)
    assert losses.cosine_lr(150, 100, 1e-3, 1e-5) == pytest.approx(1e-5)  # held after the end, not cos(1.5 pi)
    values = [losses.cosine_lr(s, 100, 1e-3, 1e-5) for s in range(101)]
    assert all(b <= a for a, b in zip(values, values[1:]))
