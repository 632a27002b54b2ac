"""The paper's toy experiment as a benchmark: train on grid25, then score 2,500 samples.

Prints wall time, modes covered (of 25), the share of high-quality samples (within 3 sigma of
a centre) and the reverse KL to uniform mode weights, for T = 4 (DDGAN) and, with --compare,
T = 1 (a plain conditional GAN), and writes a side-by-side picture.

    python benchmarks/toy_grid25.py [--backend torch] [--compare] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import tempfile
import time

import numpy as np

from cli.backend_loader import load_backend
from cli.train_cmd import named_options, resolve_config
from ddgan_core.datasets import load_dataset
from ddgan_core.metrics.mode_coverage import mode_coverage

SIGMA = 0.05
SAMPLES = 2500


def run(backend: str, timesteps: int | None, overrides: list[str], workdir: pathlib.Path) -> dict:
    module = load_backend(backend)
    config = resolve_config(None, "grid25", named_options("grid25", None, timesteps, None, None, None, None) + overrides)
    out = workdir / f"grid25-T{config.diffusion.timesteps}"
    start = time.perf_counter()
    run_dir = module.train(config, out, False, device="cpu", show_progress=False)
    train_seconds = time.perf_counter() - start
    samples, _, _ = module.sample(run_dir.last_checkpoint, SAMPLES, None, seed=123, device="cpu")
    mixture = load_dataset("grid25").mixture
    score = mode_coverage(samples, mixture.means, SIGMA)
    return {
        "backend": backend, "timesteps": config.diffusion.timesteps, "iterations": config.train.iterations,
        "train_seconds": round(train_seconds, 1), "modes": score.modes_covered,
        "high_quality": round(score.high_quality_fraction, 4), "reverse_kl": round(score.reverse_kl, 4),
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--compare", action="store_true", help="also train T = 1 and draw both")
    parser.add_argument("--picture", default="benchmarks/toy_grid25.png")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(args.backend, None, args.overrides, pathlib.Path(tmp))]
        if args.compare:
            results.append(run(args.backend, 1, args.overrides, pathlib.Path(tmp)))
    for r in results:
        print(json.dumps({k: v for k, v in r.items() if k != "samples"}))
    if args.compare:
        draw(results, pathlib.Path(args.picture))


def draw(results: list[dict], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centres = load_dataset("grid25").mixture.means
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 6))
    for ax, r in zip(np.atleast_1d(axes), results):
        ax.scatter(r["samples"][:, 0], r["samples"][:, 1], s=2, alpha=0.4)
        ax.scatter(centres[:, 0], centres[:, 1], marker="x", color="red", s=30)
        name = "DDGAN" if r["timesteps"] > 1 else "plain conditional GAN"
        ax.set_title(f"{name}, T = {r['timesteps']}: {r['modes']}/25 modes, "
                     f"{100 * r['high_quality']:.1f}% within 3 sigma\n({r['iterations']} iterations, {r['train_seconds']} s on CPU)")
        ax.set_xlim(-5.5, 5.5)
        ax.set_ylim(-5.5, 5.5)
        ax.set_aspect("equal")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
