"""Any folder tree of PNG/JPEG/WebP images (CelebA-HQ, LSUN exports...), as square RGB images.

Every image is centre-cropped and resized to the requested resolution once; the decoded uint8
array is cached as `.npy` under `<folder>/.ddgan_cache/`, keyed by the resolution and the
listing (paths, sizes, modification times), and memory-mapped afterwards, so later runs and
epochs never decode again and large sets need not fit in memory. Files that cannot be read as
images are skipped and counted in one warning, not fatal. Processes sharing the folder (torchrun's
ranks) take turns (`folder_lock`): the first decodes, the others read its cache, and every cache
file appears complete, by an atomic rename.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from ddgan_core.datasets.base import (
    DatasetError,
    DatasetSpec,
    DatasetWarning,
    ImageDataset,
    check_resolution,
    check_split,
    fit_square,
)
from ddgan_core.datasets.folder_lock import folder_lock

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
CACHE_DIR = ".ddgan_cache"
_COPY_ROWS = 1024  # rows per chunk when compacting a memory-mapped cache


def load(data_dir: Path, *, resolution: int, split: str, download: bool, seed: int) -> ImageDataset:
    """All readable images under `data_dir`, in sorted path order; `download` and `seed` are unused."""
    check_split("imagefolder", split)
    if split != "train":
        raise DatasetError("an image folder has no test split: point --data-dir at a held-out folder instead")
    check_resolution("imagefolder", resolution)
    if not data_dir.is_dir():
        raise DatasetError(f"image folder {data_dir} {'is a file' if data_dir.exists() else 'does not exist'}")
    files = list_images(data_dir)
    if not files:
        raise DatasetError(f"no images ({' '.join(IMAGE_SUFFIXES)}) under {data_dir}")
    cache = data_dir / CACHE_DIR / f"imagefolder-{resolution}px-{_listing_key(data_dir, files)}.npy"
    record = cache.with_suffix(".json")
    with folder_lock(data_dir):  # the record is written last: with it, the cache is complete
        if cache.is_file() and record.is_file():
            images = np.load(cache, mmap_mode="r")
            unreadable = json.loads(record.read_text())["unreadable"]
        else:
            images, unreadable = _decode_and_cache(files, resolution, cache, record)
    if unreadable:
        warnings.warn(
            f"{len(unreadable)} of {len(files)} files under {data_dir} are not readable images and were "
            f"skipped (first: {unreadable[0]})",
            DatasetWarning,
            stacklevel=3,
        )
    return ImageDataset("imagefolder", images)


def list_images(root: Path) -> list[Path]:
    """Image files under `root` by suffix, sorted; hidden folders (such as the cache) are skipped."""
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        found.extend(Path(folder) / n for n in sorted(names) if n.lower().endswith(IMAGE_SUFFIXES))
    return found


def _as_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB. 16-bit greyscale (modes I;16*, and I as Pillow opens 16-bit PNGs) keeps its top
    8 bits: Pillow's own convert("RGB") clips every value above 255 to white."""
    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image, dtype=np.int64)
        return Image.fromarray((np.clip(values, 0, 65535) >> 8).astype(np.uint8), mode="L").convert("RGB")
    return image.convert("RGB")


def decode_image(path: Path, resolution: int) -> np.ndarray | None:
    """One image as uint8 (3, resolution, resolution), or None if it cannot be read."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (resolution, resolution))  # JPEG: decode at a reduced scale >= target
            return fit_square(_as_rgb(image), resolution).transpose(2, 0, 1)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _decode_and_cache(files: list[Path], resolution: int, cache: Path, record: Path) -> tuple[np.ndarray, list[str]]:
    """Decode every file (threads: Pillow releases the GIL) straight into a memory-mapped staging
    file, or into memory if the cache cannot be written. Nothing is kept if no file is readable."""
    root = cache.parent.parent
    shape = (len(files), 3, resolution, resolution)
    made_cache_dir = not cache.parent.exists()
    staging: Path | None = _partial(cache)
    try:
        cache.parent.mkdir(exist_ok=True)
        images = np.lib.format.open_memmap(staging, mode="w+", dtype=np.uint8, shape=shape)
    except OSError as exc:
        if made_cache_dir and cache.parent.is_dir():
            cache.parent.rmdir()
        message = f"cannot write the image cache in {cache.parent} ({exc}); decoding into memory"
        warnings.warn(message, DatasetWarning, stacklevel=4)
        staging, images = None, np.empty(shape, dtype=np.uint8)
    good = np.ones(len(files), dtype=bool)
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        for i, pixels in enumerate(pool.map(partial(decode_image, resolution=resolution), files)):
            if pixels is None:
                good[i] = False
            else:
                images[i] = pixels
    unreadable = [str(f.relative_to(root)) for f, ok in zip(files, good) if not ok]
    if staging is None:
        if not good.any():
            raise DatasetError(f"none of the {len(files)} image files under {root} could be read")
        return images[good], unreadable
    del images  # flush and close the staging map before it is renamed, copied or removed
    if not good.any():
        staging.unlink()
        if made_cache_dir:
            cache.parent.rmdir()
        raise DatasetError(f"none of the {len(files)} image files under {root} could be read")
    if good.all():
        os.replace(staging, cache)
    else:
        _compact(staging, np.flatnonzero(good), cache)
    for stale in cache.parent.glob(f"imagefolder-{resolution}px-*"):
        if stale not in (cache, record) and ".partial" not in stale.name:
            stale.unlink()
    written = _partial(record)
    written.write_text(json.dumps({"files": len(files), "unreadable": unreadable}))
    os.replace(written, record)
    return np.load(cache, mmap_mode="r"), unreadable


def _partial(path: Path) -> Path:
    """Where this process writes `path` before renaming it into place (per process, in case the
    folder cannot be locked and several processes build the same file)."""
    return path.with_name(f"{path.stem}.{os.getpid()}.partial{path.suffix}")


def _compact(staging: Path, keep: np.ndarray, cache: Path) -> None:
    """Copy the rows `keep` of the staging array into a file of their own, chunk by chunk, and
    rename it to the final cache: a process that has the old cache mapped keeps its own copy."""
    compacted = _partial(cache.with_name(f"{cache.stem}.compact.npy"))
    source = np.load(staging, mmap_mode="r")
    target = np.lib.format.open_memmap(compacted, mode="w+", dtype=np.uint8, shape=(len(keep), *source.shape[1:]))
    for start in range(0, len(keep), _COPY_ROWS):
        target[start : start + _COPY_ROWS] = source[keep[start : start + _COPY_ROWS]]
    target.flush()
    del source, target
    os.replace(compacted, cache)
    staging.unlink()


def _listing_key(root: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _where(data_dir: Path) -> str:
    return f"{data_dir}/**/*{{{','.join(IMAGE_SUFFIXES)}}}"


def _readiness(data_dir: Path) -> tuple[bool, str]:
    if not data_dir.is_dir():
        return False, "a file, not a folder" if data_dir.exists() else "folder does not exist"
    for folder, subfolders, names in os.walk(data_dir):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        if any(n.lower().endswith(IMAGE_SUFFIXES) for n in names):
            cached = any((data_dir / CACHE_DIR).glob("imagefolder-*px-*.npy"))
            return True, "images found" + (", decoded cache present" if cached else "")
    return False, "no images in the folder"


SPEC = DatasetSpec(
    name="imagefolder",
    summary="every PNG/JPEG/WebP under --data-dir, centre-cropped and resized to --resolution",
    shape=lambda resolution: (3, resolution, resolution),
    where=_where,
    readiness=_readiness,
    load=load,
)
