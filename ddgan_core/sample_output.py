"""Drawn samples in data units and on disk, the same for every backend (`ddgan sample`): a .png
(grid or plot), an .npz of arrays, or a folder of PNGs (`sample_folder`)."""

from __future__ import annotations

import math
import pathlib
from collections.abc import Callable, Iterable

import numpy as np

from ddgan_core.config import Config, item_shape
from ddgan_core.errors import DDGANError
from ddgan_core.mixture import GaussianMixture
from ddgan_core.pictures import GRID_MAX_PIXELS, grid_side, samples_title, save_image_grid, save_point_plot
from ddgan_core.output_paths import check_new_file, check_output_folder, replaced_atomically
from ddgan_core.rundir import check_output_file
from ddgan_core.sample_folder import check_sample_folder, names_folder, write_sample_folder
from ddgan_core.sampling import gather_batches
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


def check_output_form(out: pathlib.Path) -> None:
    """Refuse an --out that is neither a .png, an .npz nor a folder (or lies under a file), and a
    run's own file: what no input can make right, so `ddgan sample` says it first."""
    if names_folder(out):
        check_output_folder(out)
        return
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise DDGANError(f"--out must end in .png (a picture) or .npz (arrays), or name a folder (a PNG per image), "
                         f"got '{out}'")
    check_output_file(out)


def check_output_path(out: pathlib.Path, replace: bool = True) -> None:
    """Refuse, before any sampling, what check_output_form does, a folder that holds files, and an
    existing file unless `replace` (`sample --force`: samples can be hours of GPU time)."""
    check_output_form(out)
    if names_folder(out):
        check_sample_folder(out)
        return
    check_new_file(out, replace)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation without swapping (Linux's MemAvailable), or
    None where the system does not say."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_fits(out: pathlib.Path, n: int, shape: tuple[int, ...], available: int | None) -> None:
    """Refuse, before sampling, a .png or .npz of n samples that cannot be held: as float32 arrays
    beyond the `available` bytes of memory, or as one grid more than GRID_MAX_PIXELS on a side.
    A folder of PNGs holds any number (it is written a batch at a time)."""
    instead = "write them to a folder of PNGs (--out DIR, an image each)" if len(shape) == 3 else "ask for fewer (-n)"
    needed = n * math.prod(shape) * 4
    if available is not None and needed > available:
        raise DDGANError(f"{n:,} samples of shape {shape} are {needed / 2**30:.1f} GiB as float32, more than the "
                         f"{available / 2**30:.1f} GiB of memory available: {instead}")
    if out.suffix.lower() == ".png" and len(shape) == 3:
        side = grid_side(n, shape[1:])
        if side > GRID_MAX_PIXELS:
            raise DDGANError(f"a grid of {n:,} samples at {shape[2]}x{shape[1]} would be {side:,} pixels wide "
                             f"(at most {GRID_MAX_PIXELS:,}): {instead}, or an .npz")


def write_sample_stream(
    out: pathlib.Path, batches: Iterable[np.ndarray], n: int, config: Config, mixture: GaussianMixture | None = None,
    steps: int | None = None, seed: int | None = None, available: int | None = None,
) -> pathlib.Path:
    """A backend's n samples, batches in data units as the sampler hands them over, written to `out`:
    a folder of PNGs one batch at a time (`sample_folder`), else gathered and given to write_samples
    after `check_fits` against the `available` memory (default: the system's)."""
    if names_folder(out):
        if len(item_shape(config)) != 3:
            raise DDGANError(f"a folder of PNGs holds images; {config.data.dataset} samples are points: "
                             "write a .png plot or an .npz")
        return write_sample_folder(out, batches, n, sample_record(config, steps, seed))
    check_fits(out, n, item_shape(config), available_memory() if available is None else available)
    return write_samples(out, gather_batches(batches, n), config, None, mixture, steps, seed)


def sample_record(config: Config, steps: int | None, seed: int | None) -> dict[str, str | int]:
    """How samples were drawn, as an .npz and a folder of PNGs record it beside them: the `dataset`
    the model learnt, its `timesteps` T, the `steps` K the chain ran (default T) and the `seed`
    (when given)."""
    record: dict[str, str | int] = {"dataset": config.data.dataset, "timesteps": config.diffusion.timesteps,
                                    "steps": config.diffusion.timesteps if steps is None else steps}
    if seed is not None:
        record["seed"] = seed
    return record


def write_samples(
    out: pathlib.Path, samples: np.ndarray, config: Config, trajectory: np.ndarray | None = None,
    mixture: GaussianMixture | None = None, steps: int | None = None, seed: int | None = None,
) -> pathlib.Path:
    """A .png grid (images) or scatter plot (points), or a .npz with `samples` (and `trajectory`)
    in data units: images in [-1, 1] NCHW, point data in its own units, and `sample_record`'s
    arrays (so `ddgan eval --samples` scores them against the data the model learnt). A plot of
    K < T steps says so, as it is not the trained chain."""
    check_output_path(out)
    timesteps = config.diffusion.timesteps
    with replaced_atomically(out) as partial:  # an earlier file of that name survives a failed write
        if out.suffix.lower() == ".npz":
            arrays = {"samples": samples, **{name: np.array(value) for name, value in sample_record(config, steps, seed).items()}}
            if trajectory is not None:
                arrays["trajectory"] = trajectory
            np.savez_compressed(partial, **arrays)
        elif samples.ndim == 4:
            save_image_grid(samples, partial)
        else:
            title = samples_title(len(samples), config.data.dataset, timesteps, steps)
            save_point_plot(samples, partial, title, mixture)
    return out
