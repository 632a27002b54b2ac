"""The denoising-distribution test on a mixture1d run: train it with `ddgan train`, score it with `ddgan eval`.

    python benchmarks/eval_denoising.py [--iterations 300] [--timesteps 4] [-n 10000] [--run DIR] [-- extra train args]

Prints the commands, the machine and, per level k, W1 (data units) of the chain's x_k to the exact
q(x_k) and of the step x_(k+1) -> x_k at the quartiles of q(x_(k+1)) to the exact q(x_k | x_(k+1)):
for the model, for the best single-Gaussian step, and for the exact sampler (the sampling noise).
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile

import numpy as np

from eval_common import ddgan, ddgan_json, machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--timesteps", type=int, default=4)
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--run", type=pathlib.Path, help="score this run instead of training one")
    parser.add_argument("train_args", nargs="*", help="extra `ddgan train` arguments (after --)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    run = args.run
    if run is None:
        run = pathlib.Path(tempfile.mkdtemp(prefix="eval-mixture1d-")) / "run"
        ddgan("train", "--dataset", "mixture1d", "--timesteps", str(args.timesteps), "--iterations",
              str(args.iterations), "--out", str(run), "--device", "cpu", *args.train_args)
    report = ddgan_json("eval", "--run", str(run), "-n", str(args.n), "--device", "cpu")
    print("| level (step) | chain W1: model | best Gaussian | exact (noise) | step W1: model | best Gaussian | exact (noise) |")
    print("|---|---|---|---|---|---|---|")
    for level in report["metrics"]["levels"]:
        chain, step = level["chain_w1"], level["step_w1"]
        k = level["level"]
        cells = [chain["model"], chain["best_gaussian"], chain["exact_sampler"],
                 *(float(np.mean(step[key])) for key in ("model", "best_gaussian", "exact_sampler"))]
        print(f"| x_{k} (x_{k + 1} -> x_{k}) | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
