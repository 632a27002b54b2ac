"""Training images held on the device (backends/torch_cuda/device_data.py), checked on the CPU:
the same bytes of every batch as ddgan_core's host stream, and the same training run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backends.torch_cuda import device_data, entry  # noqa: E402
from backends.torch_cuda.device_data import DeviceImages, fits_on_device  # noqa: E402
from ddgan_core.checkpoint import load_checkpoint  # noqa: E402
from ddgan_core.config import apply_overrides, preset  # noqa: E402
from ddgan_core.datasets import ImageDataset, batch_stream, index_stream  # noqa: E402
from ddgan_core.datasets.toy import load_points  # noqa: E402
from tests.dataset_fixtures import write_cifar10  # noqa: E402

CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def edge_and_random_images() -> np.ndarray:
    images = np.random.default_rng(0).integers(0, 256, (13, 3, 4, 5), dtype=np.uint8)
    images[0] = 0
    images[1] = 255  # the ends of the pixel range map to -1 and 1 exactly on both paths
    return images


@pytest.mark.parametrize("random_flip", [False, True])
@pytest.mark.parametrize("rank", [0, 1])
def test_device_batches_equal_the_host_stream_bit_for_bit(random_flip, rank):
    images = edge_and_random_images()
    dataset = ImageDataset("test", images)
    order = {"seed": 3, "rank": rank, "world_size": 2, "start_step": 2}
    host = batch_stream(dataset, 5, random_flip=random_flip, **order)  # 10 per step: every step crosses epochs
    device = DeviceImages(images, CPU)
    flipped = 0
    for step, (indices, flips) in zip(range(6), index_stream(len(dataset), 5, **order)):
        expected = next(host)
        served = device.batch(indices, flips, random_flip)
        assert served.dtype == torch.float32 and served.shape == expected.shape
        assert np.array_equal(served.numpy(), expected), step
        flipped += int(flips.sum())
    assert flipped > 0  # with random_flip, some images were mirrored


def test_only_images_that_fit_a_share_of_free_memory_go_to_the_device():
    dataset = ImageDataset("test", np.zeros((10, 1, 2, 5), dtype=np.uint8))  # 100 bytes
    assert fits_on_device(dataset, 400)  # a quarter of the free memory, the rest left to training
    assert not fits_on_device(dataset, 399)
    assert not fits_on_device(load_points("grid25", split="train", seed=0, size=100), 10**12)
    assert not device_data.holds_on_device(dataset, CPU)  # the CPU trains from host memory


def test_training_from_device_batches_equals_the_host_stream_run_and_resumes(tmp_path, monkeypatch):
    write_cifar10(tmp_path / "cifar", per_batch=4, archive=False)  # 20 images: an epoch is 5 steps of 4
    config = apply_overrides(preset("tiny"), [f"data.data_dir={tmp_path / 'cifar'}", "batch_size=4", "lazy_reg=2"])
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, iterations=6, checkpoint_every=3))
    assert config.data.random_flip
    host = entry.train(config, tmp_path / "host", False, device="cpu", show_progress=False)
    served = []
    real_batch = DeviceImages.batch

    def recording_batch(self, indices, flips, random_flip):
        served.append(len(indices))
        return real_batch(self, indices, flips, random_flip)

    monkeypatch.setattr(device_data, "holds_on_device", lambda dataset, device: True)
    monkeypatch.setattr(DeviceImages, "batch", recording_batch)
    entry.train(config, tmp_path / "device", False, device="cpu", stop_at=3, show_progress=False)
    resumed = entry.train(config, tmp_path / "device", True, device="cpu", show_progress=False)
    assert served == [4] * 6
    a, b = load_checkpoint(host.last_checkpoint), load_checkpoint(resumed.last_checkpoint)
    assert a.step == b.step == 6 and set(a.tensors) == set(b.tensors)
    for name in a.tensors:
        assert np.array_equal(a.tensors[name], b.tensors[name]), name


@needs_cuda
def test_cuda_device_batches_equal_the_host_stream_and_never_wait_for_the_device():
    cuda = torch.device("cuda")
    dataset = ImageDataset("test", edge_and_random_images())
    assert device_data.holds_on_device(dataset, cuda)
    host = batch_stream(dataset, 5, seed=3, random_flip=True)
    device = DeviceImages(dataset.images, cuda)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        served = [device.batch(i, f, True) for _, (i, f) in zip(range(4), index_stream(len(dataset), 5, seed=3))]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    for step, batch in enumerate(served):
        assert np.array_equal(batch.cpu().numpy(), next(host)), step
