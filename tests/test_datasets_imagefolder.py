"""Image folders: crop and resize, RGB conversion, unreadable files, the decoded cache."""

import pathlib

import numpy as np
import pytest
from PIL import Image

from ddgan_core.datasets import DatasetError, DatasetWarning, imagefolder, load_dataset

GREEN = (0, 255, 0)


def _banded(width, height, centre=GREEN):
    """An image whose central square is `centre` and whose outer bands are red and blue."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:] = centre
    band = (max(width, height) - min(width, height)) // 2
    if width > height:
        pixels[:, :band] = (255, 0, 0)
        pixels[:, width - band :] = (0, 0, 255)
    else:
        pixels[:band] = (255, 0, 0)
        pixels[height - band :] = (0, 0, 255)
    return Image.fromarray(pixels)


def _folder(root):
    """Four readable images in three formats and modes, a broken 'png' and a text file."""
    (root / "sub").mkdir(parents=True)
    _banded(40, 20).save(root / "a_wide.png")
    _banded(12, 36).save(root / "b_tall.webp", lossless=True)
    Image.fromarray(np.full((16, 16), 200, np.uint8), mode="L").save(root / "c_grey.png")
    Image.new("RGB", (64, 64), (10, 20, 30)).save(root / "sub" / "d_photo.JPG", quality=100)
    (root / "sub" / "e_broken.png").write_bytes(b"this is not a png")
    (root / "notes.txt").write_text("ignored: not an image suffix")


def test_images_are_centre_cropped_resized_and_rgb(tmp_path):
    _folder(tmp_path)
    with pytest.warns(DatasetWarning, match=r"1 of 5 files .* skipped \(first: sub/e_broken.png\)"):
        ds = load_dataset("imagefolder", tmp_path, resolution=8)
    assert ds.shape == (3, 8, 8) and len(ds) == 4 and ds.labels is None
    images = np.round((ds.get(np.arange(4)) + 1) * 127.5).astype(int)
    green = np.array(GREEN)[:, None, None]
    np.testing.assert_array_equal(images[0], np.broadcast_to(green, (3, 8, 8)))  # wide: bands cropped
    np.testing.assert_array_equal(images[1], np.broadcast_to(green, (3, 8, 8)))  # tall: bands cropped
    np.testing.assert_array_equal(images[2], np.full((3, 8, 8), 200))  # grey -> equal channels
    assert np.abs(images[3] - np.array([10, 20, 30])[:, None, None]).max() <= 2  # JPEG, lossy


def test_16_bit_greyscale_keeps_its_top_8_bits_rather_than_clipping_to_white(tmp_path):
    ramp = (np.arange(64, dtype=np.uint32).reshape(8, 8) * 1024 + 3).astype(np.uint16)  # 3 .. 64515
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    with Image.open(tmp_path / "ramp16.png") as saved:
        assert saved.mode in ("I;16", "I")  # Pillow reads a 16-bit PNG back as 16-bit
    images = np.round((load_dataset("imagefolder", tmp_path, resolution=8).get(np.arange(1)) + 1) * 127.5).astype(int)
    np.testing.assert_array_equal(images[0], np.broadcast_to(ramp >> 8, (3, 8, 8)))


def test_second_load_reads_the_cache_without_decoding(tmp_path, monkeypatch):
    _folder(tmp_path)
    with pytest.warns(DatasetWarning):
        first = load_dataset("imagefolder", tmp_path, resolution=8).get(np.arange(4))
    cached = sorted(p.name for p in (tmp_path / imagefolder.CACHE_DIR).iterdir())
    assert len(cached) == 2 and cached[0].endswith(".json") and cached[1].endswith(".npy")

    def no_decoding(path, resolution):
        raise AssertionError("decoded again")

    monkeypatch.setattr(imagefolder, "decode_image", no_decoding)
    with pytest.warns(DatasetWarning, match="1 of 5"):  # the skipped file is still reported
        second = load_dataset("imagefolder", tmp_path, resolution=8)
    np.testing.assert_array_equal(second.get(np.arange(4)), first)


def test_changed_folder_or_resolution_gets_a_fresh_cache(tmp_path):
    _folder(tmp_path)
    for resolution in (8, 4):
        with pytest.warns(DatasetWarning):
            load_dataset("imagefolder", tmp_path, resolution=resolution)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "f_new.png")
    with pytest.warns(DatasetWarning):
        ds = load_dataset("imagefolder", tmp_path, resolution=8)
    assert len(ds) == 5
    names = sorted(p.name for p in (tmp_path / imagefolder.CACHE_DIR).glob("*.npy"))
    assert len(names) == 2 and names[0].startswith("imagefolder-4px-") and names[1].startswith("imagefolder-8px-")


def test_folder_without_images_is_refused_and_nothing_written(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(DatasetError, match="no images"):
        load_dataset("imagefolder", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_folder_of_only_unreadable_images_is_refused_and_nothing_written(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DatasetError, match="none of the 1 image files"):
        load_dataset("imagefolder", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["x.jpg"]


def test_missing_folder_and_test_split_are_refused(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("imagefolder", tmp_path / "missing")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DatasetError, match="afile is a file"):
        load_dataset("imagefolder", tmp_path / "afile")
    with pytest.raises(DatasetError, match="no test split"):
        load_dataset("imagefolder", tmp_path, split="test")


def test_read_only_folder_decodes_into_memory(tmp_path, monkeypatch):
    _folder(tmp_path)

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(imagefolder.np.lib.format, "open_memmap", refuse)
    with pytest.warns(DatasetWarning) as caught:
        ds = load_dataset("imagefolder", tmp_path, resolution=8)
    messages = " | ".join(str(w.message) for w in caught)
    assert "cannot write the image cache" in messages and "1 of 5 files" in messages
    assert len(ds) == 4 and not (tmp_path / imagefolder.CACHE_DIR).exists()


_LOAD_IN_A_PROCESS = """
import os, sys, time, warnings
from pathlib import Path
import pathlib

import numpy as np
from ddgan_core.datasets import imagefolder, load_dataset
decode = imagefolder.decode_image
def logged_slow_decode(path, resolution):
    with open(sys.argv[2], "a") as log:
        log.write(f"{os.getpid()}\\n")
    time.sleep(0.4)  # long enough for the processes' decoding to overlap, were they not taking turns
    return decode(path, resolution)
imagefolder.decode_image = logged_slow_decode
warnings.simplefilter("ignore")
dataset = load_dataset("imagefolder", Path(sys.argv[1]), resolution=8)
np.save(sys.argv[3], dataset.get(np.arange(len(dataset))))
"""


def test_processes_sharing_a_folder_decode_it_once_and_all_read_the_complete_cache(tmp_path):
    """torchrun's ranks load the same folder at once: one decodes (here with a file to skip, so the
    cache is compacted), the others wait and read its cache; nobody reads a half-written file."""
    import os
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    data = tmp_path / "images"
    _folder(data)
    log = tmp_path / "decoded.log"
    env = {**os.environ, "PYTHONPATH": str(root)}
    processes = [subprocess.Popen([sys.executable, "-c", _LOAD_IN_A_PROCESS, str(data), str(log), str(tmp_path / f"{i}.npy")],
                                  env=env, stderr=subprocess.PIPE, text=True) for i in range(3)]
    for process in processes:
        errors = process.communicate(timeout=120)[1]
        assert process.returncode == 0, errors
    assert len(set(log.read_text().split())) == 1 and len(log.read_text().split()) == 5  # one process decoded the 5 files
    with pytest.warns(DatasetWarning):
        expected = load_dataset("imagefolder", data, resolution=8)
    for i in range(3):
        np.testing.assert_array_equal(np.load(tmp_path / f"{i}.npy"), expected.get(np.arange(4)))
    assert sorted(p.suffix for p in (data / imagefolder.CACHE_DIR).iterdir()) == [".json", ".npy"]  # no partial files
