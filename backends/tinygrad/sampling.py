"""Sampling in tinygrad through the core's reverse chain, with one TinyJit per batch shape for G.

`sample_chain` (ddgan_core.sampling) runs the chain; this file supplies the x0-prediction (the
generator, jitted so that every reverse step after the first two replays compiled kernels) and
the noise (numpy, seeded per call, so a seed gives the same samples on every device).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from tinygrad import Context, Tensor, TinyJit

from backends.tinygrad import program_cache
from backends.tinygrad.ops import TinygradOps, host_noise, labels_tensor
from ddgan_core.batch_progress import batch_ranges
from ddgan_core.config import Config, item_shape
from ddgan_core.sampling import chain_levels, join_batches, sample_chain
from ddgan_core.schedule import schedule_from_config


class Sampler:
    """Draws samples from one generator (e.g. the EMA copy); compiled steps are kept across calls.

    The jitted forward reads the generator's weight buffers, so in-place updates of those weights
    (EMA steps, checkpoint loads by assignment) are seen by later calls without recompiling.
    """

    def __init__(self, generator: Any, config: Config, device: str) -> None:
        self.generator, self.config, self.device = generator, config, device
        self.schedule = schedule_from_config(config.diffusion)
        self._forward: dict[tuple[int, ...], TinyJit] = {}
        program_cache.restore()

    def _predict(self, x_t: Tensor, labels: Tensor, z: Tensor) -> Tensor:
        jit = self._forward.get(x_t.shape)
        if jit is None:
            jit = self._forward[x_t.shape] = TinyJit(lambda x, t, latent: self.generator(x, t, latent).realize())
        with Context(TRAINING=0):  # evaluation: no dropout
            return jit(x_t, labels, z)

    def sample(
        self, n: int, seed: int, steps: int | None = None, return_trajectory: bool = False,
        batch_size: int = 1000, levels: list[int] | None = None, x_start: np.ndarray | None = None,
        progress: str | None = None,
    ):
        """n samples (network units) through the core's chain, optionally with the trajectory.

        As in the PyTorch backend: `steps` evenly spread levels from x_T ~ N(0, I) by default;
        `levels` and `x_start` (n points at levels[0]) run any part of the chain; `progress` labels
        a progress bar over the batches.
        """
        batches = self.batches(n, seed, steps, return_trajectory, batch_size, levels, x_start, progress)
        return join_batches(batches, return_trajectory)

    def batches(
        self, n: int, seed: int, steps: int | None = None, return_trajectory: bool = False,
        batch_size: int = 1000, levels: list[int] | None = None, x_start: np.ndarray | None = None,
        progress: str | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """sample's draws one batch at a time: (samples, trajectory or None)."""
        levels = chain_levels(self.schedule.timesteps, steps) if levels is None else levels
        rng = np.random.default_rng(seed)
        ops = TinygradOps(host_noise(rng, self.device))
        nz = self.config.generator.nz
        for start, m in batch_ranges(n, batch_size, progress):

            def predict_x0(x_t: Tensor, label: int, m: int = m) -> Tensor:
                labels = labels_tensor(np.full(m, label), self.device)
                latent = Tensor(rng.standard_normal((m, nz), dtype=np.float32), device=self.device)
                # realise x_t in place first: it (or the trajectory holding it) may read the previous
                # prediction, whose buffer the jitted forward is about to overwrite
                return self._predict(x_t.realize(), labels, latent)

            if x_start is None:
                x = ops.noise((m, *item_shape(self.config)))
            else:
                x = Tensor(np.asarray(x_start[start : start + m], dtype=np.float32), device=self.device)
            result = sample_chain(predict_x0, x, self.schedule, ops, levels, return_trajectory)
            x, trajectory = result if return_trajectory else (result, None)
            yield x.numpy(), (np.stack([level.numpy() for level in trajectory]) if trajectory is not None else None)
        program_cache.persist()
