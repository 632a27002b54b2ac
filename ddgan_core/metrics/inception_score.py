"""Inception Score (Salimans et al. 2016) from classifier outputs.

IS = exp(E_x KL(p(y|x) || p(y))), computed per split as in the original protocol: the N
predictions are cut into `splits` consecutive parts of N // splits rows (a remainder is
dropped, as in the reference code), p(y) is the mean prediction of the part, and the score
is reported as the mean and the (population, ddof = 0) standard deviation over the parts.
The classifier (Inception, 1008 or 1000 classes) lives in a backend.
"""

from __future__ import annotations

import numpy as np

from ddgan_core.metrics.checks import MetricError, as_matrix, require_int


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p_n || q) for every row p_n, with 0 log 0 = 0."""
    positive = p > 0
    ratio = np.where(positive, p, 1.0) / np.where(positive, q, 1.0)
    return np.where(positive, p * np.log(ratio), 0.0).sum(axis=1)


def inception_score(predictions: np.ndarray, splits: int = 10, from_logits: bool = False) -> tuple[float, float]:
    """(mean, std) over splits of exp(mean_n KL(p(y|x_n) || p(y))).

    predictions: (N, C) class probabilities (rows summing to 1), or logits with from_logits.
    """
    predictions = as_matrix("predictions", predictions, min_rows=1).astype(np.float64, copy=False)
    if predictions.shape[1] < 2:
        raise MetricError(f"predictions need at least 2 classes, got {predictions.shape[1]}")
    splits = require_int("splits", splits, 1)
    if predictions.shape[0] < splits:
        raise MetricError(f"need at least one prediction per split: {predictions.shape[0]} rows for {splits} splits")
    if from_logits:
        probs = _softmax(predictions)
    else:
        probs = predictions
        if np.any(probs < 0) or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
            raise MetricError(
                "predictions are not probabilities (rows must be >= 0 and sum to 1); pass from_logits=True for logits"
            )
    size = probs.shape[0] // splits
    scores = []
    for index in range(splits):
        part = probs[index * size : (index + 1) * size]
        marginal = part.mean(axis=0)
        scores.append(np.exp(_kl_rows(part, marginal).mean()))
    return float(np.mean(scores)), float(np.std(scores))
