"""Held-out accuracy of the project's Stacked MNIST digit classifier, trained from scratch.

    python benchmarks/mnist_classifier_accuracy.py [--data-dir ./data] [--resolution 32]

Trains the classifier `ddgan eval` uses on a Stacked MNIST run (backends/torch_cuda/mnist_classifier.py,
default recipe) in a temporary cache, and prints its accuracy on the held-out fifth of the digits and
the CPU time it took.
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

import torch

from backends.torch_cuda.mnist_classifier import digit_classifier
from eval_common import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="./data")
    parser.add_argument("--resolution", type=int, default=32)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    start = time.process_time()
    classifier = digit_classifier(args.data_dir, args.resolution, torch.device("cpu"),
                                  cache_dir=pathlib.Path(tempfile.mkdtemp(prefix="mnist-classifier-")))
    print(f"held-out accuracy {classifier.accuracy:.4f}; trained in {time.process_time() - start:.0f} s of CPU time")


if __name__ == "__main__":
    main()
