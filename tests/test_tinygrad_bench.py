"""`ddgan bench --backend tinygrad`: the JSON contract for sampling and training, one-line refusals
of what tinygrad cannot do, and no torch import on the path. No timing is asserted."""

import json
import pathlib
import subprocess
import sys

import pytest
from typer.testing import CliRunner

pytest.importorskip("tinygrad")

from backends.tinygrad.bench import bench_sample, capture_iterations
from cli.app import app
from cli.main import COMMAND_MODULES  # noqa: F401  (registers the commands)
from ddgan_core.config import apply_overrides, preset
from ddgan_core.errors import DDGANError
from tests.test_layering import BLOCKER

pytestmark = pytest.mark.tinygrad

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOY = ["--backend", "tinygrad", "--preset", "toy2d", "--device", "cpu", "--batch-size", "8"]
runner = CliRunner()


def _bench_json(kind: str, *args: str) -> dict:
    result = runner.invoke(app, ["bench", kind, *TOY, "--warmup", "1", "--repeats", "2", "--json", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    payload = json.loads(result.stdout)
    assert payload["backend"] == "tinygrad" and payload["kind"] == kind and payload["repeats"] == 2
    assert payload["batch_size"] == 8 and payload["flops_per_image"] is None
    for key in ("images_per_s", "seconds_per_100", "peak_memory_bytes"):
        assert payload[key] > 0, key
    assert payload["seconds_per_100"] == pytest.approx(100 / payload["images_per_s"])
    assert payload["cpu_load"]["threads_variable"] == "NUM_CPU_THREADS"  # the CPU's load as it started, recorded
    return payload


def test_a_busy_cpu_is_recorded_with_tinygrad_s_own_thread_count(monkeypatch):
    from backends.tinygrad import bench
    from ddgan_core import benchmark

    monkeypatch.setattr(benchmark.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(benchmark, "busy_cores", lambda: 3.0)
    monkeypatch.setattr(bench.NUM_CPU_THREADS, "value", 4)
    load = bench.load_at_start("CPU")
    assert (load.threads, load.idle_threads) == (4, 1)
    assert load.warning().endswith("run it on an idle machine or with NUM_CPU_THREADS=1")
    assert bench.load_at_start("CUDA") is None


def test_bench_sample_json_echoes_batch_and_steps():
    payload = _bench_json("sample", "--steps", "3")
    assert payload["steps"] == 3


def test_bench_train_json_reports_iterations_per_second():
    payload = _bench_json("train")
    assert payload["steps"] is None
    assert payload["images_per_s"] == pytest.approx(8 * payload["iterations_per_s"])


@pytest.mark.parametrize("kind", ["sample", "train"])
def test_bf16_is_refused_in_one_line(kind):
    result = runner.invoke(app, ["bench", kind, *TOY, "--precision", "bf16"])
    assert result.exit_code != 0
    assert isinstance(result.exception, DDGANError) and "fp32 only" in str(result.exception)
    assert "\n" not in str(result.exception)


@pytest.mark.parametrize("kind", ["sample", "train"])
def test_profile_is_refused_in_one_line(kind):
    result = runner.invoke(app, ["bench", kind, *TOY, "--profile"])
    assert isinstance(result.exception, DDGANError) and "--profile: the tinygrad backend" in str(result.exception)
    assert "\n" not in str(result.exception)


def test_train_fast_path_is_refused_rather_than_ignored(tmp_path):
    """--fast (train.compile) is the torch backend's; tinygrad must not time or train its own step under that label."""
    result = runner.invoke(app, ["bench", "train", *TOY, "--fast"])
    assert isinstance(result.exception, DDGANError) and "train.compile" in str(result.exception)
    result = runner.invoke(app, ["train", "--backend", "tinygrad", "--dataset", "grid25", "--iterations", "1",
                                 "--set", "train.compile=true", "--out", str(tmp_path / "run")])
    assert result.exit_code != 0 and "train.compile" in str(result.exception or result.output), result.output


def test_torch_fast_path_options_are_refused_in_one_line():
    with pytest.raises(DDGANError, match=r"no fast sampling path \(cannot honour: fast, compile_mode\)$"):
        bench_sample(preset("toy2d"), 8, 4, "cpu", "fp32", 0, 1, fast=True, compile_mode="default")
    result = runner.invoke(app, ["bench", "sample", *TOY, "--fast"])
    assert isinstance(result.exception, DDGANError) and "no fast sampling path" in str(result.exception)


NO_TORCH_BENCH = """
import json, sys
from typer.testing import CliRunner
import cli.main  # registers every command on the Typer app
from cli.app import app
r = CliRunner().invoke(app, ["bench", "sample"] + {toy!r} + ["--warmup", "0", "--repeats", "1", "--json"])
assert r.exit_code == 0, r.output + repr(r.exception)
print(json.loads(r.stdout)["images_per_s"] > 0)
print(sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
"""


def test_tinygrad_bench_runs_without_torch():
    blocker = BLOCKER.replace("('torch', 'tinygrad', 'safetensors')", "('torch',)")
    code = blocker + NO_TORCH_BENCH.format(toy=TOY)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-2:] == ["True", "[]"]


@pytest.mark.parametrize("lazy_reg", [1, 2, 3, 4, 10])
def test_bench_runs_every_jitted_step_variant_twice_before_timing(lazy_reg):
    """TinyJit captures on a function's second call: a capture inside the timed runs would be timed."""
    from ddgan_core.losses import r1_due

    config = apply_overrides(preset("toy2d"), [f"train.lazy_reg={lazy_reg}"])
    variants = [r1_due(step, lazy_reg) for step in range(capture_iterations(config))]
    assert all(variants.count(kind) >= 2 for kind in set(variants))
    assert set(variants) == ({True} if lazy_reg == 1 else {True, False})
