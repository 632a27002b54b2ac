"""Checks on the paths a command will write, made before any work: a one-line refusal up front
rather than an OS error after minutes of sampling. (That no command replaces a training run's own
files is the run directory's rule: `ddgan_core.rundir.check_output_file`.)"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Iterator

from ddgan_core.errors import DDGANError


def _check_ancestors(path: pathlib.Path, flag: str) -> None:
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise DDGANError(f"{flag} {path}: {parent} is a file, not a folder")
            return


def check_writable_file(path: pathlib.Path, flag: str = "--out") -> None:
    """Refuse a file path that cannot be written: a folder, or a path under a file."""
    if path.is_dir():
        raise DDGANError(f"{flag} {path} is a folder: name a file")
    _check_ancestors(path, flag)


def check_new_file(path: pathlib.Path, replace: bool, flag: str = "--out") -> None:
    """Refuse an existing file unless `replace` (a command's --force): no output is written over
    unasked."""
    if path.exists() and not replace:
        raise DDGANError(f"{flag} {path} exists: pass --force to replace it, or name another file")


def check_output_folder(path: pathlib.Path, flag: str = "--out") -> None:
    """Refuse a folder path that is a file or lies under one."""
    if path.exists() and not path.is_dir():
        raise DDGANError(f"{flag} {path} is a file: name a folder")
    _check_ancestors(path, flag)


def renamed_error(exc: OSError, partial: pathlib.Path, path: pathlib.Path) -> OSError | None:
    """`exc` naming `path` (the output asked for) where it names the temporary `partial` written in
    its place, or a file inside it (a folder written whole); None where it names neither."""
    if not isinstance(exc.filename, (str, bytes, os.PathLike)):
        return None
    name = pathlib.Path(os.fsdecode(exc.filename))
    if name == partial:
        return OSError(exc.errno, exc.strerror, str(path))
    if partial in name.parents:
        return OSError(exc.errno, exc.strerror, str(path / name.relative_to(partial)))
    return None


@contextlib.contextmanager
def replaced_atomically(path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A temporary path beside `path` for the block to write (the same suffix, for writers that go
    by it: numpy adds `.npz` to any other name, matplotlib picks its format); it replaces `path`
    when the block ends and is removed if the block fails, so a failed or interrupted write
    leaves an existing file as it was, never half of a new one. An OS error names `path`, not the
    temporary file (`renamed_error`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield partial
        os.replace(partial, path)
    except OSError as exc:
        renamed = renamed_error(exc, partial, path)
        if renamed is None:
            raise
        raise renamed from exc
    finally:
        if partial.exists():
            partial.unlink()
