"""`ddgan eval`: score a run (sampling its EMA generator) or a samples file, by the dataset's metrics."""

from __future__ import annotations

import json
import pathlib
from typing import Any, Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table as RichTable

from cli.app import app, flag_option, seed_option
from cli.backend_loader import load_backend
from ddgan_core.config import Config
from ddgan_core.datasets import load_dataset
from ddgan_core.datasets.registry import spec_of
from ddgan_core.errors import DDGANError
from ddgan_core.evaluation import (
    EntryChainModel,
    EvalReport,
    EvaluationError,
    ImageFeatureExtractor,
    ReferenceStatistics,
    Scores,
    default_sample_count,
    evaluate_denoising,
    evaluate_images,
    evaluate_points,
    evaluate_samples_1d,
    evaluate_stacked_mnist,
    load_reference_file,
    load_samples_file,
    samples_file_dataset,
    samples_file_steps,
    metric_family,
    reference_statistics,
    to_uint8_nchw,
)
from ddgan_core.rundir import RunDir, newest_run
from ddgan_core.schedule import schedule_from_config
from ddgan_core.session import own_last_checkpoint

FID_PROTOCOL_SAMPLES = 50_000
FAMILY_METRICS = {"points": "mode coverage", "denoising": "the denoising-distribution test",
                  "stackedmnist": "its 1,000 modes through a digit classifier"}


class _Source:
    """Where samples come from: a run's checkpoint through a backend, or a stored array."""

    def __init__(self, run: Optional[pathlib.Path], samples: Optional[pathlib.Path], backend: str,
                 device: Optional[str]) -> None:
        if run is not None and samples is not None:
            raise EvaluationError("pass either --run or --samples, not both")
        self.device = device
        self.stored: np.ndarray | None = None
        self.config: Config | None = None
        self.stored_dataset: str | None = None
        if samples is not None:
            self.stored = load_samples_file(samples)
            self.stored_dataset = samples_file_dataset(samples)
            self.stored_steps = samples_file_steps(samples)
            self.name = str(samples)
            return
        run_dir = (RunDir.existing(run) if run is not None
                   else newest_run(with_checkpoint=True, hint="pass --run DIR or --samples FILE"))
        self.checkpoint = own_last_checkpoint(run_dir)  # not another run's, copied in
        if not self.checkpoint.is_file():
            raise EvaluationError(f"{run_dir.path} has no checkpoint yet ({self.checkpoint})")
        self.config = run_dir.config()
        self.entry = load_backend(backend)
        self.name = str(run_dir.path)

    def draw(self, n: int, steps: Optional[int], seed: int) -> np.ndarray:
        if self.stored is not None:
            return self.stored
        samples, _, _ = self.entry.sample(self.checkpoint, n, steps, seed, device=self.device)
        return samples

    def draw_images(self, n: int, steps: Optional[int], seed: int, dataset: str) -> np.ndarray:
        """uint8 NCHW images: the stored samples, or n drawn and converted batch by batch."""
        if self.stored is None:
            return self.entry.sample_images(self.checkpoint, n, steps, seed, device=self.device)
        if self.stored.ndim != 4:
            raise EvaluationError(f"{dataset} samples must be images (N, C, H, W), got shape {self.stored.shape}")
        return self.stored if self.stored.dtype == np.uint8 else to_uint8_nchw(self.stored)


def _dataset_name(source: _Source, dataset: Optional[str]) -> str:
    if dataset is not None:
        spec_of(dataset)  # an unknown name is refused as such, not as another than the run's or the file's
    if source.config is not None:
        if dataset is not None and dataset != source.config.data.dataset:
            raise EvaluationError(f"the run was trained on {source.config.data.dataset}, not {dataset}: drop --dataset")
        return source.config.data.dataset
    if source.stored_dataset is not None:
        if dataset is not None and dataset != source.stored_dataset:
            raise EvaluationError(f"{source.name} holds samples of {source.stored_dataset}, not {dataset}: drop --dataset")
        return source.stored_dataset
    if dataset is not None:
        return dataset
    shape = source.stored.shape
    if len(shape) == 2 and shape[1] == 1:
        return "mixture1d"
    if len(shape) == 4:
        return "images"
    if len(shape) == 2 and shape[1] == 2:
        raise EvaluationError("say what the 2-D samples are of with --dataset (grid25 or ring8)")
    raise EvaluationError(f"samples of shape {tuple(shape)} are of no dataset ddgan knows by shape: pass --dataset NAME")


def _torch_device(device: Optional[str]):
    load_backend("torch")  # the feature networks are PyTorch's: a one-line hint if it is missing
    from backends.torch_cuda.entry import pick_device, set_up

    return set_up(pick_device(device))


def reference_for(
    ref: Optional[pathlib.Path], dataset: str, data_dir: str | pathlib.Path, resolution: int, extractor: ImageFeatureExtractor,
) -> ReferenceStatistics:
    """The FID reference: --ref (a statistics .npz or an image folder), else the dataset's training images."""
    if ref is None:
        images = load_dataset(dataset, data_dir, resolution=resolution).images
        return reference_statistics(images, extractor, f"{dataset}-train-{resolution}px")
    if ref.is_dir():
        images = load_dataset("imagefolder", ref, resolution=resolution).images
        return reference_statistics(images, extractor, f"{ref.resolve().name}-{resolution}px")
    if ref.suffix.lower() == ".npy" and ref.is_file():
        raise EvaluationError(
            f"{ref}: .npy statistics (the reference code's pickled dicts) are not read, as unpickling runs code; "
            f"convert once: python -c \"import numpy as n; d = n.load('{ref}', allow_pickle=True).item(); "
            f"n.savez('{ref.with_suffix('.npz')}', mu=d['mu'], sigma=d['sigma'])\""
        )
    if ref.suffix.lower() != ".npz" or not ref.is_file():
        raise EvaluationError(f"--ref must be an .npz of statistics or a folder of images, got '{ref}'")
    return load_reference_file(ref)


def _score(
    family: str, source: _Source, dataset: str, n: int, steps: Optional[int], seed: int, data_dir: str | pathlib.Path,
    inception_weights: Optional[pathlib.Path], ref: Optional[pathlib.Path],
) -> tuple[Scores, list[str]]:
    notes: list[str] = []
    if family == "denoising" and source.config is not None:
        config = source.config
        if steps is not None and steps != config.diffusion.timesteps:
            raise EvaluationError(f"the denoising-distribution test runs the trained chain (T = "
                                  f"{config.diffusion.timesteps}): drop --steps")
        model = EntryChainModel(source.entry, source.checkpoint, config, source.device)
        mixture = load_dataset(dataset).mixture
        return evaluate_denoising(model, mixture, schedule_from_config(config.diffusion), n, n, seed,
                                  config.data.scale), notes
    if source.stored is not None:
        notes.append(f"scored all {len(source.stored):,} stored samples")
    if family == "denoising":
        notes.append("a samples file gives x_0 only: the per-level chain and step distances need --run")
        return evaluate_samples_1d(source.draw(n, steps, seed), load_dataset(dataset).mixture), notes
    if family == "points":
        return evaluate_points(source.draw(n, steps, seed), load_dataset(dataset).mixture), notes
    device = _torch_device(source.device)
    if family == "stackedmnist":
        from backends.torch_cuda.mnist_classifier import digit_classifier

        images = source.draw_images(n, steps, seed, dataset)
        classifier = digit_classifier(data_dir, images.shape[-1], device)
        return evaluate_stacked_mnist(images, classifier, classifier.accuracy), notes
    if ref is None and dataset == "images":
        raise EvaluationError("image samples need reference statistics: pass --ref stats.npz or --ref IMAGE_DIR "
                              "(or --dataset NAME to use that dataset's training images)")
    from backends.torch_cuda.inception import FID_WEIGHTS_SHA256, fid_features

    extractor = fid_features(inception_weights, device)  # first: missing weights fail before 50,000 samples are drawn
    if not extractor.published_weights:
        notes.append(f"{extractor.name} is not pytorch-fid's weights file (its SHA-256 does not begin "
                     f"{FID_WEIGHTS_SHA256[:8]}): these scores are not comparable with published FID and IS")
    images = source.draw_images(n, steps, seed, dataset)
    reference = reference_for(ref, dataset, data_dir, images.shape[-1], extractor)
    if len(images) != FID_PROTOCOL_SAMPLES:
        notes.append(f"FID from {len(images):,} samples (the protocol uses {FID_PROTOCOL_SAMPLES:,}): it is biased "
                     "upward at small N, so compare only at equal N")
    if reference.features is None:
        notes.append(f"{reference.source} holds no features: precision/recall need --ref IMAGE_DIR or the dataset")
    return evaluate_images(images, extractor, reference), notes


def _steps_used(source: _Source, steps: Optional[int]) -> Optional[int]:
    """The K the scored samples were drawn with: --steps, else the run's T; a file's record (None
    where it has none)."""
    if source.config is None:
        return source.stored_steps
    return steps if steps is not None else source.config.diffusion.timesteps


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _print(report: EvalReport) -> None:
    console = Console()
    settings = ", ".join(f"{k} {v}" for k, v in report.settings.items() if v is not None)
    console.print(f"[bold]{report.dataset}[/]: {report.source}  ({settings})", highlight=False)
    for table in report.scores.tables():
        rich_table = RichTable(title=table.title)
        for index, column in enumerate(table.columns):
            rich_table.add_column(column, justify="left" if index == 0 else "right")
        for row in table.rows:
            rich_table.add_row(*(_cell(v) for v in row))
        console.print(rich_table)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)


@app.command("eval")
def evaluate(
    run: Optional[pathlib.Path] = typer.Option(None, "--run", help="Run directory (default: the newest under ./runs)."),
    samples: Optional[pathlib.Path] = typer.Option(None, "--samples", help="An .npz or a folder of images from `ddgan sample` instead of a run."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="What a samples file is of (grid25, ring8, cifar10, ...)."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="torch or tinygrad (samples the run; default torch)."),
    n: Optional[int] = typer.Option(None, "-n", "--num", help="Samples (default: the protocol's, by dataset)."),
    steps: Optional[int] = typer.Option(None, "--steps", "-k", help="Denoising steps K <= T (default T)."),
    seed: int = seed_option(),
    as_json: bool = flag_option("--json", help="Print one JSON object."),
    inception_weights: Optional[pathlib.Path] = typer.Option(
        None, "--inception-weights", help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (FID, IS, P/R)."),
    ref: Optional[pathlib.Path] = typer.Option(
        None, "--ref", help="Reference: stats .npz (mu, sigma) or an image folder (default: the run's dataset)."),
    data_dir: Optional[pathlib.Path] = typer.Option(None, "--data-dir", help="Where the dataset is (default: the run's)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: cuda when available)."),
) -> None:
    """Score samples: mode coverage (grid25, ring8, stackedmnist), the denoising-distribution test (mixture1d), FID, IS, P/R (images)."""
    if n is not None and n < 2:
        raise DDGANError(f"-n must be at least 2, got {n}")
    sampling_options = {"--steps": steps, "--backend": backend, "-n": n}
    given = [name for name, value in sampling_options.items() if value is not None]
    if samples is not None and given:
        raise DDGANError(f"{given[0]} is for sampling a run: a --samples file is drawn already (and scored whole)")
    backend = backend or "torch"
    source = _Source(run, samples, backend, device)
    name = _dataset_name(source, dataset)
    family = metric_family(name)
    fid_options = {"--ref": ref, "--inception-weights": inception_weights}
    unused = [option for option, value in fid_options.items() if value is not None]
    if unused and family != "images":
        raise DDGANError(f"{unused[0]} is for FID and IS of images; {name} is scored by {FAMILY_METRICS[family]}")
    count = n if n is not None else default_sample_count(name)
    directory = data_dir or (source.config.data.data_dir if source.config is not None else "./data")
    scores, notes = _score(family, source, name, count, steps, seed, directory, inception_weights, ref)
    settings = {"backend": backend if source.config is not None else None, "n": count if source.stored is None else len(source.stored),
                "steps": _steps_used(source, steps), "seed": seed}
    report = EvalReport(name, source.name, settings, scores, tuple(notes))
    if as_json:
        typer.echo(json.dumps(report.to_json()))
    else:
        _print(report)
