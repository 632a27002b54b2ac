"""PyTorch and tinygrad side by side: first training step (compilation), steady step, sampling speed.

Each (backend, workload) runs in a fresh process on synthetic data of the workload's shape, through
the backends' trainers (one D update with R1 when due, one G update, EMA), so a first step pays
every compilation. tinygrad runs twice with its own empty cache folder (XDG_CACHE_HOME): "cold"
generates every kernel, "warm" starts from the kernels the cold run stored (the backend's program
cache and tinygrad's compiled-C cache), as every run after the first on a machine does.
Workloads: the `tiny` preset (NCSN++ and the small discriminator at 16x16, batch 8) and the toy
MLPs of the `toy2d` preset (batch 512), each with its preset's lazy R1 interval.

    python benchmarks/bench_backends.py [--steps 20] [--workloads tiny toy2d] [--backends torch tinygrad]
        [--threads 1 2] [--out benchmarks/RESULTS_backends.md]

Timings on a shared machine vary with its load (the load average is printed with the table); PyTorch's
spinning OpenMP threads suffer most from other processes, hence the thread counts (torch's intra-op
threads, tinygrad's NUM_CPU_THREADS). Set DEV (DEV=CPU, DEV=CPU:LLVM) to choose tinygrad's compiler.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLE_COUNT = {"tiny": 64, "toy2d": 2000}


def warm_up_steps(config) -> int:
    """Steps until every variant of the step (with and without R1) has run twice: tinygrad runs a
    variant's first call uncaptured and captures it on its second, and replays it from the third."""
    from ddgan_core.losses import r1_due

    calls = {True: 0, False: 0}
    variants = {True} if config.train.lazy_reg <= 1 else {True, False}
    step = 0
    while any(calls[v] < 2 for v in variants):
        calls[r1_due(step, config.train.lazy_reg)] += 1
        step += 1
    return step


def measure(backend: str, workload: str, steps: int, threads: int) -> dict[str, float]:
    """Run in the child process: time the first step, the steady steps and sampling."""
    from ddgan_core.config import fit_to_data, preset

    config = preset(workload)
    shape = (2,) if workload == "toy2d" else (config.generator.channels, config.generator.image_size, config.generator.image_size)
    config = fit_to_data(config, shape)
    rng = np.random.default_rng(0)
    batches = [rng.uniform(-1, 1, (config.train.batch_size, *shape)).astype(np.float32) for _ in range(4)]
    start = time.perf_counter()
    if backend == "torch":
        import torch

        from backends.torch_cuda.trainer import TorchTrainer

        torch.set_num_threads(threads)
        trainer = TorchTrainer(config, torch.device("cpu"))
    else:
        from backends.tinygrad.entry import pick_device
        from backends.tinygrad.trainer import TinygradTrainer

        trainer = TinygradTrainer(config, pick_device(None))
    build = time.perf_counter() - start
    times = []
    for step in range(steps):
        t0 = time.perf_counter()
        trainer.read_scalars(trainer.train_step(batches[step % len(batches)], step))
        times.append(time.perf_counter() - t0)
    warm = warm_up_steps(config)
    steady = times[warm:]
    n = SAMPLE_COUNT[workload]
    trainer.sample(n, seed=0)  # compiles the sampler
    t0 = time.perf_counter()
    trainer.sample(n, seed=1)
    sample_s = time.perf_counter() - t0
    return {
        "build_s": build, "first_step_s": times[0], "warmup_s": sum(times[:warm]),
        "steady_median_s": statistics.median(steady), "steady_min_s": min(steady),
        "samples_per_s": n / sample_s, "sample_count": n,
    }


def run_child(backend: str, workload: str, steps: int, threads: int, cache_home: str | None = None) -> dict[str, float]:
    code = f"import json, benchmarks.bench_backends as b; print(json.dumps(b.measure({backend!r}, {workload!r}, {steps}, {threads})))"
    env = {**os.environ, "NUM_CPU_THREADS": str(threads)}  # tinygrad's kernel threads
    if cache_home is not None:
        env["XDG_CACHE_HOME"] = cache_home
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{backend}/{workload} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def table(results: dict[tuple[str, int, str], dict[str, float]]) -> str:
    lines = [
        "| workload | threads | backend | first step (s) | warm-up, all variants (s) | steady step (ms, median / min) | vs torch | sampling (samples/s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (workload, threads, backend), r in results.items():
        torch_r = results.get((workload, threads, "torch"))
        ratio = f"{r['steady_median_s'] / torch_r['steady_median_s']:.1f}x" if torch_r else "-"
        lines.append(
            f"| {workload} | {threads} | {backend} | {r['first_step_s']:.1f} | {r['warmup_s']:.1f} | "
            f"{1000 * r['steady_median_s']:.0f} / {1000 * r['steady_min_s']:.0f} | {ratio} | "
            f"{r['samples_per_s']:.0f} ({r['sample_count']} per call) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workloads", nargs="+", default=["tiny", "toy2d"], choices=["tiny", "toy2d"])
    parser.add_argument("--backends", nargs="+", default=["torch", "tinygrad"], choices=["torch", "tinygrad"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--out", type=pathlib.Path, default=None, help="also write the table (with the command) to this file")
    args = parser.parse_args()
    results = {}
    for workload in args.workloads:
        for threads in args.threads:
            for backend in args.backends:
                if backend == "torch":
                    runs = {"torch": None}
                else:
                    cache_home = tempfile.mkdtemp(prefix="bench-tinygrad-cache-")
                    runs = {"tinygrad, cold": cache_home, "tinygrad, warm": cache_home}
                for label, cache in runs.items():
                    key = (workload, threads, label)
                    results[key] = run_child(backend, workload, args.steps, threads, cache)
                    print(f"{key}: {json.dumps(results[key])}", flush=True)
                if backend == "tinygrad":
                    shutil.rmtree(cache_home, ignore_errors=True)
    text = table(results)
    context = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
               f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end; tinygrad DEV={os.environ.get('DEV', '(default)')}")
    print(text + "\n\n" + context)
    if args.out is not None:
        command = "python " + " ".join(sys.argv)
        args.out.write_text(f"# PyTorch and tinygrad backends side by side\n\n`{command}`\n\n{text}\n\n{context}\n")


if __name__ == "__main__":
    main()
