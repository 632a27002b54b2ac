"""`ddgan train`: train a DDGAN (by default the paper's 25-Gaussian toy, offline, on the CPU)."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Optional

import typer
from rich.console import Console

from cli.app import app, seed_option
from cli.backend_loader import load_backend
from ddgan_core.config import Config, apply_overrides, preset
from ddgan_core.errors import DDGANError

DEFAULT_DATASET = "grid25"
PRESET_FOR_DATASET = {
    "grid25": "toy2d", "ring8": "toy2d", "mixture1d": "toy2d",
    "cifar10": "cifar10", "stackedmnist": "cifar10", "mnist": "tiny", "imagefolder": "celeba256",
}


def resolve_config(
    preset_name: Optional[str], dataset: Optional[str], data_dir: Optional[pathlib.Path], timesteps: Optional[int],
    batch_size: Optional[int], iterations: Optional[int], seed: Optional[int], precision: Optional[str],
    overrides: list[str],
) -> Config:
    """Preset (by name, or chosen by the dataset), then the named options, then --set overrides."""
    if preset_name is None:
        preset_name = PRESET_FOR_DATASET.get(dataset or DEFAULT_DATASET, "cifar10")
    config = preset(preset_name)
    data = config.data
    if dataset is not None or preset_name == "toy2d":
        data = dataclasses.replace(data, dataset=dataset or config.data.dataset)
    if data_dir is not None:
        data = dataclasses.replace(data, data_dir=str(data_dir))
    named = {"diffusion.timesteps": timesteps, "train.batch_size": batch_size, "train.iterations": iterations,
             "train.seed": seed, "train.precision": precision}
    items = [f"{key}={value}" for key, value in named.items() if value is not None]
    return apply_overrides(dataclasses.replace(config, data=data), items + list(overrides))


@app.command()
def train(
    backend: str = typer.Option("torch", "--backend", "-b", help="torch or tinygrad."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Dataset name (see `ddgan datasets`); default grid25."),
    data_dir: Optional[pathlib.Path] = typer.Option(None, "--data-dir", help="Where the dataset's files are (default ./data)."),
    preset_name: Optional[str] = typer.Option(None, "--preset", "-p", help="Configuration preset (default: by dataset)."),
    timesteps: Optional[int] = typer.Option(None, "--timesteps", "-T", help="Number of denoising steps T."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Global batch size."),
    iterations: Optional[int] = typer.Option(None, "--iterations", help="Training iterations (with --resume: new total)."),
    out: Optional[pathlib.Path] = typer.Option(None, "--out", "-o", help="Run directory (default runs/<dataset>-<preset>-<time>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out (or the newest run) from its last checkpoint."),
    seed: Optional[int] = seed_option(None, "Random seed, a non-negative integer (a CPU run is bit-reproducible)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="fp32 or bf16 (bf16 needs CUDA)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: section.key=value (repeatable)."),
) -> None:
    """Train a Denoising Diffusion GAN and write a run directory (config, metrics, checkpoints, samples)."""
    module = load_backend(backend)
    if resume:
        fixed = {"--dataset": dataset, "--preset": preset_name, "--timesteps": timesteps, "--batch-size": batch_size,
                 "--seed": seed}
        given = [flag for flag, value in fixed.items() if value is not None]
        if given:
            raise DDGANError(f"--resume continues the run with its own configuration: drop {', '.join(given)} "
                             "(start a new run to change it)")
        changes = {"train.iterations": iterations, "data.data_dir": data_dir, "train.precision": precision}
        resume_changes = [f"{key}={value}" for key, value in changes.items() if value is not None] + list(overrides)
        run = module.train(None, out, True, device=device, resume_changes=resume_changes)
    else:
        config = resolve_config(preset_name, dataset, data_dir, timesteps, batch_size, iterations, seed, precision, overrides)
        run = module.train(config, out, False, device=device)
    if run is not None and run.config_path.exists():
        Console().print(f"trained: {run.path}  (sample with: ddgan sample --run {run.path})")
