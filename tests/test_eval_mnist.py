"""The project's MNIST digit classifier for Stacked MNIST: held-out split, learning, caching."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backends.torch_cuda import mnist_classifier  # noqa: E402
from backends.torch_cuda.mnist_classifier import digit_classifier, held_out_split, train_digit_classifier  # noqa: E402
from ddgan_core.datasets import ImageDataset, load_dataset  # noqa: E402
from ddgan_core.datasets.base import DatasetError  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    try:
        mnist = load_dataset("mnist", "./data", resolution=32)
    except DatasetError as exc:
        pytest.skip(f"no MNIST digits here: {exc}")
    return ImageDataset("mnist", mnist.images[:500], mnist.labels[:500])


def test_the_held_out_split_is_a_seeded_partition_of_one_fifth():
    train, test = held_out_split(1000, seed=3)
    assert len(test) == 200 and len(train) == 800
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(1000))
    again, _ = held_out_split(1000, seed=3)
    assert np.array_equal(train, again)


def test_a_short_training_reads_held_out_digits_far_above_chance(digits):
    network, accuracy = train_digit_classifier(digits.images, digits.labels, CPU, epochs=2)
    assert accuracy > 0.5  # chance is 0.1; 400 digits seen twice
    _, test = held_out_split(len(digits.images), seed=0)
    predicted = mnist_classifier.predict(network, digits.images[test], CPU)
    assert np.mean(predicted == digits.labels[test]) == pytest.approx(accuracy)


def test_the_classifier_is_trained_once_and_then_read_from_the_cache(digits, tmp_path, monkeypatch):
    small = ImageDataset("mnist", digits.images[:200], digits.labels[:200])
    monkeypatch.setattr(mnist_classifier, "load_dataset", lambda *args, **kwargs: small)
    first = digit_classifier("./data", 32, CPU, cache_dir=tmp_path, epochs=1)
    (cached,) = tmp_path.glob("mnist-classifier-32px-*.safetensors")
    stamp = cached.stat().st_mtime_ns
    second = digit_classifier("./data", 32, CPU, cache_dir=tmp_path, epochs=1)
    assert cached.stat().st_mtime_ns == stamp and second.accuracy == first.accuracy
    assert np.array_equal(second(small.images), first(small.images))
