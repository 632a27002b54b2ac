"""Run directories (DESIGN 6): config.json, metrics.jsonl, checkpoints/, samples/.

A run directory is never overwritten: training refuses a non-empty one unless it resumes it. A
resume rewrites config.json to what the run now trains under, and records itself there.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import re
import sys
from typing import Any

from ddgan_core.config import Config
from ddgan_core.errors import DDGANError
from ddgan_core.output_paths import check_output_folder, check_writable_file, replaced_atomically

RUNS_ROOT = pathlib.Path("runs")
STEP_CHECKPOINT = re.compile(r"step-(\d+)\.safetensors")


class RunDirError(DDGANError):
    """A run directory that is missing, or exists when it must not."""


class RunDir:
    """Paths and files of one training run."""

    def __init__(self, path: str | pathlib.Path) -> None:
        self.path = pathlib.Path(path)

    @property
    def config_path(self) -> pathlib.Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> pathlib.Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoints(self) -> pathlib.Path:
        return self.path / "checkpoints"

    @property
    def samples(self) -> pathlib.Path:
        return self.path / "samples"

    @property
    def last_checkpoint(self) -> pathlib.Path:
        return self.checkpoints / "last.safetensors"

    def step_checkpoint(self, step: int) -> pathlib.Path:
        return self.checkpoints / f"step-{step:07d}.safetensors"

    @classmethod
    def create(cls, path: str | pathlib.Path, config: Config, backend: str, versions: dict[str, str]) -> "RunDir":
        """Start a new run; refuses a directory that exists and is not empty."""
        run = cls(path)
        check_output_folder(run.path)
        if run.path.is_dir() and any(run.path.iterdir()):
            raise RunDirError(f"run directory {run.path} exists and is not empty: use --resume or another --out")
        run.checkpoints.mkdir(parents=True, exist_ok=True)
        run.samples.mkdir(parents=True, exist_ok=True)
        record = {**_trained_with(config, backend, versions), "created": _now()}
        run._write_record(record)
        return run

    @classmethod
    def create_unique(cls, path: pathlib.Path, config: Config, backend: str, versions: dict[str, str]) -> "RunDir":
        """Start a new run at `path`, or at the first free `path`-2, `path`-3, ...: for a name the
        user did not choose. Each is claimed by creating it (atomic: mkdir fails on one that
        exists, even empty), so runs launched in the same second never share a directory."""
        check_output_folder(path.parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate, number = path, 1
        while True:
            try:
                candidate.mkdir()
            except FileExistsError:
                number += 1
                candidate = path.with_name(f"{path.name}-{number}")
                continue
            return cls.create(candidate, config, backend, versions)

    def record_resume(self, config: Config, backend: str, versions: dict[str, str], from_step: int) -> None:
        """Rewrite config.json (atomically) for a resume from `from_step`: the configuration,
        backend and versions the run now trains under, and, appended to its "resumes" list, the
        step, backend, time and every value that changed ([before, after]: config keys as
        `section.key`, `backend`, `versions.<name>`), so the history can be read back.
        The file keeps its time: `newest_run` goes by when runs were created."""
        record = self.record()
        now = json.loads(json.dumps(_trained_with(config, backend, versions)))  # as JSON stores it
        changes = differences(_as_changed(record), _as_changed(now))
        resume = {"from_step": from_step, "backend": backend, "changes": changes, "time": _now()}
        resumes = record.get("resumes") if isinstance(record.get("resumes"), list) else []
        times = self.config_path.stat()
        self._write_record({**record, **now, "resumes": [*resumes, resume]})
        os.utime(self.config_path, ns=(times.st_atime_ns, times.st_mtime_ns))

    def _write_record(self, record: dict[str, Any]) -> None:
        with replaced_atomically(self.config_path) as partial:
            partial.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")

    def remove_if_never_started(self) -> bool:
        """Remove a new run that failed before logging or checkpointing anything: it holds only
        what `create` wrote. Anything else in it (a log line, a checkpoint, a file of the user's)
        keeps the directory as it is. Returns whether it was removed."""
        created = {self.config_path.name, self.checkpoints.name, self.samples.name}
        if not self.path.is_dir() or {entry.name for entry in self.path.iterdir()} - created:
            return False
        if any(self.checkpoints.iterdir()) or any(self.samples.iterdir()):
            return False
        self.config_path.unlink(missing_ok=True)
        for folder in (self.checkpoints, self.samples, self.path):
            folder.rmdir()  # empty: checked above
        return True

    def wrote(self, path: pathlib.Path) -> bool:
        """Whether `path` (absolute, as this run's path is) is one of the files training writes here."""
        return path in (self.config_path, self.metrics_path) or any(
            folder in path.parents for folder in (self.checkpoints, self.samples))

    @classmethod
    def existing(cls, path: str | pathlib.Path) -> "RunDir":
        run = cls(path)
        if run.path.is_file():  # a file inside a run (its config.json, a checkpoint): name the run itself
            inside = next((folder for folder in run.path.parents[:2] if (folder / "config.json").is_file()), None)
            hint = f": the run it is in is {inside}" if inside is not None else ""
            raise RunDirError(f"{run.path} is a file, not a run directory{hint}")
        if not run.config_path.is_file():
            raise RunDirError(f"{run.path} is not a run directory (no config.json)")
        return run

    def record(self) -> dict[str, Any]:
        """config.json as it is stored; a file that is not a run's is a one-line error."""
        try:
            record = json.loads(self.config_path.read_text(errors="replace"))
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{self.config_path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
            raise RunDirError(f"{self.config_path} holds no 'config' object: it is not a run's config.json")
        return record

    def config(self) -> Config:
        """The run's configuration, as config.json records it; a file that is not one is a one-line error."""
        return Config.from_dict(self.record()["config"])

    def newest_step_checkpoint(self) -> pathlib.Path | None:
        """The periodic checkpoint (checkpoints/step-N.safetensors) of the highest step, if any."""
        if not self.checkpoints.is_dir():
            return None
        steps = {int(m[1]): path for path in self.checkpoints.iterdir() if (m := STEP_CHECKPOINT.fullmatch(path.name))}
        return steps[max(steps)] if steps else None

    def log(self, record: dict) -> None:
        with self.metrics_path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def truncate_metrics(self, step: int) -> None:
        """Ready the log for a run resumed from its checkpoint at `step`: the records of later
        steps go (they are trained again, and each step keeps one record: DESIGN 6), and a last
        line cut off by a kill is ended, so the next record starts a line of its own. Every other
        line stays as it was. Atomic."""
        if not self.metrics_path.exists():
            return
        text = self.metrics_path.read_text(errors="replace")
        lines = text.splitlines()
        kept = [line for line in lines if not _step_after(_record(line), step)]
        if len(kept) == len(lines) and text.endswith("\n"):
            return
        partial = self.metrics_path.with_name(self.metrics_path.name + ".partial")
        partial.write_text("".join(line + "\n" for line in kept))
        os.replace(partial, self.metrics_path)

    def read_metrics(self) -> list[dict]:
        """The logged records, skipping lines that are not one JSON object (the cut-off last line
        of a run killed while it logged, or a line mangled by hand)."""
        if not self.metrics_path.exists():
            return []
        records = (_record(line) for line in self.metrics_path.read_text(errors="replace").splitlines())
        return [record for record in records if record is not None]


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def _trained_with(config: Config, backend: str, versions: dict[str, str]) -> dict[str, Any]:
    """What config.json says a run trains under: configuration, backend and versions."""
    return {"config": config.to_dict(), "backend": backend,
            "versions": {"python": sys.version.split()[0], "platform": platform.platform(), **versions}}


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict of dotted keys: {"train": {"seed": 0}} -> {"train.seed": 0}."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _as_changed(record: dict[str, Any]) -> dict[str, Any]:
    """A config.json record's configuration, backend and versions as one dict, so that `differences`
    names config keys as `section.key` (as RESUME_CHANGES does), then `backend`, `versions.<name>`."""
    return {**(record.get("config") or {}), "backend": record.get("backend"), "versions": record.get("versions") or {}}


def differences(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
    """{key: [before, after]} for each dotted key whose value differs (None where one lacks it), in
    the order of `before`'s keys, then `after`'s new ones."""
    before, after = _flat(before), _flat(after)
    keys = [*before, *(key for key in after if key not in before)]
    return {key: [before.get(key), after.get(key)] for key in keys if before.get(key) != after.get(key)}


def last_checkpoint_fallback(path: pathlib.Path) -> str:
    """For an unreadable `path`: if it is a run's last checkpoint and the run has periodic ones,
    a clause naming the newest and how to use it (else ""), so a corrupt last.safetensors does
    not hide the run's intact earlier checkpoints."""
    run = RunDir(path.parent.parent)
    newest = run.newest_step_checkpoint() if path == run.last_checkpoint and run.config_path.is_file() else None
    if newest is None:
        return ""
    return (f"; the run's newest periodic checkpoint is {newest}: sample it with --checkpoint {newest}, "
            f"or resume from it by copying it over {path}")


def _record(line: str) -> dict | None:
    """One metrics.jsonl line as its record, or None if it is not a JSON object."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _step_after(record: dict | None, step: int) -> bool:
    return record is not None and isinstance(record.get("step"), int) and record["step"] > step


def check_output_file(path: pathlib.Path, flag: str = "--out") -> None:
    """Refuse a file path that cannot be written, or that would replace a file a training run wrote
    (its config, metrics, checkpoints or training samples; other files in a run, plots say, may go)."""
    check_writable_file(path, flag)
    if not path.exists():
        return
    target = path.absolute()
    for parent in target.parents:
        run = RunDir(parent)
        if run.config_path.is_file() and run.wrote(target):
            raise RunDirError(f"{flag} {path} would replace a file of the run {parent}: write elsewhere")


def default_run_path(config: Config, root: pathlib.Path = RUNS_ROOT) -> pathlib.Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return root / f"{config.data.dataset}-{config.preset}-{stamp}"


def newest_run(root: pathlib.Path = RUNS_ROOT, *, with_checkpoint: bool = False, hint: str = "pass --run DIR") -> RunDir:
    """The most recently created run under `root` (by config.json time); with `with_checkpoint`,
    the newest that has written a checkpoint (a run that failed or was stopped before its first
    one has nothing to sample or resume, and must not hide an older run that has)."""
    candidates = sorted(root.glob("*/config.json"), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    runs = [RunDir(found.parent) for found in candidates]
    if with_checkpoint:
        runs = [run for run in runs if run.last_checkpoint.is_file()]
    if not runs:
        what = "with a checkpoint " if with_checkpoint and candidates else ""
        raise RunDirError(f"no runs {what}under {root}/: train one first, or {hint}")
    return runs[-1]
