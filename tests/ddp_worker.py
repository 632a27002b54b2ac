"""What `test_two_process_gloo_training` runs under torchrun: `ddgan train` with the given
arguments, each rank recording the batches it trained on and saving its whole training state
(weights, Adam moments, random stream) at the end, so the test can compare the ranks."""

import os
import sys
from pathlib import Path

import numpy as np
import torch

import ddgan_core.session as session
from backends.torch_cuda.trainer import TorchTrainer
from cli.main import app

dump = Path(sys.argv[1])
rank = os.environ["RANK"]
batches: list[np.ndarray] = []
train_step, run_training = TorchTrainer.train_step, session.run_training


def recorded_train_step(self, batch, step):
    batches.append(batch.detach().cpu().numpy() if torch.is_tensor(batch) else np.array(batch))
    return train_step(self, batch, step)


def run_training_and_save_state(trainer, *args, **kwargs):
    result = run_training(trainer, *args, **kwargs)
    np.savez(dump / f"rank{rank}.npz", batches=np.stack(batches), **trainer.state())
    return result


TorchTrainer.train_step, session.run_training = recorded_train_step, run_training_and_save_state
sys.argv = ["ddgan", *sys.argv[2:]]
app()
