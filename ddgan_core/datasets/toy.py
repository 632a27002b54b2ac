"""Built-in point data with exact definitions, so the closed-form oracle (DESIGN 2.5) applies.

- grid25: 25 equal-weight Gaussians centred on {-4, -2, 0, 2, 4}^2, sigma 0.05;
- ring8: 8 equal-weight Gaussians centred on the unit circle at angles 2 pi k / 8, sigma 0.01;
- mixture1d: equal-weight N(-2, 0.3^2), N(0.5, 0.2^2), N(2.5, 0.4^2).

Each is a finite dataset of `POINTS` draws made deterministically from (seed, split), in data
units; the exact distribution is its `mixture`. Any rescaling for training is the training
loop's (DataConfig.scale).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ddgan_core.datasets.base import SPLITS, Dataset, DatasetSpec, check_split
from ddgan_core.mixture import GaussianMixture

POINTS = 100_000


def grid25() -> GaussianMixture:
    axis = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    centres = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    return GaussianMixture(weights=np.full(25, 1 / 25), means=centres, variances=np.full(25, 0.05**2))


def ring8() -> GaussianMixture:
    angles = 2 * np.pi * np.arange(8) / 8
    centres = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    return GaussianMixture(weights=np.full(8, 1 / 8), means=centres, variances=np.full(8, 0.01**2))


def mixture1d() -> GaussianMixture:
    return GaussianMixture(
        weights=np.full(3, 1 / 3),
        means=np.array([[-2.0], [0.5], [2.5]]),
        variances=np.array([0.3, 0.2, 0.4]) ** 2,
    )


MIXTURES = {"grid25": grid25, "ring8": ring8, "mixture1d": mixture1d}


class PointDataset(Dataset):
    """Fixed draws from a Gaussian mixture, served as float32 in data units."""

    is_image = False

    def __init__(self, name: str, mixture: GaussianMixture, points: np.ndarray) -> None:
        self.name = name
        self.mixture = mixture
        self.points = points.astype(np.float32)
        self.shape = (mixture.dim,)

    def __len__(self) -> int:
        return len(self.points)

    def get(self, indices: np.ndarray) -> np.ndarray:
        return self.points[indices]


def load_points(name: str, *, split: str, seed: int, size: int = POINTS) -> PointDataset:
    """`size` draws of the named mixture; train and test use independent streams of the seed."""
    check_split(name, split)
    mixture = MIXTURES[name]()
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    return PointDataset(name, mixture, mixture.sample(size, rng))


def _spec(name: str, summary: str) -> DatasetSpec:
    dim = MIXTURES[name]().dim

    def load(data_dir: Path, *, resolution: int, split: str, download: bool, seed: int) -> PointDataset:
        return load_points(name, split=split, seed=seed)

    return DatasetSpec(
        name=name,
        summary=summary,
        shape=lambda resolution: (dim,),
        where=lambda data_dir: "built in",
        readiness=lambda data_dir: (True, f"built in, {POINTS:,} points from the seed"),
        load=load,
    )


SPECS = (
    _spec("grid25", "25 Gaussians on {-4,-2,0,2,4}^2, sigma 0.05"),
    _spec("ring8", "8 Gaussians on the unit circle, sigma 0.01"),
    _spec("mixture1d", "1-D mixture of N(-2,0.3^2), N(0.5,0.2^2), N(2.5,0.4^2)"),
)
