"""Throughput of the training batch stream on one core: CIFAR-10-shaped images and 2-D points.

The issue's target: well above 20,000 images/s for CIFAR-10 at batch 256 (with random flips),
so that data never limits training. By default the images are random uint8 arrays of CIFAR-10's
size and shape held by the same ImageDataset the reader returns; with --data-dir pointing at a
folder holding the real archive, the real data is used.

    python benchmarks/bench_data_iterator.py [--batches 400] [--data-dir ./data]
"""

from __future__ import annotations

import argparse
import os
import time
from itertools import islice

import numpy as np

from ddgan_core.datasets import Dataset, ImageDataset, batch_stream, load_dataset


def items_per_second(dataset: Dataset, batch_size: int, batches: int, random_flip: bool) -> float:
    stream = batch_stream(dataset, batch_size, seed=0, random_flip=random_flip)
    for _ in islice(stream, 10):  # warm up: first epoch permutation, allocator
        pass
    start = time.perf_counter()
    for _ in islice(stream, batches):
        pass
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--data-dir", default=None, help="read the real CIFAR-10 from here")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    if args.data_dir:
        cifar = load_dataset("cifar10", args.data_dir)
        source = f"CIFAR-10 from {args.data_dir}"
    else:
        pixels = np.random.default_rng(0).integers(0, 256, size=(50_000, 3, 32, 32), dtype=np.uint8)
        cifar = ImageDataset("cifar10-shaped", pixels)
        source = "random uint8, 50,000 x 3 x 32 x 32"
    print(f"data: {source}; batch {args.batch_size}; {args.batches} batches; one core")
    for flip in (False, True):
        rate = items_per_second(cifar, args.batch_size, args.batches, flip)
        print(f"cifar10 images/s, random_flip={flip}: {rate:,.0f}")
    rate = items_per_second(load_dataset("grid25"), 512, args.batches, False)
    print(f"grid25 points/s at batch 512: {rate:,.0f}")


if __name__ == "__main__":
    main()
