"""The forward-process draws a training step needs, applied to backend arrays (DESIGN 2.4).

A training step draws step labels k uniformly, a real pair (x_k, x_{k+1}) by diffusing data,
and a fake x_k' from the posterior q(x_k | x_{k+1}, x_0 = G(x_{k+1}, z, k)). All coefficient
tables come from `ddgan_core.kernels`; the backend supplies only the ArrayOps.
"""

from __future__ import annotations

from typing import Generic

import numpy as np

from ddgan_core import kernels
from ddgan_core.ops import A, ArrayOps
from ddgan_core.schedule import Schedule


class DiffusionProcess(Generic[A]):
    """Forward draws and the one-step posterior, indexed by per-sample step labels k in [0, T)."""

    def __init__(self, schedule: Schedule, ops: ArrayOps[A]) -> None:
        self.schedule = schedule
        self.ops = ops
        levels = np.arange(schedule.timesteps + 1)
        labels = np.arange(schedule.timesteps)
        self._marginal_mean, marginal_var = kernels.marginal(schedule, levels)
        self._marginal_std = np.sqrt(marginal_var)
        step_mean, step_var = kernels.one_step(schedule, labels + 1)
        self._step_mean, self._step_std = step_mean, np.sqrt(step_var)
        c0, ct, var = kernels.posterior(schedule, labels + 1)
        self._post_x0, self._post_xt, self._post_std = c0, ct, np.sqrt(var)

    def q_sample(self, x0: A, level: A) -> A:
        """x_t ~ q(x_t | x_0) for per-sample levels t in [0, T]."""
        ops = self.ops
        return ops.per_sample(self._marginal_mean, level, x0) * x0 + ops.per_sample(
            self._marginal_std, level, x0
        ) * ops.randn_like(x0)

    def q_step(self, x_k: A, label: A) -> A:
        """x_{k+1} ~ q(x_{k+1} | x_k) for per-sample step labels k."""
        ops = self.ops
        return ops.per_sample(self._step_mean, label, x_k) * x_k + ops.per_sample(
            self._step_std, label, x_k
        ) * ops.randn_like(x_k)

    def real_pair(self, x0: A, label: A) -> tuple[A, A]:
        """(x_k, x_{k+1}): x_k ~ q(x_k | x_0), then x_{k+1} ~ q(x_{k+1} | x_k) (DESIGN 2.4 step 1)."""
        x_k = self.q_sample(x0, label)
        return x_k, self.q_step(x_k, label)

    def posterior_sample(self, x0: A, x_next: A, label: A) -> A:
        """x_k ~ q(x_k | x_{k+1}, x_0); at k = 0 the variance is zero and x_0 is returned."""
        ops = self.ops
        a, b = ops.per_sample(self._post_x0, label, x0), ops.per_sample(self._post_xt, label, x0)
        return kernels.bridge_draw(x0, x_next, a, b, ops.per_sample(self._post_std, label, x0), ops.randn_like(x0))
