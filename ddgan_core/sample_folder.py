"""Samples as a folder of PNG files, one image each: what FID tools read (pytorch-fid, torch-fidelity,
clean-fid), and the one output whose size does not grow with the number of samples in memory.

`ddgan sample --out DIR` writes 000000.png, 000001.png, ... in sample order, batch by batch as the
sampler hands them over, so 50,000 images at 256 px (9.8 GB as uint8, 39 GB as float32) never sit
in memory together. The images are the pixels `ddgan eval` scores: data units [-1, 1] rounded to
uint8 as `pictures.to_uint8_images` does. They go into a temporary folder beside DIR that is renamed
to DIR once complete, so a folder under DIR's name always holds every sample asked for (an FID of
an interrupted run's first 30,000 images cannot be taken for the protocol's 50,000 by mistake).
The folder also holds `ddgan_samples.json`, how they were drawn (dataset, T, K, seed, count), so
`ddgan eval --samples DIR` knows what they are of and that none went missing, as it does for an .npz;
FID tools read image files only. `ddgan eval` reads such a folder back, or any folder of same-sized
images (without a record, `--dataset` says what they are of).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ddgan_core.batch_progress import batch_ranges
from ddgan_core.datasets.imagefolder import IMAGE_SUFFIXES, list_images
from ddgan_core.errors import DDGANError
from ddgan_core.output_paths import check_output_folder, renamed_error
from ddgan_core.pictures import to_uint8_images

PNG_THREADS = min(8, os.cpu_count() or 1)  # Pillow releases the GIL to encode and decode, so threads run in parallel
PNG_COMPRESS_LEVEL = 1  # zlib's fastest: 1.6x Pillow's default 6 at 256 px, for files 8% larger (benchmarks/RESULTS.md)
READ_CHUNK = 1000  # images decoded at a time when reading a folder back
RECORD_NAME = "ddgan_samples.json"  # how the folder's samples were drawn: {"dataset", "timesteps", "steps", "seed", "count"}


def names_folder(out: pathlib.Path) -> bool:
    """Whether `--out` names a folder of PNGs: an existing folder, or a path without a suffix."""
    return out.is_dir() or out.suffix == ""


def check_sample_folder(out: pathlib.Path) -> None:
    """Refuse, before any sampling, a folder path that is a file or that already holds files."""
    check_output_folder(out)
    if out.is_dir() and any(out.iterdir()):
        raise DDGANError(f"--out {out} is a folder that holds files already: name a new or empty folder")


def write_sample_folder(out: pathlib.Path, batches: Iterable[np.ndarray], n: int,
                        record: dict[str, str | int] | None = None) -> pathlib.Path:
    """n images, from batches of NCHW floats in [-1, 1], as n PNG files in the folder `out`
    (created; it must not exist or be empty), named by their index, zero-padded to 6 digits or more,
    and `record` (how they were drawn) with their count as RECORD_NAME."""
    from PIL import Image

    check_sample_folder(out)
    digits = max(6, len(str(n - 1)))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f"{out.name}.{os.getpid()}.tmp"
    written = 0

    def save(index: int, image: np.ndarray) -> None:
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            partial / f"{index:0{digits}d}.png", compress_level=PNG_COMPRESS_LEVEL)

    try:
        partial.mkdir()
        with ThreadPoolExecutor(PNG_THREADS) as pool:
            pending: list[Future] = []
            for batch in batches:  # the sampler draws this batch while the threads encode the last one
                images = to_uint8_images(batch)
                for saved in pending:  # at most two batches held: the one encoded and the one drawn
                    saved.result()
                pending = [pool.submit(save, index, image) for index, image in enumerate(images, start=written)]
                written += len(images)
            for saved in pending:
                saved.result()
        if written != n:
            raise DDGANError(f"expected {n} samples, the sampler gave {written}")
        (partial / RECORD_NAME).write_text(json.dumps({**(record or {}), "count": n}, indent=1) + "\n")
        if out.is_dir():
            out.rmdir()  # empty, as checked: the complete folder takes its place
        os.replace(partial, out)
    except OSError as exc:
        renamed = renamed_error(exc, partial, out)
        if renamed is None:
            raise
        raise renamed from exc
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    return out


def read_sample_record(folder: pathlib.Path) -> dict[str, object]:
    """The folder's RECORD_NAME as written by `write_sample_folder`, or {} where it has none (a
    folder of someone else's images); one that is not a JSON object is refused in one line."""
    path = folder / RECORD_NAME
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DDGANError(f"{path} is not a readable record of `ddgan sample` ({exc}): repair or remove it") from None
    if not isinstance(record, dict):
        raise DDGANError(f"{path} is not a readable record of `ddgan sample` (not a JSON object): repair or remove it")
    return record


def _refuse_runs(folder: pathlib.Path) -> None:
    """Refuse a run directory, or a folder of them (./runs), as samples: their pictures are training
    previews and plots, not samples to score."""
    runs = [folder] if (folder / "config.json").is_file() else sorted(
        child for child in folder.iterdir() if (child / "config.json").is_file())
    if runs:
        more = f", {runs[1].name}{', ...' if len(runs) > 2 else ''}" if len(runs) > 1 else ""
        what = "is a run directory" if runs == [folder] else f"holds run directories ({runs[0].name}{more})"
        raise DDGANError(f"{folder} {what}, not samples: score a run with --run {runs[0]}, or its samples "
                         f"after `ddgan sample --run {runs[0]} -n N --out DIR`")


def read_sample_folder(folder: pathlib.Path) -> np.ndarray:
    """Every image under `folder` (sorted by path, as written), as uint8 NCHW exactly as stored:
    no crop or resize, greyscale kept as one channel. The images must share one size and mode, and
    number what the folder's record says `ddgan sample` wrote, if it has one."""
    from PIL import Image, UnidentifiedImageError

    _refuse_runs(folder)
    files = list_images(folder)
    if not files:
        raise DDGANError(f"no images ({' '.join(IMAGE_SUFFIXES)}) under {folder}")
    count = read_sample_record(folder).get("count")
    if isinstance(count, int) and count != len(files):
        raise DDGANError(f"{folder} holds {len(files):,} images but `ddgan sample` wrote {count:,} there "
                         f"({RECORD_NAME}): some were added or removed; remove that record to score them anyway")

    def decode(path: pathlib.Path) -> np.ndarray:
        try:
            with Image.open(path) as image:
                if image.mode not in ("L", "RGB"):
                    image = image.convert("RGB")
                pixels = np.asarray(image, dtype=np.uint8)
        except (OSError, UnidentifiedImageError) as exc:
            raise DDGANError(f"{path} is not a readable image ({exc})") from None
        return pixels[:, :, None] if pixels.ndim == 2 else pixels

    first = decode(files[0])
    images = np.empty((len(files), first.shape[2], first.shape[0], first.shape[1]), dtype=np.uint8)
    with ThreadPoolExecutor(PNG_THREADS) as pool:
        for start, count in batch_ranges(len(files), READ_CHUNK, "read samples"):
            chunk = files[start : start + count]
            for index, (path, pixels) in enumerate(zip(chunk, pool.map(decode, chunk)), start=start):
                if pixels.shape != first.shape:
                    raise DDGANError(f"{path} is {_size(pixels)} but {files[0].name} is {_size(first)}: "
                                     "samples must share one size and colour mode")
                images[index] = pixels.transpose(2, 0, 1)
    return images


def _size(pixels: np.ndarray) -> str:
    height, width, channels = pixels.shape
    return f"{width}x{height} {'greyscale' if channels == 1 else 'RGB'}"
