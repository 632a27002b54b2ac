"""Training images held in GPU memory (issue 7: a data pipeline that keeps the GPU fed).

An image dataset's uint8 pixels go to the device once (CIFAR-10: 150 MiB); each step then moves
only its indices and flip bits there (pinned, without blocking the host) and gathers, mirrors and
converts the batch on the device. The batches are ddgan_core's `batch_stream`'s, bit for bit: the
same indices and flip bits (`index_stream`), and the conversion is a lookup in the table of
`uint8_to_unit` over the 256 byte values. (Computing x / 127.5 - 1 on the device would not do:
CUDA divides by a scalar as a multiplication by its reciprocal, 1 ulp off for 111 of the values.)

Datasets whose pixels take more than DEVICE_SHARE of the free device memory (e.g. a large LSUN
folder at 256 px) and point data stay on the host and stream through pinned memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from backends.torch_cuda.compile import host_to_device
from ddgan_core.config import Config
from ddgan_core.datasets import Dataset, ImageDataset
from ddgan_core.datasets.base import uint8_to_unit

DEVICE_SHARE = 0.25  # of the free device memory, at most, for the dataset's pixels


class DeviceImages:
    """uint8 NCHW images on `device`, served as float32 batches in [-1, 1]."""

    def __init__(self, images: np.ndarray, device: torch.device) -> None:
        self.device = device
        self.pixels = torch.from_numpy(np.ascontiguousarray(images)).to(device)
        self.unit = torch.from_numpy(uint8_to_unit(np.arange(256, dtype=np.uint8))).to(device)  # byte -> [-1, 1]

    def batch(self, indices: np.ndarray, flips: np.ndarray, random_flip: bool) -> torch.Tensor:
        """The images at `indices`, mirrored where `flips` is set (if `random_flip`), as float32."""
        pixels = self.pixels[host_to_device(indices, self.device)]
        if random_flip:
            mirror = host_to_device(flips, self.device).reshape(-1, 1, 1, 1)
            pixels = torch.where(mirror, pixels.flip(-1), pixels)
        return self.unit[pixels.int()]


def fits_on_device(dataset: Dataset, free_bytes: int) -> bool:
    """Whether `dataset` is images whose pixels take at most DEVICE_SHARE of `free_bytes`."""
    return isinstance(dataset, ImageDataset) and dataset.images.nbytes <= DEVICE_SHARE * free_bytes


def holds_on_device(dataset: Dataset, device: torch.device) -> bool:
    """Whether training on `device` holds `dataset` there: CUDA devices, datasets that fit."""
    return device.type == "cuda" and fits_on_device(dataset, torch.cuda.mem_get_info(device)[0])


def device_batches(
    config: Config, dataset: Dataset, indices: Iterator[tuple[np.ndarray, np.ndarray]], device: torch.device,
) -> Iterator[torch.Tensor] | None:
    """The training batches gathered on the device where it holds the dataset, else None (the
    host stream); ddgan_core.session.DeviceBatches."""
    if not holds_on_device(dataset, device):
        return None
    images = DeviceImages(dataset.images, device)
    return (images.batch(i, f, config.data.random_flip) for i, f in indices)
