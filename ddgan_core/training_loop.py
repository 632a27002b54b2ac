"""The outer training loop, written once for every backend (DESIGN 2.4, 6).

A backend supplies a `BackendTrainer` (one D step then one G step, its state as numpy arrays,
EMA samples); this module owns everything around it: the learning-rate schedule, the data
stream, logging to metrics.jsonl, sample pictures, periodic atomic checkpoints, the stop on
a NaN or infinite loss (keeping the last good checkpoint), and the rich progress bar.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

import numpy as np

from ddgan_core.checkpoint import save_checkpoint
from ddgan_core.config import Config
from ddgan_core.errors import DDGANError
from ddgan_core.losses import cosine_lr
from ddgan_core.mixture import GaussianMixture
from ddgan_core.output_paths import replaced_atomically
from ddgan_core.pictures import samples_title, save_image_grid, save_point_plot
from ddgan_core.rundir import RunDir

SAMPLE_COUNT_IMAGES, SAMPLE_COUNT_POINTS = 64, 2000


class TrainingDiverged(DDGANError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainingProgress:
    """Where a run_training call has got to, for whoever must say so when it stops early (Ctrl-C,
    SIGTERM): steps completed, and the step the run's last checkpoint holds (None: none yet)."""

    completed: int = 0
    saved: int | None = None


class BackendTrainer(Protocol):
    """What a backend implements for the loop."""

    def set_learning_rates(self, lr_g: float, lr_d: float) -> None: ...

    def train_step(self, batch: Any, step: int) -> dict[str, Any]:
        """One D step then one G step on a batch in network units (numpy, or the backend's own
        tensor where it serves the data from its device); returns backend scalars."""

    def read_scalars(self, values: dict[str, Any]) -> dict[str, float]:
        """Bring the step's scalars to the host (the only synchronisation point)."""

    def state(self) -> dict[str, np.ndarray]:
        """Every tensor of the checkpoint format, plus `rng.*` states; `optimizer_step` in extra."""

    def optimizer_step(self) -> int: ...

    def sample(self, n: int, seed: int) -> np.ndarray:
        """n samples from the EMA generator, in network units."""


def learning_rates(config: Config, step: int) -> tuple[float, float]:
    """(lr_g, lr_d) at `step`: cosine decay to lr_min over the run's iterations, or constant."""
    train = config.train
    if not train.cosine_lr:
        return train.lr_g, train.lr_d
    return (
        cosine_lr(step, train.iterations, train.lr_g, train.lr_min),
        cosine_lr(step, train.iterations, train.lr_d, train.lr_min),
    )


def to_network_units(batch: np.ndarray, config: Config) -> np.ndarray:
    """Point data is divided by the configured scale; images are already in [-1, 1]."""
    return batch if config.data.scale == 1.0 else batch / np.float32(config.data.scale)


def to_data_units(samples: np.ndarray, config: Config) -> np.ndarray:
    return samples if config.data.scale == 1.0 else samples * np.float32(config.data.scale)


def run_training(
    trainer: BackendTrainer,
    config: Config,
    run: RunDir | None,
    stream: Iterator[Any],
    *,
    start_step: int = 0,
    stop_at: int | None = None,
    mixture: GaussianMixture | None = None,
    is_image: bool = True,
    show_progress: bool = True,
    progress: TrainingProgress | None = None,
) -> dict[str, float]:
    """Train from `start_step` to config.train.iterations (or `stop_at`); returns the last logged scalars.

    `run` is None on ranks other than 0: they train but write nothing. `progress`, if given, is
    kept up to date (steps completed, last checkpoint written), also when an exception stops it.
    """
    train = config.train
    end = train.iterations if stop_at is None else min(stop_at, train.iterations)
    progress = progress if progress is not None else TrainingProgress()
    progress.completed = start_step
    progress.saved = start_step if run is not None and run.last_checkpoint.is_file() else None
    last: dict[str, float] = {}
    window_start, window_steps = time.perf_counter(), 0
    with _progress(show_progress and run is not None, start_step, end) as advance:
        for step in range(start_step, end):
            trainer.set_learning_rates(*learning_rates(config, step))
            out = trainer.train_step(to_network_units(next(stream), config), step)
            window_steps += 1
            done = progress.completed = step + 1
            if done % train.log_every == 0 or done == end:
                values = trainer.read_scalars(out)
                bad = [k for k, v in values.items() if not math.isfinite(v)]
                if bad:
                    raise TrainingDiverged(f"{', '.join(bad)} became non-finite at step {done}; {_stopped(run)}")
                elapsed = time.perf_counter() - window_start
                lr_g, lr_d = learning_rates(config, step)
                last = {**values, "lr_g": lr_g, "lr_d": lr_d,
                        "images_per_s": window_steps * train.batch_size / max(elapsed, 1e-9)}
                if run is not None:
                    run.log({"step": done, **last, "time": time.time()})
                window_start, window_steps = time.perf_counter(), 0
            if run is not None and (done % train.sample_every == 0 or done == end):
                _write_samples(trainer, config, run, done, mixture, is_image)
            if run is not None and (done % train.checkpoint_every == 0 or done == end):
                _write_checkpoint(trainer, config, run, done, periodic=done % train.checkpoint_every == 0)
                progress.saved = done
            advance(last)
    return last


def _stopped(run: RunDir | None) -> str:
    """That the run stopped, and what it keeps: its last good checkpoint, if it wrote one."""
    if run is None:
        return "stopped (rank 0 keeps the last good checkpoint, if any)"
    if run.last_checkpoint.is_file():
        return f"stopped, last good checkpoint kept in {run.checkpoints}"
    return "stopped before the first checkpoint, so there is none to keep"


def _write_checkpoint(trainer: BackendTrainer, config: Config, run: RunDir, step: int, periodic: bool) -> None:
    tensors = trainer.state()
    if not all(np.isfinite(v).all() for k, v in tensors.items() if not k.startswith("rng.")):
        raise TrainingDiverged(f"weights became non-finite by step {step}; {_stopped(run)}")
    extra = {"optimizer_step": trainer.optimizer_step()}
    save_checkpoint(run.last_checkpoint, tensors, step=step, config=config, extra=extra)
    if periodic:  # the same file: copied, not serialised and checksummed a second time
        with replaced_atomically(run.step_checkpoint(step)) as partial:
            shutil.copyfile(run.last_checkpoint, partial)


def _write_samples(trainer: BackendTrainer, config: Config, run: RunDir, step: int,
                   mixture: GaussianMixture | None, is_image: bool) -> None:
    if is_image:
        save_image_grid(trainer.sample(SAMPLE_COUNT_IMAGES, seed=step), run.samples / f"step-{step:07d}.png")
    else:
        points = to_data_units(trainer.sample(SAMPLE_COUNT_POINTS, seed=step), config)
        title = samples_title(len(points), config.data.dataset, config.diffusion.timesteps)
        save_point_plot(points, run.samples / f"step-{step:07d}.png", f"{title}, EMA generator at step {step}", mixture)


class _progress:
    """A rich progress bar with iterations/s, losses and ETA (a no-op when disabled)."""

    def __init__(self, enabled: bool, start: int, end: int) -> None:
        self.enabled, self.start, self.end = enabled, start, end

    def __enter__(self):
        if not self.enabled:
            return lambda values: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(  # on stderr, as every bar: `ddgan train > log` keeps only the results
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[losses]}"), TimeRemainingColumn(), console=Console(stderr=True),
        )
        self.bar.__enter__()
        self.task = self.bar.add_task("train", total=self.end, completed=self.start, rate="", losses="")
        self.t0, self.n0 = time.perf_counter(), self.start

        def advance(values: dict[str, float]) -> None:
            self.n0 += 1
            rate = (self.n0 - self.start) / max(time.perf_counter() - self.t0, 1e-9)
            losses = " ".join(f"{k} {values[k]:.3f}" for k in ("loss_d", "loss_g") if k in values)
            self.bar.update(self.task, advance=1, rate=f"{rate:.2f} it/s", losses=losses)

        return advance

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)
