"""The framework-free commands: schedule, info, figure, and one-line errors for bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli.app import app
from cli.main import COMMAND_MODULES  # noqa: F401  (registers the commands)
from ddgan_core.errors import DDGANError

runner = CliRunner()


def test_schedule_json_prints_the_design_values():
    result = runner.invoke(app, ["schedule", "--timesteps", "4", "--json"])
    assert result.exit_code == 0
    tables = json.loads(result.stdout)
    np.testing.assert_allclose(tables["betas"], [0.47826, 0.84921, 0.95642, 0.98740], atol=5e-6)
    np.testing.assert_allclose(np.sqrt(tables["alphas_cumprod"][1:]), [0.72232, 0.28049, 0.05856, 0.00657], atol=5e-6)
    assert set(tables["posterior"]) == {"coef_x0", "coef_xt", "variance"}
    # DESIGN 2.2's posterior of x_{t-1} given x_t and x_0, t = 1..4, evaluated from the table above
    np.testing.assert_allclose(tables["posterior"]["coef_x0"], [1.0, 0.66578, 0.26919, 0.05782], atol=5e-6)
    np.testing.assert_allclose(tables["posterior"]["coef_xt"], [0.0, 0.20158, 0.19300, 0.11185], atol=5e-6)
    np.testing.assert_allclose(tables["posterior"]["variance"], [0.0, 0.44082, 0.88420, 0.98406], atol=5e-6)


def test_schedule_table_lists_every_step():
    result = runner.invoke(app, ["schedule", "-T", "2"])
    assert result.exit_code == 0
    assert "0.92132" in result.stdout and "0.99945" in result.stdout


def test_info_json_round_trips_a_preset_with_overrides():
    result = runner.invoke(app, ["info", "--preset", "cifar10", "--set", "timesteps=2", "--json"])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["diffusion"]["timesteps"] == 2 and payload["generator"]["nf"] == 128


def test_info_says_which_preset_it_shows():
    result = runner.invoke(app, ["info", "--set", "timesteps=2"])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "preset toy2d, with timesteps=2: mlp generator, mlp discriminator"


def test_figure_keeps_an_existing_file_unless_forced_and_then_writes_a_png(tmp_path):
    out = tmp_path / "fig.png"
    out.write_bytes(b"the figure of yesterday")
    result = runner.invoke(app, ["figure", "denoising", "--out", str(out)])
    assert isinstance(result.exception, DDGANError), result.output
    assert str(result.exception) == f"--out {out} exists: pass --force to replace it, or name another file"
    assert out.read_bytes() == b"the figure of yesterday"
    result = runner.invoke(app, ["figure", "denoising", "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.size[0] > 1000 and image.size[1] > 500
    assert list(tmp_path.iterdir()) == [out]  # written through a temporary file, gone now


def _ddgan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=120)


def test_bad_input_gives_a_one_line_error_and_non_zero_exit(tmp_path):
    (tmp_path / "afile").write_text("a file, not a folder")
    (tmp_path / "folder.png").mkdir()
    for args in (
        ["train", "--iterations", "abc"],  # usage errors: one line, not Typer's boxed panel
        ["sample", "--bogus"],
        ["figure", "nosuch"],
        ["schedule", "--timesteps", "99999999999999999999"],
        ["schedule", "--beta-max", "nan"],
        ["schedule", "--beta-max", "1e10"],  # and no numpy warning line before it
        ["figure", "denoising", "--out", str(tmp_path / "afile" / "fig.png")],  # paths the OS refuses
        ["figure", "denoising", "--out", str(tmp_path / "folder.png")],
        ["schedule", "--kind", "geometric"],
        ["schedule", "--timesteps", "0"],
        ["info", "--preset", "imagenet"],
        ["info", "--set", "nonsense=1"],
        ["info", "--preset", "tiny", "--set", "ema_decay=1.5"],
        ["figure", "denoising", "--out", str(tmp_path / "fig.txt")],
        ["sample", "--seed", "-1"],  # refused before any checkpoint is looked for
        ["eval", "--seed", "-3"],
        ["train", "--seed", "-1"],
        ["train", "--seed", "20000000000000"],  # torch's generator overflowed on seed * 1,000,003
        ["sample", "--seed", "99999999999999999999999"],
    ):
        result = _ddgan(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert "--seed" not in args or "--seed must be an integer from 0 to 2**32 - 1" in result.stderr


def test_train_fast_is_bf16_autocast_with_the_compiled_step():
    from cli.train_cmd import named_options, resolve_config

    config = resolve_config("tiny", "cifar10", named_options("cifar10", None, None, None, None, None, None, fast=True))
    assert (config.train.precision, config.train.compile) == ("bf16", True)
    plain = resolve_config("tiny", "cifar10", named_options("cifar10", None, None, None, None, None, None))
    assert (plain.train.precision, plain.train.compile) == ("fp32", False)


@pytest.mark.parametrize(
    ("preset_name", "dataset", "extra", "flips"),
    [
        (None, "cifar10", [], True),
        (None, "stackedmnist", [], False),  # the cifar10 preset, unflipped for digits
        ("tiny", "mnist", [], False),
        ("tiny", None, ["data.dataset=stackedmnist"], False),  # the dataset named by --set
        ("tiny", "mnist", ["data.random_flip=true"], True),  # the user's explicit choice wins
        ("cifar10", "imagefolder", [], True),
    ],
)
def test_digits_train_without_random_flips_unless_asked(preset_name, dataset, extra, flips):
    from cli.train_cmd import named_options, resolve_config

    config = resolve_config(preset_name, dataset, named_options(dataset, None, None, None, None, None, None) + extra)
    assert config.data.random_flip is flips


def test_a_samples_plot_names_the_chain_it_shows():
    from ddgan_core.pictures import samples_title

    assert samples_title(2500, "grid25", 4) == samples_title(2500, "grid25", 4, steps=4) == "2,500 samples, grid25, T = 4"
    assert samples_title(2500, "grid25", 4, steps=2) == "2,500 samples, grid25, K = 2 of T = 4 steps"


def test_flags_are_shown_without_a_value_in_help():
    """Typer shows a flag as `--resume <bool>`, which invites `--resume true` (an error), and its
    own --help as `--help <bool>`: neither has a value, in any command or group."""
    for command in ("", "train", "sample", "eval", "plot", "datasets", "bench", "bench sample", "bench train",
                    "figure", "figure denoising", "schedule", "info"):
        result = runner.invoke(app, [*command.split(), "--help"], env={"COLUMNS": "120"})
        (help_line,) = [line for line in result.output.splitlines() if "--help" in line]
        shown = [line for line in result.output.splitlines() if "<bool>" in line]
        assert result.exit_code == 0 and not shown, (command, shown)
        assert help_line.strip("│ ").split() == ["--help", "Show", "this", "message", "and", "exit."], (command, help_line)


def _wide_help(*command: str) -> list[str]:
    """The lines of `ddgan COMMAND --help` at a width that wraps none of them."""
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_each_command_is_summed_up_on_one_line():
    """Typer's list of commands keeps a docstring's line breaks, so a summary wrapped in the source
    broke mid-sentence there ("the\\n denoising-distribution test")."""
    for group in ((), ("figure",), ("bench",)):
        lines = _wide_help(*group)
        start = next(i for i, line in enumerate(lines) if "Commands" in line) + 1
        rows = [line.strip("│ ") for line in lines[start:] if line.startswith("│")]
        continued = [line for line in lines[start:] if line.startswith("│" + " " * 4)]
        assert rows and not continued, (group, continued)
    assert any(row.startswith("eval") and row.endswith("(mixture1d), FID, IS, P/R (images).") for row in
               (line.strip("│ ") for line in _wide_help()))


def test_eval_shows_its_data_dir_as_a_path_like_the_other_commands():
    def metavar(command: str, option: str) -> str:
        (line,) = [line for line in _wide_help(command) if line.strip("│ ").startswith(option + " ")]
        return line.split()[2]

    assert metavar("eval", "--data-dir") == metavar("train", "--data-dir") == metavar("eval", "--run")
