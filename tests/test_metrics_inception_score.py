"""Inception Score against its closed-form extremes and a direct scipy computation."""

import numpy as np
import pytest
import scipy.special
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from ddgan_core.errors import DDGANError
from ddgan_core.metrics import inception_score


@given(st.integers(1, 50), st.integers(1, 5), st.integers(1, 4))
def test_confident_predictions_spread_evenly_over_k_classes_score_k(k, per_class, splits):
    """p(y|x) one-hot, p(y) uniform over k classes in every split: KL = log k, IS = k exactly."""
    one_split = np.repeat(np.eye(1000)[:k], per_class, axis=0)
    predictions = np.tile(one_split, (splits, 1))
    mean, std = inception_score(predictions, splits=splits)
    assert mean == pytest.approx(k, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_identical_predictions_score_one():
    row = np.random.default_rng(0).dirichlet(np.ones(1000))
    mean, std = inception_score(np.tile(row, (100, 1)))
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


@given(st.integers(0, 2**32 - 1), st.integers(1, 5))
@settings(max_examples=25)
def test_matches_a_direct_computation_with_scipy_entropy(seed, splits):
    rng = np.random.default_rng(seed)
    logits = 3.0 * rng.standard_normal((20 * splits + 3, 10))  # 3 leftover rows are dropped
    probs = scipy.special.softmax(logits, axis=1)
    size = probs.shape[0] // splits
    scores = []
    for i in range(splits):
        part = probs[i * size : (i + 1) * size]
        marginal = part.mean(axis=0)
        scores.append(np.exp(np.mean([scipy.stats.entropy(p, marginal) for p in part])))
    mean, std = inception_score(probs, splits=splits)
    assert mean == pytest.approx(np.mean(scores), rel=1e-10)
    assert std == pytest.approx(np.std(scores), rel=1e-8, abs=1e-12)
    from_logits = inception_score(logits, splits=splits, from_logits=True)
    assert from_logits == pytest.approx((mean, std), rel=1e-10, abs=1e-12)


def test_split_scores_give_the_std():
    """Split 1 is sure of 2 classes (IS 2), split 2 of 4 (IS 4): mean 3, population std 1."""
    eye = np.eye(8)
    predictions = np.concatenate([eye[[0, 1, 0, 1]], eye[[0, 1, 2, 3]]])
    assert inception_score(predictions, splits=2) == pytest.approx((3.0, 1.0))


@pytest.mark.parametrize(
    "predictions, kwargs, message",
    [
        (np.full((10, 5), 0.5), {}, "from_logits"),
        (np.full((10, 1), 1.0), {}, "2 classes"),
        (np.full((5, 4), 0.25), {"splits": 10}, "one prediction per split"),
        (np.full((5, 4), 0.25), {"splits": 0}, "splits must be an integer >= 1"),
        (np.full(5, 0.25), {}, "2-D"),
    ],
)
def test_bad_input_is_refused_in_one_line(predictions, kwargs, message):
    with pytest.raises(DDGANError, match=message) as info:
        inception_score(predictions, **kwargs)
    assert "\n" not in str(info.value)


def test_probabilities_are_accepted_within_round_off_of_summing_to_one_and_refused_beyond():
    uniform = np.full((10, 4), 0.25)
    rounded = uniform + np.array([1e-6, 0.0, 0.0, 0.0])  # a float32 softmax's round-off
    assert inception_score(rounded, splits=2)[0] == pytest.approx(1.0, abs=1e-9)
    off = uniform + np.array([0.002, 0.0, 0.0, 0.0])  # rows summing to 1.002: not probabilities
    with pytest.raises(DDGANError, match="from_logits"):
        inception_score(off, splits=2)
