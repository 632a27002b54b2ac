"""`ddgan train`: train a DDGAN (by default the paper's 25-Gaussian toy, offline, on the CPU)."""

from __future__ import annotations

import os
import pathlib
from typing import Optional

import typer
from rich.console import Console

from cli.app import app, flag_option, seed_option
from cli.backend_loader import load_backend
from ddgan_core.config import Config, apply_overrides, preset, resolve_key
from ddgan_core.datasets import dataset_overrides, fetch_dataset
from ddgan_core.errors import DDGANError

DEFAULT_DATASET = "grid25"
PRESET_FOR_DATASET = {
    "grid25": "toy2d", "ring8": "toy2d", "mixture1d": "toy2d",
    "cifar10": "cifar10", "stackedmnist": "cifar10", "mnist": "tiny", "imagefolder": "celeba256",
}


def named_options(
    dataset: Optional[str], data_dir: Optional[pathlib.Path], timesteps: Optional[int], batch_size: Optional[int],
    iterations: Optional[int], seed: Optional[int], precision: Optional[str], fast: bool = False,
) -> list[str]:
    """The named options that were given, as `section.key=value` overrides. `fast` is the torch
    backend's GPU fast path: bf16 autocast and train.compile."""
    if fast and precision not in (None, "bf16"):
        raise DDGANError(f"--fast trains under bf16 autocast: drop --precision {precision} (or --fast)")
    named = {"data.dataset": dataset, "data.data_dir": data_dir, "diffusion.timesteps": timesteps,
             "train.batch_size": batch_size, "train.iterations": iterations, "train.seed": seed,
             "train.precision": "bf16" if fast else precision, "train.compile": True if fast else None}
    return [f"{key}={value}" for key, value in named.items() if value is not None]


# The option that sets each key of named_options, for saying which two settings disagree.
OPTION_OF_KEY = {"data.dataset": "--dataset", "data.data_dir": "--data-dir", "diffusion.timesteps": "--timesteps",
                 "train.batch_size": "--batch-size", "train.iterations": "--iterations", "train.seed": "--seed",
                 "train.precision": "--precision or --fast", "train.compile": "--fast"}


def check_no_contradiction(named: list[str], overrides: list[str]) -> None:
    """Refuse a --set of a key that a named option also sets: `--iterations 5 --set
    train.iterations=10` would train 10 without a word, whichever was meant."""
    given = {item.split("=", 1)[0] for item in named}
    for item in overrides:
        if "=" not in item:
            continue  # malformed: apply_overrides says so
        section, field = resolve_key(item.split("=", 1)[0].strip())
        key = f"{section}.{field}"
        if key in given:
            raise DDGANError(f"--set {item} and {OPTION_OF_KEY[key]} both set {key}: give one")


def resolve_config(preset_name: Optional[str], dataset: Optional[str], overrides: list[str]) -> Config:
    """Preset (by name, or chosen by the dataset), then what the dataset changes in it (digits are
    not flipped), then the named options and --set overrides, which win over both."""
    if preset_name is None:
        preset_name = PRESET_FOR_DATASET.get(dataset or DEFAULT_DATASET, "cifar10")
    base = preset(preset_name)
    chosen = apply_overrides(base, overrides).data.dataset
    return apply_overrides(base, dataset_overrides(chosen) + list(overrides))


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
    resume: bool = flag_option("--resume", help="Continue the run in --out (or the newest run) from its last checkpoint."),
    seed: Optional[int] = seed_option(None, "Random seed, a non-negative integer (a CPU run is bit-reproducible)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: cuda when available)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="fp32 or bf16 (bf16 needs CUDA)."),
    fast: bool = flag_option("--fast", help="torch on CUDA: bf16 autocast, compiled G, D and R1 step "
                                                    "(= --precision bf16 --set train.compile=true)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: section.key=value (repeatable)."),
    download: bool = flag_option("--download", help="Download the dataset into --data-dir first if it is "
                                                            "missing (CIFAR-10; its MD5 is checked)."),
) -> None:
    """Train a Denoising Diffusion GAN and write a run directory (config, metrics, checkpoints, samples)."""
    module = load_backend(backend)
    named = named_options(dataset, data_dir, timesteps, batch_size, iterations, seed, precision, fast)
    check_no_contradiction(named, overrides)
    settings = named + list(overrides)
    if resume:  # the run's own configuration; the core refuses settings a resumed run cannot change
        if preset_name is not None:
            raise DDGANError("--resume continues the run with its own configuration: drop --preset")
        if download:
            raise DDGANError("--download is for a new run: a resumed run reads its data where it did")
        run = module.train(None, out, True, device=device, resume_changes=settings)
    else:
        config = resolve_config(preset_name, dataset, settings)
        if download:
            fetch_dataset(config.data.dataset, config.data.data_dir)
        run = module.train(config, out, False, device=device)
    if run is not None and run.config_path.exists():
        if os.environ.get("RANK", "0") == "0":  # under torchrun: once, not once per process
            Console().print(f"trained: {run.path}  (sample with: ddgan sample --run {run.path})")
