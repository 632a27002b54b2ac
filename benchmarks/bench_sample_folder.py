"""How fast `ddgan sample --out DIR` writes a folder of PNGs, and `ddgan eval --samples DIR` reads
it back, at CIFAR-10's 32 px and the 256-px presets' size: is writing ever what limits sampling?

    python benchmarks/bench_sample_folder.py [--count-32 5000] [--count-256 500] [--threads 1 8]

Synthetic images in [-1, 1] that compress like samples (smooth colour fields with fine noise, not
pure noise, which PNG cannot compress at all), batches of 1,000 as the sampler hands them over,
written to a temporary folder. Compare the images/s with the sampler's: the GPU targets are 5,000
images/s at 32 px (issue 7).
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

import numpy as np

from ddgan_core import sample_folder
from ddgan_core.sample_folder import read_sample_folder, write_sample_folder
from eval_common import machine

BATCH = 1000


def sample_like_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """n NCHW float32 images in [-1, 1]: a smooth field (bilinear from 4x4) plus noise of 0.05."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-0.8, 0.8, (n, 3, 4, 4)).astype(np.float32)
    ramp = np.linspace(0, 3, size, dtype=np.float32)
    low, frac = np.minimum(ramp.astype(int), 2), ramp - np.minimum(ramp.astype(int), 2)
    rows = coarse[:, :, low] * (1 - frac)[:, None] + coarse[:, :, low + 1] * frac[:, None]
    field = rows[..., low] * (1 - frac) + rows[..., low + 1] * frac
    return np.clip(field + rng.normal(0, 0.05, field.shape).astype(np.float32), -1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count-32", type=int, default=5000)
    parser.add_argument("--count-256", type=int, default=500)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, sample_folder.PNG_THREADS])
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print("| size | images | threads | write images/s | read images/s | bytes / image |")
    print("|---|---|---|---|---|---|")
    for size, count in ((32, args.count_32), (256, args.count_256)):
        images = sample_like_images(min(count, BATCH), size)
        for threads in args.threads:
            sample_folder.PNG_THREADS = threads
            with tempfile.TemporaryDirectory() as scratch:
                out = pathlib.Path(scratch) / "samples"
                batches = (images[: min(BATCH, count - start)] for start in range(0, count, BATCH))
                begin = time.perf_counter()
                write_sample_folder(out, batches, count)
                written = time.perf_counter() - begin
                begin = time.perf_counter()
                read_sample_folder(out)
                read = time.perf_counter() - begin
                size_bytes = sum(p.stat().st_size for p in out.iterdir()) / count
            print(f"| {size} | {count:,} | {threads} | {count / written:,.0f} | {count / read:,.0f} | {size_bytes:,.0f} |")


if __name__ == "__main__":
    main()
