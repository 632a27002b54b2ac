"""The shared outer loop against a recording stub trainer: units, learning rates, logs, checkpoints.

The stub records what the loop hands it, so each of the loop's duties is checked against the
value it must have: batches in network units (data / scale), the cosine rates of each network
at every step, the rate logged with the step it was used for, and exactly the checkpoint files
the cadence asks for.
"""

from __future__ import annotations

from itertools import repeat

import numpy as np
import pytest

from ddgan_core.config import apply_overrides, fit_to_data, preset
from ddgan_core.losses import cosine_lr
from ddgan_core.rundir import RunDir
from ddgan_core.training_loop import learning_rates, run_training, to_data_units, to_network_units


class RecordingTrainer:
    def __init__(self) -> None:
        self.rates: list[tuple[float, float]] = []
        self.batches: list[np.ndarray] = []

    def set_learning_rates(self, lr_g: float, lr_d: float) -> None:
        self.rates.append((lr_g, lr_d))

    def train_step(self, batch, step: int) -> dict:
        self.batches.append(np.array(batch))
        return {"loss_d": 1.0, "loss_g": 0.5}

    def read_scalars(self, values: dict) -> dict[str, float]:
        return {k: float(v) for k, v in values.items()}

    def state(self) -> dict[str, np.ndarray]:
        return {"generator.w": np.zeros(2, np.float32)}

    def optimizer_step(self) -> int:
        return len(self.batches)

    def sample(self, n: int, seed: int) -> np.ndarray:
        return np.zeros((n, 2), np.float32)


@pytest.fixture
def toy():
    # toy2d: scale 0.5, lr_g 1e-3 and lr_d 2e-3 (distinct, so a swap or a shared curve shows)
    return apply_overrides(fit_to_data(preset("toy2d"), (2,)), [
        "train.iterations=5", "train.log_every=1", "train.checkpoint_every=2", "train.sample_every=1000"])


def test_the_loop_feeds_network_units_and_each_networks_own_cosine_rate(toy, tmp_path):
    assert toy.data.scale == 0.5 and (toy.train.lr_g, toy.train.lr_d) == (1e-3, 2e-3)
    trainer = RecordingTrainer()
    run = RunDir.create(tmp_path / "run", toy, "stub", {})
    data = np.full((4, 2), 3.0, np.float32)
    run_training(trainer, toy, run, repeat(data), is_image=False, show_progress=False)
    np.testing.assert_array_equal(trainer.batches[0], np.full((4, 2), 6.0))  # data / 0.5
    np.testing.assert_array_equal(to_data_units(to_network_units(data, toy), toy), data)
    expected = [(cosine_lr(i, 5, 1e-3, toy.train.lr_min), cosine_lr(i, 5, 2e-3, toy.train.lr_min)) for i in range(5)]
    assert trainer.rates == pytest.approx(expected) and trainer.rates[0] == (1e-3, 2e-3)
    assert [learning_rates(toy, i) for i in range(5)] == pytest.approx(expected)
    logged = run.read_metrics()
    assert [r["step"] for r in logged] == [1, 2, 3, 4, 5]
    assert [(r["lr_g"], r["lr_d"]) for r in logged] == pytest.approx(expected)  # step n logs the rate it used
    names = sorted(p.name for p in run.checkpoints.iterdir())
    assert names == sorted([run.last_checkpoint.name, run.step_checkpoint(2).name, run.step_checkpoint(4).name])
