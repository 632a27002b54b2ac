"""The noise schedule: a discretised VP SDE with few, large steps (DESIGN 2.1).

Everything is computed once in float64 numpy; backends cast the tables to their dtype.
Index conventions: `betas[k - 1]` is beta_k for k = 1..T; `alphas_cumprod[k]` is alphabar_k
for k = 0..T with alphabar_0 = 1 (clean data). The Gaussian kernels built on these tables are
in `ddgan_core.kernels`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ddgan_core.errors import DDGANError

EPS = 1e-3
SCHEDULE_KINDS = ("vp", "geometric")
MAX_TIMESTEPS = 1000  # a DDPM-length chain; DDGAN itself takes T <= 8


class ScheduleError(DDGANError, ValueError):
    """Schedule parameters that would give an invalid (NaN or non-decreasing) schedule."""


def vp_alpha_bar(s: np.ndarray, beta_min: float, beta_max: float) -> np.ndarray:
    """Marginal signal power of the VP SDE at continuous time s: exp(-s^2 (bmax-bmin)/2 - s bmin)."""
    return np.exp(-0.5 * s**2 * (beta_max - beta_min) - s * beta_min)


def geometric_alpha_bar(s: np.ndarray, beta_min: float, beta_max: float) -> np.ndarray:
    """Geometric variant: 1 - abar(s) = beta_min (beta_max / beta_min)^s."""
    return 1.0 - beta_min * (beta_max / beta_min) ** s


@dataclass(frozen=True, eq=False)
class Schedule:
    """Coefficient tables of a T-step schedule (all float64 numpy arrays)."""

    kind: str
    timesteps: int
    beta_min: float
    beta_max: float
    betas: np.ndarray  # (T,)   beta_k, k = 1..T
    alphas_cumprod: np.ndarray  # (T+1,) alphabar_k, k = 0..T


def make_schedule(
    timesteps: int = 4, beta_min: float = 0.1, beta_max: float = 20.0, kind: str = "vp"
) -> Schedule:
    """Build the schedule of DESIGN 2.1, refusing parameters that would not give one."""
    if isinstance(timesteps, bool) or int(timesteps) != timesteps or not 1 <= timesteps <= MAX_TIMESTEPS:
        raise ScheduleError(f"timesteps must be an integer from 1 to {MAX_TIMESTEPS}, got {timesteps}")
    timesteps = int(timesteps)
    if kind not in SCHEDULE_KINDS:
        raise ScheduleError(f"unknown schedule kind '{kind}' (known: {', '.join(SCHEDULE_KINDS)})")
    if not math.isfinite(beta_min) or beta_min <= 0:
        raise ScheduleError(f"beta_min must be a finite number > 0, got {beta_min}")
    if not math.isfinite(beta_max):
        raise ScheduleError(f"beta_max must be a finite number, got {beta_max}")
    if beta_max <= beta_min:
        raise ScheduleError(f"beta_max must be greater than beta_min, got {beta_max} <= {beta_min}")

    grid = EPS + (1.0 - EPS) * np.arange(timesteps + 1, dtype=np.float64) / timesteps
    if kind == "vp":
        abar = vp_alpha_bar(grid, beta_min, beta_max)
    else:
        variance = beta_min * (beta_max / beta_min) ** grid
        if not np.all((variance > 0) & (variance < 1)):
            raise ScheduleError(
                "geometric schedule needs 0 < beta_min (beta_max/beta_min)^s < 1 for s in [eps, 1], "
                f"i.e. beta_max < 1; got beta_min={beta_min}, beta_max={beta_max}"
            )
        abar = 1.0 - variance

    with np.errstate(divide="ignore", invalid="ignore"):  # alphabar underflowing to 0 is refused just below
        betas = 1.0 - abar[1:] / abar[:-1]
    if not np.all((betas > 0) & (betas < 1)):
        raise ScheduleError("schedule parameters give betas outside (0, 1)")
    alphas_cumprod = np.concatenate([[1.0], np.cumprod(1.0 - betas)])

    return Schedule(
        kind=kind,
        timesteps=timesteps,
        beta_min=float(beta_min),
        beta_max=float(beta_max),
        betas=betas,
        alphas_cumprod=alphas_cumprod,
    )


def schedule_from_config(diffusion: "object") -> Schedule:
    """Schedule of a `DiffusionConfig` (timesteps, beta_min, beta_max, schedule)."""
    return make_schedule(
        diffusion.timesteps, diffusion.beta_min, diffusion.beta_max, diffusion.schedule  # type: ignore[attr-defined]
    )
