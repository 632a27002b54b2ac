"""The CLI's wiring: what each command hands on (seeds, steps, --fast), what it refuses up front,
and how an OS error reaching the top level is reported. Backends are replaced by small fakes, so
nothing here trains or needs a framework."""

import errno
import json
import pathlib
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import cli.main  # the entry point; importing it registers the commands
from cli import eval_cmd, plot_cmd, sample_cmd, schedule_cmd
from cli.app import app as typer_app
from cli.train_cmd import named_options, resolve_config
from ddgan_core import sample_output
from ddgan_core.checkpoint import save_checkpoint
from ddgan_core.config import preset
from ddgan_core.datasets import load_dataset
from ddgan_core.kernels import coefficient_tables
from ddgan_core.rundir import RunDir
from ddgan_core.schedule import make_schedule


def _ddgan(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the real entry point (`cli.main.app`) in-process: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["ddgan", *args])
    try:
        cli.main.app()
        code = 0
    except SystemExit as stopped:
        code = stopped.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_one_line_error(code: int, err: str, text: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert text in err, err


def _config(dataset: str, timesteps: int):
    """The configuration `ddgan train --dataset DATASET -T TIMESTEPS` would train."""
    return resolve_config(None, dataset, named_options(dataset, None, timesteps, None, None, None, None))


def _fake_run(path: pathlib.Path, dataset: str, timesteps: int, checkpoint: bool = True) -> pathlib.Path:
    """A run directory with config.json, one logged step and (optionally) a checkpoint of its
    configuration without weights (the fake entries never load it; the CLI reads its header)."""
    run = RunDir.create(path, _config(dataset, timesteps), "torch", {})
    run.log({"step": 1, "loss_d": 1.0, "loss_g": 1.0, "r1": 0.1, "lr_g": 1e-3, "lr_d": 2e-3, "images_per_s": 10.0})
    if checkpoint:
        save_checkpoint(run.last_checkpoint, {"placeholder": np.zeros(1, np.float32)}, step=1, config=run.config())
    return run.path


class _FakeEntry:
    """A backend entry module whose `sample` and `sample_stream` record their arguments (a call is
    a sampling begun) and return `points` (the stream in batches of 3)."""

    def __init__(self, points: np.ndarray, config) -> None:
        self.points, self.config, self.calls = points, config, []

    def pick_device(self, name):
        return name

    def sample(self, source, n, steps, seed, **kwargs):
        self.calls.append({"source": source, "n": n, "steps": steps, "seed": seed, **kwargs})
        return self.points[:n], None, self.config

    def sample_stream(self, source, n, steps, seed, **kwargs):
        self.calls.append({"source": source, "n": n, "steps": steps, "seed": seed, "stream": True, **kwargs})
        return self.config, (self.points[start : min(start + 3, n)] for start in range(0, n, 3))


def _install(monkeypatch, module, entry: _FakeEntry) -> list[str]:
    loaded: list[str] = []

    def load_backend(name):
        loaded.append(name)
        return entry

    monkeypatch.setattr(module, "load_backend", load_backend)
    if hasattr(module, "checkpoint_config"):  # `sample` reads the checkpoint's header first: the fake's configuration
        monkeypatch.setattr(module, "checkpoint_config", lambda path: entry.config)
    return loaded


def test_an_os_error_inside_a_command_is_one_line_and_exit_2(monkeypatch, capsys):
    def full_disk(schedule):
        raise OSError(errno.ENOSPC, "No space left on device", "tables.json")

    monkeypatch.setattr(schedule_cmd, "coefficient_tables", full_disk)
    code, out, err = _ddgan(monkeypatch, capsys, "schedule", "--json")
    assert err == "error: No space left on device: tables.json\n"
    _assert_one_line_error(code, err, "No space left on device")
    assert out == ""


def test_a_failed_write_names_the_out_asked_for_not_its_temporary_file(monkeypatch, capsys, tmp_path):
    entry = _FakeEntry(np.zeros((64, 2)), _config("grid25", 4))
    _install(monkeypatch, sample_cmd, entry)

    def full_disk(points, path, title, mixture=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))  # as a writer reports its own path

    monkeypatch.setattr(sample_output, "save_point_plot", full_disk)
    out = tmp_path / "x.png"
    code, _, err = _ddgan(monkeypatch, capsys, "sample", "--checkpoint", str(tmp_path / "last.safetensors"),
                          "--out", str(out))
    assert err == f"error: No space left on device: {out}\n"
    _assert_one_line_error(code, err, "No space left on device")
    assert list(tmp_path.iterdir()) == []  # and the partial file is gone


def test_a_failed_write_into_a_folder_names_the_folder_asked_for(monkeypatch, capsys, tmp_path):
    from PIL import Image

    entry = _FakeEntry(np.zeros((4, 3, 8, 8), np.float32), _config("cifar10", 4))
    _install(monkeypatch, sample_cmd, entry)

    def full_disk(image, path, **options):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(Image.Image, "save", full_disk)
    out = tmp_path / "folder"
    code, _, err = _ddgan(monkeypatch, capsys, "sample", "-n", "4", "--checkpoint", str(tmp_path / "last.safetensors"),
                          "--out", str(out))
    _assert_one_line_error(code, err, "No space left on device: ")
    assert err.split(": ")[-1].startswith(str(out / "0000"))  # a PNG in it, not in its partial file
    assert list(tmp_path.iterdir()) == []


def test_mnist_trains_the_tiny_preset_by_default():
    settings = named_options("mnist", None, None, None, None, None, None)
    config = resolve_config(None, "mnist", settings)
    tiny = preset("tiny")
    assert config.preset == "tiny"
    assert config == resolve_config("tiny", "mnist", settings)
    assert (config.generator.nf, config.data.resolution, config.train.batch_size) == (
        tiny.generator.nf, tiny.data.resolution, tiny.train.batch_size) == (16, 16, 8)
    assert config.data.dataset == "mnist" and config.data.random_flip is False
    assert config.generator.nf != preset("cifar10").generator.nf


def test_sample_refuses_no_samples_before_sampling(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    entry = _FakeEntry(np.zeros((64, 2)), _config("grid25", 4))
    _install(monkeypatch, sample_cmd, entry)
    code, _, err = _ddgan(monkeypatch, capsys, "sample", "-n", "0", "--checkpoint", "last.safetensors",
                          "--out", str(tmp_path / "x.npz"))
    _assert_one_line_error(code, err, "-n must be at least 1, got 0")
    assert entry.calls == [] and not (tmp_path / "x.npz").exists()


def test_sample_refuses_a_trajectory_into_a_png(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    entry = _FakeEntry(np.zeros((64, 2)), _config("grid25", 4))
    _install(monkeypatch, sample_cmd, entry)
    code, _, err = _ddgan(monkeypatch, capsys, "sample", "--trajectory", "--checkpoint", "last.safetensors",
                          "--out", str(tmp_path / "x.png"))
    _assert_one_line_error(code, err, "--trajectory needs an .npz --out")
    assert entry.calls == [] and not (tmp_path / "x.png").exists()


def test_sample_steps_reach_the_picture_title(monkeypatch, capsys, tmp_path):
    entry = _FakeEntry(np.zeros((64, 2)), _config("grid25", 4))
    _install(monkeypatch, sample_cmd, entry)
    titles: list[str] = []

    def save_point_plot(points, path, title, mixture=None):
        titles.append(title)
        pathlib.Path(path).write_bytes(b"plot")
        return pathlib.Path(path)

    monkeypatch.setattr(sample_output, "save_point_plot", save_point_plot)
    code, _, err = _ddgan(monkeypatch, capsys, "sample", "--steps", "2", "-n", "10", "--checkpoint",
                          str(tmp_path / "last.safetensors"), "--out", str(tmp_path / "x.png"))
    assert code == 0, err
    assert entry.calls[0]["steps"] == 2
    assert titles == ["10 samples, grid25, K = 2 of T = 4 steps"]


def test_sample_fast_reaches_the_torch_backend(monkeypatch, capsys, tmp_path):
    entry = _FakeEntry(np.zeros((64, 2)), _config("grid25", 4))
    loaded = _install(monkeypatch, sample_cmd, entry)
    code, _, err = _ddgan(monkeypatch, capsys, "sample", "--fast", "-n", "8", "--seed", "3", "--checkpoint",
                          str(tmp_path / "last.safetensors"), "--out", str(tmp_path / "x.npz"))
    assert code == 0, err
    assert loaded == ["torch"]
    (call,) = entry.calls
    assert call["fast"] is True and call["n"] == 8 and call["seed"] == 3 and call["stream"] is True
    with np.load(tmp_path / "x.npz") as stored:
        assert stored["samples"].shape == (8, 2) and str(stored["dataset"]) == "grid25"
        assert (int(stored["timesteps"]), int(stored["steps"]), int(stored["seed"])) == (4, 4, 3)  # how they were drawn
    # and without --fast the backend is not asked for its fast path
    code, _, err = _ddgan(monkeypatch, capsys, "sample", "-n", "8", "--checkpoint",
                          str(tmp_path / "last.safetensors"), "--out", str(tmp_path / "y.npz"))
    assert code == 0, err
    assert "fast" not in entry.calls[1]


def test_eval_of_a_run_samples_with_the_given_seed(monkeypatch, capsys, tmp_path):
    run = _fake_run(tmp_path / "run", "grid25", 2)
    centres = load_dataset("grid25").mixture.means
    entry = _FakeEntry(np.tile(centres, (4, 1)), _config("grid25", 2))
    _install(monkeypatch, eval_cmd, entry)
    code, out, err = _ddgan(monkeypatch, capsys, "eval", "--run", str(run), "-n", "100", "--seed", "7", "--json")
    assert code == 0, err
    assert [call["seed"] for call in entry.calls] == [7]
    assert entry.calls[0]["n"] == 100 and entry.calls[0]["source"] == RunDir(run).last_checkpoint
    payload = json.loads(out)
    assert payload["seed"] == 7 and payload["n"] == 100
    assert payload["metrics"]["modes_covered"] == 25 and payload["metrics"]["high_quality_fraction"] == 1.0


def test_schedule_table_columns_hold_their_posterior_coefficients():
    result = CliRunner().invoke(typer_app, ["schedule", "--timesteps", "4"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.stdout.splitlines() if "│" in line]
    header = [cell.strip() for cell in next(line for line in result.stdout.splitlines() if "posterior c0" in line)
              .split("┃")[1:-1]]
    column = {name: header.index(name) for name in ("k", "posterior c0", "posterior ct", "posterior var")}
    by_k = {row[column["k"]]: row for row in rows}
    expected = coefficient_tables(make_schedule(4, 0.1, 20.0, "vp"))["posterior"]
    for k in range(1, 5):
        row = by_k[str(k)]
        assert float(row[column["posterior c0"]]) == pytest.approx(expected["coef_x0"][k - 1], abs=5e-6)
        assert float(row[column["posterior ct"]]) == pytest.approx(expected["coef_xt"][k - 1], abs=5e-6)
        assert float(row[column["posterior var"]]) == pytest.approx(expected["variance"][k - 1], abs=5e-6)
    # DESIGN 2.2's values, row k = 2 and k = 3
    assert [by_k["2"][column[c]] for c in ("posterior c0", "posterior ct", "posterior var")] == [
        "0.66578", "0.20158", "0.44082"]
    assert [by_k["3"][column[c]] for c in ("posterior c0", "posterior ct")] == ["0.26919", "0.19300"]


def test_plot_refuses_an_out_that_is_a_regular_file(monkeypatch, capsys, tmp_path):
    run = _fake_run(tmp_path / "run", "grid25", 2, checkpoint=False)
    afile = tmp_path / "afile"
    afile.write_text("mine")
    code, out, err = _ddgan(monkeypatch, capsys, "plot", str(run), "--out", str(afile))
    _assert_one_line_error(code, err, "is a file: name a folder")
    assert afile.read_text() == "mine" and "wrote" not in out


def test_plot_keeps_pictures_of_a_users_out_folder_unless_forced_and_redraws_its_own(monkeypatch, capsys, tmp_path):
    run = _fake_run(tmp_path / "run", "grid25", 2, checkpoint=False)  # curves only: no chain to sample
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "curves.png").write_bytes(b"my picture")
    code, out, err = _ddgan(monkeypatch, capsys, "plot", str(run), "--out", str(mine))
    _assert_one_line_error(code, err, f"--out {mine / 'curves.png'} exists: pass --force to replace it")
    assert (mine / "curves.png").read_bytes() == b"my picture" and "wrote" not in out
    code, out, err = _ddgan(monkeypatch, capsys, "plot", str(run), "--out", str(mine), "--force")
    assert code == 0, err
    assert (mine / "curves.png").read_bytes().startswith(b"\x89PNG")
    for _ in range(2):  # RUN/plots is plot's own: drawn again each time
        code, out, err = _ddgan(monkeypatch, capsys, "plot", str(run))
        assert code == 0 and f"wrote {RunDir(run).path / 'plots' / 'curves.png'}" in out, err


class _StepRecorder:
    """A chain model whose `step` records (level, seed) and draws standard normals from that seed."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def step(self, x_t: np.ndarray, level: int, seed: int) -> np.ndarray:
        self.calls.append((level, seed))
        return np.random.default_rng(seed).normal(size=x_t.shape)


def test_steps_png_draws_each_level_from_its_own_seed(monkeypatch, tmp_path):
    monkeypatch.setattr(plot_cmd, "STEP_DRAWS", 50)
    saved: list[pathlib.Path] = []

    def save(fig, path):
        plot_cmd._pyplot().close(fig)
        saved.append(path)
        return path

    monkeypatch.setattr(plot_cmd, "_save", save)
    config = _config("mixture1d", 3)
    model = _StepRecorder()
    plot_cmd.plot_steps(model, load_dataset("mixture1d").mixture, config, 5, tmp_path / "steps.png")
    assert model.calls == [(3, 8), (2, 7), (1, 6)]
    assert saved == [tmp_path / "steps.png"]


@pytest.mark.parametrize("args, message", [
    (("--iterations", "5", "--set", "train.iterations=10"), "--set train.iterations=10 and --iterations both set"),
    (("--seed", "1", "--set", "seed=2"), "--set seed=2 and --seed both set train.seed"),
    (("--fast", "--set", "compile=false"), "--set compile=false and --fast both set train.compile"),
])
def test_train_refuses_a_set_that_contradicts_a_named_option(monkeypatch, capsys, tmp_path, args, message):
    code, _, err = _ddgan(monkeypatch, capsys, "train", "-d", "ring8", "--out", str(tmp_path / "run"), *args)
    _assert_one_line_error(code, err, message)
    assert not (tmp_path / "run").exists()


def test_sample_keeps_an_existing_file_unless_forced(monkeypatch, capsys, tmp_path):
    entry = _FakeEntry(np.ones((64, 2)), _config("grid25", 4))
    _install(monkeypatch, sample_cmd, entry)
    out = tmp_path / "x.npz"
    out.write_bytes(b"2,500 samples from yesterday")
    args = ("sample", "-n", "8", "--checkpoint", str(tmp_path / "last.safetensors"), "--out", str(out))
    code, _, err = _ddgan(monkeypatch, capsys, *args)
    _assert_one_line_error(code, err, f"--out {out} exists: pass --force to replace it")
    assert entry.calls == [] and out.read_bytes() == b"2,500 samples from yesterday"  # refused before sampling
    code, _, err = _ddgan(monkeypatch, capsys, *args, "--force", "--steps", "2")
    assert code == 0, err
    with np.load(out) as stored:
        assert stored["samples"].shape == (8, 2) and (int(stored["steps"]), int(stored["seed"])) == (2, 0)


@pytest.mark.parametrize("args, message", [
    (("--steps", "5"), "--steps must be an integer between 1 and T = 4, got 5"),
    (("--steps", "5", "--trajectory"), "--steps must be an integer between 1 and T = 4, got 5"),
    (("--backend", "foo"), "unknown backend 'foo' (known: torch, tinygrad)"),
])
def test_sample_names_a_bad_input_before_refusing_an_existing_out(monkeypatch, capsys, tmp_path, args, message):
    entry = _FakeEntry(np.ones((64, 2)), _config("grid25", 4))
    if "--backend" not in args:
        _install(monkeypatch, sample_cmd, entry)
    out = tmp_path / "x.npz"
    out.write_bytes(b"kept")
    code, _, err = _ddgan(monkeypatch, capsys, "sample", "--checkpoint", str(tmp_path / "last.safetensors"),
                          "--out", str(out), *args)
    _assert_one_line_error(code, err, message)
    assert entry.calls == [] and out.read_bytes() == b"kept"


def test_sample_names_a_missing_run_before_refusing_an_existing_out(monkeypatch, capsys, tmp_path):
    entry = _FakeEntry(np.ones((64, 2)), _config("grid25", 4))
    _install(monkeypatch, sample_cmd, entry)
    out = tmp_path / "x.png"
    out.write_bytes(b"kept")
    code, _, err = _ddgan(monkeypatch, capsys, "sample", "--run", str(tmp_path / "nonexist"), "--out", str(out))
    _assert_one_line_error(code, err, f"{tmp_path / 'nonexist'} is not a run directory")
    assert entry.calls == [] and out.read_bytes() == b"kept"
