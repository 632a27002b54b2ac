"""Checks on the paths a command will write, made before any work: a one-line refusal up front
rather than an OS error after minutes of sampling, and never a training run's own files replaced."""

from __future__ import annotations

import pathlib

from ddgan_core.errors import DDGANError

# What training writes inside a run directory (DESIGN 6): other commands may add files there
# (plots, samples of their own) but never replace these.
RUN_OWN_FILES = ("config.json", "metrics.jsonl")
RUN_OWN_FOLDERS = ("checkpoints", "samples")


def _check_ancestors(path: pathlib.Path, flag: str) -> None:
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise DDGANError(f"{flag} {path}: {parent} is a file, not a folder")
            return


def _owning_run(path: pathlib.Path) -> pathlib.Path | None:
    for parent in path.absolute().parents:
        if (parent / "config.json").is_file() and (parent / "checkpoints").is_dir():
            return parent
    return None


def check_output_file(path: pathlib.Path, flag: str = "--out") -> None:
    """Refuse a file path that cannot be written (a folder, or under a file), or that would replace
    a file a training run wrote (its config, metrics, checkpoints or training samples)."""
    if path.is_dir():
        raise DDGANError(f"{flag} {path} is a folder: name a file")
    _check_ancestors(path, flag)
    run = _owning_run(path)
    if run is not None and path.exists():
        inside = path.absolute().relative_to(run).parts
        if inside[0] in RUN_OWN_FOLDERS or (len(inside) == 1 and inside[0] in RUN_OWN_FILES):
            raise DDGANError(f"{flag} {path} would replace a file of the run {run}: write elsewhere")


def check_output_folder(path: pathlib.Path, flag: str = "--out") -> None:
    """Refuse a folder path that is a file or lies under one."""
    if path.exists() and not path.is_dir():
        raise DDGANError(f"{flag} {path} is a file: name a folder")
    _check_ancestors(path, flag)
