"""What a resume does to its run directory, through `train_session` with a stub trainer (no
framework, a few steps): config.json follows the run and records each resume, a checkpoint of
another run is refused, default names never collide, and a corrupt last checkpoint points to
the newest periodic one."""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pytest

from ddgan_core import session
from ddgan_core.checkpoint import CheckpointError, load_checkpoint
from ddgan_core.config import Config, apply_overrides, preset
from ddgan_core.errors import DDGANError
from ddgan_core.rundir import RunDir, newest_run
from ddgan_core.session import train_session


class StubTrainer:
    """Trains nothing; its state is the number of steps it took, so a checkpoint says where it came from."""

    def __init__(self, config: Config) -> None:
        self.steps = 0

    def set_learning_rates(self, lr_g: float, lr_d: float) -> None:
        pass

    def train_step(self, batch: np.ndarray, step: int) -> dict[str, float]:
        self.steps += 1
        return {"loss_d": 1.0}

    def read_scalars(self, values: dict[str, float]) -> dict[str, float]:
        return values

    def state(self) -> dict[str, np.ndarray]:
        return {"generator.steps": np.array([self.steps], np.float32)}

    def optimizer_step(self) -> int:
        return self.steps

    def sample(self, n: int, seed: int) -> np.ndarray:
        return np.zeros((n, 2), np.float32)

    def load_state(self, checkpoint) -> None:
        self.steps = int(checkpoint.tensors["generator.steps"][0])


def _config(dataset: str = "ring8", iterations: int = 4) -> Config:
    return apply_overrides(preset("toy2d"), [f"data.dataset={dataset}", f"train.iterations={iterations}", "batch_size=8",
                                             "checkpoint_every=2", "sample_every=1000", "log_every=1"])


def _train(out: pathlib.Path | None, config: Config | None = None, *, backend: str = "stub", version: str = "1",
           changes: tuple[str, ...] = (), **options) -> RunDir:
    return train_session(config, StubTrainer, backend=backend, versions={backend: version}, out=out,
                         resume=config is None, resume_changes=changes, show_progress=False, **options)


def _snapshot(folder: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_resume_rewrites_config_json_to_what_the_run_trains_under_and_records_each_resume(tmp_path):
    run = _train(tmp_path / "run", _config(iterations=4))
    later = _train(tmp_path / "later", _config(iterations=2))
    created = run.record()["created"]
    _train(run.path, backend="other", version="2", changes=("train.iterations=6",))
    record = run.record()
    assert record["config"]["train"]["iterations"] == 6 and record["backend"] == "other"
    assert record["versions"]["other"] == "2" and "stub" not in record["versions"] and record["created"] == created
    assert [{k: v for k, v in r.items() if k != "time"} for r in record["resumes"]] == [{
        "from_step": 4, "backend": "other",
        "changes": {"train.iterations": [4, 6], "backend": ["stub", "other"],
                    "versions.stub": ["1", None], "versions.other": [None, "2"]}}]
    assert run.config() == load_checkpoint(run.last_checkpoint).config  # config.json is the run's configuration
    _train(run.path, backend="other", version="2", changes=("train.iterations=8",))  # its own checkpoint passes
    assert [(r["from_step"], r["changes"]) for r in run.record()["resumes"]][1:] == [(6, {"train.iterations": [6, 8]})]
    assert load_checkpoint(run.last_checkpoint).step == 8 and run.config().train.iterations == 8
    assert newest_run(tmp_path).path == later.path  # "newest" is still the newest created


def test_a_run_whose_config_json_predates_resume_records_still_resumes(tmp_path):
    run = _train(tmp_path / "run", _config(iterations=4))
    _train(run.path, changes=("train.iterations=6",))
    stale = {key: value for key, value in run.record().items() if key != "resumes"}  # as older versions left it
    stale["config"]["train"]["iterations"] = 4
    run.config_path.write_text(json.dumps(stale))
    _train(run.path, changes=("train.iterations=8",))
    assert load_checkpoint(run.last_checkpoint).step == 8
    assert [(r["from_step"], r["changes"]) for r in run.record()["resumes"]] == [(6, {"train.iterations": [4, 8]})]


def test_a_last_checkpoint_of_another_run_is_refused_in_one_line_naming_the_key(tmp_path, monkeypatch, capsys):
    ring = _train(tmp_path / "ring", _config("ring8", iterations=2))
    grid = _train(tmp_path / "grid", _config("grid25", iterations=2))
    shutil.copyfile(ring.last_checkpoint, grid.last_checkpoint)
    before = _snapshot(grid.path)
    refusal = (f"{grid.last_checkpoint} is not this run's checkpoint: its data.dataset is 'ring8' "
               f"where {grid.config_path} has 'grid25'; use the run it came from instead")
    with pytest.raises(CheckpointError) as refused:
        _train(grid.path, changes=("train.iterations=4",))
    assert str(refused.value) == refusal
    with pytest.raises(CheckpointError) as refused:  # nor is it sampled as this run's (`ddgan sample --run`)
        session.resolve_checkpoint(grid.path, None)
    assert str(refused.value) == refusal
    assert session.resolve_checkpoint(ring.path, None) == ring.last_checkpoint
    from cli.main import app

    for command in (["sample", "--run", str(grid.path), "--out", str(tmp_path / "s.png")],
                    ["eval", "--run", str(grid.path)], ["plot", str(grid.path)]):
        monkeypatch.setattr("sys.argv", ["ddgan", *command])
        with pytest.raises(SystemExit) as stopped:
            app()
        assert stopped.value.code == 2 and capsys.readouterr().err.strip() == f"error: {refusal}", command
    assert _snapshot(grid.path) == before


def test_runs_without_out_each_claim_a_directory_of_their_own(tmp_path, monkeypatch):
    default = tmp_path / "runs" / "ring8-toy2d-20260101-000000"
    monkeypatch.setattr(session, "default_run_path", lambda config: default)
    default.mkdir(parents=True)  # claimed by a launch in the same second that has not written to it yet
    first, second = (_train(None, _config(iterations=2), stop_at=1) for _ in range(2))
    assert (first.path.name, second.path.name) == (f"{default.name}-2", f"{default.name}-3")
    assert not any(default.iterdir()) and first.config_path.is_file() and second.config_path.is_file()


def test_other_ranks_train_in_the_directory_named_for_all_and_create_nothing(tmp_path):
    with pytest.raises(DDGANError, match="multi-process training needs an explicit --out"):
        _train(None, _config(), rank=1, world_size=2)  # no rank may pick a name of its own
    run = _train(tmp_path / "ddp", _config(iterations=1), rank=1, world_size=2)
    assert run.path == tmp_path / "ddp" and not run.path.exists()  # rank 0 creates and writes it


def test_a_corrupt_last_checkpoint_names_the_newest_periodic_one_and_how_to_use_it(tmp_path):
    run = _train(tmp_path / "run", _config(iterations=4))
    run.last_checkpoint.write_bytes(b"\xff" * 64)
    newest = run.step_checkpoint(4)
    with pytest.raises(CheckpointError) as unreadable:
        _train(run.path, changes=("train.iterations=6",))
    assert str(unreadable.value).startswith(f"{run.last_checkpoint}: not a readable checkpoint (truncated or corrupt: ")
    assert str(unreadable.value).endswith(
        f"); the run's newest periodic checkpoint is {newest}: sample it with --checkpoint {newest}, "
        f"or resume from it by copying it over {run.last_checkpoint}")
    assert "\n" not in str(unreadable.value)
    shutil.copyfile(newest, run.last_checkpoint)  # the advice works
    _train(run.path, changes=("train.iterations=6",))
    assert load_checkpoint(run.last_checkpoint).step == 6


class StoppedAt(StubTrainer):
    """A StubTrainer whose step `at` (0-based) is interrupted as a signal would: Ctrl-C or SIGTERM."""

    at, signal = 2, KeyboardInterrupt()

    def train_step(self, batch: np.ndarray, step: int) -> dict[str, float]:
        if step == self.at:
            raise self.signal
        return super().train_step(batch, step)


@pytest.mark.parametrize("signal", [KeyboardInterrupt(), SystemExit(143)])
def test_a_run_stopped_by_a_signal_says_which_step_it_keeps_and_how_to_go_on(tmp_path, capsys, monkeypatch, signal):
    monkeypatch.setattr(StoppedAt, "signal", signal)
    out = tmp_path / "run"
    with pytest.raises(type(signal)) as stopped:
        train_session(_config(iterations=6), StoppedAt, backend="stub", versions={}, out=out, show_progress=False)
    assert stopped.value is signal  # re-raised as it came: SIGTERM's exit status stays 143
    assert capsys.readouterr().err.strip() == (
        f"stopped at step 2 of 6; {out} keeps its checkpoint of step 2: `ddgan train --resume --out {out}` continues from there")
    assert load_checkpoint(RunDir(out).last_checkpoint).step == 2
    monkeypatch.setattr(StoppedAt, "at", 3)  # resumed from step 2, stopped after one more: still step 2's checkpoint
    with pytest.raises(type(signal)):
        train_session(None, StoppedAt, backend="stub", versions={}, out=out, resume=True, show_progress=False)
    assert capsys.readouterr().err.strip().endswith(f"stopped at step 3 of 6; {out} keeps its checkpoint of step 2: "
                                                   f"`ddgan train --resume --out {out}` continues from there")


def test_a_run_stopped_before_a_checkpoint_or_a_log_line_says_what_is_left(tmp_path, capsys, monkeypatch):
    sparse = apply_overrides(_config(iterations=6), ["checkpoint_every=1000"])
    with pytest.raises(KeyboardInterrupt):
        train_session(sparse, StoppedAt, backend="stub", versions={}, out=tmp_path / "a", show_progress=False)
    assert capsys.readouterr().err.strip() == (
        f"stopped at step 2 of 6; {tmp_path / 'a'} has no checkpoint yet (one every 1000 steps), so "
        f"`ddgan train --resume --out {tmp_path / 'a'}` starts it again from step 0")
    monkeypatch.setattr(StoppedAt, "at", 0)
    with pytest.raises(KeyboardInterrupt):
        train_session(sparse, StoppedAt, backend="stub", versions={}, out=tmp_path / "b", show_progress=False)
    assert capsys.readouterr().err.strip() == f"stopped at step 0 of 6, before anything was logged: {tmp_path / 'b'} was removed"
    assert not (tmp_path / "b").exists()
