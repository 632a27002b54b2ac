"""The benchmark protocol of `ddgan bench`, the same for every backend.

A backend measures (its `bench` module returns a `Measurement`: seconds per timed batch with
warm-up runs excluded, peak memory, and for sampling the model FLOPs per image); this module
turns that into the reported figures: seconds per batch by the protocol's statistic, images/s,
seconds per 100 images (the paper's 0.21 s on a V100 for CIFAR-10, T = 4), iterations/s, and
the achieved fraction of the device's peak where the peak is known.

A training run is one iteration (one D step then one G step) on random data. R1 runs every
`lazy_reg` iterations as in training, so the median is the plain step and the mean over a
multiple of lazy_reg iterations includes the penalty's share.

Protocols: "default" is the median of the timed runs (robust to a busy machine); "paper" is
batch 100 and the mean after warm-up, as the published timing was taken.

On the CPU a backend also records how busy other processes kept the cores as the run started
(`CpuLoad`): a thread that waits for a core another process holds spins, so timings taken then can
be many times too slow, and the figures say so rather than passing as the machine's speed.

Where the time goes: `kernel_breakdown` sums a profiler's kernel records by name and by kind of
work (convolutions, matrix multiplies, attention, compiled Triton kernels, ...), so a GPU run
shows which part of the network to work on next.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ddgan_core.config import Config, item_shape
from ddgan_core.cpu_cores import busy_cores, idle_cpu_threads
from ddgan_core.errors import DDGANError

PROTOCOLS = {"default": "median", "paper": "mean"}
PAPER_BATCH = 100
PAPER_SECONDS_PER_100 = 0.21  # DDGAN, CIFAR-10 32x32, T = 4, one V100


@dataclass(frozen=True)
class Measurement:
    """What a backend's bench function measured."""

    seconds: tuple[float, ...]  # one entry per timed batch (or training iteration)
    peak_memory_bytes: int
    device_name: str
    flops_per_image: float | None = None  # model FLOPs of sampling one image (all steps)
    device_peak_flops: float | None = None  # FLOP/s of the device at this precision, where known
    kernels: KernelBreakdown | None = None  # where one more run's time went, when profiled
    cpu_load: CpuLoad | None = None  # how busy the CPU was with other work at the start (CPU runs)


@dataclass(frozen=True)
class CpuLoad:
    """How busy other processes kept the CPU just before a CPU benchmark's work began.

    Why: the backend's threads spin while they wait for a core another process holds
    (ddgan_core.cpu_cores), so a run on a busy machine can be many times slower (10-55x seen on
    2 cores) and its timings are not the machine's speed. `idle_threads` is what CPU training would
    use there (`cpu_cores.idle_cpu_threads`)."""

    cores: int
    threads: int  # the benchmark's compute threads
    threads_variable: str  # the environment variable that sets them: OMP_NUM_THREADS (torch), NUM_CPU_THREADS (tinygrad)
    busy_cores: float  # cores other processes kept busy just before the benchmark's work
    idle_threads: int
    load_average: tuple[float, float, float] | None  # os.getloadavg() then (1, 5, 15 min); None where unknown

    @property
    def spins(self) -> bool:
        """Whether there are more threads than idle cores, so some spin waiting for a busy one."""
        return self.threads > self.idle_threads

    def warning(self) -> str | None:
        """One line for stderr when the benchmark has more threads than there were idle cores, else None."""
        if not self.spins:
            return None
        load = f" (1-minute load average {self.load_average[0]:.2f})" if self.load_average is not None else ""
        return (f"other processes kept {self.busy_cores:.1f} of {self.cores} cores busy as the benchmark started{load}; "
                f"its {self.threads} threads spin while they wait for those cores, so these timings can be many "
                f"times too slow: run it on an idle machine or with {self.threads_variable}={self.idle_threads}")


def cpu_load_now(threads: int, threads_variable: str) -> CpuLoad:
    """The CpuLoad of this machine now, before a CPU benchmark's own work on `threads` threads (set by
    the environment variable `threads_variable`), measured as CPU training measures it, so its
    warning names the thread count training would use."""
    busy = busy_cores()
    try:
        load: tuple[float, float, float] | None = tuple(round(value, 2) for value in os.getloadavg())
    except OSError:  # not available on this platform
        load = None
    cores = os.cpu_count() or 1
    return CpuLoad(cores, threads, threads_variable, round(busy, 2), idle_cpu_threads(threads, cores, busy), load)


@dataclass(frozen=True)
class BenchResult:
    """The reported figures of one benchmark (JSON keys are the field names)."""

    kind: str  # "sample" or "train"
    backend: str
    preset: str
    device: str
    device_name: str
    precision: str
    protocol: str
    statistic: str
    batch_size: int
    steps: int | None
    warmup: int
    repeats: int
    seconds_per_batch: float
    seconds_per_batch_median: float
    seconds_per_batch_mean: float
    images_per_s: float
    seconds_per_100: float
    iterations_per_s: float
    peak_memory_bytes: int
    flops_per_image: float | None
    achieved_flops: float | None
    device_peak_flops: float | None
    fraction_of_peak: float | None
    kernels: KernelBreakdown | None = None
    cpu_load: CpuLoad | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def process_peak_rss_bytes() -> int:
    """The peak resident set of this process so far, in bytes: the peak memory of a CPU benchmark."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise DDGANError(f"unknown --protocol '{protocol}' (known: {', '.join(PROTOCOLS)})")
    return PROTOCOLS[protocol]


def check_counts(batch_size: int, warmup: int, repeats: int) -> None:
    if batch_size < 1:
        raise DDGANError(f"--batch-size must be at least 1, got {batch_size}")
    if warmup < 0:
        raise DDGANError(f"--warmup must not be negative, got {warmup}")
    if repeats < 1:
        raise DDGANError(f"--repeats must be at least 1, got {repeats}")


def summarise(
    measurement: Measurement, *, kind: str, backend: str, preset: str, device: str, precision: str,
    protocol: str, batch_size: int, steps: int | None, warmup: int,
) -> BenchResult:
    """Figures from per-batch seconds: images/s = batch / t, seconds per 100 = 100 t / batch,
    achieved FLOP/s = FLOPs per image x images/s (sampling), and its share of the device peak."""
    statistic = check_protocol(protocol)
    if not measurement.seconds or min(measurement.seconds) <= 0:
        raise DDGANError("a benchmark needs at least one timed run of positive duration")
    median = statistics.median(measurement.seconds)
    mean = statistics.fmean(measurement.seconds)
    seconds = median if statistic == "median" else mean
    images_per_s = batch_size / seconds
    achieved = measurement.flops_per_image * images_per_s if measurement.flops_per_image is not None else None
    fraction = achieved / measurement.device_peak_flops if achieved is not None and measurement.device_peak_flops else None
    return BenchResult(
        kind=kind, backend=backend, preset=preset, device=device, device_name=measurement.device_name,
        precision=precision, protocol=protocol, statistic=statistic, batch_size=batch_size, steps=steps,
        warmup=warmup, repeats=len(measurement.seconds), seconds_per_batch=seconds,
        seconds_per_batch_median=median, seconds_per_batch_mean=mean, images_per_s=images_per_s,
        seconds_per_100=100.0 * seconds / batch_size, iterations_per_s=1.0 / seconds,
        peak_memory_bytes=measurement.peak_memory_bytes, flops_per_image=measurement.flops_per_image,
        achieved_flops=achieved, device_peak_flops=measurement.device_peak_flops, fraction_of_peak=fraction,
        kernels=measurement.kernels, cpu_load=measurement.cpu_load,
    )


def training_batch(config: Config, batch_size: int, **train: object) -> tuple[Config, np.ndarray]:
    """What `bench train` times one iteration on: the config at this batch size (and any other
    `train` fields given), and one batch of uniform [-1, 1] data of its item shape (speed does not
    depend on the values)."""
    config = replace(config, train=replace(config.train, batch_size=batch_size, **train))
    batch = np.random.default_rng(0).uniform(-1.0, 1.0, (batch_size, *item_shape(config))).astype(np.float32)
    return config, batch


# Kinds of device kernel, by fragments of the kernel's name, checked in this order: TorchInductor
# names its Triton kernels after the operations it fused ("triton_poi_fused_add_convolution_0"),
# flash and memory-efficient attention kernels run on CUTLASS, and cuDNN's convolution kernels are
# implicit GEMMs ("sm90_xmma_fprop_implicit_gemm_..."), hence Triton first and convolution before
# matrix multiply. On the CPU the records are operators ("aten::conv2d", "aten::linear"), which the
# same fragments sort. A heuristic for reading a profile, not a classification to rely on.
KERNEL_KINDS = (
    ("compiled (Triton)", ("triton",)),
    ("attention", ("flash", "fmha", "attention")),
    ("convolution", ("fprop", "dgrad", "wgrad", "conv")),
    ("matrix multiply", ("gemm", "cublas", "cutlass", "nvjet", "matmul", "aten::mm", "addmm", "bmm", "linear")),
    ("PyTorch native", ("at::native",)),
    ("memory copy", ("memcpy", "memset")),
)


def kernel_kind(name: str) -> str:
    """The kind of work a device kernel does, from its name (KERNEL_KINDS; "other" if none fits)."""
    lowered = name.lower()
    return next((kind for kind, fragments in KERNEL_KINDS if any(f in lowered for f in fragments)), "other")


@dataclass(frozen=True)
class KernelTime:
    name: str
    kind: str
    calls: int
    seconds: float
    share: float  # of all kernel time


@dataclass(frozen=True)
class KernelBreakdown:
    """Kernel time of a profiled region: in total, against the region's wall time, by kind, by kernel."""

    kernel_seconds: float
    wall_seconds: float
    busy: float  # kernel time / wall time: below 1 the device waits for the host (launches, syncs)
    kinds: dict[str, float]  # kind -> share of kernel time, largest first
    top: tuple[KernelTime, ...]  # the kernels that took the most time, largest first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kernel_breakdown(records: Iterable[tuple[str, float]], wall_seconds: float, top: int = 10) -> KernelBreakdown:
    """Sum (kernel name, seconds) records by name and by kind; `top` kernels by time."""
    seconds: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for name, duration in records:
        seconds[name] += duration
        calls[name] += 1
    total = sum(seconds.values())
    if total <= 0 or wall_seconds <= 0:
        raise DDGANError("a kernel breakdown needs kernel records and a wall time of positive duration")
    by_kind: dict[str, float] = defaultdict(float)
    for name, duration in seconds.items():
        by_kind[kernel_kind(name)] += duration / total
    ranked = sorted(seconds, key=seconds.__getitem__, reverse=True)[:top]
    return KernelBreakdown(
        kernel_seconds=total, wall_seconds=wall_seconds, busy=total / wall_seconds,
        kinds=dict(sorted(by_kind.items(), key=lambda item: item[1], reverse=True)),
        top=tuple(KernelTime(n, kernel_kind(n), calls[n], seconds[n], seconds[n] / total) for n in ranked),
    )
