"""The reverse sampling chain, written once for every backend (DESIGN 2.3, 2.2).

From x_T ~ N(0, I), each step from level t to a lower level s asks the generator for
x0' = G(x_t, z, t - 1) and draws x_s ~ q(x_s | x_t, x_0 = x0') (the generalised posterior).
With all T levels this is the standard DDGAN chain; with a subset of levels (from T to 0) it
samples with fewer network calls. The step into level 0 returns x0' itself.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ddgan_core import kernels
from ddgan_core.errors import DDGANError
from ddgan_core.ops import A, ArrayOps
from ddgan_core.schedule import Schedule

PredictX0 = Callable[[A, int], A]
"""(x_t, step label t - 1) -> x0 prediction; the backend draws the latent z inside."""


def chain_levels(timesteps: int, steps: int | None = None) -> list[int]:
    """`steps` + 1 levels from T down to 0, evenly spread (all T + 1 levels by default)."""
    steps = timesteps if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= timesteps:
        raise DDGANError(f"--steps must be an integer between 1 and T = {timesteps}, got {steps}")
    return [int(v) for v in np.round(np.linspace(timesteps, 0, int(steps) + 1))]


def validate_levels(levels: Sequence[int], timesteps: int) -> list[int]:
    """At least two strictly decreasing levels within [0, T] (a full chain runs from T to 0)."""
    levels = [int(v) for v in levels]
    if len(levels) < 2 or levels[0] > timesteps or levels[-1] < 0:
        raise DDGANError(f"levels must be at least two, within [0, T = {timesteps}], got {levels}")
    if any(b >= a for a, b in zip(levels, levels[1:])):
        raise DDGANError(f"levels must be strictly decreasing, got {levels}")
    return levels


def sample_chain(
    predict_x0: PredictX0,
    x_T: A,
    schedule: Schedule,
    ops: ArrayOps[A],
    levels: Sequence[int] | None = None,
    return_trajectory: bool = False,
) -> A | tuple[A, list[A]]:
    """Run the reverse chain from x_T (or from x at levels[0]) over `levels` (default: all T + 1).

    Returns the last level's x, or (x, [x at each level]). Levels [t, t - 1] give one reverse step
    from a given x_t: how the model's step distribution is compared with the true one.
    """
    levels = validate_levels(chain_levels(schedule.timesteps) if levels is None else levels, schedule.timesteps)
    x = x_T
    trajectory = [x]
    for t, s in zip(levels, levels[1:]):
        x0_pred = predict_x0(x, t - 1)
        a, b, v = (float(c) for c in kernels.bridge(schedule, s, t))
        x = x0_pred if s == 0 else a * x0_pred + b * x + float(np.sqrt(v)) * ops.randn_like(x)
        trajectory.append(x)
    return (x, trajectory) if return_trajectory else x
