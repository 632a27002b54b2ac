"""Drawn samples in data units and on disk, the same for every backend (`ddgan sample`)."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import numpy as np

from ddgan_core.config import Config
from ddgan_core.errors import DDGANError
from ddgan_core.mixture import GaussianMixture
from ddgan_core.pictures import samples_title, save_image_grid, save_point_plot
from ddgan_core.rundir import check_output_file
from ddgan_core.training_loop import to_data_units, to_network_units

OUTPUT_SUFFIXES = (".png", ".npz")


def chain_in_data_units(
    result: np.ndarray | tuple[np.ndarray, np.ndarray], trajectory: bool, config: Config,
) -> tuple[np.ndarray, np.ndarray | None]:
    """A backend's chain output (samples, or (samples, trajectory) when asked) in data units."""
    samples, path = result if trajectory else (result, None)
    return to_data_units(samples, config), (to_data_units(path, config) if path is not None else None)


def one_step_in_data_units(
    x_t: np.ndarray, level: int, config: Config, run_levels: Callable[[np.ndarray, list[int]], np.ndarray],
) -> np.ndarray:
    """Draws of x_{level-1} from the given x_t (data units): `run_levels(start, levels)` is the
    backend's chain from network-unit starting points over the given levels."""
    start = to_network_units(np.asarray(x_t, dtype=np.float32), config)
    return to_data_units(run_levels(start, [level, level - 1]), config)


def check_output_path(out: pathlib.Path) -> None:
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise DDGANError(f"--out must end in .png (a picture) or .npz (arrays), got '{out}'")
    check_output_file(out)


def write_samples(
    out: pathlib.Path, samples: np.ndarray, config: Config, trajectory: np.ndarray | None = None,
    mixture: GaussianMixture | None = None, steps: int | None = None,
) -> pathlib.Path:
    """A .png grid (images) or scatter plot (points), or a .npz with `samples` (and `trajectory`)
    in data units: images in [-1, 1] NCHW, point data in its own units, and `dataset`, the name
    of the data the model learnt (so `ddgan eval --samples` scores them against it). `steps` is
    the K the chain ran (default T); a plot of K < T steps says so, as it is not the trained chain."""
    check_output_path(out)
    if out.suffix.lower() == ".npz":
        arrays = {"samples": samples, "dataset": np.array(config.data.dataset)}
        if trajectory is not None:
            arrays["trajectory"] = trajectory
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, **arrays)
        return out
    if samples.ndim == 4:
        return save_image_grid(samples, out)
    title = samples_title(len(samples), config.data.dataset, config.diffusion.timesteps, steps)
    return save_point_plot(samples, out, title, mixture)
