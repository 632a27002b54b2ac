"""Metric maths in numpy: FID statistics and distance, Inception Score, improved precision and
recall, mode coverage, 1-D Wasserstein-1 and the denoising-distribution test. Feature networks
and classifiers live in the backends; these functions take their outputs as arrays.
"""

from ddgan_core.metrics.checks import MetricError
from ddgan_core.metrics.frechet import feature_statistics, frechet_distance
from ddgan_core.metrics.inception_score import inception_score
from ddgan_core.metrics.mode_coverage import ModeCoverage, mode_coverage, stacked_mnist_coverage
from ddgan_core.metrics.precision_recall import precision_recall
from ddgan_core.metrics.wasserstein import wasserstein1_samples, wasserstein1_to_cdf

__all__ = [
    "MetricError",
    "ModeCoverage",
    "feature_statistics",
    "frechet_distance",
    "inception_score",
    "mode_coverage",
    "precision_recall",
    "stacked_mnist_coverage",
    "wasserstein1_samples",
    "wasserstein1_to_cdf",
]
