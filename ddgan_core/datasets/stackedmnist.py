"""Stacked MNIST: three MNIST digits as the R, G, B channels of one image, 1000 modes.

The mode-coverage benchmark of the DDGAN paper (and PacGAN/VEEGAN before it). The dataset has
twice as many images as there are source digits; channel c of image i is digit triples[i, c],
where each channel's column is two seeded permutations of the digits end to end, so every
digit appears exactly twice per channel. The label is 100 a + 10 b + c for the digit classes
a, b, c of R, G, B. Images are assembled per batch from the padded digits, never stored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ddgan_core.datasets import mnist
from ddgan_core.datasets.base import Dataset, DatasetSpec, check_resolution, uint8_to_unit

PLACE_VALUES = np.array([100, 10, 1])


class StackedMNIST(Dataset):
    """Images (3, r, r) built on demand from `digits` (M, r, r) uint8 and `triples` (N, 3)."""

    name = "stackedmnist"
    is_image = True

    def __init__(self, digits: np.ndarray, digit_labels: np.ndarray, triples: np.ndarray) -> None:
        self.digits = digits
        self.triples = triples
        self.labels = (digit_labels[triples] * PLACE_VALUES).sum(axis=1)
        self.shape = (3, *digits.shape[1:])

    def __len__(self) -> int:
        return len(self.triples)

    def get(self, indices: np.ndarray) -> np.ndarray:
        return uint8_to_unit(self.digits[self.triples[indices]])


def stack_triples(n_digits: int, seed: int) -> np.ndarray:
    """(2 n_digits, 3) digit indices: per channel, two permutations of the digits end to end."""
    rng = np.random.default_rng(seed)
    return np.stack(
        [np.concatenate([rng.permutation(n_digits), rng.permutation(n_digits)]) for _channel in range(3)],
        axis=1,
    )


def load(data_dir: Path, *, resolution: int, split: str, download: bool, seed: int) -> StackedMNIST:
    check_resolution("stackedmnist", resolution)
    digits, labels = mnist.load_digits(data_dir, split)
    return StackedMNIST(mnist.fit_digits(digits, resolution), labels, stack_triples(len(digits), seed))


SPEC = DatasetSpec(
    name="stackedmnist",
    summary="three MNIST digits stacked as RGB, 1000 modes, from --seed",
    shape=lambda resolution: (3, resolution, resolution),
    where=mnist.where,
    readiness=mnist.readiness,
    load=load,
    mirror_invariant=False,
)
