"""Saved image grids: small grids scaled up by a whole factor, every sample pixel an exact block."""

import numpy as np
from PIL import Image

from ddgan_core.pictures import GRID_MIN_PIXELS, image_grid, save_image_grid


def test_a_small_grid_is_scaled_up_by_whole_pixels_and_keeps_every_value(tmp_path):
    images = np.random.default_rng(0).uniform(-1, 1, size=(16, 3, 16, 16)).astype(np.float32)
    grid = image_grid(images)  # 4 x 4 tiles of 16 px, 2 px padding: 74 px
    with Image.open(save_image_grid(images, tmp_path / "grid.png")) as saved:
        pixels = np.asarray(saved)
    assert grid.shape[:2] == (74, 74) and pixels.shape == (7 * 74, 7 * 74, 3)  # ceil(512 / 74) = 7
    for dy in range(7):  # every 7 x 7 block holds one grid pixel's value
        for dx in range(7):
            np.testing.assert_array_equal(pixels[dy::7, dx::7], grid)


def test_a_grid_already_large_enough_is_saved_as_is(tmp_path):
    images = np.linspace(-1, 1, 2 * 1 * 300 * 300, dtype=np.float32).reshape(2, 1, 300, 300)
    grid = image_grid(images)  # 2 tiles side by side: 606 px wide
    assert max(grid.shape[:2]) >= GRID_MIN_PIXELS
    with Image.open(save_image_grid(images, tmp_path / "grid.png")) as saved:
        np.testing.assert_array_equal(np.asarray(saved), grid[..., 0])
