"""Pictures of samples: image grids (Pillow) and scatter plots of point data (matplotlib)."""

from __future__ import annotations

import math
import pathlib

import numpy as np

from ddgan_core.mixture import GaussianMixture


def to_uint8_images(images: np.ndarray) -> np.ndarray:
    """NCHW floats in [-1, 1] -> NHWC uint8 (values outside are clipped)."""
    images = np.clip((np.asarray(images, dtype=np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return images.transpose(0, 2, 3, 1)


GRID_MAX_PIXELS = 16_384  # a grid's widest side (3,969 images at 256 px, 231,361 at 32 px): no picture to look at whole beyond
GRID_PADDING = 2


def grid_side(n: int, size: tuple[int, int], padding: int = GRID_PADDING) -> int:
    """The width in pixels of image_grid's square grid of n images of `size` (height, width)."""
    return math.ceil(math.sqrt(n)) * (size[1] + padding) + padding


def image_grid(images: np.ndarray, nrow: int | None = None, padding: int = GRID_PADDING) -> np.ndarray:
    """Tile NCHW images in [-1, 1] into one HWC uint8 array, `nrow` images per row (square by default)."""
    tiles = to_uint8_images(images)
    n, h, w, c = tiles.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    grid = np.full((ncol * (h + padding) + padding, nrow * (w + padding) + padding, c), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, q = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[top : top + h, left : left + w] = tile
    return grid


GRID_MIN_PIXELS = 512  # a saved grid's longer side is scaled up to at least this, by whole pixels


def grid_scale(height: int, width: int) -> int:
    """The whole-number factor that brings a grid's longer side to at least GRID_MIN_PIXELS (1 when it is
    already that large): a 16-px grid of 64 is 146 px, a thumbnail; scaled by 4 it can be looked at."""
    return max(1, math.ceil(GRID_MIN_PIXELS / max(height, width)))


def save_image_grid(images: np.ndarray, path: str | pathlib.Path, nrow: int | None = None) -> pathlib.Path:
    """The grid as a PNG, small grids scaled up by a whole factor with nearest-neighbour, so every
    pixel of a sample is a square block of equal values (the arrays themselves go to .npz)."""
    from PIL import Image

    grid = image_grid(images, nrow)
    scale = grid_scale(*grid.shape[:2])
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
    return path


def samples_title(count: int, dataset: str, timesteps: int, steps: int | None = None) -> str:
    """What a samples plot shows: how many, of which data, through which chain (K of T steps)."""
    chain = f"T = {timesteps}" if steps in (None, timesteps) else f"K = {steps} of T = {timesteps} steps"
    return f"{count:,} samples, {dataset}, {chain}"


def mark_centres(ax, centres: np.ndarray, label: str) -> None:
    """Hollow rings at 2-D mode centres, so the samples on each centre stay visible."""
    ax.scatter(centres[:, 0], centres[:, 1], marker="o", s=70, facecolors="none", edgecolors="red", linewidths=1.2,
               zorder=3, label=label)


def save_point_plot(
    points: np.ndarray, path: str | pathlib.Path, title: str, mixture: GaussianMixture | None = None
) -> pathlib.Path:
    """Scatter (2-D) or histogram (1-D) of samples, over the data's mixture where known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    fig, ax = plt.subplots(figsize=(6, 6) if points.shape[1] >= 2 else (8, 4))
    if points.shape[1] == 1:
        ax.hist(points[:, 0], bins=200, density=True, alpha=0.6, label="samples")
        if mixture is not None:
            xs = np.linspace(points.min() - 1, points.max() + 1, 2000)
            ax.plot(xs, mixture.prob(xs), color="black", lw=1.5, label="data density")
        ax.set_xlabel("x")
        ax.set_ylabel("density")
    else:
        ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, label="samples")
        if mixture is not None:
            mark_centres(ax, mixture.means, "mode centres")
        ax.set_aspect("equal")
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # outside: it hides no sample
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
