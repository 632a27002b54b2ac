"""Starting, resuming and sampling a run: the orchestration every backend shares.

The order is chosen so that bad input never leaves anything behind: the data is loaded, the
configuration resolved and the trainer built before a run directory is created; a new run that
fails before it logs anything is removed again; an existing run is only ever appended to with
--resume.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any, Callable, Iterator, Protocol

import numpy as np
from rich.console import Console

from ddgan_core.checkpoint import Checkpoint, CheckpointError, checkpoint_config, load_checkpoint
from ddgan_core.config import Config, ConfigError, apply_overrides, fit_to_data, resolve_key
from ddgan_core.datasets import Dataset, batch_stream, index_stream, load_dataset
from ddgan_core.errors import DDGANError
from ddgan_core.run_checks import check_training_config
from ddgan_core.rundir import RunDir, default_run_path, differences, newest_run
from ddgan_core.training_loop import BackendTrainer, TrainingProgress, run_training


class ResumableTrainer(BackendTrainer, Protocol):
    def load_state(self, checkpoint: Checkpoint) -> None: ...


# (config, dataset, this rank's (indices, flip bits) per step) -> the backend's own batch stream,
# or None for the host stream (batch_stream); the batches must equal batch_stream's.
DeviceBatches = Callable[[Config, Dataset, Iterator[tuple[np.ndarray, np.ndarray]]], Iterator[Any] | None]


def resolve_checkpoint(run: pathlib.Path | None, checkpoint: pathlib.Path | None) -> pathlib.Path:
    """The checkpoint `ddgan sample` reads: --checkpoint, else --run's last, else the newest run's."""
    if run is not None and checkpoint is not None:
        raise DDGANError("pass either --run or --checkpoint, not both")
    if checkpoint is not None:
        return checkpoint
    if run is not None:
        return own_last_checkpoint(RunDir.existing(run))
    return own_last_checkpoint(newest_run(with_checkpoint=True, hint="pass --run DIR or --checkpoint FILE"))


def own_last_checkpoint(run: RunDir) -> pathlib.Path:
    """The run's last checkpoint, refused (check_checkpoint_of_run, from its header alone) if it is
    another run's; a missing one is returned as it is, for the caller to report."""
    if run.last_checkpoint.is_file():
        check_checkpoint_of_run(run, run.last_checkpoint, checkpoint_config(run.last_checkpoint))
    return run.last_checkpoint


def load_training_data(config: Config) -> tuple[Config, Dataset]:
    dataset = load_dataset(
        config.data.dataset, config.data.data_dir, resolution=config.data.resolution, seed=config.train.seed
    )
    return fit_to_data(config, dataset.shape), dataset


# What a resumed run may change: where its data is, how long it trains, how it logs, and the speed
# settings that leave the model and its maths alone. Everything else is the run's own.
RESUME_CHANGES = ("data.data_dir", "train.iterations", "train.precision", "train.compile",
                  "train.log_every", "train.sample_every", "train.checkpoint_every")


def resumed_config(own: Config, changes: Sequence[str]) -> Config:
    """A run's own configuration with `changes` (key=value, keys of RESUME_CHANGES) applied."""
    for item in changes:  # the run's own value restated (its first command line again) is no change
        key = ".".join(resolve_key(item.split("=", 1)[0].strip()))
        if key not in RESUME_CHANGES and apply_overrides(own, [item]) != own:
            raise ConfigError(f"--resume continues the run with its own configuration; '{key}' cannot change "
                              f"(can: {', '.join(RESUME_CHANGES)}); start a new run to change it")
    return apply_overrides(own, changes)


def check_checkpoint_of_run(run: RunDir, path: pathlib.Path, config: Config) -> None:
    """Refuse a last checkpoint (at `path`, holding `config`) whose configuration differs from the
    run's config.json in a key a resume cannot change: one copied in from another run would
    otherwise go on training inside this one, or be sampled and scored as this run. (A resume
    rewrites config.json, so a run's own checkpoint always passes.)"""
    changed = differences(run.config().to_dict(), config.to_dict())
    differ = [key for key in changed if key not in RESUME_CHANGES]
    if differ:
        key, more = differ[0], len(differ) - 1
        own, found = changed[key]
        others = f" ({more} more key{'s differ' if more > 1 else ' differs'})" if more else ""
        raise CheckpointError(f"{path} is not this run's checkpoint: its {key} is {found!r} where "
                              f"{run.config_path} has {own!r}{others}; use the run it came from instead")


def per_rank_batch(batch_size: int, world_size: int) -> int:
    """Each process's share of the global batch."""
    if batch_size % world_size:
        raise DDGANError(f"batch size {batch_size} is not divisible by the {world_size} processes")
    return batch_size // world_size


def train_session(
    config: Config | None,
    make_trainer: Callable[[Config], ResumableTrainer],
    *,
    backend: str,
    versions: dict[str, str],
    out: pathlib.Path | None = None,
    resume: bool = False,
    resume_changes: Sequence[str] = (),
    rank: int = 0,
    world_size: int = 1,
    stop_at: int | None = None,
    show_progress: bool = True,
    check_backend: Callable[[Config], None] | None = None,
    device_batches: DeviceBatches | None = None,
) -> RunDir:
    """Train a new run (or resume one) to its configured iterations; returns its directory.

    On resume `config` is ignored (it may be None): the run continues with its checkpoint's configuration, changed
    only by `resume_changes` (RESUME_CHANGES). `check_backend` refuses settings the backend cannot
    train with (on the configuration actually used, before anything is written), and
    `device_batches` lets a backend serve the batches from its device memory (same order, same data).
    A resume refuses a last checkpoint that is not the run's own, and rewrites config.json to the
    configuration, backend and versions it goes on with, recording the resume there.
    """
    if world_size > 1 and out is None:
        raise DDGANError("multi-process training needs an explicit --out RUN_DIR shared by every process")
    checkpoint = None
    if resume:  # the named run, else the newest; one stopped before its first checkpoint starts again from step 0
        run = RunDir.existing(out) if out is not None else newest_run(hint="pass --out RUN_DIR")
        if run.last_checkpoint.is_file():
            checkpoint = load_checkpoint(run.last_checkpoint)
            check_checkpoint_of_run(run, checkpoint.path, checkpoint.config)
            config = resumed_config(checkpoint.config, resume_changes)
        elif (periodic := run.newest_step_checkpoint()) is not None:  # step 0 would write over its history
            raise CheckpointError(f"{run.last_checkpoint} is missing but the run has periodic checkpoints: to resume "
                                  f"from its newest, copy {periodic} to {run.last_checkpoint}")
        else:
            config = resumed_config(run.config(), resume_changes)
        trained = checkpoint.step if checkpoint is not None else 0
        if trained >= config.train.iterations:
            raise DDGANError(f"{run.path} has trained {trained} iterations, and {config.train.iterations} are asked for: "
                             f"pass --iterations N (more than {trained}) to train further")
    elif config is None:
        raise DDGANError("a new run needs a configuration")
    config, dataset = load_training_data(config)
    check_training_config(config)
    if check_backend is not None:
        check_backend(config)
    batch = per_rank_batch(config.train.batch_size, world_size)
    trainer = make_trainer(config)  # before the run directory: a trainer that cannot be built leaves none
    if not resume and out is not None:  # every process names it (several must, above): rank 0 creates it
        run = RunDir.create(out, config, backend, versions) if rank == 0 else RunDir(out)
    elif not resume:  # one process: the default name, or the first free one after it
        run = RunDir.create_unique(default_run_path(config), config, backend, versions)
    start = checkpoint.step if checkpoint is not None else 0
    if checkpoint is not None:
        trainer.load_state(checkpoint)
    if resume and rank == 0:
        run.record_resume(config, backend, versions, start)
        run.truncate_metrics(start)
        note = "" if checkpoint is not None else " (it stopped before its first checkpoint)"
        Console(stderr=True).print(f"resuming {run.path} from step {start}{note}", highlight=False, markup=False, soft_wrap=True)
    order = {"seed": config.train.seed, "rank": rank, "world_size": world_size, "start_step": start}
    stream = None
    if device_batches is not None:
        stream = device_batches(config, dataset, index_stream(len(dataset), batch, **order))
    if stream is None:
        stream = batch_stream(dataset, batch, random_flip=config.data.random_flip, **order)
    progress = TrainingProgress()
    try:
        run_training(trainer, config, run if rank == 0 else None, stream, start_step=start, stop_at=stop_at,
                     mixture=dataset.mixture, is_image=dataset.is_image,
                     show_progress=show_progress, progress=progress)
    except BaseException as stopped:
        removed = not resume and rank == 0 and run.remove_if_never_started()
        if rank == 0 and isinstance(stopped, (KeyboardInterrupt, SystemExit)):  # Ctrl-C, SIGTERM
            Console(stderr=True).print(stopped_note(run, config, progress, removed), highlight=False, markup=False,
                                       soft_wrap=True)
        raise
    return run


def stopped_note(run: RunDir, config: Config, progress: TrainingProgress, removed: bool) -> str:
    """What a run stopped by a signal keeps, and how to go on: one line for stderr."""
    where = f"stopped at step {progress.completed} of {config.train.iterations}"
    if removed:
        return f"{where}, before anything was logged: {run.path} was removed"
    resume = f"`ddgan train --resume --out {run.path}`"
    if progress.saved is None:
        return (f"{where}; {run.path} has no checkpoint yet (one every {config.train.checkpoint_every} steps), "
                f"so {resume} starts it again from step 0")
    return f"{where}; {run.path} keeps its checkpoint of step {progress.saved}: {resume} continues from there"
