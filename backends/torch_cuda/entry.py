"""What the CLI calls for `--backend torch`: train a run, draw samples from a checkpoint."""

from __future__ import annotations

import functools
import os
import pathlib
import re
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from backends.torch_cuda.compile import use_fast_cuda_kernels
from backends.torch_cuda.device_data import device_batches
from backends.torch_cuda.distributed import Distributed
from backends.torch_cuda.fast_sampling import fastest_sampler
from backends.torch_cuda.networks import build_generator
from backends.torch_cuda.trainer import TorchTrainer, load_module, sample_batches, sample_with
from ddgan_core.checkpoint import GENERATOR_EMA, load_checkpoint
from ddgan_core.config import Config
from ddgan_core.cpu_cores import busy_cores, idle_cpu_threads
from ddgan_core.errors import DDGANError
from ddgan_core.evaluation import uint8_images_from_batches
from ddgan_core.rundir import RunDir
from ddgan_core.sample_output import chain_in_data_units, one_step_in_data_units
from ddgan_core.sampling import gather_batches
from ddgan_core.session import train_session
from ddgan_core.training_loop import to_data_units

BACKEND = "torch"
SAMPLE_BATCH = 1000  # images per generator call when sampling


def pick_device(name: str | None) -> torch.device:
    """cuda when available (or asked for), else cpu; cuda:N names one GPU. Asking for a GPU
    that is not there is an error."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if re.fullmatch(r"cpu|cuda(:\d+)?", name) is None:
        raise DDGANError(f"unknown device '{name}' for the torch backend (cpu, cuda or cuda:N)")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DDGANError(f"--device {name} asked for, but PyTorch sees no CUDA device here (use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DDGANError(f"--device {name} asked for, but PyTorch sees {torch.cuda.device_count()} CUDA device(s) "
                             f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return device


def training_device(device: torch.device, dist: Distributed) -> torch.device:
    """The GPU this process trains on: under torchrun the one of its LOCAL_RANK (--device cuda
    then means GPUs, not one of them), alone the one asked for (cuda: the current device)."""
    if device.type != "cuda":
        return device
    if dist.world_size > 1:
        return torch.device("cuda", dist.local_rank)
    return device if device.index is not None else torch.device("cuda", torch.cuda.current_device())


def check_train_settings(config: Config, device: torch.device) -> None:
    """Refuse settings this backend cannot train with on `device`, in one line."""
    if config.train.precision == "bf16" and device.type != "cuda":
        raise DDGANError("bf16 training (--precision bf16, --fast) needs a CUDA device; "
                         "on the CPU --set train.compile=true compiles the fp32 step")


def train(
    config: Config | None, out: pathlib.Path | None, resume: bool, device: str | None = None,
    resume_changes: Sequence[str] = (), stop_at: int | None = None, show_progress: bool = True,
) -> RunDir:
    """Train a new run from `config`, or resume one (config None or ignored: the run's own
    configuration, changed only by `resume_changes`, ddgan_core.session.RESUME_CHANGES)."""
    dev = pick_device(device)
    dist = Distributed.from_environment(dev.type)
    dev = set_up(training_device(dev, dist))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    try:
        return train_session(
            config, lambda cfg: TorchTrainer(cfg, dev, dist), backend=BACKEND, versions=_versions(dev),
            out=out, resume=resume, resume_changes=resume_changes, rank=dist.rank, world_size=dist.world_size,
            stop_at=stop_at, show_progress=show_progress and dist.is_main,
            check_backend=lambda cfg: check_train_settings(cfg, dev),
            device_batches=lambda cfg, dataset, indices: device_batches(cfg, dataset, indices, dev),
        )
    finally:
        dist.close()


def _versions(device: torch.device) -> dict[str, str]:
    """What a run's config.json records of this backend: torch's version and, on the CPU, the thread
    count (it can change the last bits, set_up), so a resume on another count shows in its record."""
    cpu = {"torch_cpu_threads": str(torch.get_num_threads())} if device.type == "cpu" else {}
    return {"torch": torch.__version__, **cpu}


def set_up(device: torch.device) -> torch.device:
    """Ready this process for work on `device`, and return it. On CUDA: TF32 and cuDNN's autotuner.
    On the CPU: OMP_NUM_THREADS threads where it is set, else as many as other processes leave cores
    idle, since a thread waiting for a busy core spins (ddgan_core.cpu_cores). The count can change
    the last bits of a convolutional network's sums, so setting it makes a run bit-reproducible on a
    loaded machine too (tiny preset, 2 steps: 1 and 2 threads differ by about 1e-9)."""
    if device.type == "cuda":
        use_fast_cuda_kernels()
    elif device.type == "cpu" and not os.environ.get("OMP_NUM_THREADS"):
        _use_idle_cores()
    return device


@functools.cache
def _use_idle_cores() -> None:
    """Cut torch's threads to the idle cores, once a process: measuring them sleeps 0.2 s, and
    `plot` and `eval` load a generator per chain step."""
    torch.set_num_threads(idle_cpu_threads(torch.get_num_threads(), os.cpu_count() or 1, busy_cores()))


def load_ema_generator(checkpoint_path: pathlib.Path, device: torch.device):
    set_up(device)
    checkpoint = load_checkpoint(checkpoint_path)
    generator = build_generator(checkpoint.config).to(device).eval()
    load_module(generator, checkpoint, GENERATOR_EMA)
    return generator, checkpoint.config


def sample_stream(
    checkpoint_path: pathlib.Path, n: int, steps: int | None, seed: int, device: str | None = None, fast: bool = False,
) -> tuple[Config, Iterator[np.ndarray]]:
    """The checkpoint's configuration, and n samples of its EMA generator in data units, drawn a batch
    (up to SAMPLE_BATCH) at a time as the iterator is read, under a progress bar.

    `fast`: the compiled path (fast_sampling.fastest_sampler; on CUDA bf16 and one CUDA graph),
    the same random draws as the eager path.
    """
    dev = pick_device(device)
    generator, config = load_ema_generator(checkpoint_path, dev)
    if fast:
        batches = fastest_sampler(generator, config, min(n, SAMPLE_BATCH), dev, steps=steps).batches(n, seed, "sample")
    else:
        batches = (x for x, _ in sample_batches(generator, config, n, seed, dev, steps=steps, batch_size=SAMPLE_BATCH,
                                                progress="sample"))
    return config, (to_data_units(x, config) for x in batches)


def sample(
    checkpoint_path: pathlib.Path, n: int, steps: int | None, seed: int, device: str | None = None,
    trajectory: bool = False, fast: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, Config]:
    """n samples in data units from the checkpoint's EMA generator (and the trajectory if asked):
    sample_stream's batches as one array."""
    if not trajectory:
        config, batches = sample_stream(checkpoint_path, n, steps, seed, device, fast)
        return gather_batches(batches, n), None, config
    if fast:
        raise DDGANError("--fast does not record the trajectory: drop --fast or --trajectory")
    dev = pick_device(device)
    generator, config = load_ema_generator(checkpoint_path, dev)
    result = sample_with(generator, config, n, seed, dev, steps=steps, return_trajectory=True, batch_size=SAMPLE_BATCH,
                         progress="sample")
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
    dev = pick_device(device)
    generator, config = load_ema_generator(checkpoint_path, dev)
    return one_step_in_data_units(
        x_t, level, config, lambda start, levels: sample_with(generator, config, len(start), seed, dev, levels=levels, x_start=start))
