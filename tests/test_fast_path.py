"""The PyTorch fast path (issue 7): sampling through static buffers, compiled networks, CUDA graphs.

The fast sampler must draw the same random numbers as the eager chain for a seed, so its samples
equal the eager ones up to rounding; the generator's weights are perturbed so that its output is
far from the near-zero output of the published initialisation (otherwise every chain would end
near 0 and any two samplers would agree). Tests named `test_cuda_*` need a CUDA device and run
in scripts/gpu_check.sh (`-k cuda`); compiling on a CPU takes minutes, so those tests are slow.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from backends.torch_cuda import entry  # noqa: E402
from backends.torch_cuda.compile import compile_network, host_to_device  # noqa: E402
from backends.torch_cuda.fast_sampling import FastSampler  # noqa: E402
from backends.torch_cuda.networks import build_discriminator, build_generator  # noqa: E402
from backends.torch_cuda.trainer import TorchTrainer, sample_with  # noqa: E402
from cli.app import app  # noqa: E402
from cli.main import COMMAND_MODULES  # noqa: E402,F401  (registers the commands)
from ddgan_core.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from ddgan_core.config import Config, apply_overrides, item_shape, preset  # noqa: E402
from ddgan_core.errors import DDGANError  # noqa: E402
from tests.network_fixtures import visible_generator, visible_generator_checkpoint, wake_near_zero_layers  # noqa: E402

CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
runner = CliRunner()


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def tiny():
    return preset("tiny")


@pytest.fixture
def trace_only(monkeypatch):
    """torch.compile through Dynamo and AOTAutograd without TorchInductor's code generation: graphs
    and graph breaks as TorchInductor would get them, in seconds rather than minutes on a CPU."""
    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda module, mode=None, dynamic=None: compile_(module, backend="aot_eager", dynamic=dynamic))


# --- sampling ------------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [None, 2, 1])
def test_buffered_draws_reproduce_the_eager_chain_in_fp32(tiny, steps):
    generator = visible_generator(tiny)
    eager = sample_with(generator, tiny, 5, seed=3, device=CPU, steps=steps, batch_size=2)
    assert eager.std() > 0.2  # the check below would be vacuous for samples near 0
    sampler = FastSampler(copy.deepcopy(generator), tiny, 2, CPU, steps=steps, compile_mode=None)
    fast = sampler.sample(5, seed=3)  # batches 2, 2 and a last one of 1 in buffers of 2
    assert fast.shape == eager.shape == (5, 3, 16, 16) and fast.dtype == np.float32
    np.testing.assert_allclose(fast, eager, atol=1e-4)  # channels_last convolutions: reassociation only
    other = sampler.sample(5, seed=4)
    assert np.abs(other - eager).mean() > 0.1


def test_point_data_samples_through_the_same_buffers():
    config = apply_overrides(preset("toy2d"), ["generator.hidden=32"])
    generator = visible_generator(config)
    eager = sample_with(generator, config, 7, seed=1, device=CPU, batch_size=4)
    fast = FastSampler(copy.deepcopy(generator), config, 4, CPU, compile_mode=None).sample(7, seed=1)
    np.testing.assert_allclose(fast, eager, atol=1e-5)


def test_one_compiled_step_serves_every_chain_and_holds_the_posterior_draw():
    """The compiled step is the generator and the core's bridge draw in one graph (so TorchInductor
    fuses the draw into the generator's last kernel); its coefficients are inputs, so chains of
    every length share that one graph, and each sampler still draws with its own weights."""
    from torch._dynamo.utils import counters
    from torch._inductor import metrics

    config = apply_overrides(preset("toy2d"), ["generator.hidden=32"])
    generators = [visible_generator(config), wake_near_zero_layers(build_generator(config).eval())]
    torch._dynamo.reset()
    counters.clear()
    metrics.reset()
    for generator, steps in zip(generators, [None, 2]):
        eager = sample_with(generator, config, 6, seed=2, device=CPU, steps=steps, batch_size=4)
        fast = FastSampler(copy.deepcopy(generator), config, 4, CPU, steps=steps).sample(6, seed=2)
        np.testing.assert_allclose(fast, eager, atol=1e-5)
    assert counters["stats"]["unique_graphs"] == 1  # T = 4 and 2 steps, two samplers: one graph
    step_kernels = metrics.generated_kernel_count
    sampler = FastSampler(copy.deepcopy(generators[0]), config, 4, CPU, compile_mode=None)
    sampler._draw(torch.Generator().manual_seed(0), 4)
    inputs = (sampler.x_T, sampler.labels[0], sampler.latents[0], sampler.coefficients[0], sampler.noises[0])
    explained = torch._dynamo.explain(sampler._step)(*inputs)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    graph = explained.graphs[0].graph
    used = {str(node.target) for node in graph.nodes if node.op == "placeholder" and node.users}
    assert any("coefficients" in name for name in used) and any("noise" in name for name in used), used
    torch._dynamo.reset()
    metrics.reset()
    with torch.no_grad():
        compile_network(copy.deepcopy(generators[0]))(*inputs[:3])
    assert step_kernels <= metrics.generated_kernel_count + 1  # the five-operation draw is one kernel at most


@pytest.mark.parametrize("compiled", [False, True])
def test_bf16_autocast_samples_are_close_to_fp32(tiny, compiled, trace_only):
    """bf16 autocast of the generator, eager and compiled (the GPU's step: autocast inside the graph,
    here traced through AOTAutograd without TorchInductor's code generation) as one graph."""
    generator = visible_generator(tiny)
    eager = sample_with(generator, tiny, 4, seed=0, device=CPU, batch_size=4)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    bf16 = FastSampler(copy.deepcopy(generator), tiny, 4, CPU, precision="bf16",
                       compile_mode="default" if compiled else None).sample(4, seed=0)
    counters = torch._dynamo.utils.counters
    assert (counters["stats"]["unique_graphs"], len(counters["graph_break"])) == ((1, 0) if compiled else (0, 0))
    other_seed = sample_with(generator, tiny, 4, seed=1, device=CPU, batch_size=4)
    error = relative_error(bf16, eager)
    assert 0 < error < 0.1  # bf16 rounding through four steps (about 0.03 measured)
    assert relative_error(other_seed, eager) > 10 * error


def test_bad_sampler_settings_are_refused(tiny):
    generator = build_generator(tiny)
    with pytest.raises(DDGANError, match="CUDA graph needs a CUDA device"):
        FastSampler(generator, tiny, 2, CPU, cuda_graph=True)
    with pytest.raises(DDGANError, match="unknown precision"):
        FastSampler(generator, tiny, 2, CPU, precision="fp16")
    with pytest.raises(DDGANError, match="unknown compile mode"):
        FastSampler(generator, tiny, 2, CPU, compile_mode="reduce-overhead")
    with pytest.raises(DDGANError, match="--steps"):
        FastSampler(generator, tiny, 2, CPU, steps=5, compile_mode=None)


@pytest.mark.slow
def test_compiled_sampling_from_a_checkpoint_equals_the_eager_command(tiny, tmp_path):
    """`ddgan sample --fast` on the CPU: torch.compile of the generator, channels_last, same draws."""
    checkpoint = visible_generator_checkpoint(tiny, tmp_path / "g.safetensors")
    eager, _, _ = entry.sample(checkpoint, 3, None, seed=5, device="cpu")
    fast, _, _ = entry.sample(checkpoint, 3, None, seed=5, device="cpu", fast=True)
    assert eager.std() > 0.2
    np.testing.assert_allclose(fast, eager, atol=1e-4)


def test_sample_command_refuses_fast_with_a_trajectory_or_another_backend(tmp_path):
    for args, message in [(["--fast", "--trajectory", "--out", "s.npz"], "drop --fast or --trajectory"),
                          (["--fast", "--backend", "tinygrad"], "torch-backend path")]:
        result = runner.invoke(app, ["sample", "--checkpoint", str(tmp_path / "none.safetensors"), *args])
        assert result.exit_code != 0 and message in str(result.exception or result.output), result.output


def test_bench_sample_fast_reports_its_path_in_json():
    result = runner.invoke(app, ["bench", "sample", "--preset", "tiny", "--device", "cpu", "--batch-size", "2",
                                 "--warmup", "0", "--repeats", "1", "--fast", "--compile-mode", "none", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["path"] == "not compiled + channels_last" and payload["batch_size"] == 2
    assert payload["flops_per_image"] > 0


def test_bench_sample_refuses_an_unknown_compile_mode_and_fast_path_settings_without_fast():
    result = runner.invoke(app, ["bench", "sample", "--preset", "tiny", "--device", "cpu", "--batch-size", "2",
                                 "--fast", "--compile-mode", "fastest"])
    known = "(known: default, max-autotune-no-cudagraphs, none)"
    assert result.exit_code != 0 and f"unknown compile mode 'fastest' {known}" in str(result.exception)
    for setting in (["--compile-mode", "none"], ["--no-cuda-graph"]):
        result = runner.invoke(app, ["bench", "sample", "--preset", "tiny", "--device", "cpu", *setting])
        assert result.exit_code != 0 and "sets the --fast path: add --fast" in str(result.exception), result.output


# --- training ------------------------------------------------------------------------------------
def test_host_to_device_keeps_values_and_can_give_channels_last():
    batch = np.random.default_rng(0).uniform(-1, 1, (2, 3, 4, 4)).astype(np.float32)
    plain, nhwc = host_to_device(batch, CPU), host_to_device(batch, CPU, channels_last=True)
    np.testing.assert_array_equal(plain.numpy(), batch)
    np.testing.assert_array_equal(nhwc.numpy(), batch)
    assert nhwc.is_contiguous(memory_format=torch.channels_last) and not plain.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("preset_name", ["tiny", "toy2d"])
def test_compiled_networks_take_every_tensor_from_the_device(preset_name):
    """Traced on the meta device, every tensor of the graphs torch.compile captures stays there. A
    tensor built on the host inside `forward` (e.g. a filter kernel) would be copied to the GPU on
    every call: a host synchronisation, and an error while a CUDA graph is being captured."""
    config, meta = preset(preset_name), torch.device("meta")
    strays = []

    def record_strays(graph_module, example_inputs):
        for node in graph_module.graph.nodes:
            value = node.meta.get("example_value")
            if isinstance(value, torch.Tensor) and value.device != meta:
                strays.append(f"{node.op} {node.target} on {value.device}")
        return graph_module.forward

    with meta:
        generator, discriminator = build_generator(config), build_discriminator(config)
    n, shape = 4, item_shape(config)
    x, t = torch.zeros((n, *shape), device=meta), torch.zeros(n, dtype=torch.long, device=meta)
    torch._dynamo.reset()
    assert torch.compile(generator, backend=record_strays)(x, t, torch.zeros(n, config.generator.nz, device=meta)).device == meta
    assert torch.compile(discriminator, backend=record_strays)(x, x, t).device == meta
    assert strays == []


def _losses_over_steps(config, device, steps, wake=False):
    """Logged losses of `steps` training steps; with `wake`, from networks off the published
    initialisation (the same weights for every config: seeded), so that R1 is far from zero."""
    trainer = TorchTrainer(config, device)
    if wake:  # drawn on NCHW copies: an in-place draw into channels_last weights would fill other positions
        torch.manual_seed(1)
        for module, bias_scale in ((trainer.generator, 0.0), (trainer.discriminator, 0.1)):
            nchw = copy.deepcopy(module).to(memory_format=torch.contiguous_format)
            module.load_state_dict(wake_near_zero_layers(nchw, bias_scale=bias_scale).state_dict())
    batch = np.random.default_rng(0).uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32)
    return [trainer.read_scalars(trainer.train_step(batch, step)) for step in range(steps)], trainer


def _compiled_run_follows_eager(config, rel, device=CPU):
    """Three steps (R1 at 0 and 2) eager and with train.compile from the same woken networks: the
    compiled run has no graph break, one graph each for G without and with grad, D with trainable
    and with frozen weights, and the R1 step, and its losses equal eager's within `rel`."""
    eager, _ = _losses_over_steps(config, device, 3, wake=True)
    torch._dynamo.reset()  # no compiled code from earlier tests: every graph below is this run's
    torch._dynamo.utils.counters.clear()
    fast, trainer = _losses_over_steps(apply_overrides(config, ["train.compile=true"]), device, 3, wake=True)
    assert not torch._dynamo.utils.counters["graph_break"], dict(torch._dynamo.utils.counters["graph_break"])
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 5
    assert eager[0]["r1"] > 1e-7 and eager[2]["r1"] != eager[0]["r1"]  # published init: about 1e-16
    for e, f in zip(eager, fast):
        for key in ("loss_d", "loss_g", "r1"):
            assert f[key] == pytest.approx(e[key], rel=rel), key
    return trainer


@pytest.mark.slow
def test_compiled_training_follows_the_eager_run_including_r1_steps(tiny):
    """train.compile: compiled G and D, the R1 step compiled whole, channels_last; same draws, so
    the same losses up to fp32 reassociation over three steps (R1 at steps 0 and 2), and no part
    of any step falls back to eager execution (no graph breaks)."""
    trainer = _compiled_run_follows_eager(apply_overrides(tiny, ["batch_size=4", "lazy_reg=2"]), rel=1e-5)  # 1e-7 to 5e-7 measured
    assert trainer.generator.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    saved = trainer.state()["generator.conv_in.weight"]
    assert saved.flags["C_CONTIGUOUS"] and saved.shape == (16, 3, 3, 3)  # checkpoints stay NCHW


def test_the_bf16_fast_path_traces_whole_including_r1_steps(tiny, trace_only):
    """The fast path as the GPU runs it, bf16 autocast inside the compiled G and D and inside the
    nested torch.func.grad of the R1 step, traces without a graph break into the five graphs (here
    on the CPU's bf16 autocast, through AOTAutograd without TorchInductor's code generation, which
    the slow fp32 test and the GPU check exercise), and computes what the eager bf16 step computes."""
    # bf16 rounding, and the fast path's channels_last convolutions sum in another order: 0.3% on the
    # first step's G loss, 1.1% by the third (measured), against 5% to 40% between one step and the next
    _compiled_run_follows_eager(apply_overrides(tiny, ["batch_size=4", "lazy_reg=2", "precision=bf16"]), rel=3e-2)


# --- CUDA (scripts/gpu_check.sh) -----------------------------------------------------------------
# Eager tests first, the compiling ones last: a run stopped at its time limit keeps the quick results.
@needs_cuda
def test_cuda_graph_replay_reproduces_the_eager_chain(tiny):
    cuda = torch.device("cuda")
    generator = visible_generator(tiny, cuda)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    eager = sample_with(generator, tiny, 5, seed=3, device=cuda, batch_size=4)
    sampler = FastSampler(copy.deepcopy(generator), tiny, 4, cuda, compile_mode=None, cuda_graph=True)
    first, again = sampler.sample(5, seed=3), sampler.sample(5, seed=3)
    np.testing.assert_array_equal(first, again)  # replays read only the refilled buffers
    np.testing.assert_allclose(first, eager, atol=1e-4)
    assert np.abs(sampler.sample(5, seed=4) - eager).mean() > 0.1


@needs_cuda
def test_cuda_train_step_makes_no_host_synchronisation(tiny):
    cuda = torch.device("cuda")
    config = apply_overrides(tiny, ["batch_size=4", "lazy_reg=2", "precision=bf16"])
    trainer = TorchTrainer(config, cuda)
    batch = np.random.default_rng(0).uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32)
    trainer.train_step(batch, 0)  # first use moves the coefficient tables to the device
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = [trainer.train_step(batch, step) for step in (1, 2)]  # a plain step and an R1 step
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(np.isfinite(list(trainer.read_scalars(o).values())).all() for o in out)


@needs_cuda
def test_cuda_fused_adam_resumes_from_a_checkpoint(tiny, tmp_path):
    """Adam is fused on CUDA: moments and step restored from a checkpoint must give the same update."""
    cuda = torch.device("cuda")
    config = apply_overrides(tiny, ["batch_size=4", "lazy_reg=2", "ema_decay=0.5"])
    _, trainer = _losses_over_steps(config, cuda, 2)
    before = trainer.state()
    save_checkpoint(tmp_path / "c.safetensors", before, step=2, config=config,
                    extra={"optimizer_step": trainer.optimizer_step()})
    resumed = TorchTrainer(config, cuda)
    resumed.load_state(load_checkpoint(tmp_path / "c.safetensors"))
    batch = np.random.default_rng(2).uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32)
    trainer.train_step(batch, 2)
    resumed.train_step(batch, 2)
    assert resumed.optimizer_step() == trainer.optimizer_step() == 3
    a, b = trainer.state(), resumed.state()
    for name in (k for k in before if k.startswith(("generator.", "discriminator."))):
        update = np.abs(a[name] - before[name]).max()
        assert np.abs(b[name] - a[name]).max() <= 1e-2 * max(update, 1e-6), name


@needs_cuda
def test_cuda_compiled_bf16_graph_is_close_to_eager_fp32(tiny):
    cuda = torch.device("cuda")
    generator = visible_generator(tiny, cuda)
    eager = sample_with(generator, tiny, 8, seed=0, device=cuda, batch_size=8)
    fast = FastSampler(copy.deepcopy(generator), tiny, 8, cuda, precision="bf16", compile_mode="default",
                       cuda_graph=True).sample(8, seed=0)
    other_seed = sample_with(generator, tiny, 8, seed=1, device=cuda, batch_size=8)
    error = relative_error(fast, eager)
    assert error < 0.1 and relative_error(other_seed, eager) > 10 * error


@needs_cuda
def test_cuda_compiled_training_follows_eager_and_makes_no_host_synchronisation(tiny):
    cuda = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    trainer = _compiled_run_follows_eager(apply_overrides(tiny, ["batch_size=4", "lazy_reg=2"]), rel=1e-3, device=cuda)
    batch = np.random.default_rng(1).uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        trainer.train_step(batch, 3)
        trainer.train_step(batch, 4)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_train_compile_is_a_config_key_that_survives_the_run_directory(tiny):
    assert tiny.train.compile is False
    fast = apply_overrides(tiny, ["train.compile=true"])
    assert fast.train.compile is True and Config.from_json(fast.to_json()).train.compile is True
