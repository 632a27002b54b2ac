"""`ddgan bench`: the protocol's arithmetic, FLOPs against a closed form, the JSON contract and
one-line errors. No timing is asserted: speed is recorded by benchmarks/ scripts."""

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from cli.app import app
from cli.main import COMMAND_MODULES  # noqa: F401  (registers the commands)
from ddgan_core.benchmark import Measurement, summarise
from ddgan_core.config import preset
from ddgan_core.errors import DDGANError

runner = CliRunner()


def _summary(protocol: str, flops: float | None = None, peak: float | None = None):
    measurement = Measurement((1.0, 2.0, 3.0, 10.0), 123, "test device", flops, peak)
    return summarise(measurement, kind="sample", backend="torch", preset="tiny", device="cpu", precision="fp32",
                     protocol=protocol, batch_size=4, steps=4, warmup=1)


def test_the_default_protocol_reports_the_median_and_the_paper_protocol_the_mean():
    default, paper = _summary("default"), _summary("paper")
    assert default.seconds_per_batch == 2.5 and paper.seconds_per_batch == 4.0
    assert default.images_per_s == pytest.approx(4 / 2.5) and paper.images_per_s == pytest.approx(1.0)
    assert default.seconds_per_100 == pytest.approx(62.5) and paper.seconds_per_100 == pytest.approx(100.0)
    assert default.iterations_per_s == pytest.approx(0.4)
    assert default.fraction_of_peak is None and default.peak_memory_bytes == 123


def test_fraction_of_peak_is_achieved_flops_over_the_device_peak():
    result = _summary("default", flops=1e9, peak=1e10)
    assert result.achieved_flops == pytest.approx(1.6e9)
    assert result.fraction_of_peak == pytest.approx(0.16)


def test_unknown_protocols_are_refused():
    with pytest.raises(DDGANError, match="unknown --protocol"):
        _summary("fastest")


torch = pytest.importorskip("torch")


def test_sampling_flops_of_the_mlp_generator_are_two_per_weight_per_step():
    from backends.torch_cuda.bench import bench_sample
    from backends.torch_cuda.networks import build_generator

    config = preset("toy2d")
    config = dataclasses.replace(config, generator=dataclasses.replace(config.generator, hidden=32))
    steps = 3
    measurement = bench_sample(config, 8, steps, "cpu", "fp32", warmup=0, repeats=1)
    weights = sum(m.in_features * m.out_features for m in build_generator(config).modules()
                  if isinstance(m, torch.nn.Linear))
    assert measurement.flops_per_image == steps * 2 * weights
    assert len(measurement.seconds) == 1 and measurement.peak_memory_bytes > 0


def test_bench_sample_json_has_the_contract_keys():
    result = runner.invoke(app, ["bench", "sample", "--preset", "tiny", "--device", "cpu", "--batch-size", "2",
                                 "--steps", "1", "--warmup", "0", "--repeats", "1", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {"images_per_s", "seconds_per_100", "peak_memory_bytes", "flops_per_image"} <= set(payload)
    assert payload["batch_size"] == 2 and payload["steps"] == 1 and payload["kind"] == "sample"
    assert payload["seconds_per_100"] == pytest.approx(100 / payload["images_per_s"])


def test_bench_train_json_reports_iterations_per_second():
    result = runner.invoke(app, ["bench", "train", "--preset", "toy2d", "--device", "cpu", "--batch-size", "16",
                                 "--warmup", "0", "--repeats", "2", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["kind"] == "train" and payload["repeats"] == 2
    assert payload["images_per_s"] == pytest.approx(16 * payload["iterations_per_s"])
    assert payload["flops_per_image"] is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["sample", "--preset", "tiny", "--protocol", "paper", "--batch-size", "8"], "batches of 100"),
        (["sample", "--preset", "tiny", "--device", "cpu", "--precision", "bf16"], "needs a CUDA device"),
        (["sample", "--preset", "imagenet"], "unknown preset"),
        (["sample", "--preset", "tiny", "--repeats", "0"], "--repeats"),
        (["sample", "--preset", "tiny", "--device", "cpu", "--steps", "9", "--repeats", "1"], "--steps"),
        (["train", "--preset", "tiny", "--batch-size", "0"], "--batch-size"),
    ],
)
def test_bad_input_is_refused_in_one_line(args, message):
    result = runner.invoke(app, ["bench", *args])
    assert isinstance(result.exception, DDGANError) and message in str(result.exception)
    assert "\n" not in str(result.exception)
