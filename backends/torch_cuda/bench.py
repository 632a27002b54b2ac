"""Timing the PyTorch backend for `ddgan bench` (the protocol and figures: ddgan_core.benchmark).

Networks are built from the preset with random weights (speed does not depend on them), so no
checkpoint or dataset is needed. Each timed run is one batch: a whole reverse chain for
sampling, one D step plus one G step for training. Warm-up runs are not timed; on CUDA each run
is timed with CUDA events, on the CPU with a monotonic clock. Peak memory is the CUDA
allocator's peak, or the process's peak resident set on the CPU.

Sampling goes through `make_sampler` (eager) or `make_fast_sampler` (fast_sampling.FastSampler:
each step's generator call and posterior draw compiled as one graph, channels_last, and on CUDA
one CUDA graph per chain), each returning the callable that draws one batch; model FLOPs are
always counted on the eager path (the same model).
Training's fast path is the trainer's own (`train.compile`). `profile_kernels` says where a run's
time goes: torch.profiler's kernel records, summed by ddgan_core.benchmark.kernel_breakdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from backends.torch_cuda.compile import check_compile_mode, use_fast_cuda_kernels
from backends.torch_cuda.entry import pick_device
from backends.torch_cuda.fast_sampling import FastSampler
from backends.torch_cuda.networks import build_generator
from backends.torch_cuda.trainer import TorchTrainer, sample_with
from ddgan_core.benchmark import (
    CpuLoad,
    KernelBreakdown,
    Measurement,
    cpu_load_now,
    kernel_breakdown,
    process_peak_rss_bytes,
    training_batch,
)
from ddgan_core.config import PRECISIONS, Config
from ddgan_core.errors import DDGANError

# Dense peak FLOP/s by device-name fragment (vendor data sheets): fp32 runs with TF32 matmuls
# on CUDA (as training does), so its peak is the TF32 tensor-core peak where there is one.
CUDA_PEAK_FLOPS = (
    ("H200 NVL", {"fp32": 417.5e12, "bf16": 835.5e12}),  # the PCIe card: lower clocks and power than the SXM part
    ("H200", {"fp32": 494.7e12, "bf16": 989.4e12}),
    ("H100 PCIe", {"fp32": 378.0e12, "bf16": 756.0e12}),
    ("H100", {"fp32": 494.7e12, "bf16": 989.4e12}),
    ("A100", {"fp32": 156.0e12, "bf16": 312.0e12}),
    ("L4", {"fp32": 60.0e12, "bf16": 121.0e12}),
    ("V100", {"fp32": 15.7e12}),
)


def bench_device(name: str | None, precision: str) -> torch.device:
    """The device to time on; bf16 needs CUDA (as for training). On CUDA: TF32 and cuDNN's autotuner."""
    device = pick_device(name)
    if precision not in PRECISIONS:
        raise DDGANError(f"unknown --precision '{precision}' (known: {', '.join(PRECISIONS)})")
    if precision == "bf16" and device.type != "cuda":
        raise DDGANError("--precision bf16 needs a CUDA device")
    if device.type == "cuda":
        use_fast_cuda_kernels()
    return device


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} threads"


def device_peak_flops(device: torch.device, precision: str) -> float | None:
    """The device's dense peak FLOP/s at `precision`, where known (None on CPUs)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for fragment, peaks in CUDA_PEAK_FLOPS:
        if fragment in name:
            return peaks.get(precision)
    return None


def load_at_start(device: torch.device) -> CpuLoad | None:
    """On the CPU: how busy other processes keep the cores now, before the benchmark's own work."""
    return cpu_load_now(torch.get_num_threads(), "OMP_NUM_THREADS") if device.type == "cpu" else None


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak_memory(device: torch.device) -> None:
    _synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> int:
    """CUDA: the allocator's peak since the last reset. CPU: the process's peak resident set."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return process_peak_rss_bytes()


def time_runs(run: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> tuple[float, ...]:
    """Seconds of each of `repeats` calls of `run` after `warmup` untimed calls."""
    for _ in range(warmup):
        run()
    seconds = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            end.synchronize()
            seconds.append(start.elapsed_time(end) / 1000.0)
        else:
            begin = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - begin)
    return tuple(seconds)


def time_together(run: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Seconds of `repeats` calls of `run` back to back, with one wait for the device at the end:
    the throughput of work that never waits for the device (time_runs waits after every call)."""
    _synchronize(device)
    if device.type != "cuda":
        begin = time.perf_counter()
        for _ in range(repeats):
            run()
        return time.perf_counter() - begin
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        run()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000.0


def make_sampler(
    config: Config, batch_size: int, steps: int | None, device: torch.device, precision: str, seed: int = 0,
) -> Callable[[], np.ndarray]:
    """The eager sampler: a randomly initialised generator, one full chain per call."""
    torch.manual_seed(seed)
    generator = build_generator(config).to(device).eval()

    def run() -> np.ndarray:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            return sample_with(generator, config, batch_size, seed, device, steps=steps, batch_size=batch_size)

    return run


def make_fast_sampler(
    config: Config, batch_size: int, steps: int | None, device: torch.device, precision: str, seed: int = 0,
    compile_mode: str | None = "default", cuda_graph: bool = True,
) -> Callable[[], np.ndarray]:
    """The fast sampler over the same randomly initialised generator as `make_sampler` (the same
    samples for the same seed, up to rounding); the CUDA graph only where the device is CUDA."""
    torch.manual_seed(seed)
    generator = build_generator(config).to(device).eval()
    sampler = FastSampler(generator, config, batch_size, device, steps=steps, precision=precision,
                          compile_mode=compile_mode, cuda_graph=cuda_graph and device.type == "cuda")

    def run() -> np.ndarray:
        return sampler.sample(batch_size, seed)

    return run


def count_flops(run: Callable[[], object]) -> float:
    """Model FLOPs of one call of `run` (matmuls and convolutions, as FlopCounterMode counts them)."""
    with FlopCounterMode(display=False) as counter:
        run()
    return float(counter.get_total_flops())


def profile_kernels(run: Callable[[], object], device: torch.device, runs: int = 1, top: int = 10) -> KernelBreakdown:
    """Where `runs` calls of `run` spend their time: on CUDA the device kernels (by name, with the
    share of the region's wall time the device was busy); on the CPU the top-level operators."""
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    _synchronize(device)
    with profile(activities=activities) as prof:
        begin = time.perf_counter()
        for _ in range(runs):
            run()
        _synchronize(device)
        wall = time.perf_counter() - begin
    if cuda:
        events = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    else:
        events = [e for e in prof.events() if e.device_type == DeviceType.CPU and e.cpu_parent is None]
    if not events:
        raise DDGANError(f"torch.profiler recorded no {'CUDA kernels (it needs CUPTI)' if cuda else 'operators'}")
    return kernel_breakdown(((e.name, e.time_range.elapsed_us() / 1e6) for e in events), wall, top)


def bench_sample(
    config: Config, batch_size: int, steps: int | None, device: str | None, precision: str, warmup: int, repeats: int,
    fast: bool = False, compile_mode: str | None = "default", cuda_graph: bool = True, profile: bool = False,
) -> Measurement:
    """Sampling speed of the preset's generator: seconds per batch of `batch_size` images.

    `fast` times `make_fast_sampler` (compile_mode None: not compiled; cuda_graph: where CUDA);
    it compiles (and captures its graph) while it is built, before the warm-up runs. `profile`
    adds the kernel times of one more batch (`profile_kernels`), after the timed ones.
    """
    dev = bench_device(device, precision)
    if fast and compile_mode is not None:
        check_compile_mode(compile_mode, also=("none",))  # `--compile-mode none` arrives here as None
    load = load_at_start(dev)
    run = make_sampler(config, batch_size, steps, dev, precision)
    flops_per_image = count_flops(run) / batch_size
    if fast:
        run = make_fast_sampler(config, batch_size, steps, dev, precision, compile_mode=compile_mode, cuda_graph=cuda_graph)
    _reset_peak_memory(dev)
    seconds = time_runs(run, dev, warmup, repeats)
    return Measurement(seconds, peak_memory_bytes(dev), device_description(dev), flops_per_image,
                       device_peak_flops(dev, precision), profile_kernels(run, dev) if profile else None, load)


def bench_train(
    config: Config, batch_size: int, device: str | None, precision: str, warmup: int, repeats: int,
    profile: bool = False,
) -> Measurement:
    """Training speed: seconds per iteration on `training_batch` (the protocol: ddgan_core.benchmark).
    `profile` adds the kernel times of one more iteration (the next step: R1 only if due)."""
    dev = bench_device(device, precision)
    load = load_at_start(dev)
    config, batch = training_batch(config, batch_size, precision=precision)
    trainer = TorchTrainer(config, dev)
    step = iter(range(10**9))

    def run() -> None:
        trainer.train_step(batch, next(step))

    _reset_peak_memory(dev)
    seconds = time_runs(run, dev, warmup, repeats)
    return Measurement(seconds, peak_memory_bytes(dev), device_description(dev),
                       kernels=profile_kernels(run, dev) if profile else None, cpu_load=load)
