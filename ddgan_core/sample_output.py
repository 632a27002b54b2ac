"""Writing drawn samples to disk, the same for every backend (`ddgan sample --out`)."""

from __future__ import annotations

import pathlib

import numpy as np

from ddgan_core.config import Config
from ddgan_core.errors import DDGANError
from ddgan_core.mixture import GaussianMixture
from ddgan_core.pictures import save_image_grid, save_point_plot

OUTPUT_SUFFIXES = (".png", ".npz")


def check_output_path(out: pathlib.Path) -> None:
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise DDGANError(f"--out must end in .png (a picture) or .npz (arrays), got '{out}'")


def write_samples(
    out: pathlib.Path, samples: np.ndarray, config: Config, trajectory: np.ndarray | None = None,
    mixture: GaussianMixture | None = None,
) -> pathlib.Path:
    """A .png grid (images) or scatter plot (points), or a .npz with `samples` (and `trajectory`)
    in data units: images in [-1, 1] NCHW, point data in its own units."""
    check_output_path(out)
    if out.suffix.lower() == ".npz":
        arrays = {"samples": samples}
        if trajectory is not None:
            arrays["trajectory"] = trajectory
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, **arrays)
        return out
    if samples.ndim == 4:
        return save_image_grid(samples, out)
    title = f"{len(samples)} samples, {config.data.dataset}, T = {config.diffusion.timesteps}"
    return save_point_plot(samples, out, title, mixture)
