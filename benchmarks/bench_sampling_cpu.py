"""Sampling speed of each installed backend on this CPU, through `ddgan bench sample`.

    python benchmarks/bench_sampling_cpu.py [--backends torch tinygrad] [--repeats 5] [--threads 1 2]

Two figures per backend and thread count (OMP_NUM_THREADS, which PyTorch's CPU kernels follow): the CIFAR-10 network (48 M parameters) at batch 8 and one step, and the
paper's protocol (batch 100, mean after warm-up, T = 4) with the CPU-sized `tiny` preset.
A backend without a benchmark module is reported as such. On a machine shared with other jobs, one
thread is the honest figure: threads that spin while waiting for a busy core waste most of the time.
"""

from __future__ import annotations

import argparse

from eval_common import ddgan_json, machine

CASES = (
    ("cifar10", ("--batch-size", "8", "--steps", "1")),
    ("tiny", ("--protocol", "paper")),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "tinygrad"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args()
    print(f"machine: {machine()}")
    rows = []
    for backend in args.backends:
        for threads in args.threads:
            for preset, extra in CASES:
                try:
                    r = ddgan_json("bench", "sample", "--backend", backend, "--preset", preset, "--device", "cpu",
                                   "--repeats", str(args.repeats), *extra, env={"OMP_NUM_THREADS": str(threads)})
                except SystemExit as failure:
                    rows.append(f"| {backend} | {threads} | {preset} | {' '.join(extra)} | {failure} | | | |")
                    continue
                gflops = "" if r["flops_per_image"] is None else f"{r['flops_per_image'] / 1e9:.2f}"
                rows.append(f"| {backend} | {threads} | {preset} | batch {r['batch_size']}, {r['steps']} step(s), "
                            f"{r['statistic']} of {r['repeats']} | {r['seconds_per_batch']:.3f} | "
                            f"{r['images_per_s']:.2f} | {r['seconds_per_100']:.2f} | {gflops} |")
    print("| backend | threads | preset | protocol | s / batch | images/s | s / 100 images | GFLOPs / image |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
