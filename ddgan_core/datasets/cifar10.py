"""CIFAR-10 from the official python-version archive (or its extracted folder), validated whole.

Format (https://www.cs.toronto.edu/~kriz/cifar.html): `cifar-10-python.tar.gz` holds
`cifar-10-batches-py/` with pickled dicts `data_batch_1..5` (training) and `test_batch`, keyed by
bytes: b"data" is an N x 3072 uint8 array of R, G, B planes of 32 x 32 row-major pixels (so a
plain reshape gives NCHW), b"labels" a list of N class indices in 0..9. Every batch of the split
is checked before any is used; a bad one stops loading with its name in the message.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import posixpath
import tarfile
import urllib.error
import urllib.request
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ddgan_core.datasets.base import (
    DatasetError,
    DatasetSpec,
    DatasetWarning,
    ImageDataset,
    check_resolution,
    check_split,
    resize_images,
)
from ddgan_core.datasets.folder_lock import folder_lock

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
SIDE = 32
NUM_CLASSES = 10
_ROW = 3 * SIDE * SIDE

# The only globals a CIFAR-10 batch pickle refers to (numpy arrays, and bytes as written by
# Python 3 at protocol 2); anything else is refused, so a crafted file cannot run code.
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refers to {module}.{name}, which a CIFAR-10 batch never does")
        return super().find_class(module, name)


def load(data_dir: Path, *, resolution: int, split: str, download: bool, seed: int) -> ImageDataset:
    """The CIFAR-10 `split` as an ImageDataset with labels; `seed` is unused (the data is fixed)."""
    check_split("cifar10", split)
    check_resolution("cifar10", resolution)
    folder, archive = data_dir / FOLDER_NAME, data_dir / ARCHIVE_NAME
    if folder.is_dir():
        batches = list(_read_folder(folder, BATCHES[split]))
    else:
        downloaded = not archive.is_file()
        if downloaded:
            if not download:
                raise DatasetError(
                    f"CIFAR-10 not found in {data_dir}: put {ARCHIVE_NAME} (from {URL}) or its "
                    f"extracted {FOLDER_NAME}/ there (`ddgan train --download` fetches it)"
                )
            download_archive(data_dir)  # kept only if its MD5 is the published one
        batches = list(_read_archive(archive, BATCHES[split]))
        # Only now, with every batch read and checked, may a checksum mismatch be let pass.
        if not downloaded and file_md5(archive) != MD5:
            warnings.warn(
                f"{archive} does not match the published MD5 {MD5}; using it because every batch "
                "passed the format checks",
                DatasetWarning,
                stacklevel=3,
            )
    images = np.concatenate([data for data, _ in batches]).reshape(-1, 3, SIDE, SIDE)
    labels = np.concatenate([labels for _, labels in batches])
    return ImageDataset("cifar10", resize_images(images, resolution), labels)


def download_archive(data_dir: Path) -> Path:
    """Fetch the archive from its canonical address; keep it only if its MD5 is the published one.

    Processes sharing `data_dir` (torchrun's ranks) take turns (`folder_lock`): the first
    downloads, the others find the archive there. The download goes to a file of this process's
    own beside the target and is renamed into place once its MD5 is right, so no process reads a
    half-written archive, and a failure leaves nothing (nor `data_dir`, if it was made for this).
    """
    target = data_dir / ARCHIVE_NAME
    made = not data_dir.exists()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot download CIFAR-10 into {data_dir}: {exc.strerror or exc}") from None
    with folder_lock(data_dir):
        if target.is_file():  # another process fetched it while this one waited
            return target
        partial = data_dir / f"{ARCHIVE_NAME}.{os.getpid()}.part"
        try:
            digest = _download(partial, data_dir)
            if digest != MD5:
                raise DatasetError(f"downloaded {ARCHIVE_NAME} has MD5 {digest}, expected {MD5}; it was discarded")
            os.replace(partial, target)
        except BaseException:  # Ctrl-C included: nothing half-downloaded stays
            partial.unlink(missing_ok=True)
            if made:
                with contextlib.suppress(OSError):
                    data_dir.rmdir()
            raise
    return target


def _download(partial: Path, data_dir: Path) -> str:
    """Write the archive at URL to `partial` with a progress bar; its MD5 hex digest."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    digest = hashlib.md5()
    try:
        with open(partial, "wb") as handle, urllib.request.urlopen(URL, timeout=60) as response, Progress(
            *Progress.get_default_columns()[:2], DownloadColumn(), TransferSpeedColumn(), transient=True,
        ) as progress:
            size = response.headers.get("Content-Length")
            task = progress.add_task(f"download {ARCHIVE_NAME}", total=int(size) if size else None)
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                handle.write(chunk)
                progress.advance(task, len(chunk))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatasetError(f"cannot download CIFAR-10 ({reason}): fetch {URL} elsewhere and put it in {data_dir}") from None
    return digest.hexdigest()


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _read_folder(folder: Path, names: tuple[str, ...]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise DatasetError(f"{folder} lacks {', '.join(missing)}: it is not a complete CIFAR-10 folder")
    for name in names:
        with open(folder / name, "rb") as handle:
            yield parse_batch(handle, str(folder / name))


def _read_archive(archive: Path, names: tuple[str, ...]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Read the wanted batches in one sequential pass over the gzip stream."""
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                folder, name = posixpath.split(posixpath.normpath(member.name))
                if folder == FOLDER_NAME and name in names and member.isfile():
                    handle = tar.extractfile(member)
                    found[name] = parse_batch(io.BytesIO(handle.read()), f"{name} in {archive}")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DatasetError(f"{archive} is truncated or corrupt ({exc}); download it again") from None
    missing = [name for name in names if name not in found]
    if missing:
        raise DatasetError(f"{archive} lacks {FOLDER_NAME}/{', '.join(missing)}: it is not the CIFAR-10 python archive")
    yield from (found[name] for name in names)


def parse_batch(handle: io.BufferedIOBase, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Unpickle one batch and check it: (data (N, 3072) uint8, labels (N,) int64)."""
    try:
        batch = _BatchUnpickler(handle, encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001  (unpickling junk can raise anything: not a batch)
        raise DatasetError(f"{where} is not a CIFAR-10 batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict):
        raise DatasetError(f"{where} is not a CIFAR-10 batch (a {type(batch).__name__}, not a dict)")
    for key in (b"data", b"labels"):
        if key not in batch:
            raise DatasetError(f"{where} has no key {key!r} (keys: {sorted(map(repr, batch))})")
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _ROW:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(f"{where}: b'data' must be a uint8 array of shape (N, {_ROW}), got {got}")
    try:
        labels = np.asarray(labels)
    except (TypeError, ValueError):
        labels = np.asarray([], dtype=object)
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{where}: b'labels' must be {len(data)} integers, got {labels.dtype} {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DatasetError(f"{where}: labels must lie in 0..{NUM_CLASSES - 1}, found {labels.min()}..{labels.max()}")
    return data, labels.astype(np.int64)


def _where(data_dir: Path) -> str:
    return f"{data_dir / FOLDER_NAME}/ or {data_dir / ARCHIVE_NAME}"


def _readiness(data_dir: Path) -> tuple[bool, str]:
    folder, archive = data_dir / FOLDER_NAME, data_dir / ARCHIVE_NAME
    if folder.is_dir():
        missing = [n for names in BATCHES.values() for n in names if not (folder / n).is_file()]
        if missing:
            return False, f"{folder} lacks {', '.join(missing)}"
        return True, "extracted folder found"
    if archive.is_file():
        problem = _archive_problem(archive)
        if problem is not None:
            return False, f"archive {problem}; download it again"
        return True, "archive found (checked when loaded)"
    return False, "not found: put the archive there, or train with --download"


def _archive_problem(archive: Path) -> str | None:
    """Why `archive` is plainly not a gzipped tar, or None; reads only its first tar header, so
    `ddgan datasets` stays instant (the full MD5 and batch checks wait for loading)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            first = tar.next()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        return f"is truncated or corrupt ({exc})"
    return "is an empty tar archive" if first is None else None


SPEC = DatasetSpec(
    name="cifar10",
    summary="CIFAR-10, 50,000 training / 10,000 test RGB images, 10 classes",
    shape=lambda resolution: (3, resolution, resolution),
    where=_where,
    readiness=_readiness,
    load=load,
    fetch=download_archive,
)
