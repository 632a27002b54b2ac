"""Closed-form oracle for Gaussian-mixture data (DESIGN 2.5).

For x_0 ~ sum_i w_i N(m_i, s_i^2 I) and the forward kernels of `ddgan_core.kernels`:
- q(x_t) = sum_i w_i N(sqrt(abar_t) m_i, (abar_t s_i^2 + 1 - abar_t) I);
- q(x_0 | x_t) = sum_i w_i(x_t) N(mu_i(x_t), tau_i I), with w_i(x_t) proportional to w_i times the
  i-th component of q(x_t) at x_t, mu_i = m_i + g_i (x_t - sqrt(abar_t) m_i),
  g_i = sqrt(abar_t) s_i^2 / (abar_t s_i^2 + 1 - abar_t), tau_i = s_i^2 (1 - abar_t) / (abar_t s_i^2 + 1 - abar_t);
- the true denoising distribution q(x_s | x_t) = integral of q(x_s | x_t, x_0) q(x_0 | x_t) dx_0
  = sum_i w_i(x_t) N(a mu_i + b x_t, (a^2 tau_i + v) I), with (a, b, v) the bridge coefficients.
These give exact answers for the tests, the paper's Figure 2 and the denoising-distribution metric.
"""

from __future__ import annotations

import numpy as np

from ddgan_core import kernels
from ddgan_core.mixture import GaussianMixture
from ddgan_core.schedule import Schedule


class MixtureOracle:
    """Exact distributions of the forward and reverse processes for mixture data."""

    def __init__(self, data: GaussianMixture, schedule: Schedule) -> None:
        self.data = data
        self.schedule = schedule

    def marginal(self, t: int) -> GaussianMixture:
        """q(x_t) as a mixture."""
        mean_coef, var = kernels.marginal(self.schedule, t)
        return GaussianMixture(
            self.data.weights, mean_coef * self.data.means, mean_coef**2 * self.data.variances + var
        )

    def x0_posterior_batch(self, x_t: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """q(x_0 | x_t) for each row of x_t (N, D): weights (N, K), means (N, K, D), variances (K,)."""
        x_t = self.data._points(x_t)
        mean_coef, var = (float(c) for c in kernels.marginal(self.schedule, t))
        log_w = self.marginal(t).component_log_prob(x_t) + np.log(self.data.weights)[None, :]
        log_w -= log_w.max(axis=1, keepdims=True)
        weights = np.exp(log_w)
        weights /= weights.sum(axis=1, keepdims=True)
        s2 = self.data.variances
        evidence_var = mean_coef**2 * s2 + var
        gain = mean_coef * s2 / evidence_var
        means = self.data.means[None] + gain[None, :, None] * (x_t[:, None, :] - mean_coef * self.data.means[None])
        return weights, means, s2 * var / evidence_var

    def x0_posterior(self, x_t: np.ndarray, t: int) -> GaussianMixture:
        """q(x_0 | x_t) at one point x_t (shape (D,)) as a mixture."""
        weights, means, variances = self.x0_posterior_batch(np.reshape(x_t, (1, -1)), t)
        return GaussianMixture(weights[0], means[0], variances)

    def denoising(self, x_t: np.ndarray, t: int, s: int | None = None) -> GaussianMixture:
        """The true denoising distribution q(x_s | x_t) at one point x_t (s = t - 1 by default)."""
        s = t - 1 if s is None else s
        a, b, v = (float(c) for c in kernels.bridge(self.schedule, s, t))
        post = self.x0_posterior(x_t, t)
        return GaussianMixture(post.weights, a * post.means + b * np.reshape(x_t, (1, -1)), a**2 * post.variances + v)

    def sample_x0(self, x_t: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        """One exact draw x_0 ~ q(x_0 | x_t) per row of x_t: the ideal generator."""
        weights, means, variances = self.x0_posterior_batch(x_t, t)
        cumulative = np.cumsum(weights, axis=1)
        u = rng.random((len(weights), 1))
        which = np.minimum((u > cumulative).sum(axis=1), weights.shape[1] - 1)
        rows = np.arange(len(weights))
        noise = rng.standard_normal(means.shape[0:1] + means.shape[2:])
        return means[rows, which] + np.sqrt(variances[which])[:, None] * noise
