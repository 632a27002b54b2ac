"""Gaussian kernels of the forward process (DESIGN 2.2), as coefficient tables.

Every kernel here is N(mean_coefs . inputs, variance * I); the functions return the scalar
coefficients for integer levels t (x index: x_0 is data, x_T is noise), vectorised over numpy
arrays of levels. `DiffusionProcess` and the sampling chain apply them to backend arrays, the
bridge and posterior through `bridge_draw`.
"""

from __future__ import annotations

import numpy as np

from ddgan_core.errors import DDGANError
from ddgan_core.ops import A
from ddgan_core.schedule import Schedule

Levels = int | np.ndarray


def _levels(schedule: Schedule, t: Levels, lowest: int) -> np.ndarray:
    t = np.asarray(t)
    if not np.issubdtype(t.dtype, np.integer) or np.any(t < lowest) or np.any(t > schedule.timesteps):
        raise DDGANError(f"levels must be integers in [{lowest}, {schedule.timesteps}], got {t}")
    return t


def marginal(schedule: Schedule, t: Levels) -> tuple[np.ndarray, np.ndarray]:
    """q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I): returns (sqrt(abar_t), 1 - abar_t)."""
    abar = schedule.alphas_cumprod[_levels(schedule, t, 0)]
    return np.sqrt(abar), 1.0 - abar


def one_step(schedule: Schedule, t: Levels) -> tuple[np.ndarray, np.ndarray]:
    """q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I), t >= 1: returns (sqrt(alpha_t), beta_t)."""
    beta = schedule.betas[_levels(schedule, t, 1) - 1]
    return np.sqrt(1.0 - beta), beta


def bridge(schedule: Schedule, s: Levels, t: Levels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generalised posterior q(x_s | x_t, x_0) = N(a x_0 + b x_t, v I) for s < t.

    With r = abar_t / abar_s: a = sqrt(abar_s)(1 - r)/(1 - abar_t), b = sqrt(r)(1 - abar_s)/(1 - abar_t),
    v = (1 - abar_s)(1 - r)/(1 - abar_t). s = t - 1 gives the one-step posterior; s = 0 returns x_0.
    """
    s, t = _levels(schedule, s, 0), _levels(schedule, t, 1)
    if np.any(s >= t):
        raise DDGANError(f"bridge needs s < t, got s={s}, t={t}")
    abar_s, abar_t = schedule.alphas_cumprod[s], schedule.alphas_cumprod[t]
    r = abar_t / abar_s
    a = np.sqrt(abar_s) * (1.0 - r) / (1.0 - abar_t)
    b = np.sqrt(r) * (1.0 - abar_s) / (1.0 - abar_t)
    v = (1.0 - abar_s) * (1.0 - r) / (1.0 - abar_t)
    return a, b, v


def bridge_draw(x0: A, x_t: A, a: float | A, b: float | A, noise_scale: float | A, noise: A) -> A:
    """A draw of x_s ~ N(a x_0 + b x_t, noise_scale^2 I) from standard normal `noise`, for any backend's
    arrays; the coefficients are floats, or arrays that broadcast (per-sample, or 0-d on a device)."""
    return a * x0 + b * x_t + noise_scale * noise


def posterior(schedule: Schedule, t: Levels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, var I), t >= 1 (the bridge with s = t - 1)."""
    t = _levels(schedule, t, 1)
    return bridge(schedule, t - 1, t)


def coefficient_tables(schedule: Schedule) -> dict[str, object]:
    """The schedule's tables as JSON-ready lists (the `ddgan schedule --json` format).

    `betas` is indexed k = 1..T, `alphas_cumprod` k = 0..T (0 = data), and the posterior
    tables by t = 1..T (equivalently by step label k = t - 1).
    """
    c0, ct, var = posterior(schedule, np.arange(1, schedule.timesteps + 1))
    return {
        "kind": schedule.kind,
        "timesteps": schedule.timesteps,
        "beta_min": schedule.beta_min,
        "beta_max": schedule.beta_max,
        "betas": schedule.betas.tolist(),
        "alphas_cumprod": schedule.alphas_cumprod.tolist(),
        "posterior": {"coef_x0": c0.tolist(), "coef_xt": ct.tolist(), "variance": var.tolist()},
    }
