"""`ddgan sample`: draw from a run's EMA generator with K <= T steps."""

from __future__ import annotations

import pathlib
from typing import Optional

import typer
from rich.console import Console

from cli.app import app, flag_option, seed_option
from cli.backend_loader import load_backend
from ddgan_core.checkpoint import checkpoint_config
from ddgan_core.config import Config, item_shape
from ddgan_core.datasets import load_dataset
from ddgan_core.errors import DDGANError
from ddgan_core.mixture import GaussianMixture
from ddgan_core.sample_output import check_output_form, check_output_path, write_sample_stream, write_samples
from ddgan_core.sampling import chain_levels
from ddgan_core.session import resolve_checkpoint


@app.command()
def sample(
    run: Optional[pathlib.Path] = typer.Option(None, "--run", help="Run directory (default: the newest under ./runs)."),
    checkpoint: Optional[pathlib.Path] = typer.Option(None, "--checkpoint", help="A checkpoint file instead of a run."),
    steps: Optional[int] = typer.Option(None, "--steps", "-k", help="Denoising steps K, 1 <= K <= T (default T)."),
    n: int = typer.Option(64, "-n", "--num", help="Number of samples."),
    out: pathlib.Path = typer.Option(pathlib.Path("samples.png"), "--out", "-o",
                                     help="A .png picture, .npz arrays, or a folder (a PNG per image, for FID tools)."),
    seed: int = seed_option(),
    trajectory: bool = flag_option("--trajectory", help="Also store every level x_T..x_0 (.npz)."),
    backend: str = typer.Option("torch", "--backend", "-b", help="torch or tinygrad."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: cuda when available)."),
    force: bool = flag_option("--force", help="Replace an existing --out file (a folder must be new or empty)."),
    fast: bool = flag_option("--fast", help="torch: compiled chain steps; on CUDA also bf16 and one CUDA graph "
                                                    "(the same random draws as without it)."),
) -> None:
    """Sample from a trained generator (EMA weights) through the core's reverse chain."""
    if n < 1:
        raise DDGANError(f"-n must be at least 1, got {n}")
    check_output_form(out)  # an existing output is refused once the inputs are checked, below
    if trajectory and out.suffix.lower() != ".npz":
        raise DDGANError("--trajectory needs an .npz --out")
    module = load_backend(backend)
    if fast and backend != "torch":
        raise DDGANError(f"--fast is a torch-backend path; the {backend} backend has none")
    if fast and trajectory:
        raise DDGANError("--fast does not record the trajectory: drop --fast or --trajectory")
    options = {"fast": True} if fast else {}
    source = resolve_checkpoint(run, checkpoint)
    chain_levels(checkpoint_config(source).diffusion.timesteps, steps)  # from the header: the file loads once, below
    module.pick_device(device)  # a device that is not there, named before an existing --out
    check_output_path(out, replace=force)
    if trajectory:
        samples, path, config = module.sample(source, n, steps, seed, device=device, trajectory=True)
        write_samples(out, samples, config, path, _mixture(config), steps=steps, seed=seed)
    else:  # batch by batch: a folder of PNGs never holds all n in memory
        config, batches = module.sample_stream(source, n, steps, seed, device=device, **options)
        write_sample_stream(out, batches, n, config, _mixture(config), steps=steps, seed=seed)
    Console().print(f"wrote {n} samples to {out} (from {source})", highlight=False, markup=False, soft_wrap=True)


def _mixture(config: Config) -> GaussianMixture | None:
    """The mixture point data was drawn from (its plot shows the modes), None for images."""
    return load_dataset(config.data.dataset, config.data.data_dir).mixture if len(item_shape(config)) == 1 else None
