"""The reverse sampling chain, written once for every backend (DESIGN 2.3, 2.2).

From x_T ~ N(0, I), each step from level t to a lower level s asks the generator for
x0' = G(x_t, z, t - 1) and draws x_s ~ q(x_s | x_t, x_0 = x0') (the generalised posterior).
With all T levels this is the standard DDGAN chain; with a subset of levels (from T to 0) it
samples with fewer network calls. The step into level 0 returns x0' itself.

The chain is written in three parts so that a compiler can take one step whole: `chain_steps`
computes every step's coefficients once (numpy); `posterior_advance` is one step, the generator's
x0' and the bridge draw around it (`kernels.bridge_draw`: floats or 0-d arrays times backend
arrays, no numpy); `run_chain` applies a step function along the steps. The torch fast sampler
compiles the generator and the draw as one graph, so the draw fuses into the generator's last
kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

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


@dataclass(frozen=True)
class ChainStep:
    """One reverse step from level t to level s < t: x_s = a x0' + b x_t + noise_scale * eps, with
    x0' = G(x_t, z, t - 1). Into level 0 the bridge is the point x0' (a = 1, b = noise_scale = 0)."""

    t: int
    s: int
    a: float
    b: float
    noise_scale: float

    @property
    def label(self) -> int:
        """The generator's time label for this step (t - 1)."""
        return self.t - 1


Advance = Callable[[A, ChainStep], A]
"""(x_t, step) -> x_s: one step of the chain."""


def chain_steps(schedule: Schedule, levels: Sequence[int] | None = None) -> tuple[ChainStep, ...]:
    """The steps over `levels` (default: all T + 1), each with its bridge coefficients q(x_s | x_t, x_0)."""
    levels = validate_levels(chain_levels(schedule.timesteps) if levels is None else levels, schedule.timesteps)
    steps = []
    for t, s in zip(levels, levels[1:]):
        a, b, v = (float(c) for c in kernels.bridge(schedule, s, t))
        steps.append(ChainStep(t, s, a, b, float(np.sqrt(v))))
    return tuple(steps)


def posterior_advance(predict_x0: PredictX0, ops: ArrayOps[A]) -> Advance:
    """The chain's step: x0' = predict_x0(x_t, t - 1), then x_s drawn from the bridge around it
    (x0' itself into level 0, where no noise is drawn)."""

    def advance(x_t: A, step: ChainStep) -> A:
        x0_pred = predict_x0(x_t, step.label)
        if step.s == 0:
            return x0_pred
        return kernels.bridge_draw(x0_pred, x_t, step.a, step.b, step.noise_scale, ops.randn_like(x_t))

    return advance


def run_chain(
    x: A, steps: Sequence[ChainStep], advance: Advance, return_trajectory: bool = False,
) -> A | tuple[A, list[A]]:
    """Apply `advance` along `steps` from x (at steps[0].t): the last level's x, or (x, [x at each level])."""
    trajectory = [x]
    for step in steps:
        x = advance(x, step)
        trajectory.append(x)
    return (x, trajectory) if return_trajectory else x


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
    return run_chain(x_T, chain_steps(schedule, levels), posterior_advance(predict_x0, ops), return_trajectory)


def join_batches(batches: Iterable[tuple[np.ndarray, np.ndarray | None]], return_trajectory: bool):
    """A backend's chain batches, (samples, trajectory or None) each, as one result: the samples
    (N, ...), and with `return_trajectory` the trajectory (levels, N, ...) too."""
    batches = list(batches)
    samples = np.concatenate([x for x, _ in batches])
    return (samples, np.concatenate([path for _, path in batches], axis=1)) if return_trajectory else samples


def gather_batches(
    batches: Iterable[np.ndarray], n: int, dtype: type = np.float32,
    convert: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """n samples from batches of them (each mapped by `convert` first), copied into one array as
    they come: the peak memory is the result and one batch, not a list of batches plus their join
    (50,000 CIFAR-10 samples are 614 MB as float32; at 256 px, 39 GB)."""
    out: np.ndarray | None = None
    filled = 0
    for batch in batches:
        batch = convert(batch) if convert is not None else batch
        if out is None:
            out = np.empty((n, *batch.shape[1:]), dtype=dtype)
        if filled + len(batch) > n:
            raise DDGANError(f"expected {n} samples, the sampler gave more")
        out[filled : filled + len(batch)] = batch
        filled += len(batch)
    if out is None or filled != n:
        raise DDGANError(f"expected {n} samples, the sampler gave {filled}")
    return out
