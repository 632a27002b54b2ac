"""`ddgan eval` and `ddgan plot` on tiny trained toy runs, and their one-line errors."""

import json
import pathlib
import sys

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from backends.torch_cuda import entry  # noqa: E402
from cli.train_cmd import named_options, resolve_config  # noqa: E402
from ddgan_core.evaluation import CACHE_ENV, EvaluationError  # noqa: E402
from ddgan_core.errors import DDGANError  # noqa: E402

TINY = ["generator.hidden=32", "discriminator.hidden=32", "log_every=5", "sample_every=1000", "checkpoint_every=1000"]


def _train(out, dataset: str, timesteps: int) -> str:
    config = resolve_config(None, dataset, named_options(dataset, None, timesteps, 32, 10, 0, None) + TINY)
    entry.train(config, out, resume=False, device="cpu", show_progress=False)
    return str(out)


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory) -> str:
    return _train(tmp_path_factory.mktemp("runs") / "grid", "grid25", 2)


@pytest.fixture(scope="module")
def line_run(tmp_path_factory) -> str:
    return _train(tmp_path_factory.mktemp("runs") / "line", "mixture1d", 2)


def _ddgan(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the real entry point in-process: exit code, stdout, stderr."""
    from cli.main import app

    monkeypatch.setattr(sys, "argv", ["ddgan", *args])
    try:
        app()
        code = 0
    except SystemExit as stopped:
        code = stopped.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_eval_of_a_grid_run_prints_modes_high_quality_share_and_kl(monkeypatch, capsys, grid_run):
    code, out, err = _ddgan(monkeypatch, capsys, "eval", "--run", grid_run, "-n", "500", "--device", "cpu")
    assert code == 0, err
    assert "modes covered" in out and "/ 25" in out
    assert "high-quality share" in out and "reverse KL" in out
    assert "(backend torch, n 500, steps 2, seed 0)" in " ".join(out.split())  # K = T = 2, as it sampled


def test_eval_json_is_one_object_with_the_coverage_keys(monkeypatch, capsys, grid_run):
    code, out, err = _ddgan(monkeypatch, capsys, "eval", "--run", grid_run, "-n", "500", "--json", "--device", "cpu")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["dataset"] == "grid25" and payload["n"] == 500 and payload["backend"] == "torch"
    assert payload["steps"] == 2  # K = T by default, said as the number, not null
    metrics = payload["metrics"]
    assert {"modes_covered", "n_modes", "high_quality_fraction", "reverse_kl", "counts"} <= set(metrics)
    assert sum(metrics["counts"]) == round(metrics["high_quality_fraction"] * 500)


def test_eval_of_a_samples_file_needs_to_know_what_2d_points_are_of(monkeypatch, capsys, tmp_path):
    samples = tmp_path / "points.npz"
    centres = np.array([[-4.0, -4.0], [0.0, 0.0]])
    np.savez(samples, samples=np.repeat(centres, 50, axis=0))
    code, _, err = _ddgan(monkeypatch, capsys, "eval", "--samples", str(samples))
    assert code == 2 and "2-D samples" in err and "(grid25 or ring8)" in err and err.count("\n") == 1
    three = tmp_path / "three.npz"
    np.savez(three, samples=np.zeros((10, 3)))  # no built-in dataset is 3-D: no 2-D names are offered
    code, _, err = _ddgan(monkeypatch, capsys, "eval", "--samples", str(three))
    assert code == 2 and "shape (10, 3)" in err and "grid25" not in err and err.count("\n") == 1
    code, out, err = _ddgan(monkeypatch, capsys, "eval", "--samples", str(samples), "--dataset", "grid25", "--json")
    metrics = json.loads(out)["metrics"]
    assert metrics["modes_covered"] == 2 and metrics["high_quality_fraction"] == 1.0
    assert metrics["reverse_kl"] == pytest.approx(np.log(25 / 2))


def test_a_file_from_ddgan_sample_says_what_it_is_of_and_eval_holds_it_to_that(monkeypatch, capsys, grid_run, tmp_path):
    samples = tmp_path / "grid.npz"
    code, _, err = _ddgan(monkeypatch, capsys, "sample", "--run", grid_run, "-n", "200", "--out", str(samples), "--device", "cpu")
    assert code == 0, err
    code, out, err = _ddgan(monkeypatch, capsys, "eval", "--samples", str(samples), "--json")  # no --dataset needed
    assert code == 0, err
    assert json.loads(out)["dataset"] == "grid25" and json.loads(out)["metrics"]["n_modes"] == 25
    code, _, err = _ddgan(monkeypatch, capsys, "eval", "--samples", str(samples), "--dataset", "ring8")
    assert code == 2 and f"{samples} holds samples of grid25, not ring8: drop --dataset" in err and err.count("\n") == 1
    code, _, err = _ddgan(monkeypatch, capsys, "eval", "--samples", str(samples), "--dataset", "foo")
    assert code == 2 and err.startswith("error: unknown dataset 'foo' (known: ") and "grid25" in err, err  # not "not foo"
    assert json.loads(out)["steps"] == 2  # the run's T = 2, recorded in the file
    one_step = tmp_path / "k1.npz"
    code, _, err = _ddgan(monkeypatch, capsys, "sample", "--run", grid_run, "-n", "20", "--steps", "1", "--out",
                          str(one_step), "--device", "cpu")
    assert code == 0, err
    code, out, err = _ddgan(monkeypatch, capsys, "eval", "--samples", str(one_step), "--json")
    assert code == 0 and json.loads(out)["steps"] == 1, err  # the K it was drawn with, not "none"


def test_eval_of_a_mixture1d_run_prints_per_level_distances_against_both_references(monkeypatch, capsys, line_run):
    code, out, err = _ddgan(monkeypatch, capsys, "eval", "--run", line_run, "-n", "300", "--device", "cpu")
    assert code == 0, err
    assert "chain marginals" in out and "denoising steps" in out
    assert "best Gaussian step" in out and "exact sampler" in out
    assert "x_2 -> x_1" in out and "x_1 -> x_0" in out
    code, out, err = _ddgan(monkeypatch, capsys, "eval", "--run", line_run, "-n", "300", "--json", "--device", "cpu")
    levels = json.loads(out)["metrics"]["levels"]
    assert [level["level"] for level in levels] == [1, 0]
    assert all(set(level["step_w1"]) == {"model", "best_gaussian", "exact_sampler"} for level in levels)


def test_bad_input_gives_one_line_errors(monkeypatch, capsys, tmp_path, grid_run, line_run):
    images = tmp_path / "images.npz"
    np.savez(images, samples=np.zeros((4, 3, 8, 8), dtype=np.float32))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(images.read_bytes()[:100])
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    cases = [
        (["--run", grid_run, "--samples", str(images)], "not both"),
        (["--run", str(tmp_path)], "not a run directory"),
        (["--run", line_run, "--steps", "1"], "drop --steps"),
        (["--run", grid_run, "--dataset", "ring8"], "trained on grid25"),
        (["--run", grid_run, "--dataset", "foo"], "unknown dataset 'foo' (known: "),
        (["--run", grid_run, "-n", "1"], "at least 2"),
        (["--samples", str(tmp_path / "samples.png")], "must be an .npz"),
        (["--samples", str(truncated)], "not a readable .npz"),
        (["--samples", str(images), "--steps", "1"], "--steps is for sampling a run"),
        (["--samples", str(images), "--backend", "tinygrad"], "--backend is for sampling a run"),
        (["--samples", str(images), "-n", "100"], "-n is for sampling a run: a --samples file is drawn already"),
        (["--run", grid_run, "--ref", str(tmp_path / "missing.npz")],
         "--ref is for FID and IS of images; grid25 is scored by mode coverage"),
        (["--run", line_run, "--inception-weights", str(tmp_path / "w.pth")],
         "--inception-weights is for FID and IS of images; mixture1d is scored by the denoising-distribution test"),
        (["--samples", str(images), "--dataset", "nosuch"], "unknown dataset 'nosuch'"),
        (["--samples", str(images), "--device", "cpu"], "need reference statistics"),
        (["--samples", str(images), "--ref", str(tmp_path), "--device", "cpu"], "pt_inception-2015-12-05"),
    ]
    for args, message in cases:
        code, _, err = _ddgan(monkeypatch, capsys, "eval", *args)
        assert code == 2 and message in err and err.count("\n") == 1, (args, err)


def test_sample_names_a_bad_input_before_refusing_an_existing_out(monkeypatch, capsys, tmp_path, grid_run):
    out = tmp_path / "x.npz"
    out.write_bytes(b"samples from yesterday")
    cases = [
        (["--checkpoint", str(tmp_path / "nonexist.safetensors")], "checkpoint not found"),
        (["--run", grid_run, "--steps", "3"], "--steps must be an integer between 1 and T = 2, got 3"),
        (["--run", grid_run, "--steps", "3", "--trajectory"], "--steps must be an integer between 1 and T = 2"),
        (["--run", grid_run, "--device", "cuda:99"], "--device cuda:99 asked for"),
        (["--run", grid_run, "--device", "cpu"], f"--out {out} exists: pass --force"),  # the inputs are good
    ]
    for args, message in cases:
        code, _, err = _ddgan(monkeypatch, capsys, "sample", "--out", str(out), *args)
        assert code == 2 and message in err and err.count("\n") == 1, (args, err)
    assert out.read_bytes() == b"samples from yesterday"


def _png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_plot_writes_curves_and_the_reverse_chain_of_a_point_run(monkeypatch, capsys, grid_run, tmp_path):
    code, out, err = _ddgan(monkeypatch, capsys, "plot", grid_run, "--out", str(tmp_path), "--device", "cpu")
    assert code == 0, err
    assert _png_size(tmp_path / "curves.png")[0] > 800 and _png_size(tmp_path / "chain.png")[0] > 600
    assert not (tmp_path / "steps.png").exists()


def test_plot_of_a_mixture1d_run_adds_the_step_densities(monkeypatch, capsys, line_run, tmp_path):
    code, _, err = _ddgan(monkeypatch, capsys, "plot", line_run, "--out", str(tmp_path), "--device", "cpu")
    assert code == 0, err
    width, height = _png_size(tmp_path / "steps.png")
    assert width > 600 and height > 300  # 2 steps x 3 fixed points


def test_plot_takes_the_run_as_sample_and_eval_do_and_defaults_to_the_newest(monkeypatch, capsys, grid_run, tmp_path):
    import os
    import shutil

    for name in ("older", "newer"):
        shutil.copytree(grid_run, tmp_path / "runs" / name)
    os.utime(tmp_path / "runs" / "older" / "config.json", (1e9, 1e9))
    monkeypatch.chdir(tmp_path)
    code, _, err = _ddgan(monkeypatch, capsys, "plot", "--device", "cpu")
    assert code == 0, err
    assert (tmp_path / "runs" / "newer" / "plots" / "chain.png").is_file()
    assert not (tmp_path / "runs" / "older" / "plots").exists()
    code, _, err = _ddgan(monkeypatch, capsys, "plot", "--run", "runs/older", "--device", "cpu")
    assert code == 0, err
    assert (tmp_path / "runs" / "older" / "plots" / "curves.png").is_file()
    code, _, err = _ddgan(monkeypatch, capsys, "plot", "runs/older", "--run", "runs/newer")
    assert code == 2 and "two runs given" in err and err.count("\n") == 1, err


class _SevenReader:
    """A stand-in digit classifier that reads every digit as a 7."""

    accuracy = 0.5

    def __call__(self, digits: np.ndarray) -> np.ndarray:
        return np.full(len(digits), 7)


def test_eval_of_a_stacked_mnist_run_counts_the_classified_triples(monkeypatch, capsys, tmp_path):
    from backends.torch_cuda import mnist_classifier
    from ddgan_core.datasets.base import DatasetError

    config = resolve_config("tiny", "stackedmnist", named_options("stackedmnist", None, 2, 4, 1, 0, None))
    try:
        entry.train(config, tmp_path / "run", resume=False, device="cpu", show_progress=False)
    except DatasetError as exc:
        pytest.skip(f"no MNIST digits here: {exc}")
    monkeypatch.setattr(mnist_classifier, "digit_classifier", lambda data_dir, resolution, device: _SevenReader())
    code, out, err = _ddgan(monkeypatch, capsys, "eval", "--run", str(tmp_path / "run"), "-n", "6", "--json")
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    assert metrics["modes"] == 1 and metrics["kl"] == pytest.approx(np.log(1000))  # every triple is 777
    assert metrics["classifier_test_accuracy"] == 0.5 and metrics["n_samples"] == 6
    code, _, err = _ddgan(monkeypatch, capsys, "plot", str(tmp_path / "run"), "--out", str(tmp_path / "plots"))
    assert code == 0, err
    assert _png_size(tmp_path / "plots" / "chain.png")[1] > 8 * 18 * 2  # 8 chains of 16 px, drawn larger


def test_the_image_chain_shows_each_chain_as_a_row_under_its_level_names(monkeypatch):
    from cli import plot_cmd
    from ddgan_core.config import preset
    from ddgan_core.pictures import image_grid

    shown = {}
    monkeypatch.setattr(plot_cmd, "_save", lambda fig, path: shown.setdefault("axes", fig.axes[0]))
    config = preset("tiny")  # T = 4
    trajectory = np.random.default_rng(0).uniform(-1, 1, (5, 3, 3, 16, 16)).astype(np.float32)  # levels, chains
    plot_cmd.plot_chain(trajectory, config, None, pathlib.Path("chain.png"))
    ax = shown["axes"]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["x_4", "x_3", "x_2", "x_1", "x_0"]
    chains_by_row = image_grid(np.swapaxes(trajectory, 0, 1).reshape(-1, 3, 16, 16), nrow=5)
    np.testing.assert_array_equal(ax.images[0].get_array(), chains_by_row)
    np.testing.assert_array_equal(chains_by_row[2:18, 2:18], image_grid(trajectory[0, :1])[2:18, 2:18])  # x_4 of chain 0


class _Pixels:
    name = "pixels"

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = images.reshape(len(images), -1).astype(np.float64)
        return flat, flat[:, :2]


def test_the_default_reference_is_the_runs_training_set_and_a_folder_or_npz_can_replace_it(monkeypatch, tmp_path):
    from cli import eval_cmd
    from ddgan_core.datasets import ImageDataset

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    pixels = np.random.default_rng(0).integers(0, 256, (5, 3, 4, 4), dtype=np.uint8)
    asked = []

    def fake_load(name, data_dir="./data", resolution=32, **kwargs):
        asked.append((name, str(data_dir), resolution))
        return ImageDataset(name, pixels)

    monkeypatch.setattr(eval_cmd, "load_dataset", fake_load)
    reference = eval_cmd.reference_for(None, "cifar10", "/data/cifar", 4, _Pixels())
    assert asked == [("cifar10", "/data/cifar", 4)] and reference.n == 5
    assert "cifar10-train-4px" in reference.source
    eval_cmd.reference_for(tmp_path, "cifar10", "/data/cifar", 4, _Pixels())
    assert asked[-1] == ("imagefolder", str(tmp_path), 4)
    stats = tmp_path / "stats.npz"
    np.savez(stats, mu=np.zeros(48), sigma=np.eye(48))
    assert eval_cmd.reference_for(stats, "cifar10", "/data/cifar", 4, _Pixels()).features is None
    with pytest.raises(eval_cmd.EvaluationError, match="--ref must be"):
        eval_cmd.reference_for(tmp_path / "stats.txt", "cifar10", "/data/cifar", 4, _Pixels())


def test_the_reference_codes_pickled_npy_statistics_are_refused_with_the_command_that_converts_them(tmp_path):
    from cli import eval_cmd

    legacy = tmp_path / "cifar10_train_stat.npy"
    np.save(legacy, {"mu": np.arange(3.0), "sigma": 2 * np.eye(3)}, allow_pickle=True)
    with pytest.raises(eval_cmd.EvaluationError) as refused:
        eval_cmd.reference_for(legacy, "cifar10", "/data/cifar", 4, _Pixels())
    message = str(refused.value)
    assert "\n" not in message and "unpickling runs code" in message
    command = message.split("python -c ", 1)[1].strip('"').replace('\\"', '"')
    exec(command, {})  # the command the user is told to run does the conversion
    converted = eval_cmd.load_reference_file(legacy.with_suffix(".npz"))
    np.testing.assert_array_equal(converted.mu, np.arange(3.0))
    np.testing.assert_array_equal(converted.sigma, 2 * np.eye(3))


def test_eval_draws_the_pixels_of_ddgan_samples_draws_batch_by_batch(monkeypatch, tmp_path):
    from ddgan_core.config import preset
    from ddgan_core.evaluation import to_uint8_nchw, uint8_images_from_batches
    from tests.network_fixtures import visible_generator_checkpoint

    checkpoint = visible_generator_checkpoint(preset("tiny"), tmp_path / "g.safetensors")
    monkeypatch.setattr(entry, "SAMPLE_BATCH", 2)  # 5 samples: batches of 2, 2 and 1
    images = entry.sample_images(checkpoint, 5, None, seed=3, device="cpu")
    samples, _, _ = entry.sample(checkpoint, 5, None, seed=3, device="cpu")
    assert images.dtype == np.uint8 and images.shape == (5, 3, 16, 16) and samples.std() > 0.2
    np.testing.assert_array_equal(images, to_uint8_nchw(samples))
    with pytest.raises(DDGANError, match="expected 3 samples, the sampler gave 2"):
        uint8_images_from_batches([np.zeros((2, 3, 4, 4), np.float32)], 3)


def test_sample_into_a_folder_writes_the_npz_samples_pixels_batch_by_batch_and_eval_reads_them(monkeypatch, capsys, tmp_path):
    from cli.eval_cmd import _Source
    from ddgan_core.config import preset
    from ddgan_core.evaluation import to_uint8_nchw
    from tests.network_fixtures import visible_generator_checkpoint

    config = preset("tiny")
    checkpoint = str(visible_generator_checkpoint(config, tmp_path / "g.safetensors"))
    monkeypatch.setattr(entry, "SAMPLE_BATCH", 2)  # 5 samples: batches of 2, 2 and 1
    for out in ("folder", "s.npz"):
        code, _, err = _ddgan(monkeypatch, capsys, "sample", "--checkpoint", checkpoint, "-n", "5", "--seed", "4",
                              "--device", "cpu", "--out", str(tmp_path / out))
        assert code == 0, err
    with np.load(tmp_path / "s.npz") as stored:
        samples = stored["samples"]
    assert samples.shape == (5, 3, 16, 16) and samples.std() > 0.2
    files = sorted((tmp_path / "folder").iterdir())
    assert [p.name for p in files] == [f"{i:06d}.png" for i in range(5)] + ["ddgan_samples.json"]
    pixels = np.stack([np.asarray(Image.open(p)).transpose(2, 0, 1) for p in files[:5]])
    np.testing.assert_array_equal(pixels, to_uint8_nchw(samples))  # the same draws, the same rounding
    timesteps = config.diffusion.timesteps
    assert json.loads(files[5].read_text()) == {"dataset": config.data.dataset, "timesteps": timesteps,
                                                "steps": timesteps, "seed": 4, "count": 5}
    source = _Source(None, tmp_path / "folder", "torch", None)
    np.testing.assert_array_equal(source.draw_images(5, None, 0, "images"), pixels)  # eval scores these pixels
    assert (source.stored_dataset, source.stored_steps) == (config.data.dataset, timesteps)  # as from the .npz
    code, _, err = _ddgan(monkeypatch, capsys, "sample", "--checkpoint", checkpoint, "-n", "5", "--device", "cpu",
                          "--out", str(tmp_path / "folder"))
    assert code == 2 and "holds files already" in err  # never into a folder of earlier samples
    assert sorted((tmp_path / "folder").iterdir()) == files
