"""One process at a time in a data folder, so that what one process derives there (a download, a
decoded cache) is made once and read by the others.

torchrun starts every rank on the same data folder. Without a lock each rank downloads CIFAR-10
or decodes an image folder itself, and a rank can read a file another is still writing. The lock
is an exclusive `flock` on the folder's own descriptor, so it leaves no lock file behind. Where
the platform or file system has no flock (Windows, some network file systems) the work goes on
unlocked: every process then makes its own copy, and each file appears by an atomic rename.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on the existing directory `folder` for the body (waiting for it).
    A folder this process cannot write to is not locked: nothing can be made there to share."""
    descriptor = _locked_descriptor(folder)
    try:
        yield
    finally:
        if descriptor is not None:
            os.close(descriptor)  # closing the descriptor releases the lock


def _locked_descriptor(folder: Path) -> int | None:
    try:
        import fcntl
    except ImportError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor
