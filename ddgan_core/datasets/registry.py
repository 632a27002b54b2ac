"""Every dataset by name: loading one, and telling which are ready on this machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ddgan_core.datasets import cifar10, imagefolder, mnist, stackedmnist, toy
from ddgan_core.datasets.base import Dataset, DatasetError, DatasetSpec

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (cifar10.SPEC, imagefolder.SPEC, mnist.SPEC, stackedmnist.SPEC, *toy.SPECS)
}


def load_dataset(
    name: str,
    data_dir: str | Path = "./data",
    *,
    resolution: int = 32,
    split: str = "train",
    download: bool = False,
    seed: int = 0,
) -> Dataset:
    """The named dataset read from `data_dir`; DatasetError (one line) if it is unknown or unusable.

    `seed` fixes generated data (point data, Stacked MNIST); `download` lets CIFAR-10 be fetched.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DatasetError(f"dataset seed must be a non-negative integer, got {seed!r}")
    root = Path(data_dir).expanduser()
    return spec_of(name).load(root, resolution=resolution, split=split, download=download, seed=int(seed))


def fetch_dataset(name: str, data_dir: str | Path = "./data") -> None:
    """Download the named dataset into `data_dir` unless it is already there (`ddgan train
    --download`); DatasetError if it is missing and cannot be downloaded."""
    spec = spec_of(name)
    root = Path(data_dir).expanduser()
    ready, why = spec.readiness(root)
    if ready:
        return
    if spec.fetch is None:
        raise DatasetError(f"{name} cannot be downloaded by ddgan: {why}")
    spec.fetch(root)


def dataset_overrides(name: str) -> list[str]:
    """What the named dataset changes in any preset, as `section.key=value` overrides to apply
    before the user's own: no random flips of data whose mirror images are not data (MNIST and
    Stacked MNIST; the reference code trains both unflipped). Unknown names change nothing here
    (loading them reports the error)."""
    spec = DATASETS.get(name)
    return ["data.random_flip=false"] if spec is not None and not spec.mirror_invariant else []


def spec_of(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset '{name}' (known: {', '.join(DATASETS)})") from None


@dataclass(frozen=True)
class DatasetStatus:
    """One row of `ddgan datasets`."""

    name: str
    summary: str
    shape: tuple[int, ...]
    where: str
    ready: bool
    why: str


def dataset_statuses(data_dir: str | Path = "./data", resolution: int = 32) -> list[DatasetStatus]:
    """Every dataset with its shape, where it looks under `data_dir`, and whether it is ready there."""
    root = Path(data_dir).expanduser()
    return [
        DatasetStatus(spec.name, spec.summary, spec.shape(resolution), spec.where(root), *spec.readiness(root))
        for spec in DATASETS.values()
    ]
