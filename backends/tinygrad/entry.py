"""What the CLI calls for `--backend tinygrad`: train a run, draw samples from a checkpoint.

Same functions and signatures as backends/torch_cuda/entry.py; no PyTorch anywhere on this path.
"""

from __future__ import annotations

import importlib.metadata
import os
import pathlib
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
from tinygrad import Context, Device
from tinygrad.device import ALL_DEVICES
from tinygrad.helpers import DEV, NUM_CPU_THREADS

from backends.tinygrad.networks import build_generator
from backends.tinygrad.sampling import Sampler
from backends.tinygrad.trainer import TinygradTrainer, load_module
from ddgan_core.benchmark import cpu_load_now
from ddgan_core.checkpoint import GENERATOR_EMA, load_checkpoint
from ddgan_core.config import Config
from ddgan_core.cpu_cores import CpuLoadWarning
from ddgan_core.errors import DDGANError
from ddgan_core.evaluation import uint8_images_from_batches
from ddgan_core.rundir import RunDir
from ddgan_core.sample_output import chain_in_data_units, one_step_in_data_units
from ddgan_core.sampling import gather_batches
from ddgan_core.session import train_session
from ddgan_core.training_loop import to_data_units

BACKEND = "tinygrad"


# Devices tried, in tinygrad's own order, when none is named: not NV, whose 0.14 runtime does not
# know Hopper GPUs (H100/H200); CUDA drives every NVIDIA GPU (shared/notes/tinygrad.md).
AUTO_DEVICES = tuple(d for d in ALL_DEVICES if d != "NV")


def pick_device(name: str | None) -> str:
    """tinygrad's device name: the one named (cpu, cuda, ...), else DEV=... if set, else the first
    of AUTO_DEVICES that opens (so an NVIDIA GPU gets CUDA, a CPU-only machine CPU). It becomes
    the process's default device too, so no tensor created without one lands elsewhere."""
    try:
        if name not in (None, "auto"):
            device = Device.canonicalize(name)
        else:
            device = DEV.device or _first_usable(AUTO_DEVICES)
        Device[device]  # open it now, so a missing compiler or driver is a one-line error
    except Exception as exc:  # noqa: BLE001  (a device that cannot open raises anything; tinygrad's own search catches all)
        hint = " (the CPU device needs clang: apt-get install clang)" if name in (None, "auto", "cpu", "CPU") else ""
        raise DDGANError(f"tinygrad cannot use device '{name or 'default'}': {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}{hint}") from None
    DEV.value = device
    return device


def _first_usable(candidates: Sequence[str]) -> str:
    for device in candidates:
        try:
            Device[device]
            return device
        except Exception:  # noqa: BLE001  (as tinygrad's own device search)
            continue
    raise RuntimeError("no usable device")


def is_cpu(device: str) -> bool:
    return device.split(":")[0] == "CPU"


def warn_of_busy_cores(device: str) -> None:
    """On the CPU, warn when tinygrad's kernel threads (NUM_CPU_THREADS, one per core by default)
    outnumber the cores other processes leave idle: they spin while they wait for a busy core.

    Why a warning and not the torch backend's automatic cut: tinygrad compiles every kernel for that
    thread count (it is part of its kernel cache's key), so a count chosen from the moment's load
    would recompile them, minutes on a CPU, whenever the load changed. Measured on 2 cores, tiny
    preset, batch 16 (benchmarks/RESULTS.md): one core busy, a step took 1.14 s with 2 threads and
    0.72 s with 1; idle, 0.86 s and 0.88 s."""
    if not is_cpu(device):
        return
    load = cpu_load_now(NUM_CPU_THREADS.value, "NUM_CPU_THREADS")
    if load.spins:
        warnings.warn(f"other processes keep {load.busy_cores:.1f} of {load.cores} cores busy, and tinygrad's "
                      f"{load.threads} kernel threads spin while they wait for them: for a faster run set "
                      f"NUM_CPU_THREADS={load.idle_threads} (tinygrad compiles its kernels for the thread count, "
                      "so this backend does not change it itself)", CpuLoadWarning, stacklevel=2)


def check_train_settings(config: Config) -> None:
    """Refuse training settings of the PyTorch backend that tinygrad does not have, in one line."""
    # A resumed torch --fast run brings these in its own configuration: say how to change them then too.
    if config.train.precision != "fp32":
        raise DDGANError(f"the tinygrad backend trains in fp32 only (got precision {config.train.precision}): "
                         "drop --precision or --fast, or resume a torch run with --precision fp32")
    if config.train.compile:
        raise DDGANError("train.compile is the torch backend's fast path; tinygrad always runs its step "
                         "compiled (TinyJit): drop it (or --fast), or resume a torch run with --set train.compile=false")


def train(
    config: Config | None, out: pathlib.Path | None, resume: bool, device: str | None = None,
    resume_changes: Sequence[str] = (), stop_at: int | None = None, show_progress: bool = True,
) -> RunDir:
    """Train a new run from `config`, or resume one (config None or ignored: the run's own
    configuration, changed only by `resume_changes`, ddgan_core.session.RESUME_CHANGES)."""
    processes = os.environ.get("WORLD_SIZE", "1")
    if processes != "1":  # every process would train alone and race for the same run directory
        raise DDGANError(f"the tinygrad backend trains in one process, not under torchrun (WORLD_SIZE={processes}); "
                         "use --backend torch for several")
    dev = pick_device(device)

    def make_trainer(cfg: Config) -> TinygradTrainer:  # after every check of the settings: a refused run only errs
        warn_of_busy_cores(dev)
        return TinygradTrainer(cfg, dev)

    return train_session(
        config, make_trainer, backend=BACKEND,
        versions={"tinygrad": importlib.metadata.version("tinygrad"), "tinygrad_device": dev},
        out=out, resume=resume, resume_changes=resume_changes, stop_at=stop_at, show_progress=show_progress,
        check_backend=check_train_settings,
    )


def load_ema_generator(checkpoint_path: pathlib.Path, device: str):
    checkpoint = load_checkpoint(checkpoint_path)
    with Context(DEV=device):
        generator = build_generator(checkpoint.config)
    load_module(generator, checkpoint, GENERATOR_EMA)
    return generator, checkpoint.config


def ema_sampler(checkpoint_path: pathlib.Path, device: str | None) -> tuple[Sampler, Config]:
    """A Sampler of the checkpoint's EMA generator on the device picked from `device`, and the
    checkpoint's configuration; a busy CPU is warned of as in training (warn_of_busy_cores)."""
    dev = pick_device(device)
    generator, config = load_ema_generator(checkpoint_path, dev)
    warn_of_busy_cores(dev)
    return Sampler(generator, config, dev), config


def sample_stream(
    checkpoint_path: pathlib.Path, n: int, steps: int | None, seed: int, device: str | None = None,
) -> tuple[Config, Iterator[np.ndarray]]:
    """The checkpoint's configuration, and n samples of its EMA generator in data units, drawn a batch
    at a time as the iterator is read, under a progress bar."""
    sampler, config = ema_sampler(checkpoint_path, device)
    batches = sampler.batches(n, seed, steps=steps, progress="sample")
    return config, (to_data_units(x, config) for x, _ in batches)


def sample(
    checkpoint_path: pathlib.Path, n: int, steps: int | None, seed: int, device: str | None = None,
    trajectory: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, Config]:
    """n samples in data units from the checkpoint's EMA generator (and the trajectory if asked)."""
    if not trajectory:
        config, batches = sample_stream(checkpoint_path, n, steps, seed, device)
        return gather_batches(batches, n), None, config
    sampler, config = ema_sampler(checkpoint_path, device)
    result = sampler.sample(n, seed, steps=steps, return_trajectory=True, progress="sample")
    return *chain_in_data_units(result, True, config), config


def sample_images(
    checkpoint_path: pathlib.Path, n: int, steps: int | None, seed: int, device: str | None = None,
) -> np.ndarray:
    """sample's n draws of an image model as uint8 NCHW, converted batch by batch (`ddgan eval`)."""
    _, batches = sample_stream(checkpoint_path, n, steps, seed, device)
    return uint8_images_from_batches(batches, n)


def sample_step(
    checkpoint_path: pathlib.Path, x_t: np.ndarray, level: int, seed: int, device: str | None = None,
) -> np.ndarray:
    """One reverse step from the given x_t (data units, shape (N, ...)) at `level`: draws of x_{level-1}."""
    sampler, config = ema_sampler(checkpoint_path, device)
    return one_step_in_data_units(
        x_t, level, config, lambda start, levels: sampler.sample(len(start), seed, levels=levels, x_start=start))
