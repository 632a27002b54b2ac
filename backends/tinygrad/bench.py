"""Timing the tinygrad backend for `ddgan bench` (the protocol and figures: ddgan_core.benchmark).

Same functions and timing protocol as backends/torch_cuda/bench.py; no PyTorch anywhere on this path.
Networks are built from the preset with random weights (speed does not depend on them), so no
checkpoint or dataset is needed. Each timed run is one batch: a whole reverse chain through
`Sampler` for sampling, one jitted `TinygradTrainer` step (D step, G step, EMA) for training.

Warm-up runs are not timed. TinyJit runs a function eagerly on its first call, captures it on its
second and replays compiled kernels from its third. One warm-up chain of K >= 2 steps therefore
captures the generator (K = 1 needs two). Training has two captures, with and without R1, whose
steady state starts only after lazy_reg + 1 iterations (the second R1 step): `bench_train` runs
those iterations while it prepares, before the warm-up runs, so no capture is ever timed.

Each timed run ends fully realised (samples read back to numpy, the training step's device
synchronised) before the clock stops. Peak memory is the process's peak resident set on the CPU;
tinygrad keeps no peak counter for other devices, so there it is the bytes tinygrad holds on the
device after the timed runs (the jitted programs keep all their buffers, so this is the steady
state). FLOPs per image are not reported (None): tinygrad's kernel op estimates count every
elementwise op, not the matmul and convolution FLOPs the PyTorch backend reports, so the two
figures would not compare. Only fp32 runs, as in training (backends/tinygrad/entry.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from tinygrad import Context, Device, GlobalCounters, Tensor
from tinygrad.helpers import NUM_CPU_THREADS

from backends.tinygrad.entry import check_train_settings, is_cpu, pick_device
from backends.tinygrad.networks import build_generator
from backends.tinygrad.sampling import Sampler
from backends.tinygrad.trainer import TinygradTrainer
from ddgan_core.benchmark import CpuLoad, Measurement, cpu_load_now, process_peak_rss_bytes, training_batch
from ddgan_core.config import Config
from ddgan_core.errors import DDGANError


def bench_device(name: str | None, precision: str) -> str:
    """The tinygrad device to time on; fp32 only, as for training."""
    if precision != "fp32":
        raise DDGANError(f"the tinygrad backend runs in fp32 only (got --precision {precision})")
    return pick_device(name)


def device_description(device: str) -> str:
    return f"{device} ({Device[device].arch or 'tinygrad'})"


def load_at_start(device: str) -> CpuLoad | None:
    """On the CPU: how busy other processes keep the cores now, before the benchmark's own work
    (tinygrad's CPU kernels run on NUM_CPU_THREADS threads, which spin on a busy core as PyTorch's do)."""
    return cpu_load_now(NUM_CPU_THREADS.value, "NUM_CPU_THREADS") if is_cpu(device) else None


def peak_memory_bytes(device: str) -> int:
    """CPU: the process's peak resident set. Elsewhere: the bytes tinygrad holds on the device now."""
    if is_cpu(device):
        return process_peak_rss_bytes()
    return int(GlobalCounters.mem_used_per_device[device])


def time_runs(run: Callable[[], object], device: str, warmup: int, repeats: int) -> tuple[float, ...]:
    """Seconds of each of `repeats` calls of `run` after `warmup` untimed calls, each ended by a
    device synchronisation (tinygrad queues kernels, also on the CPU)."""
    for _ in range(warmup):
        run()
    Device[device].synchronize()
    seconds = []
    for _ in range(repeats):
        begin = time.perf_counter()
        run()
        Device[device].synchronize()
        seconds.append(time.perf_counter() - begin)
    return tuple(seconds)


def make_sampler(config: Config, batch_size: int, steps: int | None, device: str, seed: int = 0) -> Callable[[], np.ndarray]:
    """A randomly initialised generator behind a `Sampler`: one full chain per call, read back to numpy."""
    Tensor.manual_seed(seed)
    with Context(DEV=device):
        generator = build_generator(config)
    sampler = Sampler(generator, config, device)

    def run() -> np.ndarray:
        return sampler.sample(batch_size, seed, steps=steps, batch_size=batch_size)

    return run


def bench_sample(
    config: Config, batch_size: int, steps: int | None, device: str | None, precision: str, warmup: int, repeats: int,
    fast: bool = False, profile: bool = False, **options: object,
) -> Measurement:
    """Sampling speed of the preset's generator: seconds per batch of `batch_size` images.

    tinygrad has one sampling path (jitted generator, eager chain arithmetic), so `fast` and any
    other option of the PyTorch fast path are refused, and it has no profiler (`profile`).
    """
    check_no_profile(profile)
    if fast or options:
        named = ", ".join(["fast"] * fast + sorted(options))
        raise DDGANError(f"the tinygrad backend has no fast sampling path (cannot honour: {named})")
    dev = bench_device(device, precision)
    load = load_at_start(dev)
    seconds = time_runs(make_sampler(config, batch_size, steps, dev), dev, warmup, repeats)
    return Measurement(seconds, peak_memory_bytes(dev), device_description(dev), cpu_load=load)


def bench_train(
    config: Config, batch_size: int, device: str | None, precision: str, warmup: int, repeats: int,
    profile: bool = False,
) -> Measurement:
    """Training speed: seconds per iteration on `training_batch`, after both jitted variants are captured."""
    check_no_profile(profile)
    dev = bench_device(device, precision)
    load = load_at_start(dev)
    config, batch = training_batch(config, batch_size)
    check_train_settings(config)
    trainer = TinygradTrainer(config, dev)
    step = iter(range(10**9))

    def run() -> None:
        trainer.train_step(batch, next(step))

    for _ in range(capture_iterations(config)):
        run()
    seconds = time_runs(run, dev, warmup, repeats)
    return Measurement(seconds, peak_memory_bytes(dev), device_description(dev), cpu_load=load)


def check_no_profile(profile: bool) -> None:
    if profile:
        raise DDGANError("--profile: the tinygrad backend has no profiler (torch has)")


def capture_iterations(config: Config) -> int:
    """Iterations until every jitted step variant has been called twice (TinyJit captures on its
    second call), so none is captured while timed: R1 runs at steps 0, L, 2L, ... (L = lazy_reg),
    so its second call is step L, and with L = 2 the plain step's second call is step 3."""
    train = config.train
    with_r1_variant = train.r1_gamma > 0 and train.lazy_reg > 1
    return max(train.lazy_reg + 1, 4) if with_r1_variant else 2
