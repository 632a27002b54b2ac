"""Run directories (DESIGN 6) and the output-path checks that keep their files safe."""

import os

import pytest

from ddgan_core.config import preset
from ddgan_core.errors import DDGANError
from ddgan_core.output_paths import check_output_folder
from ddgan_core.rundir import RunDir, RunDirError, check_output_file, last_checkpoint_fallback, newest_run


def _run(root, name: str, when: float, checkpoint: bool) -> RunDir:
    run = RunDir.create(root / name, preset("tiny"), "torch", {})
    if checkpoint:
        run.last_checkpoint.write_bytes(b"weights")
    os.utime(run.config_path, (when, when))
    return run


def test_newest_run_with_a_checkpoint_skips_newer_runs_that_never_wrote_one(tmp_path):
    _run(tmp_path, "good", 1e9, checkpoint=True)
    _run(tmp_path, "failed", 2e9, checkpoint=False)  # e.g. a run that ran out of memory at its first step
    assert newest_run(tmp_path).path.name == "failed"  # `plot` can still show its curves
    assert newest_run(tmp_path, with_checkpoint=True).path.name == "good"
    (tmp_path / "good" / "checkpoints" / "last.safetensors").unlink()
    with pytest.raises(RunDirError, match="no runs with a checkpoint under .*: train one first, or pass RUN"):
        newest_run(tmp_path, with_checkpoint=True, hint="pass RUN")


def test_a_cut_off_last_line_is_skipped_and_after_resume_the_next_record_starts_a_line_of_its_own(tmp_path):
    run = RunDir.create(tmp_path / "run", preset("tiny"), "torch", {})
    run.log({"step": 10, "loss_d": 1.0})
    with run.metrics_path.open("a") as handle:
        handle.write('{"step": 20, "loss_d": 1.')  # killed while logging
    assert run.read_metrics() == [{"step": 10, "loss_d": 1.0}]
    run.truncate_metrics(10)  # resumed from its checkpoint at step 10
    run.log({"step": 20, "loss_d": 0.5})
    with run.metrics_path.open("a") as handle:
        handle.write('[1, 2]\nnot json\n')
    run.log({"step": 30, "loss_d": 0.25})
    assert [r["step"] for r in run.read_metrics()] == [10, 20, 30]


@pytest.mark.parametrize("where", ["a file", "under a file", "not empty"])
def test_a_new_run_refuses_a_path_it_cannot_own(tmp_path, where):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    path = {"a file": tmp_path / "afile", "under a file": tmp_path / "afile" / "run", "not empty": tmp_path / "busy"}[where]
    with pytest.raises(DDGANError):
        RunDir.create(path, preset("tiny"), "torch", {})
    assert (tmp_path / "afile").read_text() == "x" and (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_output_files_never_replace_a_runs_own_files(tmp_path):
    run = RunDir.create(tmp_path / "run", preset("tiny"), "torch", {})
    run.log({"step": 1})
    run.last_checkpoint.write_bytes(b"weights")
    (run.samples / "step-0000001.png").write_bytes(b"png")
    (run.path / "plots").mkdir()
    (run.path / "plots" / "chain.png").write_bytes(b"png")
    for own in (run.config_path, run.metrics_path, run.last_checkpoint, run.samples / "step-0000001.png"):
        with pytest.raises(DDGANError, match="would replace a file of the run"):
            check_output_file(own)
    check_output_file(run.samples / "new.png")  # new files may go anywhere
    check_output_file(run.path / "plots" / "chain.png")  # `plot` redraws its own pictures
    check_output_file(run.path / "samples.npz")
    with pytest.raises(DDGANError, match="is a folder"):
        check_output_file(run.samples)
    with pytest.raises(DDGANError, match="is a file, not a folder"):
        check_output_file(run.config_path / "x.png")
    with pytest.raises(DDGANError, match="is a file: name a folder"):
        check_output_folder(run.metrics_path)


def test_a_run_that_never_started_is_removed_and_any_other_is_kept(tmp_path):
    fresh = RunDir.create(tmp_path / "fresh", preset("tiny"), "torch", {})
    fresh.remove_if_never_started()
    assert not fresh.path.exists() and tmp_path.is_dir()
    logged = RunDir.create(tmp_path / "logged", preset("tiny"), "torch", {})
    logged.log({"step": 0})
    mine = RunDir.create(tmp_path / "mine", preset("tiny"), "torch", {})
    (mine.path / "notes.txt").write_text("mine")
    sampled = RunDir.create(tmp_path / "sampled", preset("tiny"), "torch", {})
    (sampled.samples / "step-0000000.png").write_bytes(b"png")
    for run in (logged, mine, sampled):
        run.remove_if_never_started()
        assert run.config_path.is_file(), run.path


def test_truncating_at_a_checkpoint_drops_later_records_and_keeps_every_other_line(tmp_path):
    run = RunDir.create(tmp_path / "run", preset("tiny"), "torch", {})
    for step in (1, 2, 3, 4):
        run.log({"step": step})
    with run.metrics_path.open("a") as handle:
        handle.write("a line of the user's\n")
    run.log({"step": 5})
    run.truncate_metrics(2)
    assert run.metrics_path.read_text().splitlines() == ['{"step": 1}', '{"step": 2}', "a line of the user's"]
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoints", "config.json", "metrics.jsonl", "samples"]


@pytest.mark.parametrize("text, message", [
    ("{bad", "is not valid JSON \\(Expecting property name enclosed in double quotes, line 1\\)"),
    ("", "is not valid JSON"),
    ("[1, 2]", "holds no 'config' object"),
    ('{"backend": "torch"}', "holds no 'config' object"),
])
def test_a_broken_config_json_is_a_one_line_error(tmp_path, text, message):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(RunDirError, match=message) as info:
        RunDir.existing(tmp_path).config()
    assert "\n" not in str(info.value)


def test_a_default_name_that_is_taken_by_anything_goes_to_the_next_free_one(tmp_path):
    path = tmp_path / "runs" / "grid25-toy2d-20260101-000000"
    path.parent.mkdir()
    path.write_text("a file of the user's")
    path.with_name(path.name + "-2").mkdir()  # empty: claimed by a launch that has not written to it yet
    made = [RunDir.create_unique(path, preset("tiny"), "torch", {}).path.name for _ in range(2)]
    assert made == [path.name + "-3", path.name + "-4"]
    assert path.read_text() == "a file of the user's" and not any(path.with_name(path.name + "-2").iterdir())


def test_a_runs_newest_periodic_checkpoint_goes_by_step_and_is_named_only_for_its_last_checkpoint(tmp_path):
    run = RunDir.create(tmp_path / "run", preset("tiny"), "torch", {})
    assert run.newest_step_checkpoint() is None and last_checkpoint_fallback(run.last_checkpoint) == ""
    for name in ("step-9999999.safetensors", "step-10000000.safetensors", "step-20000000.123.tmp.safetensors"):
        (run.checkpoints / name).write_bytes(b"")  # the last: a partial file of an interrupted save
    newest = run.checkpoints / "step-10000000.safetensors"
    assert run.newest_step_checkpoint() == newest
    assert last_checkpoint_fallback(run.last_checkpoint) == (
        f"; the run's newest periodic checkpoint is {newest}: sample it with --checkpoint {newest}, "
        f"or resume from it by copying it over {run.last_checkpoint}")
    assert last_checkpoint_fallback(newest) == ""  # a periodic one is no run's last
    (tmp_path / "copy" / "checkpoints").mkdir(parents=True)  # a run's layout, but no run (no config.json)
    assert last_checkpoint_fallback(tmp_path / "copy" / "checkpoints" / "last.safetensors") == ""


def test_a_file_given_as_a_run_is_named_a_file_with_the_run_it_is_in(tmp_path):
    run = RunDir.create(tmp_path / "run", preset("toy2d"), "torch", {})
    (run.checkpoints / "last.safetensors").write_bytes(b"")
    for inside in (run.config_path, run.checkpoints / "last.safetensors"):
        with pytest.raises(RunDirError, match=f"^{inside} is a file, not a run directory: the run it is in is {run.path}$"):
            RunDir.existing(inside)
    loose = tmp_path / "notes.txt"
    loose.write_text("")
    with pytest.raises(RunDirError, match=f"^{loose} is a file, not a run directory$"):
        RunDir.existing(loose)
