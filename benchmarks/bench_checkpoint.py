"""What the checkpoints' CRC-32s cost: a full training checkpoint of a preset (G, EMA G, D, Adam
moments, random stream), checksummed, saved and loaded (the load checks every tensor), and the file
copy a periodic checkpoint is made with (training_loop: the last checkpoint, copied).

    python benchmarks/bench_checkpoint.py [--preset cifar10] [--repeats 3]

The tensors are a fresh PyTorch trainer's `state()` on the CPU, the same names and sizes as a
trained run's; the file goes to a temporary folder (the page cache is warm after the first save).
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import tempfile
import time

import torch

from backends.torch_cuda.trainer import TorchTrainer
from ddgan_core.checkpoint import load_checkpoint, save_checkpoint, tensor_checksums
from ddgan_core.config import preset
from eval_common import machine


def seconds(work) -> float:
    begin = time.perf_counter()
    work()
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cifar10")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = preset(args.preset)
    tensors = TorchTrainer(config, torch.device("cpu")).state()
    print(f"machine: {machine()}")
    print(f"{args.preset}: {len(tensors)} tensors, {sum(v.nbytes for v in tensors.values()) / 1e9:.3f} GB")
    print("| repeat | CRC-32 of all s | save s | load s | copy s |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        path = pathlib.Path(scratch) / "last.safetensors"
        for repeat in range(args.repeats):
            crc = seconds(lambda: tensor_checksums(tensors))
            save = seconds(lambda: save_checkpoint(path, tensors, step=1, config=config))
            load = seconds(lambda: load_checkpoint(path))
            copy = seconds(lambda: shutil.copyfile(path, path.with_name("step.safetensors")))
            print(f"| {repeat + 1} | {crc:.2f} | {save:.2f} | {load:.2f} | {copy:.2f} |")


if __name__ == "__main__":
    main()
