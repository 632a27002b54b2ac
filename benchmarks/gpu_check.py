"""Measurements of scripts/gpu_check.sh (issue 7): sampling and training speed on one CUDA GPU.

    python benchmarks/gpu_check.py env     --rows OUT/rows.jsonl
    python benchmarks/gpu_check.py sample  --rows OUT/rows.jsonl
    python benchmarks/gpu_check.py train   --rows OUT/rows.jsonl
    python benchmarks/gpu_check.py profile --rows OUT/rows.jsonl
    python benchmarks/gpu_check.py report  --rows OUT/rows.jsonl --json OUT/gpu_check.json --markdown OUT/gpu_check.md

Every measurement is appended to the rows file as soon as it is taken, so a section stopped by
its time limit keeps what it measured; a measurement that fails becomes an error row (with the
exception's last line) and the section goes on. Networks have the published initialisation
(speed does not depend on the weights); timing is backends/torch_cuda/bench.py's (CUDA events,
warm-up excluded) and the figures are ddgan_core.benchmark's (median of the timed batches).

Sampling, CIFAR-10 preset at T = 4 and T = 2, batches 1000 and 100, three paths: eager fp32
(TF32 matmuls, as the bench command), bf16 compiled (TorchInductor, channels_last), and bf16
compiled + one CUDA graph per chain. The compiled step (generator and posterior draw, its
coefficients inputs) is compiled once per batch size and reused by every step of both T. Training, CIFAR-10 preset at batch 256,
its batches gathered on the device from 50,000 CIFAR-shaped images as in `ddgan train`:
the fast path (bf16 autocast + train.compile) first, as it is the headline and compiles longest,
then eager fp32 and eager bf16; 30 iterations timed one by one (per-step times, median) and 30
back to back with one wait at the end (the throughput, the target's figure: the fast step never
waits for the device), each 30 with two R1 steps at lazy_reg 15, so R1's share is in the rate;
then one plain and one R1 step under torch.cuda.set_sync_debug_mode("error") to show that the
step never waits for the device. "fp32" is PyTorch's fp32 with TF32 matmuls and convolutions on
(as `ddgan bench`): the 3x target is judged against that, not against strict fp32. Peak memory
is the allocator's peak during the timed runs, and its reserved peak, which alone counts a CUDA
graph's private pool (allocated at capture, before the timing).
Where the time goes (section profile, last, in a process of its own: nothing is timed after the
profiler): torch.profiler's kernel times of one bf16 compiled chain at T = 4, batch 1000 (without
the graph, whose kernels are the same) and of one plain step of the training fast path, by kind
of kernel and the ten longest kernels, so a missed target shows what to work on.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import json
import pathlib
import platform
import shutil
import statistics
import subprocess
import time
import traceback
from collections.abc import Callable, Iterator

import numpy as np
import torch

from backends.torch_cuda.bench import (
    bench_device,
    count_flops,
    device_description,
    device_peak_flops,
    make_fast_sampler,
    make_sampler,
    peak_memory_bytes,
    profile_kernels,
    time_runs,
    time_together,
)
from backends.torch_cuda.device_data import device_batches
from backends.torch_cuda.networks import parameter_counts
from backends.torch_cuda.trainer import TorchTrainer
from ddgan_core import losses
from ddgan_core.benchmark import PAPER_SECONDS_PER_100, Measurement, summarise
from ddgan_core.config import Config, apply_overrides, preset
from ddgan_core.datasets import ImageDataset, index_stream

PRESET = "cifar10"
SAMPLE_WARMUP, SAMPLE_REPEATS = 2, 10
TRAIN_BATCH, TRAIN_WARMUP, TRAIN_REPEATS = 256, 3, 30
TARGET_SAMPLE_IMAGES_PER_S, TARGET_SAMPLE_SPEEDUP, TARGET_TRAIN_IMAGES_PER_S = 5000.0, 3.0, 3000.0

# path name -> (precision, fast, cuda_graph); fast paths compile with TorchInductor's default mode
SAMPLE_PATHS = {
    "eager fp32": ("fp32", False, False),
    "bf16 compiled": ("bf16", True, False),
    "bf16 compiled + graph": ("bf16", True, True),
}
# (T, batch, path) in priority order: the headline figures first, one compilation per batch size
SAMPLE_PLAN = [
    (4, 1000, "eager fp32"), (4, 100, "eager fp32"),
    (4, 1000, "bf16 compiled + graph"), (4, 1000, "bf16 compiled"),
    (2, 1000, "eager fp32"), (2, 1000, "bf16 compiled + graph"), (2, 1000, "bf16 compiled"),
    (4, 100, "bf16 compiled + graph"), (4, 100, "bf16 compiled"),
    (2, 100, "eager fp32"), (2, 100, "bf16 compiled + graph"), (2, 100, "bf16 compiled"),
]
# path name -> (precision, train.compile)
TRAIN_PATHS = {"bf16 compiled (fast path)": ("bf16", True), "eager fp32": ("fp32", False), "eager bf16": ("bf16", False)}
# profiled (section profile): the compiled step without the graph, so that each kernel is seen (inside
# the graph the same kernels run), and the training fast path
PROFILE_SAMPLE, PROFILE_TRAIN = (4, 1000, "bf16 compiled"), "bf16 compiled (fast path)"


def append_row(rows: pathlib.Path, row: dict) -> None:
    with rows.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def guarded(rows: pathlib.Path, section: str, name: str, measure: Callable[[], dict]) -> None:
    """Run one measurement; on failure record an error row and carry on."""
    try:
        append_row(rows, {"section": section, "name": name, "status": "ok", **measure()})
    except Exception as exc:  # noqa: BLE001  (a failed measurement must not stop the section)
        traceback.print_exc()
        append_row(rows, {"section": section, "name": name, "status": "error",
                          "error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"})
    finally:
        gc.collect()
        torch.cuda.empty_cache()


def cifar(timesteps: int) -> Config:
    return apply_overrides(preset(PRESET), [f"diffusion.timesteps={timesteps}"])


# --- env --------------------------------------------------------------------------------------------
def section_env(rows: pathlib.Path) -> None:
    def measure() -> dict:
        query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv,noheader"]
        smi = subprocess.run(query, capture_output=True, text=True, check=False).stdout.strip() if shutil.which("nvidia-smi") else "-"
        props = torch.cuda.get_device_properties(0)
        return {"device_name": torch.cuda.get_device_name(0), "nvidia_smi": smi, "torch": torch.__version__,
                "cuda": torch.version.cuda, "python": platform.python_version(), "multiprocessors": props.multi_processor_count,
                "memory_gib": props.total_memory / 2**30, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "bf16_peak_flops": device_peak_flops(torch.device("cuda"), "bf16"),
                "parameters": parameter_counts(preset(PRESET))}
    guarded(rows, "env", "environment", measure)


# --- sampling ---------------------------------------------------------------------------------------
def section_sample(rows: pathlib.Path) -> None:
    flops: dict[int, float] = {}
    device = bench_device("cuda", "fp32")
    for timesteps in sorted({t for t, _, _ in SAMPLE_PLAN}, reverse=True):
        def measure_flops(t: int = timesteps) -> dict:
            flops[t] = count_flops(make_sampler(cifar(t), 10, None, device, "fp32")) / 10
            return {"kind": "flops", "T": t, "flops_per_image": flops[t], "gflops_per_generator_call": flops[t] / t / 1e9}
        guarded(rows, "sample", f"model FLOPs, T={timesteps}", measure_flops)
    for timesteps, batch, path in SAMPLE_PLAN:
        def measure(t: int = timesteps, b: int = batch, p: str = path) -> dict:
            precision, fast, graph = SAMPLE_PATHS[p]
            config, dev = cifar(t), bench_device("cuda", precision)
            begin = time.perf_counter()
            if fast:
                run = make_fast_sampler(config, b, None, dev, precision, compile_mode="default", cuda_graph=graph)
            else:
                run = make_sampler(config, b, None, dev, precision)
            build_s = time.perf_counter() - begin
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            seconds = time_runs(run, dev, SAMPLE_WARMUP, SAMPLE_REPEATS)
            measurement = Measurement(seconds, peak_memory_bytes(dev), device_description(dev), flops.get(t),
                                      device_peak_flops(dev, "bf16"))
            result = summarise(measurement, kind="sample", backend="torch", preset=PRESET, device="cuda",
                               precision=precision, protocol="default", batch_size=b, steps=t, warmup=SAMPLE_WARMUP)
            return {"kind": "sample", "T": t, "batch": b, "path": p, "build_s": build_s,
                    "peak_reserved_bytes": torch.cuda.max_memory_reserved(), **result.to_dict()}
        guarded(rows, "sample", f"sample T={timesteps} batch={batch} {path}", measure)


# --- training ---------------------------------------------------------------------------------------
def sync_free(trainer: TorchTrainer, batches: Iterator[torch.Tensor], steps: tuple[int, ...]) -> str:
    """'yes' if the steps (their batches' gathers included) run under set_sync_debug_mode('error'),
    else the error's first line."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in steps:
            trainer.train_step(next(batches), step)
        return "yes"
    except RuntimeError as exc:
        return f"no: {str(exc).strip().splitlines()[0]}"
    finally:
        torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()


def cifar_shaped_images() -> ImageDataset:
    """CIFAR-10's size and shape in uint8 noise (the speed does not depend on the pixels)."""
    return ImageDataset("cifar10-shaped noise", np.random.default_rng(0).integers(0, 256, (50_000, 3, 32, 32), dtype=np.uint8))


def training_setup(data: ImageDataset, path: str) -> tuple[Config, torch.device, TorchTrainer, Iterator[torch.Tensor]]:
    """The preset's trainer at TRAIN_BATCH on `path`, and its batches gathered on the device from
    `data` by the training data path (backends/torch_cuda/device_data.py), as `ddgan train` does."""
    precision, compiled = TRAIN_PATHS[path]
    base = preset(PRESET)
    config = dataclasses.replace(base, train=dataclasses.replace(
        base.train, batch_size=TRAIN_BATCH, precision=precision, compile=compiled))
    dev = bench_device("cuda", precision)
    batches = device_batches(config, data, index_stream(len(data), TRAIN_BATCH, seed=0), dev)
    if batches is None:
        raise RuntimeError("the training images do not fit on the device")
    return config, dev, TorchTrainer(config, dev), batches


def section_train(rows: pathlib.Path) -> None:
    data = cifar_shaped_images()
    for path, (precision, compiled) in TRAIN_PATHS.items():
        def measure(p: str = path, prec: str = precision, comp: bool = compiled) -> dict:
            config, dev, trainer, batches = training_setup(data, p)
            step = iter(range(10**9))

            def run() -> None:
                trainer.train_step(next(batches), next(step))

            begin = time.perf_counter()
            time_runs(run, dev, 0, TRAIN_WARMUP)  # steps 0..2: an R1 step and plain steps; compiles here
            torch.cuda.synchronize()
            warmup_s = time.perf_counter() - begin
            torch.cuda.reset_peak_memory_stats()
            seconds = time_runs(run, dev, 0, TRAIN_REPEATS)  # steps 3..32: R1 at 15 and 30
            together = time_together(run, dev, TRAIN_REPEATS)  # steps 33..62: R1 at 45 and 60
            measurement = Measurement(seconds, peak_memory_bytes(dev), device_description(dev))
            result = summarise(measurement, kind="train", backend="torch", preset=PRESET, device="cuda",
                               precision=prec, protocol="default", batch_size=TRAIN_BATCH, steps=None,
                               warmup=TRAIN_WARMUP)
            after, lazy = TRAIN_WARMUP + 2 * TRAIN_REPEATS, config.train.lazy_reg
            plain = next(s for s in range(after, after + 2) if s % lazy)  # 63 (no R1)
            r1 = after + (-after) % lazy  # 75: the next R1 step
            return {"kind": "train", "path": p, "compile": comp, "warmup_s": warmup_s,
                    "images_per_s_mean": TRAIN_BATCH / statistics.fmean(seconds),
                    "images_per_s_throughput": TRAIN_BATCH * TRAIN_REPEATS / together,
                    "peak_reserved_bytes": torch.cuda.max_memory_reserved(),
                    "sync_free_step": sync_free(trainer, batches, (plain, r1)), **result.to_dict()}
        guarded(rows, "train", f"train batch={TRAIN_BATCH} {path}", measure)


# --- where the time goes ----------------------------------------------------------------------------
def section_profile(rows: pathlib.Path) -> None:
    """Kernel times of one compiled chain and of one plain step of the training fast path. A process of
    its own, run last: the profiler leaves CUPTI attached, which slows what runs after it, so nothing
    is timed after a profile. The graphs compile from the caches the sample and train sections left."""
    def sampling() -> dict:
        t, b, path = PROFILE_SAMPLE
        precision, _, graph = SAMPLE_PATHS[path]
        dev = bench_device("cuda", precision)
        run = make_fast_sampler(cifar(t), b, None, dev, precision, compile_mode="default", cuda_graph=graph)  # compiles, warms up
        return {"kind": "profile", "what": f"sampling, T = {t}, batch {b}, {path} (one chain)",
                **profile_kernels(run, dev).to_dict()}

    def training() -> dict:
        config, dev, trainer, batches = training_setup(cifar_shaped_images(), PROFILE_TRAIN)
        for step in range(TRAIN_WARMUP):  # steps 0..2: the R1 step and plain steps; compiles here
            trainer.train_step(next(batches), step)
        plain = next(s for s in range(TRAIN_WARMUP, TRAIN_WARMUP + 2) if not losses.r1_due(s, config.train.lazy_reg))

        def run() -> None:
            trainer.train_step(next(batches), plain)

        return {"kind": "profile", "what": f"training, batch {TRAIN_BATCH}, {PROFILE_TRAIN} (one plain step)",
                **profile_kernels(run, dev).to_dict()}

    guarded(rows, "profile", f"profile sample T={PROFILE_SAMPLE[0]} batch={PROFILE_SAMPLE[1]} {PROFILE_SAMPLE[2]}", sampling)
    guarded(rows, "profile", f"profile train batch={TRAIN_BATCH} {PROFILE_TRAIN}", training)


# --- report -----------------------------------------------------------------------------------------
def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def _memory(row: dict) -> str:
    return f"{row['peak_memory_bytes'] / 2**20:,.0f} / {_mib(row['peak_reserved_bytes'])}"


def read_rows(path: pathlib.Path) -> list[dict]:
    """The JSON lines of `path` (none if it is missing); a line cut short by a killed section is skipped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def report(rows_path: pathlib.Path, sections_path: pathlib.Path | None, json_path: pathlib.Path, md_path: pathlib.Path) -> None:
    rows = read_rows(rows_path)
    sections = read_rows(sections_path) if sections_path is not None else []
    env = next((r for r in rows if r["section"] == "env" and r["status"] == "ok"), {})
    samples = [r for r in rows if r.get("kind") == "sample" and r["status"] == "ok"]
    trains = [r for r in rows if r.get("kind") == "train" and r["status"] == "ok"]
    flops = {r["T"]: r for r in rows if r.get("kind") == "flops" and r["status"] == "ok"}
    errors = [r for r in rows if r["status"] == "error"]
    eager = {(r["T"], r["batch"]): r["images_per_s"] for r in samples if r["path"] == "eager fp32"}
    lines = [f"# GPU check: {env.get('device_name', 'unknown device')}",
             "",
             f"torch {env.get('torch', '?')} (CUDA {env.get('cuda', '?')}), driver/clocks: {env.get('nvidia_smi', '?')}; "
             f"{env.get('date', '')}. Generator {env.get('parameters', {}).get('generator', '?'):,} parameters, "
             f"discriminator {env.get('parameters', {}).get('discriminator', '?'):,}." if env else "environment: not recorded",
             "", "| section | exit status | seconds |", "|---|---|---|"]
    lines += [f"| {s['section']} | {s['rc']}{' (time limit)' if s['rc'] in (124, 137) else ''} | {s['seconds']} |" for s in sections]
    lines += ["", f"## Sampling, {PRESET} preset (median of {SAMPLE_REPEATS} batches after {SAMPLE_WARMUP} warm-up batches)", ""]
    for t, r in sorted(flops.items(), reverse=True):
        lines.append(f"- T = {t}: {r['flops_per_image'] / 1e9:.1f} GFLOPs per image "
                     f"({r['gflops_per_generator_call']:.2f} per generator call, FlopCounterMode)")
    lines += ["", "fp32: PyTorch's, with TF32 matmuls and convolutions (as `ddgan bench`). Peak memory: allocated / reserved "
              "(reserved alone counts a CUDA graph's pool).", "",
              "| T | batch | path | images/s | s per 100 images | x eager fp32 | TFLOP/s | of bf16 peak | peak memory | build s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in samples:
        speedup = r["images_per_s"] / eager[(r["T"], r["batch"])] if (r["T"], r["batch"]) in eager else None
        tflops = f"{r['achieved_flops'] / 1e12:.0f}" if r["achieved_flops"] else "-"
        frac = f"{r['fraction_of_peak']:.1%}" if r["fraction_of_peak"] else "-"
        lines.append(f"| {r['T']} | {r['batch']} | {r['path']} | {r['images_per_s']:,.0f} | {r['seconds_per_100']:.4f} | "
                     f"{f'{speedup:.2f}' if speedup else '-'} | {tflops} | {frac} | {_memory(r)} | {r['build_s']:.1f} |")
    lines += ["", f"Published: {PAPER_SECONDS_PER_100} s per 100 images (T = 4, one V100).", "",
              (f"## Training, {PRESET} preset, batch {TRAIN_BATCH} ({TRAIN_REPEATS} iterations timed one by one, then "
               f"{TRAIN_REPEATS} back to back, after {TRAIN_WARMUP}; R1 every {preset(PRESET).train.lazy_reg})"), "",
              "| path | images/s (back to back, R1 included) | images/s (mean of single steps) | images/s (median, plain step) | "
              "s per iteration (mean) | peak memory | warm-up s | step free of host syncs |",
              "|---|---|---|---|---|---|---|---|"]
    for r in trains:
        lines.append(f"| {r['path']} | {r['images_per_s_throughput']:,.0f} | {r['images_per_s_mean']:,.0f} | {r['images_per_s']:,.0f} | "
                     f"{r['seconds_per_batch_mean']:.4f} | {_memory(r)} | {r['warmup_s']:.1f} | {r['sync_free_step']} |")
    lines += ["", "## Targets (issue 7)", ""]
    best4 = max((r for r in samples if r["T"] == 4), key=lambda r: r["images_per_s"], default=None)
    if best4:
        verdict = "met" if best4["images_per_s"] >= TARGET_SAMPLE_IMAGES_PER_S else "missed"
        lines.append(f"- sampling T = 4 >= {TARGET_SAMPLE_IMAGES_PER_S:,.0f} images/s: {verdict} "
                     f"({best4['images_per_s']:,.0f}, {best4['path']}, batch {best4['batch']})")
        base = eager.get((4, best4["batch"]))
        if base:
            ratio = best4["images_per_s"] / base
            lines.append(f"- >= {TARGET_SAMPLE_SPEEDUP:.0f}x eager fp32 at that batch: {'met' if ratio >= TARGET_SAMPLE_SPEEDUP else 'missed'} ({ratio:.2f}x)")
    fast_train = next((r for r in trains if r["compile"]), None)
    if fast_train:
        verdict = "met" if fast_train["images_per_s_throughput"] >= TARGET_TRAIN_IMAGES_PER_S else "missed"
        lines.append(f"- training >= {TARGET_TRAIN_IMAGES_PER_S:,.0f} images/s at batch {TRAIN_BATCH}: {verdict} "
                     f"({fast_train['images_per_s_throughput']:,.0f} back to back with R1's share; "
                     f"{fast_train['images_per_s_mean']:,.0f} from single steps)")
    lines += profile_lines([r for r in rows if r.get("kind") == "profile" and r["status"] == "ok"])
    if errors:
        lines += ["", "## Errors", ""] + [f"- {r['name']}: {r['error']}" for r in errors]
    md_path.write_text("\n".join(lines) + "\n")
    json_path.write_text(json.dumps({"env": env, "sections": sections, "rows": rows}, indent=2))
    print("\n".join(lines))


def profile_lines(profiles: list[dict], width: int = 100) -> list[str]:
    """The report's "where the time goes" part: per profile, kernel time by kind and the longest kernels."""
    if not profiles:
        return []
    lines = ["", "## Where the GPU time goes (torch.profiler, kernel time)"]
    for r in profiles:
        kinds = ", ".join(f"{kind} {share:.0%}" for kind, share in r["kinds"].items())
        lines += ["", f"### {r['what']}", "",
                  f"Kernels {r['kernel_seconds'] * 1e3:,.1f} ms in {r['wall_seconds'] * 1e3:,.1f} ms of wall time "
                  f"({r['busy']:.0%} busy): {kinds}.", "",
                  "| kernel | kind | calls | ms | share |", "|---|---|---|---|---|"]
        for k in r["top"]:
            name = k["name"] if len(k["name"]) <= width else k["name"][: width - 1] + "…"
            name = name.replace("|", "\\|")
            lines.append(f"| `{name}` | {k['kind']} | {k['calls']} | {k['seconds'] * 1e3:,.2f} | {k['share']:.1%} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=("env", "sample", "train", "profile", "report"))
    parser.add_argument("--rows", type=pathlib.Path, required=True)
    parser.add_argument("--sections", type=pathlib.Path)
    parser.add_argument("--json", type=pathlib.Path)
    parser.add_argument("--markdown", type=pathlib.Path)
    args = parser.parse_args()
    if args.section == "report":
        report(args.rows, args.sections, args.json, args.markdown)
        return
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: PyTorch sees no CUDA device")
    {"env": section_env, "sample": section_sample, "train": section_train, "profile": section_profile}[args.section](args.rows)


if __name__ == "__main__":
    main()
