"""`ddgan bench`: the protocol's arithmetic, FLOPs against a closed form, the JSON contract and
one-line errors. No timing is asserted: speed is recorded by benchmarks/ scripts."""

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from cli.app import app
from cli.main import COMMAND_MODULES  # noqa: F401  (registers the commands)
from ddgan_core.benchmark import (
    CpuLoad,
    Measurement,
    kernel_breakdown,
    kernel_kind,
    summarise,
)
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


# Kernel names as torch.profiler reports them on CUDA (cuDNN 9, TorchInductor, PyTorch's own kernels)
KERNELS = {
    "triton_poi_fused_add_convolution_mul_silu_3": "compiled (Triton)",
    "sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc_tilesize128x128x64_warpgroupsize1x1x1_"
    "execute_segment_k_off_kernel__5x_cudnn": "convolution",
    "sm90_xmma_wgrad_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc_tilesize64x64x64_kernel__5x_cudnn": "convolution",
    "void at::native::(anonymous namespace)::conv_depthwise2d_forward_kernel<1, float, int>(...)": "convolution",
    "fmha_cutlassF_bf16_aligned_64x128_rf_sm80(PyTorchMemEffAttention::AttentionKernel<...>::Params)": "attention",
    "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128, 128, 4>, true>(...)": "attention",
    "nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NNT": "matrix multiply",
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_cublas": "matrix multiply",
    "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, std::array<char*, 1> >(...)":
        "PyTorch native",
    "Memcpy DtoH (Device -> Pageable)": "memory copy",
    "aten::conv2d": "convolution",  # operators, as profiled on the CPU
    "aten::linear": "matrix multiply",
    "aten::group_norm": "other",
    "void cudnn::engines_precompiled::nchwToNhwcKernel<float, float, float, false, true, (cudnnKernelDataType_t)0>(...)":
        "other",
}


@pytest.mark.parametrize("name", KERNELS)
def test_kernels_are_sorted_into_kinds_by_their_names(name):
    assert kernel_kind(name) == KERNELS[name]


def test_a_kernel_breakdown_sums_calls_by_name_and_kind():
    conv, fused, copy = (next(n for n in KERNELS if KERNELS[n] == kind) for kind in ("convolution", "compiled (Triton)", "memory copy"))
    records = [(conv, 0.003), (fused, 0.001), (conv, 0.003), (copy, 0.0005), (fused, 0.0015)]
    breakdown = kernel_breakdown(records, wall_seconds=0.01, top=2)
    assert breakdown.kernel_seconds == pytest.approx(0.009) and breakdown.busy == pytest.approx(0.9)
    assert [(k.name, k.calls) for k in breakdown.top] == [(conv, 2), (fused, 2)]  # largest first, cut at top
    assert breakdown.top[0].seconds == pytest.approx(0.006) and breakdown.top[0].share == pytest.approx(2 / 3)
    assert list(breakdown.kinds) == ["convolution", "compiled (Triton)", "memory copy"]
    assert breakdown.kinds["memory copy"] == pytest.approx(0.0005 / 0.009)
    assert json.loads(json.dumps(breakdown.to_dict()))["top"][1]["kind"] == "compiled (Triton)"


BUSY_WARNING = ("other processes kept 1.0 of 2 cores busy as the benchmark started (1-minute load average 1.25); "
                "its 2 threads spin while they wait for those cores, so these timings can be many times too slow: "
                "run it on an idle machine or with OMP_NUM_THREADS=1")


def test_a_busy_cpu_is_warned_of_only_when_the_threads_outnumber_the_idle_cores():
    assert CpuLoad(2, 2, "OMP_NUM_THREADS", 1.0, 1, (1.25, 0.5, 0.25)).warning() == BUSY_WARNING
    assert CpuLoad(2, 2, "OMP_NUM_THREADS", 0.1, 2, (1.25, 0.5, 0.25)).warning() is None  # a lagging load average alone is no warning
    assert CpuLoad(2, 1, "OMP_NUM_THREADS", 1.0, 1, (1.25, 0.5, 0.25)).warning() is None  # OMP_NUM_THREADS=1: nothing spins
    assert CpuLoad(2, 2, "OMP_NUM_THREADS", 1.0, 1, None).warning() == BUSY_WARNING.replace(" (1-minute load average 1.25)", "")


def test_a_kernel_breakdown_of_nothing_is_refused():
    with pytest.raises(DDGANError, match="kernel records"):
        kernel_breakdown([], wall_seconds=1.0)


torch = pytest.importorskip("torch")


def test_profiling_counts_each_operator_of_the_profiled_runs():
    from backends.torch_cuda.bench import profile_kernels

    a = torch.ones(32, 32)

    def run() -> None:
        torch.matmul(a, a), torch.matmul(a, a), torch.add(a, a)  # matmul calls aten::mm inside

    breakdown = profile_kernels(run, torch.device("cpu"), runs=3)
    calls = {k.name: k.calls for k in breakdown.top}
    assert calls == {"aten::matmul": 6, "aten::add": 3}  # top-level operators only: aten::mm not counted again
    assert 0 < breakdown.kernel_seconds <= breakdown.wall_seconds


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


def test_bench_profile_reports_where_the_time_goes():
    result = runner.invoke(app, ["bench", "sample", "--preset", "tiny", "--device", "cpu", "--batch-size", "2",
                                 "--steps", "1", "--warmup", "0", "--repeats", "1", "--json", "--profile"])
    assert result.exit_code == 0, result.output
    kernels = json.loads(result.stdout)["kernels"]
    top = {k["name"]: k for k in kernels["top"]}
    # one generator call: each Conv2d module, FIR down-sampling of both paths of a "down" block and the
    # input pyramid's blur (depthwise conv2d), FIR up-sampling of both paths of an "up" block (transposed)
    from backends.torch_cuda.networks import build_generator
    from backends.torch_cuda.networks.layers import FirDownsampleConv
    from backends.torch_cuda.networks.ncsnpp import ResBlock

    modules = list(build_generator(preset("tiny")).modules())
    resampling = [m.resample for m in modules if isinstance(m, ResBlock)]
    pyramid = sum(isinstance(m, FirDownsampleConv) for m in modules)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in modules) + 2 * resampling.count("down") + pyramid
    assert top["aten::conv2d"]["calls"] == convs and top["aten::conv_transpose2d"]["calls"] == 2 * resampling.count("up")
    assert kernels["kinds"]["convolution"] >= top["aten::conv2d"]["share"]
    plain = runner.invoke(app, ["bench", "train", "--preset", "toy2d", "--device", "cpu", "--batch-size", "8",
                                "--warmup", "0", "--repeats", "1", "--json"])
    assert json.loads(plain.stdout)["kernels"] is None


@pytest.fixture
def two_busy_threads(monkeypatch):
    """A 2-core machine whose other processes keep `busy` cores busy, benched on two threads."""
    from ddgan_core import benchmark

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(benchmark.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(benchmark.os, "getloadavg", lambda: (1.25, 0.5, 0.25))

    def busy(cores: float) -> None:
        monkeypatch.setattr(benchmark, "busy_cores", lambda: cores)

    yield busy
    torch.set_num_threads(threads)


@pytest.mark.parametrize("kind", ["sample", "train"])
def test_bench_on_a_busy_cpu_reports_the_load_and_warns_on_stderr(two_busy_threads, kind):
    two_busy_threads(1.0)
    sizes = ["--batch-size", "2", "--steps", "1"] if kind == "sample" else ["--batch-size", "8"]
    result = runner.invoke(app, ["bench", kind, "--preset", "tiny" if kind == "sample" else "toy2d", "--device", "cpu",
                                 *sizes, "--warmup", "0", "--repeats", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr == f"warning: {BUSY_WARNING}\n"
    assert json.loads(result.stdout)["cpu_load"] == {"cores": 2, "threads": 2, "threads_variable": "OMP_NUM_THREADS", "busy_cores": 1.0, "idle_threads": 1,
                                                     "load_average": [1.25, 0.5, 0.25]}


def test_bench_on_an_idle_cpu_shows_the_load_in_its_table_without_a_warning(two_busy_threads):
    two_busy_threads(0.0)
    result = runner.invoke(app, ["bench", "sample", "--preset", "tiny", "--device", "cpu", "--batch-size", "2",
                                 "--steps", "1", "--warmup", "0", "--repeats", "1"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in result.stdout.splitlines() if "│" in line}
    assert rows["load average at start (1 / 5 / 15 min)"] == "1.25 / 0.50 / 0.25"
    assert rows["cores busy with other work at start"] == "0.0 of 2 (2 threads timed)"


def test_only_a_cpu_benchmark_records_the_cpu_load():
    from backends.torch_cuda.bench import load_at_start

    assert load_at_start(torch.device("cuda")) is None  # decided by the device's type: no GPU needed


@pytest.mark.parametrize(
    "args, message",
    [
        (["sample", "--preset", "tiny", "--device", "cpu", "--fast", "--compile-mode", "foo"],
         "unknown compile mode 'foo' (known: default, max-autotune-no-cudagraphs, none)"),
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


@pytest.mark.parametrize("name, bf16", [
    ("NVIDIA H200", 989.4e12), ("NVIDIA H200 NVL", 835.5e12), ("NVIDIA H100 80GB HBM3", 989.4e12),
    ("NVIDIA H100 PCIe", 756.0e12), ("NVIDIA GeForce RTX 4090", None),
])
def test_the_bf16_peak_is_the_named_gpus_dense_figure(monkeypatch, name, bf16):
    torch = pytest.importorskip("torch")
    from backends.torch_cuda.bench import device_peak_flops

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    assert device_peak_flops(torch.device("cuda"), "bf16") == bf16
    assert device_peak_flops(torch.device("cpu"), "bf16") is None


def test_timing_together_waits_for_the_device_once_not_per_call(monkeypatch):
    torch = pytest.importorskip("torch")
    from backends.torch_cuda import bench

    calls, waits = [], []
    monkeypatch.setattr(bench, "_synchronize", lambda device: waits.append(len(calls)))
    assert bench.time_together(lambda: calls.append(1), torch.device("cpu"), 5) >= 0.0
    assert len(calls) == 5 and waits == [0]  # before the first call, so earlier work is not timed


@pytest.mark.parametrize("preset_name, steps, batch, shown", [
    ("cifar10", 4, 100, True), ("cifar10", 2, 100, False), ("tiny", 4, 100, False), ("cifar10", 4, 1, False)])
def test_the_published_time_is_shown_only_beside_the_setting_the_paper_timed(capsys, preset_name, steps, batch, shown):
    from cli.bench_cmd import _print

    measurement = Measurement((1.0, 2.0), 123, "test device")
    _print(summarise(measurement, kind="sample", backend="torch", preset=preset_name, device="cpu", precision="fp32",
                     protocol="default", batch_size=batch, steps=steps, warmup=1), as_json=False)
    assert ("(paper: 0.21 on a V100)" in capsys.readouterr().out) == shown
