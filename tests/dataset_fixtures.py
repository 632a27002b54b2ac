"""Fabricated data in the exact on-disk formats the dataset readers accept, for any test to use.

`write_cifar10` writes a small CIFAR-10 python archive: the real layout (`cifar-10-batches-py/`
with data_batch_1..5, test_batch, batches.meta) and the real pickled dicts with bytes keys, as
Python 2 wrote them, only with fewer images per batch. `write_idx` writes an MNIST IDX file.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LABEL_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


@dataclass(frozen=True)
class FabricatedCifar:
    """What was written: rows exactly as stored (N, 3072) uint8 and labels, per split."""

    train_rows: np.ndarray
    train_labels: np.ndarray
    test_rows: np.ndarray
    test_labels: np.ndarray


class _Python2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle wrote the official batches: bytes as (SHORT_)BINSTRING
    opcodes, which `encoding="bytes"` reads back as bytes, and numpy's old module path."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def python2_pickle(content: object) -> bytes:
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(content)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def cifar_batch(rows: np.ndarray, labels: np.ndarray, batch_label: bytes) -> dict[bytes, object]:
    """One batch dict as the official files hold it."""
    return {
        b"batch_label": batch_label,
        b"labels": [int(label) for label in labels],
        b"data": rows,
        b"filenames": [f"image_{i:05d}.png".encode() for i in range(len(rows))],
    }


def write_cifar10(data_dir: Path, *, per_batch: int = 4, seed: int = 0, archive: bool = True) -> FabricatedCifar:
    """Write `cifar-10-python.tar.gz` (archive=True) or the extracted `cifar-10-batches-py/`.

    Image 0 of data_batch_1 is pure red (R plane 255, G and B 0), to pin the channel order.
    """
    rng = np.random.default_rng(seed)
    train_rows = rng.integers(0, 256, size=(5 * per_batch, 3072), dtype=np.uint8)
    train_rows[0] = 0
    train_rows[0, :1024] = 255
    train_labels = rng.integers(0, 10, size=5 * per_batch)
    test_rows = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
    test_labels = rng.integers(0, 10, size=per_batch)

    files = {
        f"data_batch_{i + 1}": cifar_batch(
            train_rows[i * per_batch : (i + 1) * per_batch],
            train_labels[i * per_batch : (i + 1) * per_batch],
            f"training batch {i + 1} of 5".encode(),
        )
        for i in range(5)
    }
    files["test_batch"] = cifar_batch(test_rows, test_labels, b"testing batch 1 of 1")
    files["batches.meta"] = {b"num_cases_per_batch": per_batch, b"label_names": LABEL_NAMES, b"num_vis": 3072}

    folder = data_dir / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_bytes(python2_pickle(content))
    if archive:
        with tarfile.open(data_dir / "cifar-10-python.tar.gz", "w:gz") as tar:
            tar.add(folder, arcname="cifar-10-batches-py")
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    return FabricatedCifar(train_rows, train_labels, test_rows, test_labels)


def rewrite_cifar_batch(data_dir: Path, name: str, batch: dict[bytes, object]) -> None:
    """Replace one batch of an extracted folder with `batch` (to fabricate a bad file)."""
    (data_dir / "cifar-10-batches-py" / name).write_bytes(python2_pickle(batch))


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes (gzipped if the name ends in .gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
