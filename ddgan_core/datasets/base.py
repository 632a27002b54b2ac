"""The one dataset interface every backend reads from, the image dataset behind most kinds, and
the pieces the readers share (errors, square cropping, the registry's spec record).

A dataset is a finite, indexable collection: `get(indices)` returns a float32 batch, images as
NCHW in [-1, 1] and point data in its own (data) units. Images are held decoded as uint8 and
converted per batch, which is both the smallest form in memory and fast enough that the batch
iterator is never the bottleneck of training (benchmarks/bench_data_iterator.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ddgan_core.errors import DDGANError
from ddgan_core.mixture import GaussianMixture

SPLITS = ("train", "test")


class DatasetError(DDGANError):
    """Data that cannot be found, fetched or trusted (one-line message naming the file)."""


class DatasetWarning(UserWarning):
    """Something skipped while reading data that does not stop training (e.g. an unreadable image)."""


class Dataset(ABC):
    """A finite dataset: `len(ds)` items of shape `ds.shape`, fetched in batches with `get`.

    `labels` (one integer per item) is set where the data has classes; `mixture` is the exact
    distribution of point data, so evaluation can compare against closed forms (DESIGN 2.5).
    """

    name: str
    shape: tuple[int, ...]
    is_image: bool
    labels: np.ndarray | None = None
    mixture: GaussianMixture | None = None

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def get(self, indices: np.ndarray) -> np.ndarray:
        """The items at `indices` as float32, shape (len(indices), *self.shape)."""


class ImageDataset(Dataset):
    """Images held as a uint8 NCHW array (in memory or memory-mapped), served in [-1, 1]."""

    is_image = True

    def __init__(self, name: str, images: np.ndarray, labels: np.ndarray | None = None) -> None:
        if images.dtype != np.uint8 or images.ndim != 4:
            raise DatasetError(f"{name}: expected uint8 images of shape (N, C, H, W), got {images.dtype} {images.shape}")
        if labels is not None and labels.shape != (len(images),):
            raise DatasetError(f"{name}: {len(labels)} labels for {len(images)} images")
        self.name = name
        self.images = images
        self.labels = labels
        self.shape = tuple(int(d) for d in images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)

    def get(self, indices: np.ndarray) -> np.ndarray:
        return uint8_to_unit(self.images[indices])


def uint8_to_unit(images: np.ndarray) -> np.ndarray:
    """Map uint8 pixels to float32 in [-1, 1] (0 -> -1, 255 -> 1 exactly), in one new array."""
    out = images.astype(np.float32)
    out /= np.float32(127.5)
    out -= np.float32(1.0)
    return out


def fit_square(image: Image.Image, resolution: int) -> np.ndarray:
    """Centre-crop `image` to a square and resize it to `resolution`, as uint8 (H, W[, C]).

    Cropping before resizing equals resize-shorter-side-then-crop up to rounding, and is cheaper.
    Bicubic resampling, which Pillow antialiases when it shrinks. The image mode is kept.
    """
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    if (width, height) != (side, side):
        image = image.crop((left, top, left + side, top + side))
    if side != resolution:
        image = image.resize((resolution, resolution), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def resize_images(images: np.ndarray, resolution: int) -> np.ndarray:
    """Resize square uint8 NCHW images (1 or 3 channels) to `resolution` with `fit_square`."""
    if images.shape[-1] == resolution:
        return images
    channels = images.shape[1]
    out = np.empty((len(images), channels, resolution, resolution), dtype=np.uint8)
    for i, chw in enumerate(images):
        pil = Image.fromarray(chw[0]) if channels == 1 else Image.fromarray(chw.transpose(1, 2, 0))
        resized = fit_square(pil, resolution)
        out[i] = resized[None] if channels == 1 else resized.transpose(2, 0, 1)
    return out


def check_split(name: str, split: str) -> None:
    if split not in SPLITS:
        raise DatasetError(f"{name}: unknown split '{split}' (known: {', '.join(SPLITS)})")


def check_resolution(name: str, resolution: int) -> None:
    if not isinstance(resolution, int) or resolution < 1:
        raise DatasetError(f"{name}: resolution must be a positive integer, got {resolution!r}")


@dataclass(frozen=True)
class DatasetSpec:
    """What the registry knows about one dataset: how to load it and how to tell if it is here."""

    name: str
    summary: str
    shape: Callable[[int], tuple[int, ...]]  # resolution -> item shape
    where: Callable[[Path], str]  # where it looks for files, given --data-dir
    readiness: Callable[[Path], tuple[bool, str]]  # (ready here?, why), cheap: no full read
    load: Callable[..., Dataset]  # (data_dir, *, resolution, split, download, seed) -> Dataset
    fetch: Callable[[Path], Path] | None = None  # download into data_dir, where the dataset can be
    # Whether an image's horizontal mirror is as likely as the image itself, so training may flip
    # at random: true of photographs, not of digits (a mirrored 7 is no digit).
    mirror_invariant: bool = True
