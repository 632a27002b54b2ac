"""The tinygrad training step is the PyTorch one: same losses, R1, gradients and updated weights
(1e-3) from one checkpoint and one set of random draws; checkpoints move between the backends;
resume continues a run; and the tinygrad path never imports torch."""

import json
import pathlib
import subprocess
import sys
import warnings
from collections import deque

import numpy as np
import pytest

pytest.importorskip("tinygrad")

from backends.tinygrad.entry import load_ema_generator as tinygrad_ema_generator
from backends.tinygrad.entry import pick_device
from backends.tinygrad.entry import sample as tinygrad_sample
from backends.tinygrad.entry import train as tinygrad_train
from backends.tinygrad.trainer import StepDraws, TinygradTrainer, draw_phase
from ddgan_core.checkpoint import CheckpointError, ResumeWarning, load_checkpoint, save_checkpoint
from ddgan_core.config import apply_overrides, fit_to_data, preset
from ddgan_core.cpu_cores import CpuLoadWarning
from ddgan_core.errors import DDGANError
from tests.test_layering import BLOCKER

pytestmark = pytest.mark.tinygrad

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOLERANCE = 1e-3
ADAM_EPS = 1e-8  # both backends' Adam default
# A small toy configuration: the MLP networks of toy2d, narrower, with R1 at every step.
TOY = ["generator.hidden=64", "discriminator.hidden=64", "train.batch_size=64", "train.lr_g=1e-3", "train.lr_d=1e-3"]


def toy_config(*extra: str):
    return apply_overrides(fit_to_data(preset("toy2d"), (2,)), TOY + list(extra))


def fixed_draws(config, n: int, shape: tuple[int, ...], rng: np.random.Generator) -> StepDraws:
    return StepDraws(*(draw_phase(rng, n, shape, config.diffusion.timesteps, config.generator.nz) for _ in range(2)))


def feed_torch_trainer(trainer, draws: StepDraws) -> None:
    """Make a TorchTrainer's next step consume `draws`: its three draw points are replaced on the
    instance (labels, latents, and its ops' randn_like), in the order its step asks for them."""
    import torch

    phases = (draws.discriminator, draws.generator)
    labels = deque(torch.from_numpy(p.labels.astype(np.int64)) for p in phases)
    latents = deque(torch.from_numpy(p.latent) for p in phases)
    noise = deque(torch.from_numpy(a) for p in phases for a in (p.noise_k, p.noise_next, p.noise_post))
    trainer._labels = lambda n: labels.popleft()
    trainer._latent = lambda n: latents.popleft()
    trainer.ops.randn_like = lambda x: noise.popleft()


def shared_start(config, tmp_path: pathlib.Path, rng: np.random.Generator):
    """A torch trainer and a tinygrad trainer loaded from one checkpoint (weights moved off their
    near-zero initialisation, so that every weight matters), and that checkpoint's tensors."""
    torch = pytest.importorskip("torch")
    from backends.torch_cuda.trainer import TorchTrainer

    reference = TorchTrainer(config, torch.device("cpu"))
    state = reference.state()
    for name in [n for n in state if n.startswith(("generator.", "discriminator."))]:
        state[name] = (state[name] + 0.02 * rng.standard_normal(state[name].shape)).astype(np.float32)
    for name in [n for n in state if n.startswith("generator_ema.")]:
        state[name] = state["generator." + name[len("generator_ema."):]]
    save_checkpoint(tmp_path / "start.safetensors", state, step=0, config=config, extra={"optimizer_step": 0})
    checkpoint = load_checkpoint(tmp_path / "start.safetensors")
    reference.load_state(checkpoint)
    trainer = TinygradTrainer(config, pick_device("cpu"))
    with pytest.warns(ResumeWarning, match="another backend's random stream"):  # the draws are fed by hand
        trainer.load_state(checkpoint)
    return reference, trainer, state


def assert_same_step(config, shape: tuple[int, ...], tmp_path: pathlib.Path, step: int = 0,
                     learning_rates: tuple[float, float] | None = None) -> None:
    """One step of each backend from one checkpoint and draws: step 0 takes R1, a step between
    R1 steps the plain D loss; `learning_rates` (G, D) are set as the training loop sets them."""
    rng = np.random.default_rng(0)
    reference, trainer, start = shared_start(config, tmp_path, rng)
    n = config.train.batch_size
    batch = rng.uniform(-1, 1, (n, *shape)).astype(np.float32)
    draws = fixed_draws(config, n, shape, rng)
    feed_torch_trainer(reference, draws)
    trainer.draws = lambda n: draws
    lr_g, lr_d = learning_rates or (config.train.lr_g, config.train.lr_d)
    for backend in (reference, trainer):
        backend.set_learning_rates(lr_g, lr_d)
    expected = reference.read_scalars(reference.train_step(batch, step))
    actual = trainer.read_scalars(trainer.train_step(batch, step))
    r1_step = step % config.train.lazy_reg == 0
    assert (expected["r1"] > 0) == r1_step and (actual["r1"] > 0) == r1_step
    for key in ("loss_d", "loss_g", "r1"):
        assert actual[key] == pytest.approx(expected[key], rel=TOLERANCE), key
    expected_state, actual_state = reference.state(), trainer.state()
    assert set(actual_state) - {"rng.numpy_pcg64"} == set(expected_state) - {"rng.torch_generator"}
    for name, want in expected_state.items():
        if name.startswith("rng."):
            continue
        got, section = actual_state[name], name.split(".")[0]
        if section in ("generator", "discriminator"):
            # The Adam update, against its own size (plus float32 rounding of the weight), where the
            # gradient is well above Adam's eps: a first update is about lr * sign(gradient), so
            # gradients near eps (1e-8) may differ in that sign between float32 implementations;
            # there only the update's bound holds.
            update = want - start[name]
            moment = expected_state[f"optimizer_{section[0]}.exp_avg.{name.split('.', 1)[1]}"]
            gradient = np.abs(moment) / (1 - config.train.beta1)  # the first moment after one step
            clear = gradient > 100 * ADAM_EPS
            allowed = TOLERANCE * np.abs(update).max() + 4 * np.spacing(np.abs(want))
            assert np.all((np.abs(got - want) <= allowed)[clear]), name
            assert np.abs(got - want).max() <= 2.01 * max(lr_g, lr_d), name
            rate = lr_g if section == "generator" else lr_d  # a first Adam step moves a weight by about its rate
            assert np.abs(update).max() == pytest.approx(rate, rel=0.05), name
        elif section == "generator_ema":  # moves by (1 - decay) x the generator's update
            weight = "generator." + name.split(".", 1)[1]
            weight_gap = np.abs(actual_state[weight] - expected_state[weight])
            allowed = (1 - config.train.ema_decay) * weight_gap + 4 * np.spacing(np.abs(want))
            assert np.all(np.abs(got - want) <= allowed), name
        else:  # Adam moments, i.e. the gradients (with R1 in the discriminator's)
            assert np.abs(got - want).max() <= TOLERANCE * np.abs(want).max(), name


def test_one_training_step_matches_torch(tmp_path):
    assert_same_step(toy_config(), (2,), tmp_path)


def test_a_step_between_r1_steps_at_the_loops_learning_rates_matches_torch(tmp_path):
    config = toy_config()
    assert config.train.lazy_reg > 1  # step 1 takes the plain D loss
    assert_same_step(config, (2,), tmp_path, step=1, learning_rates=(5e-4, 2e-3))


def test_training_draws_every_step_label_0_to_T_minus_1():
    labels = draw_phase(np.random.default_rng(0), 4000, (2,), 4, 8).labels
    assert set(labels.tolist()) == {0, 1, 2, 3}


def test_the_sampler_asks_for_x0_at_the_steps_own_label_from_the_seeds_noise():
    """A stand-in generator whose x0 prediction is its label: one step from x_T (K = 1) lands on
    label T - 1 exactly; x_T is the seed's first draw; a chain from given points reads each batch's rows."""
    from backends.tinygrad.sampling import Sampler

    config = toy_config()
    timesteps = config.diffusion.timesteps
    label_as_x0 = lambda x, t, z: t.float().reshape(-1, 1).expand(*x.shape) + 0 * x  # noqa: E731
    sampler = Sampler(label_as_x0, config, "CPU")
    samples, trajectory = sampler.sample(6, seed=11, steps=1, return_trajectory=True, batch_size=4)
    np.testing.assert_array_equal(samples, np.full((6, 2), timesteps - 1, dtype=np.float32))
    first = np.random.default_rng(11).standard_normal((4, 2), dtype=np.float32)  # batch 1's x_T
    np.testing.assert_array_equal(trajectory[0][:4], first)
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    identity = Sampler(lambda x_t, t, z: x_t + 0 * t.float().reshape(-1, 1), config, "CPU")  # x0' = x_1
    np.testing.assert_allclose(identity.sample(6, 0, levels=[1, 0], x_start=x, batch_size=4), x, rtol=1e-6)


@pytest.mark.slow
def test_one_tiny_preset_step_matches_torch(tmp_path):
    config = apply_overrides(preset("tiny"), ["train.batch_size=4"])
    assert_same_step(config, (3, 16, 16), tmp_path)


def test_resume_continues_the_run(tmp_path):
    """Six steps straight (jitted replays included) equal three, a checkpoint and three more, to float32
    rounding (a replayed step and a first, uncaptured call may order a few sums differently)."""
    config = toy_config()  # R1 every 4 steps: both compiled step variants run, are captured and replayed
    rng = np.random.default_rng(3)
    batches = [rng.standard_normal((64, 2)).astype(np.float32) for _ in range(6)]
    straight = TinygradTrainer(config, "CPU")
    for step, batch in enumerate(batches):
        straight.train_step(batch, step)
    first = TinygradTrainer(config, "CPU")
    for step, batch in enumerate(batches[:3]):
        first.train_step(batch, step)
    save_checkpoint(tmp_path / "c.safetensors", first.state(), step=3, config=config, extra={"optimizer_step": first.optimizer_step()})
    resumed = TinygradTrainer(config, "CPU")
    resumed.load_state(load_checkpoint(tmp_path / "c.safetensors"))
    for step, batch in enumerate(batches[3:], start=3):
        resumed.train_step(batch, step)
    expected, actual = straight.state(), resumed.state()
    assert resumed.optimizer_step() == straight.optimizer_step() == 6
    assert straight.opt_g.b1_t.numpy()[0] == pytest.approx(config.train.beta1**6)  # Adam's bias correction advanced
    assert set(actual) == set(expected)
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-5, atol=1e-8, err_msg=name)  # float32 rounding


@pytest.mark.slow  # a second thread count compiles every kernel of the step again: 42 s with a cold cache
def test_the_kernel_thread_count_does_not_change_a_step():
    """What the busy-core warning (entry.warn_of_busy_cores) lets a user change: NUM_CPU_THREADS
    splits the kernels' work, not their sums, so 1 and 2 threads train bit-identically. (The count
    does reach the kernels: each count compiles its own, and they run at different speeds on a
    busy machine, benchmarks/RESULTS.md.)"""
    from tinygrad import Context

    config = toy_config()
    rng = np.random.default_rng(4)
    batches = [rng.standard_normal((64, 2)).astype(np.float32) for _ in range(2)]  # an R1 step, then a plain one
    states = []
    for threads in (1, 2):
        with Context(NUM_CPU_THREADS=threads):
            trainer = TinygradTrainer(config, "CPU")
            for step, batch in enumerate(batches):
                trainer.train_step(batch, step)
            states.append(trainer.state())
    assert set(states[0]) == set(states[1])
    for name in states[0]:
        np.testing.assert_array_equal(states[0][name], states[1][name], err_msg=name)


def test_a_checkpoint_without_this_backends_stream_resumes_on_a_fresh_one_not_a_replay(tmp_path):
    from ddgan_core.checkpoint import fresh_stream_seed

    config = toy_config()
    state = {k: v for k, v in TinygradTrainer(config, "CPU").state().items() if not k.startswith("rng.")}
    state["rng.torch_generator"] = np.zeros(16, dtype=np.uint8)  # as a torch run's checkpoint holds
    save_checkpoint(tmp_path / "c.safetensors", state, step=5, config=config, extra={"optimizer_step": 5})
    resumed = TinygradTrainer(config, "CPU")
    with pytest.warns(ResumeWarning, match=r"another backend's random stream \(rng.torch_generator\)"):
        resumed.load_state(load_checkpoint(tmp_path / "c.safetensors"))
    expected = np.random.Generator(np.random.PCG64(fresh_stream_seed(config.train.seed, 0, 5))).standard_normal(4)
    np.testing.assert_array_equal(resumed.rng.standard_normal(4), expected)
    assert not np.array_equal(expected, TinygradTrainer(config, "CPU").rng.standard_normal(4))  # not step 0's draws


def test_resuming_a_torch_fast_run_says_which_setting_to_change(tmp_path):
    config = toy_config("train.iterations=2", "train.checkpoint_every=2")
    run = tinygrad_train(config, tmp_path / "run", resume=False, device="cpu", show_progress=False)
    checkpoint = load_checkpoint(run.last_checkpoint)  # made into a torch --fast run's checkpoint
    fast = apply_overrides(checkpoint.config, ["train.compile=true", "train.iterations=4"])
    save_checkpoint(run.last_checkpoint, checkpoint.tensors, step=2, config=fast, extra=checkpoint.extra)
    with pytest.raises(DDGANError, match="resume a torch run with --set train.compile=false"):
        tinygrad_train(None, run.path, resume=True, device="cpu", show_progress=False)
    tinygrad_train(None, run.path, resume=True, device="cpu", show_progress=False, resume_changes=["train.compile=false"])
    assert load_checkpoint(run.last_checkpoint).step == 4


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One short toy run per backend (3 steps, through the shared training loop)."""
    torch = pytest.importorskip("torch")
    from backends.torch_cuda.entry import train as torch_train

    root = tmp_path_factory.mktemp("runs")
    config = toy_config("train.iterations=3", "train.log_every=1")
    torch.manual_seed(0)
    by_torch = torch_train(config, root / "torch", resume=False, device="cpu", show_progress=False)
    by_tinygrad = tinygrad_train(config, root / "tinygrad", resume=False, device="cpu", show_progress=False)
    return {"torch": by_torch.last_checkpoint, "tinygrad": by_tinygrad.last_checkpoint}


@pytest.mark.torch
@pytest.mark.parametrize("trained_by", ["torch", "tinygrad"])
def test_a_generator_trained_by_either_backend_samples_in_both(runs, trained_by):
    torch = pytest.importorskip("torch")
    from tinygrad import Tensor

    from backends.torch_cuda.entry import load_ema_generator as torch_ema_generator
    from backends.torch_cuda.entry import sample as torch_sample

    checkpoint = runs[trained_by]
    # The same EMA weights give the same x0 predictions on the same inputs ...
    rng = np.random.default_rng(5)
    x_t, z = rng.standard_normal((32, 2)).astype(np.float32), rng.standard_normal((32, 2)).astype(np.float32)
    labels = rng.integers(0, 4, 32)
    torch_g, _ = torch_ema_generator(checkpoint, torch.device("cpu"))
    with torch.no_grad():
        expected = torch_g(torch.from_numpy(x_t), torch.from_numpy(labels), torch.from_numpy(z)).numpy()
    tinygrad_g, _ = tinygrad_ema_generator(checkpoint, "CPU")
    actual = tinygrad_g(Tensor(x_t), Tensor(labels.astype(np.int32)), Tensor(z)).numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)
    # ... and the two backends' sample chains draw from one distribution (their noise streams differ).
    ours, _, _ = tinygrad_sample(checkpoint, 2000, None, seed=1, device="cpu")
    theirs, _, _ = torch_sample(checkpoint, 2000, None, seed=1, device="cpu")
    assert ours.shape == theirs.shape == (2000, 2)
    spread = theirs.std(axis=0)
    assert np.all(np.abs(ours.mean(axis=0) - theirs.mean(axis=0)) < 0.15 * spread)
    assert np.all(np.abs(ours.std(axis=0) / spread - 1) < 0.1)


def test_sampling_on_a_busy_cpu_warns_as_training_does_once_the_checkpoint_loads(runs, monkeypatch, tmp_path):
    from backends.tinygrad import entry
    from ddgan_core import benchmark

    monkeypatch.setattr(benchmark.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(benchmark, "busy_cores", lambda: 3.0)
    monkeypatch.setattr(entry.NUM_CPU_THREADS, "value", 4)
    with pytest.warns(CpuLoadWarning, match=r"tinygrad's 4 kernel threads spin.*set NUM_CPU_THREADS=1 "):
        _, config = entry.ema_sampler(runs["tinygrad"], "cpu")
    assert config.data.dataset == toy_config().data.dataset
    with warnings.catch_warnings():
        warnings.simplefilter("error", CpuLoadWarning)
        with pytest.raises(CheckpointError):  # a checkpoint that is not there gets its error alone
            entry.ema_sampler(tmp_path / "missing.safetensors", "cpu")


def test_sampling_with_fewer_steps_and_a_trajectory(runs):
    samples, trajectory, _ = tinygrad_sample(runs["tinygrad"], 10, 2, seed=0, device="cpu", trajectory=True)
    assert samples.shape == (10, 2) and trajectory.shape == (3, 10, 2)  # levels 4, 2, 0
    np.testing.assert_array_equal(trajectory[-1], samples)
    again, _, _ = tinygrad_sample(runs["tinygrad"], 10, 2, seed=0, device="cpu")
    np.testing.assert_array_equal(again, samples)  # a seed fixes the samples


def test_unknown_device_is_a_one_line_error():
    with pytest.raises(DDGANError, match="cannot use device 'nonsense'"):
        pick_device("nonsense")


def test_torchrun_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    from backends.tinygrad import entry as tinygrad_entry

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(DDGANError, match="trains in one process, not under torchrun"):
        tinygrad_entry.train(toy_config(), tmp_path / "run", False, device="cpu", show_progress=False)
    assert not (tmp_path / "run").exists()


def test_without_a_named_device_the_first_that_opens_is_taken_but_never_nv(monkeypatch):
    """tinygrad's own search tries NV first, whose 0.14 runtime does not know Hopper GPUs."""
    from types import SimpleNamespace

    from backends.tinygrad import entry as tinygrad_entry

    opened = []

    def open_device(ix: str):
        opened.append(ix)
        if ix not in ("NV", "CUDA", "CPU"):  # a machine with an NVIDIA GPU (both of its runtimes open)
            raise RuntimeError(f"{ix} does not exist")
        return object()

    class Devices:
        canonicalize = staticmethod(str.upper)

        def __getitem__(self, ix: str):
            return open_device(ix)

    unset = SimpleNamespace(device="", value=None)
    monkeypatch.setattr(tinygrad_entry, "DEV", unset)
    monkeypatch.setattr(tinygrad_entry, "Device", Devices())
    assert pick_device(None) == "CUDA" and "NV" not in opened
    assert unset.value == "CUDA"  # and it is the process's default from now on
    assert pick_device("nv") == "NV"  # named, it is the user's to choose


def test_cuda_is_either_opened_or_refused_in_one_line():
    try:  # without a CUDA driver tinygrad raises AttributeError ("failed to load library cuda")
        assert pick_device("cuda") == "CUDA"
    except DDGANError as refused:
        assert "cannot use device 'cuda'" in str(refused) and "\n" not in str(refused)


def test_training_on_a_busy_cpu_warns_with_the_thread_count_to_set_once_its_settings_pass(monkeypatch, tmp_path):
    from backends.tinygrad import entry
    from ddgan_core import benchmark

    class Built(Exception):
        pass

    def trainer_stub(config, device):  # the trainer is built after every check of the settings
        raise Built

    monkeypatch.setattr(entry, "TinygradTrainer", trainer_stub)
    monkeypatch.setattr(benchmark.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(benchmark, "busy_cores", lambda: 3.0)
    monkeypatch.setattr(entry.NUM_CPU_THREADS, "value", 4)
    with pytest.warns(CpuLoadWarning, match=r"keep 3\.0 of 4 cores busy, and tinygrad's 4 kernel threads spin.*set NUM_CPU_THREADS=1 "):
        with pytest.raises(Built):
            tinygrad_train(toy_config(), tmp_path / "run", resume=False, device="cpu", show_progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CpuLoadWarning)
        with pytest.raises(DDGANError, match="fp32 only"):  # a refused run gets its error alone
            tinygrad_train(toy_config("train.precision=bf16"), tmp_path / "bf16", resume=False, device="cpu", show_progress=False)
        entry.warn_of_busy_cores("CUDA")  # kernel threads are the CPU's
        monkeypatch.setattr(entry.NUM_CPU_THREADS, "value", 1)
        entry.warn_of_busy_cores("CPU")  # as many threads as idle cores
    assert not (tmp_path / "run").exists() and not (tmp_path / "bf16").exists()


NO_TORCH_RUN = """
import sys
from typer.testing import CliRunner
import cli.main  # registers every command on the Typer app
from cli.app import app
out = sys.argv[1]
overrides = [a for o in {overrides!r} for a in ("--set", o)]
r = CliRunner().invoke(app, ["train", "--backend", "tinygrad", "--dataset", "grid25", "--iterations", "3",
                             "--device", "cpu", "--out", out + "/run"] + overrides)
assert r.exit_code == 0, r.output + repr(r.exception)
r = CliRunner().invoke(app, ["sample", "--backend", "tinygrad", "--run", out + "/run", "-n", "50",
                             "--out", out + "/s.npz", "--device", "cpu"])
assert r.exit_code == 0, r.output + repr(r.exception)
print(sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
"""


def test_tinygrad_trains_and_samples_without_torch(tmp_path):
    blocker = BLOCKER.replace("('torch', 'tinygrad', 'safetensors')", "('torch',)")
    code = blocker + NO_TORCH_RUN.format(overrides=TOY + ["train.log_every=1"])
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert np.load(tmp_path / "s.npz")["samples"].shape == (50, 2)
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in logged] == [1, 2, 3]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["backend"] == "tinygrad"


@pytest.mark.slow
@pytest.mark.torch
def test_eval_draws_the_pixels_of_the_sample_commands_draws(tmp_path):  # ~75 s: the tiny NCSN++ forward is jitted
    pytest.importorskip("torch")
    from backends.tinygrad.entry import sample_images
    from ddgan_core.evaluation import to_uint8_nchw
    from tests.network_fixtures import visible_generator_checkpoint

    checkpoint = visible_generator_checkpoint(preset("tiny"), tmp_path / "g.safetensors")
    images = sample_images(checkpoint, 3, None, seed=3, device="cpu")
    samples, _, _ = tinygrad_sample(checkpoint, 3, None, seed=3, device="cpu")
    assert images.dtype == np.uint8 and images.shape == (3, 3, 16, 16) and samples.std() > 0.2
    np.testing.assert_array_equal(images, to_uint8_nchw(samples))
