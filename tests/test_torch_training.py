"""The PyTorch backend's training loop, checkpoints, resume and sampling, on CPU."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backends.torch_cuda import entry  # noqa: E402
from backends.torch_cuda.distributed import Distributed  # noqa: E402
from backends.torch_cuda.networks import build_generator  # noqa: E402
from backends.torch_cuda.trainer import RNG_KEY, TorchTrainer, sample_with  # noqa: E402
from ddgan_core.checkpoint import ResumeWarning, fresh_stream_seed, load_checkpoint, save_checkpoint  # noqa: E402
from ddgan_core.config import apply_overrides, preset  # noqa: E402
from tests.dataset_fixtures import write_cifar10  # noqa: E402
from tests.network_fixtures import visible_generator, visible_generator_checkpoint  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory) -> pathlib.Path:
    data = tmp_path_factory.mktemp("cifar")
    write_cifar10(data, per_batch=4, archive=False)
    return data


def tiny_config(cifar_dir: pathlib.Path, **train):
    config = apply_overrides(preset("tiny"), [f"data.data_dir={cifar_dir}", "batch_size=4", "lazy_reg=2"])
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **train))


def toy_config(**train):
    config = apply_overrides(preset("toy2d"), ["generator.hidden=32", "discriminator.hidden=32", "batch_size=16", "lazy_reg=2"])
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **train))


def test_one_tiny_iteration_on_cifar_shaped_data(cifar_dir, tmp_path):
    config = tiny_config(cifar_dir, iterations=1, log_every=1)
    run = entry.train(config, tmp_path / "run", False, device="cpu", show_progress=False)
    record = json.loads(run.metrics_path.read_text().splitlines()[-1])
    assert all(np.isfinite(record[k]) for k in ("loss_d", "loss_g", "r1"))
    assert record["r1"] > 0  # step 0 is an R1 step
    checkpoint = load_checkpoint(run.last_checkpoint)
    assert checkpoint.step == 1 and checkpoint.config.generator.image_size == 16
    torch.manual_seed(config.train.seed)
    initial = {k: v.numpy() for k, v in build_generator(checkpoint.config).state_dict().items()}
    trained = checkpoint.section("generator")
    assert any(not np.array_equal(initial[k], trained[k]) for k in initial), "no generator weight changed"
    assert (run.samples / "step-0000001.png").exists()


def test_resume_equals_an_uninterrupted_run(cifar_dir, tmp_path):
    config = tiny_config(cifar_dir, iterations=4, checkpoint_every=2, log_every=1)
    whole = entry.train(config, tmp_path / "whole", False, device="cpu", show_progress=False)
    entry.train(config, tmp_path / "split", False, device="cpu", stop_at=2, show_progress=False)
    assert load_checkpoint(tmp_path / "split/checkpoints/last.safetensors").step == 2
    split = entry.train(config, tmp_path / "split", True, device="cpu", show_progress=False)
    a, b = load_checkpoint(whole.last_checkpoint), load_checkpoint(split.last_checkpoint)
    assert a.step == b.step == 4
    assert set(a.tensors) == set(b.tensors)
    for name in a.tensors:
        assert np.array_equal(a.tensors[name], b.tensors[name]), name
    assert [r["loss_d"] for r in whole.read_metrics()] == [r["loss_d"] for r in split.read_metrics()]


def test_on_a_busy_cpu_the_idle_cores_set_the_thread_count_unless_omp_num_threads_does(cifar_dir, tmp_path, monkeypatch):
    """entry.set_up: with one of two cores busy, training and sampling run on one thread (a second
    would spin); an OMP_NUM_THREADS the user set is kept, since the count can change the last bits
    (it is recorded in the run, and at one count a run is bit-reproducible)."""
    config = tiny_config(cifar_dir, iterations=1, log_every=1)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    threads = torch.get_num_threads()
    used, recorded, tensors, samples, measured = [], [], [], [], []
    try:
        for omp, busy in [(None, 0.0), (None, 1.0), ("2", 1.0)]:
            monkeypatch.delenv("OMP_NUM_THREADS", raising=False) if omp is None else monkeypatch.setenv("OMP_NUM_THREADS", omp)
            monkeypatch.setattr(entry, "busy_cores", lambda busy=busy: measured.append(busy) or busy)
            entry._use_idle_cores.cache_clear()  # a new process, as each command is
            torch.set_num_threads(2)
            run = entry.train(config, tmp_path / f"run-{len(used)}", False, device="cpu", show_progress=False)
            recorded.append(run.record()["versions"]["torch_cpu_threads"])
            entry._use_idle_cores.cache_clear()  # `ddgan sample`, a process of its own
            torch.set_num_threads(2)
            samples.append(entry.sample(run.last_checkpoint, 6, None, seed=3, device="cpu")[0])
            entry.sample(run.last_checkpoint, 6, None, seed=3, device="cpu")  # a second load does not measure again
            used.append(torch.get_num_threads())
            tensors.append(load_checkpoint(run.last_checkpoint).tensors)
    finally:
        torch.set_num_threads(threads)
    assert used == [2, 1, 2] and recorded == ["2", "1", "2"] and measured == [0.0, 0.0, 1.0, 1.0]
    for name in tensors[0]:  # the same count, the same bits, however busy the machine
        np.testing.assert_array_equal(tensors[0][name], tensors[2][name], err_msg=name)
    np.testing.assert_array_equal(samples[0], samples[2])
    np.testing.assert_allclose(samples[1], samples[0], rtol=0, atol=1e-6)  # another count: rounding only


def test_resumed_ranks_draw_noise_of_their_own_and_a_foreign_generator_state_starts_fresh(cifar_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(Distributed, "broadcast_from_main", lambda self, module: None)  # ranks without a process group
    run = entry.train(tiny_config(cifar_dir, iterations=1), tmp_path / "run", False, device="cpu", show_progress=False)
    checkpoint = load_checkpoint(run.last_checkpoint)

    def first_draws(dist: Distributed) -> torch.Tensor:
        trainer = TorchTrainer(checkpoint.config, torch.device("cpu"), dist)
        trainer.load_state(checkpoint)
        return torch.randn(8, generator=trainer.rng)

    saved = torch.Generator()
    saved.set_state(torch.from_numpy(checkpoint.tensors[RNG_KEY].copy()))
    assert torch.equal(first_draws(Distributed.single()), torch.randn(8, generator=saved))  # one process: exact
    rank_0, rank_1 = first_draws(Distributed(0, 2, 0)), first_draws(Distributed(1, 2, 0))
    assert not torch.equal(rank_0, rank_1) and torch.equal(rank_1, first_draws(Distributed(1, 2, 0)))
    fresh = torch.Generator().manual_seed(fresh_stream_seed(checkpoint.config.train.seed, 0, checkpoint.step))
    assert torch.equal(rank_0, torch.randn(8, generator=fresh))  # (seed, rank, the checkpoint's step), not step 0's
    checkpoint.tensors[RNG_KEY] = np.zeros(16, dtype=np.uint8)  # the size of a CUDA generator's state
    with pytest.warns(ResumeWarning, match="not for a cpu generator"):
        assert torch.equal(first_draws(Distributed.single()), rank_0)  # fresh: (seed, rank 0, step)
    del checkpoint.tensors[RNG_KEY]
    checkpoint.tensors["rng.numpy_pcg64"] = np.zeros(8, dtype=np.uint8)  # a tinygrad run's stream
    with pytest.warns(ResumeWarning, match=r"another backend's random stream \(rng.numpy_pcg64\)"):
        assert torch.equal(first_draws(Distributed.single()), rank_0)


def test_resumed_adam_moments_take_their_parameters_layout(cifar_dir, tmp_path):
    """A compiled run's weights are channels_last; its resumed Adam moments must be too, with the
    saved values (CUDA's fused Adam stops at the first step on moments of another layout)."""
    run = entry.train(tiny_config(cifar_dir, iterations=1), tmp_path / "run", False, device="cpu", show_progress=False)
    checkpoint = load_checkpoint(run.last_checkpoint)
    compiled = apply_overrides(checkpoint.config, ["train.compile=true"])
    trainer = TorchTrainer(compiled, torch.device("cpu"))
    trainer.load_state(checkpoint)
    checked = 0
    for prefix, opt, module in (("optimizer_g", trainer.opt_g, trainer.generator), ("optimizer_d", trainer.opt_d, trainer.discriminator)):
        for name, p in module.named_parameters():
            for key in ("exp_avg", "exp_avg_sq"):
                moment = opt.state[p][key]
                assert moment.stride() == p.stride(), f"{prefix}.{key}.{name}"
                np.testing.assert_array_equal(moment.numpy(), checkpoint.tensors[f"{prefix}.{key}.{name}"])
                checked += p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
    assert checked > 0  # some moments really are channels_last


def test_training_draws_every_step_label_0_to_T_minus_1_and_sets_each_networks_rate():
    config = toy_config()
    trainer = TorchTrainer(config, torch.device("cpu"))
    assert set(trainer._labels(4000).tolist()) == set(range(config.diffusion.timesteps))
    trainer.set_learning_rates(3e-4, 7e-4)
    assert [g["lr"] for g in trainer.opt_g.param_groups] == [3e-4]
    assert [g["lr"] for g in trainer.opt_d.param_groups] == [7e-4]


def test_training_previews_are_drawn_from_the_ema_generator():
    config = toy_config()
    trainer = TorchTrainer(config, torch.device("cpu"))
    with torch.no_grad():  # G moves; its EMA copy does not
        for p in trainer.generator.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    cpu = torch.device("cpu")
    preview = trainer.sample(32, seed=3)
    assert np.array_equal(preview, sample_with(trainer.generator_ema, config, 32, 3, cpu))
    assert not np.allclose(preview, sample_with(trainer.generator, config, 32, 3, cpu))


def test_a_chain_from_given_points_reads_each_batchs_own_rows():
    config = toy_config()
    generator, cpu = visible_generator(config), torch.device("cpu")
    x = np.random.default_rng(0).standard_normal((6, 2)).astype(np.float32)
    moved = x.copy()
    moved[4:] += 1.0  # only the third batch of two changes

    def one_step(start: np.ndarray) -> np.ndarray:
        return sample_with(generator, config, 6, 0, cpu, levels=[1, 0], x_start=start, batch_size=2)

    a, b = one_step(x), one_step(moved)
    np.testing.assert_array_equal(a[:4], b[:4])
    assert np.all(np.abs(a[4:] - b[4:]).max(axis=1) > 1e-3)


def test_fast_sampling_on_the_cpu_is_fp32_and_in_data_units(tmp_path, monkeypatch):
    """`sample --fast` on the CPU: the same draws as the eager chain, unscaled to data units; the
    compiler is left out (the wiring is under test, and TorchInductor's compile takes a minute)."""
    from backends.torch_cuda import fast_sampling

    monkeypatch.setattr(fast_sampling, "compile_network", lambda step, mode=None: step)
    toy = toy_config()
    config = dataclasses.replace(toy, data=dataclasses.replace(toy.data, scale=4.0))
    checkpoint = visible_generator_checkpoint(config, tmp_path / "g.safetensors")
    eager, _, _ = entry.sample(checkpoint, 50, None, seed=1, device="cpu")
    fast, _, _ = entry.sample(checkpoint, 50, None, seed=1, device="cpu", fast=True)
    np.testing.assert_allclose(fast, eager, rtol=1e-5, atol=1e-6)  # bf16 would be 4e-3 off, network units 4x


def test_gradients_are_averaged_over_ranks_in_every_layout(monkeypatch):
    """Two ranks holding g and 2g each end with 1.5g (the all-reduce sums), channels_last grads included."""
    monkeypatch.setattr(torch.distributed, "all_reduce", lambda tensor: tensor.mul_(3.0))
    module = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.Linear(4, 2)).to(memory_format=torch.channels_last)
    grads = [torch.randn(p.shape).contiguous(memory_format=torch.channels_last) if p.dim() == 4 else torch.randn(p.shape)
             for p in module.parameters()]
    for p, g in zip(module.parameters(), grads):
        p.grad = g.clone(memory_format=torch.preserve_format)
    Distributed(0, 2, 0).average_gradients(module)
    for p, g in zip(module.parameters(), grads):
        torch.testing.assert_close(p.grad, 1.5 * g, rtol=1e-6, atol=0)
    Distributed.single().average_gradients(module)  # one process: left as they are
    for p, g in zip(module.parameters(), grads):
        torch.testing.assert_close(p.grad, 1.5 * g, rtol=1e-6, atol=0)


def test_resume_from_the_command_line_keeps_the_runs_configuration(tmp_path):
    """`ddgan train --resume` continues with the run's own settings (here a batch of 8, not the
    preset's 512), lets only RESUME_CHANGES change, and refuses the rest in one line."""
    common = ("--batch-size", "8", "--set", "train.cosine_lr=false", "--set", "train.log_every=1")
    assert _ddgan("train", *common, "--iterations", "6", "--out", "whole", cwd=tmp_path).returncode == 0
    assert _ddgan("train", *common, "--iterations", "3", "--out", "split", cwd=tmp_path).returncode == 0
    with (tmp_path / "split/metrics.jsonl").open("a") as log:  # logged by a run killed before its next checkpoint
        log.write('{"step": 4, "loss_d": 9.0}\n{"step": 5, "loss_d": 9.0}\n')
    resumed = _ddgan("train", "--resume", *common, "--out", "split", "--iterations", "6", "--set", "checkpoint_every=3",
                     cwd=tmp_path)  # the first command line again, its own values restated
    assert resumed.returncode == 0, resumed.stderr
    steps = [[json.loads(line)["step"] for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
             for name in ("whole", "split")]
    assert steps[0] == steps[1] == [1, 2, 3, 4, 5, 6]  # one record per step: the killed run's 4 and 5 are retrained
    a, b = (load_checkpoint(tmp_path / name / "checkpoints/last.safetensors") for name in ("whole", "split"))
    assert a.step == b.step == 6 and b.config.train.batch_size == 8 and b.config.train.checkpoint_every == 3
    for name in a.tensors:
        assert np.array_equal(a.tensors[name], b.tensors[name]), name
    before = _snapshot(tmp_path / "split")
    for args, message in [
        (("--batch-size", "16"), "'train.batch_size' cannot change"),
        (("--preset", "tiny"), "drop --preset"),
        (("--set", "train.lr_g=5e-4"), "'train.lr_g' cannot change"),  # the run has 1e-3
        (("--set", "hidden=64"), "ambiguous config key 'hidden'"),
    ]:
        refused = _ddgan("train", "--resume", "--out", "split", "--iterations", "9", *args, cwd=tmp_path)
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    assert _snapshot(tmp_path / "split") == before


def test_toy_training_and_sampling_round_trip(tmp_path):
    config = toy_config(iterations=3, log_every=1)
    run = entry.train(config, tmp_path / "toy", False, device="cpu", show_progress=False)
    samples, trajectory, cfg = entry.sample(run.last_checkpoint, 50, None, seed=0, device="cpu", trajectory=True)
    assert samples.shape == (50, 2) and trajectory.shape == (5, 50, 2)
    np.testing.assert_array_equal(trajectory[-1], samples)
    again, _, _ = entry.sample(run.last_checkpoint, 50, None, seed=0, device="cpu")
    np.testing.assert_array_equal(samples, again)  # same seed, same samples
    two, path, _ = entry.sample(run.last_checkpoint, 50, 2, seed=0, device="cpu", trajectory=True)
    assert path.shape == (3, 50, 2)


def test_scale_is_undone_when_sampling(tmp_path):
    toy = toy_config(iterations=1)
    base = dataclasses.replace(toy, data=dataclasses.replace(toy.data, scale=1.0))
    scaled = dataclasses.replace(toy, data=dataclasses.replace(toy.data, scale=4.0))
    a = entry.train(base, tmp_path / "a", False, device="cpu", show_progress=False)
    b = entry.train(scaled, tmp_path / "b", False, device="cpu", show_progress=False)
    # identical networks and noise: the scaled run's samples are 4x the unscaled ones, up to training
    # differences after one step; compare the deterministic part: x_T's trajectory level 0 -> T
    _, ta, _ = entry.sample(a.last_checkpoint, 10, None, seed=0, device="cpu", trajectory=True)
    _, tb, _ = entry.sample(b.last_checkpoint, 10, None, seed=0, device="cpu", trajectory=True)
    np.testing.assert_allclose(tb[0], 4.0 * ta[0], rtol=1e-6)


def _ddgan(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def _snapshot(folder: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_cli_train_and_sample_a_grid(cifar_dir, tmp_path):
    result = _ddgan("train", "--backend", "torch", "--dataset", "cifar10", "--data-dir", str(cifar_dir), "--preset", "tiny",
                    "--iterations", "2", "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    result = _ddgan("sample", "--steps", "2", "-n", "16", "--out", "grid.png", "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote 16 samples to grid.png (from runs/cifar10-tiny-")  # the newest run: named
    assert result.stdout.rstrip().endswith("/checkpoints/last.safetensors)")
    from PIL import Image

    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.size == (7 * (4 * 18 + 2),) * 2  # 4x4 tiles of 16 px with 2 px padding, scaled by ceil(512 / 74)


def test_bad_input_gets_one_line_errors_and_changes_nothing(cifar_dir, tmp_path):
    run_args = ("--dataset", "cifar10", "--data-dir", str(cifar_dir), "--preset", "tiny", "--iterations", "1", "--device", "cpu")
    assert _ddgan("train", *run_args, "--out", "runs/good", cwd=tmp_path).returncode == 0
    good = tmp_path / "runs/good"
    before = _snapshot(good)
    ckpt = good / "checkpoints/last.safetensors"
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(ckpt.read_bytes()[: len(ckpt.read_bytes()) // 2])
    other = load_checkpoint(ckpt)
    foreign = tmp_path / "foreign.safetensors"  # tiny weights labelled with the toy architecture
    save_checkpoint(foreign, other.tensors, step=1, config=preset("toy2d"))
    cases = [
        (("train", "--dataset", "imagenet"), "unknown dataset"),
        (("train", "--backend", "jax"), "unknown backend"),
        (("train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "nowhere"), "--preset", "tiny"), "cifar"),
        (("train", *run_args, "--out", "runs/good"), "exists and is not empty"),
        (("train", *run_args[:6], "--device", "cpu", "--batch-size", "0"), "train.batch_size must be positive"),
        (("train", *run_args[:6], "--device", "cpu", "--batch-size", "99999999999"), "out of memory"),  # leaves no run
        (("train", *run_args[:6], "--device", "cpu", "--precision", "fp16"), "unknown precision 'fp16'"),
        (("train", *run_args[:6], "--device", "cpu", "--fast"), "bf16 training (--precision bf16, --fast) needs a CUDA"),
        (("train", *run_args[:6], "--fast", "--precision", "fp32"), "--fast trains under bf16 autocast"),
        (("train", *run_args[:6], "--backend", "tinygrad", "--fast"),
         "tinygrad backend trains in fp32 only" if importlib.util.find_spec("tinygrad") else "backend needs tinygrad"),
        (("train", "--resume", "--out", "runs/good", "--iterations", "2", "--fast", "--device", "cpu"), "needs a CUDA"),
        (("sample", "--run", "runs/good", "--steps", "0"), "--steps"),
        (("sample", "--run", "runs/good", "--steps", "5"), "--steps"),
        (("sample", "--checkpoint", str(truncated)), "truncated or corrupt"),
        (("sample", "--checkpoint", str(foreign)), "another architecture"),
        (("sample", "--checkpoint", str(tmp_path / "missing.safetensors")), "not found"),
        (("sample", "--run", "runs/good", "--out", "samples.jpg"), ".png"),
    ]
    for args, message in cases:
        result = _ddgan(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message.lower() in errors[0].lower(), (args, result.stderr)
    assert _snapshot(good) == before
    assert not (tmp_path / "runs").joinpath("nowhere").exists()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["good"]


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_sigterm_and_ctrl_c_stop_training_like_an_exception_and_leave_no_partial_file(tmp_path, name):
    """torchrun stops the other ranks with SIGTERM when one fails, a user presses Ctrl-C: the
    process unwinds (exit 143, 130: Ctrl-C saying "interrupted"), so a checkpoint being written is
    not left half-done; the progress bar is on stderr, stdout holds nothing but results."""
    import signal
    import time

    signum = getattr(signal, name)

    def as_a_terminal_starts_it() -> None:  # Ctrl-C handled, not ignored or blocked as the test worker may have left it
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "train", "--iterations", "100000", "--out", "run",
         "--set", "generator.hidden=16", "--set", "discriminator.hidden=16", "--set", "log_every=1",
         "--set", "checkpoint_every=1", "--device", "cpu"],
        cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                           "PYTHONFAULTHANDLER": "1"},  # SIGABRT below prints every thread's stack
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=as_a_terminal_starts_it)
    deadline = time.monotonic() + 120
    while not (tmp_path / "run/checkpoints/last.safetensors").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signum)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # say where it is and how it treats signals (CI saw it train on after SIGINT)
        status = pathlib.Path(f"/proc/{process.pid}/status")
        masks = [line for line in status.read_text().splitlines() if line.startswith("Sig")] if status.exists() else []
        process.send_signal(signal.SIGABRT)
        _, err = process.communicate(timeout=30)
        worker = (sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])), signal.getsignal(signal.SIGINT))
        pytest.fail(f"still running 60 s after {name}; child {masks}; test worker blocks, SIGINT handler: {worker}; "
                    f"its threads:\n{err[-6000:]}")
    assert process.returncode == 128 + signum, err
    assert "Traceback" not in err and out == ""
    assert (err.rstrip().endswith("interrupted")) == (name == "SIGINT")
    assert "stopped at step " in err and "ddgan train --resume --out run" in err  # what is kept, how to go on
    assert not [p.name for p in (tmp_path / "run/checkpoints").iterdir() if ".tmp" in p.name]
    assert load_checkpoint(tmp_path / "run/checkpoints/last.safetensors").step >= 1


def test_training_stops_on_a_non_finite_loss_and_keeps_the_last_good_checkpoint(tmp_path):
    from ddgan_core.training_loop import TrainingDiverged

    config = toy_config(iterations=4, checkpoint_every=2, log_every=1)
    run = entry.train(config, tmp_path / "nan", False, device="cpu", stop_at=2, show_progress=False)
    good = load_checkpoint(run.last_checkpoint).tensors
    blown = dataclasses.replace(config, train=dataclasses.replace(config.train, lr_g=1e30, lr_d=1e30, cosine_lr=False))
    save_checkpoint(run.last_checkpoint, good, step=2, config=blown, extra={"optimizer_step": 2})
    record = run.record()  # the run's own configuration blows up too (a resume refuses another run's checkpoint)
    run.config_path.write_text(json.dumps({**record, "config": blown.to_dict()}))
    with pytest.raises(TrainingDiverged, match=f"non-finite.*; stopped, last good checkpoint kept in {run.checkpoints}$"):
        entry.train(blown, tmp_path / "nan", True, device="cpu", show_progress=False)
    after = load_checkpoint(run.last_checkpoint)
    assert after.step == 2 and all(np.array_equal(after.tensors[k], good[k]) for k in good)
    with pytest.raises(TrainingDiverged, match="non-finite at step 1; stopped before the first checkpoint, so there is none to keep$"):
        entry.train(blown, tmp_path / "nan-at-once", False, device="cpu", show_progress=False)


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_step_0_as_if_never_stopped(tmp_path, capsys):
    config = toy_config(iterations=4, checkpoint_every=4, log_every=1)
    stopped = entry.train(config, tmp_path / "stopped", False, device="cpu", stop_at=2, show_progress=False)
    for path in stopped.checkpoints.iterdir():  # as a run interrupted at step 2 leaves it: config and log only
        path.unlink()
    entry.train(None, stopped.path, True, device="cpu", show_progress=False)
    assert f"resuming {stopped.path} from step 0 (it stopped before its first checkpoint)" in capsys.readouterr().err
    assert [r["step"] for r in stopped.read_metrics()] == [1, 2, 3, 4]  # each step logged once
    whole = entry.train(config, tmp_path / "whole", False, device="cpu", show_progress=False)
    resumed, uninterrupted = load_checkpoint(stopped.last_checkpoint), load_checkpoint(whole.last_checkpoint)
    assert resumed.step == 4 and all(np.array_equal(resumed.tensors[k], uninterrupted.tensors[k]) for k in uninterrupted.tensors)


def test_a_run_whose_last_checkpoint_is_gone_but_periodic_ones_remain_is_refused_and_left_as_it_is(tmp_path):
    from ddgan_core.checkpoint import CheckpointError

    run = entry.train(toy_config(iterations=4, checkpoint_every=2, log_every=1), tmp_path / "run", False,
                      device="cpu", show_progress=False)
    assert run.step_checkpoint(4).read_bytes() == run.last_checkpoint.read_bytes()  # a periodic one is the last's copy
    assert load_checkpoint(run.step_checkpoint(2)).step == 2
    run.last_checkpoint.unlink()
    before = _snapshot(run.path)
    with pytest.raises(CheckpointError, match=r"last.safetensors is missing .* copy .*step-0000004.safetensors to "):
        entry.train(None, run.path, True, device="cpu", resume_changes=["train.iterations=6"], show_progress=False)
    assert _snapshot(run.path) == before  # step 0 again would have written over its checkpoints and log


def test_device_names_are_checked_in_one_line_before_any_cuda_call(monkeypatch):
    from ddgan_core.errors import DDGANError

    for name in ("cudafoo", "cuda:", "cuda:x", "gpu", "cpu:0x"):
        with pytest.raises(DDGANError, match=rf"^unknown device '{name}' for the torch backend"):
            entry.pick_device(name)
    assert entry.pick_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DDGANError, match=r"^--device cuda:1 asked for, but PyTorch sees no CUDA device"):
        entry.pick_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert entry.pick_device("cuda:1") == torch.device("cuda", 1) and entry.pick_device("cuda") == torch.device("cuda")
    with pytest.raises(DDGANError, match=r"^--device cuda:2 asked for, but PyTorch sees 2 CUDA device\(s\) \(cuda:0 to cuda:1\)$"):
        entry.pick_device("cuda:2")


def test_one_process_trains_on_the_gpu_asked_for_and_a_torchrun_rank_on_its_local_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    alone = Distributed.single()
    assert entry.training_device(torch.device("cuda", 1), alone) == torch.device("cuda", 1)
    assert entry.training_device(torch.device("cuda"), alone) == torch.device("cuda", 3)
    assert entry.training_device(torch.device("cuda"), Distributed(5, 8, 1)) == torch.device("cuda", 1)
    assert entry.training_device(torch.device("cpu"), Distributed(5, 8, 1)) == torch.device("cpu")


def test_two_process_gloo_training(cifar_dir, tmp_path):
    """Two ranks, two steps (R1 in the first): the same weights and Adam moments on both ranks
    (gradients averaged), each rank its own batches (disjoint rows) and its own random stream."""
    dump = tmp_path / "ranks"
    dump.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
         str(ROOT / "tests/ddp_worker.py"), str(dump), "train", "--dataset", "cifar10", "--data-dir", str(cifar_dir),
         "--preset", "tiny", "--iterations", "2", "--batch-size", "8", "--device", "cpu", "--out", str(tmp_path / "ddp")],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    checkpoint = load_checkpoint(tmp_path / "ddp/checkpoints/last.safetensors")
    assert checkpoint.step == 2 and checkpoint.config.train.lazy_reg == 2  # R1 at step 0
    ranks = [dict(np.load(dump / f"rank{r}.npz")) for r in (0, 1)]
    weights = [k for k in ranks[0] if k not in ("batches", RNG_KEY)]
    assert any(k.startswith("optimizer_d.") for k in weights) and any(k.startswith("optimizer_g.") for k in weights)
    for key in weights:
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key], err_msg=key)
        np.testing.assert_array_equal(ranks[0][key], checkpoint.tensors[key], err_msg=key)
    assert not np.array_equal(ranks[0][RNG_KEY], ranks[1][RNG_KEY])
    batches = [r["batches"] for r in ranks]
    assert batches[0].shape == batches[1].shape == (2, 4, 3, 16, 16)  # two steps of 8 / 2 per rank
    for step in range(2):
        rows = [{row.tobytes() for row in b[step]} for b in batches]
        assert len(rows[0]) == len(rows[1]) == 4 and not rows[0] & rows[1]


def test_every_rank_starts_from_rank_0s_parameters_and_buffers(monkeypatch):
    """The broadcast writes into the module's own tensors (parameters and buffers), from rank 0."""
    sources = []

    def broadcast_of_rank_0(tensor, src):
        sources.append(src)
        tensor.fill_(7.0)

    monkeypatch.setattr(torch.distributed, "broadcast", broadcast_of_rank_0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    Distributed(1, 2, 1).broadcast_from_main(module)
    assert sources == [0] * len(module.state_dict())
    assert all(bool((t == 7.0).all()) for t in [*module.parameters(), *module.buffers()])
    untouched = torch.nn.Linear(3, 2)
    before = untouched.weight.clone()
    Distributed.single().broadcast_from_main(untouched)  # one process: nothing to receive
    assert torch.equal(untouched.weight, before) and len(sources) == len(module.state_dict())


def test_a_collective_broken_by_another_process_stopping_is_one_line(monkeypatch):
    from ddgan_core.errors import DDGANError

    def peer_gone(tensor, **kwargs):
        raise RuntimeError("[pair.cc:553] Connection closed by peer [127.0.0.1]:35974.\nmore of gloo's text")

    monkeypatch.setattr(torch.distributed, "all_reduce", peer_gone)
    with pytest.raises(DDGANError, match=r"^rank 1: stopped, as another process of the run did "
                                         r"\(\[pair.cc:553\] Connection closed by peer \[127.0.0.1\]:35974.\)$"):
        Distributed(1, 2, 1).average_scalars(torch.ones(2))


def test_logged_scalars_are_averaged_over_ranks_without_leaving_their_device(monkeypatch):
    """Two ranks logging v and 2v log 1.5v; the reduction runs on the tensor as given (NCCL only
    reduces CUDA tensors), and the step's own values are left as they were."""
    reduced = []

    def all_reduce_of_two_ranks(tensor):
        reduced.append(tensor)
        tensor.mul_(3.0)

    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce_of_two_ranks)
    values = torch.tensor([1.0, -2.0, 0.5])
    assert Distributed(0, 2, 0).average_scalars(values).tolist() == [1.5, -3.0, 0.75]
    assert values.tolist() == [1.0, -2.0, 0.5]
    # where the values live, the reduction runs: a tensor on the meta device (a stand-in for a GPU,
    # which the CPU cannot tell from itself) is reduced and returned there, never copied to the host
    on_meta = Distributed(0, 2, 0).average_scalars(values.to("meta"))
    assert reduced[-1].device.type == "meta" and on_meta.device.type == "meta"
    assert Distributed.single().average_scalars(values) is values


@pytest.mark.slow
def test_default_toy_run_meets_the_quality_target(tmp_path):
    """`ddgan train --dataset grid25` defaults: all 25 modes and >= 90% of 2,500 samples within 3 sigma."""
    from cli.train_cmd import named_options, resolve_config
    from ddgan_core.datasets import load_dataset
    from ddgan_core.metrics.mode_coverage import mode_coverage

    config = resolve_config(None, "grid25", named_options("grid25", None, None, None, None, None, None))
    run = entry.train(config, tmp_path / "toy", False, device="cpu", show_progress=False)
    samples, _, _ = entry.sample(run.last_checkpoint, 2500, None, seed=123, device="cpu")
    score = mode_coverage(samples, load_dataset("grid25").mixture.means, 0.05)
    assert score.modes_covered == 25 and score.high_quality_fraction >= 0.9, score
