"""What a run is judged by, computed the same way for every backend (`ddgan eval`).

The dataset picks the metrics (`metric_family`):
- grid25, ring8 (points): modes covered, high-quality share, reverse KL (VEEGAN/PacGAN, 2,500
  samples);
- mixture1d (denoising): the denoising-distribution test per level, against the exact chain
  of the oracle and next to the best single-Gaussian step (ddgan_core.metrics.denoising);
- stackedmnist: the 1000-mode count and KL of digit triples read by an MNIST classifier;
- images: FID, Inception Score, and precision/recall on Inception pool3 features.
The maths are in ddgan_core.metrics. What needs a framework is passed in: the sampler (any
backend's entry module, through `EntryChainModel`), the image feature extractor and the digit
classifier. Results are dataclasses with a JSON form and plain tables the CLI renders.
"""

from __future__ import annotations

import hashlib
import math
import os
import pathlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ddgan_core.batch_progress import batch_ranges
from ddgan_core.config import Config
from ddgan_core.errors import DDGANError
from ddgan_core.metrics import (
    feature_statistics,
    frechet_distance,
    inception_score,
    mode_coverage,
    precision_recall,
    stacked_mnist_coverage,
)
from ddgan_core.metrics.denoising import (
    best_gaussian_step_distance,
    marginal_distances,
    mixture_support,
    sample_best_gaussian_chain,
    step_distance,
)
from ddgan_core.mixture import GaussianMixture
from ddgan_core.ops import NumpyOps
from ddgan_core.output_paths import replaced_atomically
from ddgan_core.oracle import MixtureOracle
from ddgan_core.pictures import to_uint8_images
from ddgan_core.sample_folder import read_sample_folder, read_sample_record
from ddgan_core.sampling import chain_levels, gather_batches, sample_chain
from ddgan_core.schedule import Schedule

POINT_DATASETS = ("grid25", "ring8")
DENOISING_DATASETS = ("mixture1d",)
STACKED_MNIST = "stackedmnist"
DEFAULT_SAMPLES = {"points": 2_500, "denoising": 10_000, "stackedmnist": 26_000, "images": 50_000}
"""Protocol sample counts: PacGAN/VEEGAN 2,500 points and 26,000 Stacked MNIST images; FID on 50,000."""
STEP_QUANTILES = (0.25, 0.5, 0.75)
"""The fixed x_{k+1} of the step test: the quartiles of the exact q(x_{k+1})."""
HIGH_QUALITY_SIGMAS = 3.0
CACHE_ENV = "DDGAN_CACHE_DIR"


class EvaluationError(DDGANError):
    """Input `ddgan eval` cannot score (one-line message)."""


def cache_root() -> pathlib.Path:
    """Where evaluation caches live: $DDGAN_CACHE_DIR, else ~/.cache/ddgan."""
    return pathlib.Path(os.environ.get(CACHE_ENV) or pathlib.Path.home() / ".cache" / "ddgan").expanduser()


def metric_family(dataset: str) -> str:
    """"points", "denoising", "stackedmnist" or "images": which metrics a dataset is scored by."""
    if dataset in POINT_DATASETS:
        return "points"
    if dataset in DENOISING_DATASETS:
        return "denoising"
    if dataset == STACKED_MNIST:
        return "stackedmnist"
    return "images"


def default_sample_count(dataset: str) -> int:
    return DEFAULT_SAMPLES[metric_family(dataset)]


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A plain table for the CLI to render: a title, column names and rows of cells."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def _json_number(value: float | None) -> float | None:
    """JSON has no infinity or NaN: those become null."""
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class PointScores:
    """Mode coverage of 2-D point samples (ddgan_core.metrics.mode_coverage)."""

    modes_covered: int
    n_modes: int
    high_quality_fraction: float
    reverse_kl: float
    counts: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"modes_covered": self.modes_covered, "n_modes": self.n_modes,
                "high_quality_fraction": self.high_quality_fraction, "reverse_kl": _json_number(self.reverse_kl),
                "counts": list(self.counts)}

    def tables(self) -> list[Table]:
        rows = (("modes covered", f"{self.modes_covered} / {self.n_modes}"),
                ("high-quality share (< 3 sigma)", f"{self.high_quality_fraction:.4f}"),
                ("reverse KL to uniform modes", f"{self.reverse_kl:.4f}"))
        return [Table("mode coverage", ("metric", "value"), rows)]


@dataclass(frozen=True)
class LevelScores:
    """W1 distances (data units) at level k: the chain's x_k against q(x_k), and the step
    x_{k+1} -> x_k at fixed points against q(x_k | x_{k+1}), for the model, the best
    single-Gaussian step and the exact sampler (its figure is the sampling noise of these sample
    sizes: what a perfect model would score, give or take; the best Gaussian step's distance is
    computed without sampling, so it can come out below it)."""

    level: int
    chain_model: float
    chain_gaussian: float
    chain_exact: float
    step_points: tuple[float, ...]
    step_model: tuple[float, ...]
    step_gaussian: tuple[float, ...]
    step_exact: tuple[float, ...]


@dataclass(frozen=True)
class DenoisingScores:
    """The denoising-distribution test, one row per level k = T-1 .. 0."""

    levels: tuple[LevelScores, ...]
    n_chain: int
    n_step: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_chain": self.n_chain, "n_step_per_point": self.n_step,
            "levels": [
                {"level": s.level, "chain_w1": {"model": s.chain_model, "best_gaussian": s.chain_gaussian,
                                                "exact_sampler": s.chain_exact},
                 "step_points": list(s.step_points),
                 "step_w1": {"model": list(s.step_model), "best_gaussian": list(s.step_gaussian),
                             "exact_sampler": list(s.step_exact)},
                 "step_w1_mean": {"model": float(np.mean(s.step_model)), "best_gaussian": float(np.mean(s.step_gaussian)),
                                  "exact_sampler": float(np.mean(s.step_exact))}}
                for s in self.levels
            ],
        }

    def tables(self) -> list[Table]:
        chain = tuple((f"x_{s.level}", s.chain_model, s.chain_gaussian, s.chain_exact) for s in self.levels)
        step = tuple((f"x_{s.level + 1} -> x_{s.level}", float(np.mean(s.step_model)), float(np.mean(s.step_gaussian)),
                      float(np.mean(s.step_exact))) for s in self.levels)
        columns = ("model", "best Gaussian step", "exact sampler (sampling noise)")
        return [
            Table(f"chain marginals: W1(samples of x_k, exact q(x_k)), {self.n_chain:,} chains",
                  ("level", *columns), chain),
            Table(f"denoising steps: W1(draws at fixed x_(k+1), exact q(x_k | x_(k+1))), mean over x_(k+1) at the "
                  f"quartiles of q(x_(k+1)), {self.n_step:,} draws each", ("step", *columns), step),
        ]


@dataclass(frozen=True)
class ImageScores:
    """FID, Inception Score and (with reference features) precision/recall of image samples."""

    fid: float
    inception_score: tuple[float, float]
    precision: float | None
    recall: float | None
    n_samples: int
    reference: str
    n_reference: int

    def to_dict(self) -> dict[str, Any]:
        return {"fid": self.fid, "inception_score": {"mean": self.inception_score[0], "std": self.inception_score[1]},
                "precision": self.precision, "recall": self.recall, "n_samples": self.n_samples,
                "reference": self.reference, "n_reference": self.n_reference}

    def tables(self) -> list[Table]:
        rows = [("FID", f"{self.fid:.3f}"),
                ("Inception Score", f"{self.inception_score[0]:.3f} +- {self.inception_score[1]:.3f}")]
        if self.precision is not None and self.recall is not None:
            rows += [("precision (k = 3, Inception pool3)", f"{self.precision:.4f}"),
                     ("recall (k = 3, Inception pool3)", f"{self.recall:.4f}")]
        return [Table(f"{self.n_samples:,} samples against {self.reference} ({self.n_reference:,} images)",
                      ("metric", "value"), tuple(rows))]


@dataclass(frozen=True)
class StackedMNISTScores:
    """Modes (of 1000 digit triples) and KL to uniform, read by a classifier of known accuracy."""

    modes: int
    kl: float
    classifier_accuracy: float
    n_samples: int

    def to_dict(self) -> dict[str, Any]:
        return {"modes": self.modes, "n_modes": 1000, "kl": _json_number(self.kl),
                "classifier_test_accuracy": self.classifier_accuracy, "n_samples": self.n_samples}

    def tables(self) -> list[Table]:
        rows = (("modes covered", f"{self.modes} / 1000"), ("KL to uniform", f"{self.kl:.4f}"),
                ("digit classifier test accuracy", f"{self.classifier_accuracy:.4f}"))
        return [Table(f"Stacked MNIST, {self.n_samples:,} samples", ("metric", "value"), rows)]


@dataclass(frozen=True)
class ChainMarginalScores:
    """W1 of 1-D samples to the exact q(x_k) at the given levels."""

    levels: tuple[int, ...]
    w1: tuple[float, ...]
    n_samples: int

    def to_dict(self) -> dict[str, Any]:
        return {"n_samples": self.n_samples,
                "levels": [{"level": k, "chain_w1": {"model": d}} for k, d in zip(self.levels, self.w1)]}

    def tables(self) -> list[Table]:
        rows = tuple((f"x_{k}", d) for k, d in zip(self.levels, self.w1))
        return [Table(f"W1(samples of x_k, exact q(x_k)), {self.n_samples:,} samples", ("level", "samples"), rows)]


Scores = PointScores | DenoisingScores | ChainMarginalScores | ImageScores | StackedMNISTScores


@dataclass(frozen=True)
class EvalReport:
    """One evaluation: what was scored, how, the scores, and notes for the reader."""

    dataset: str
    source: str
    settings: dict[str, Any]
    scores: Scores
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "source": self.source, **self.settings,
                "metrics": self.scores.to_dict(), "notes": list(self.notes)}


# --- point data -------------------------------------------------------------------------------


def evaluate_points(samples: np.ndarray, mixture: GaussianMixture) -> PointScores:
    """Mode coverage of (N, D) samples (data units) against the data's mixture components."""
    sigma = float(np.sqrt(np.max(mixture.variances)))
    coverage = mode_coverage(samples, mixture.means, sigma, HIGH_QUALITY_SIGMAS)
    return PointScores(coverage.modes_covered, coverage.n_modes, coverage.high_quality_fraction,
                       coverage.reverse_kl, tuple(int(c) for c in coverage.counts))


# --- the denoising-distribution test ----------------------------------------------------------


class ChainModel(Protocol):
    """A sampler of the reverse chain in network units (what the diffusion acts on)."""

    def chain(self, n: int, seed: int) -> np.ndarray:
        """n chains from x_T ~ N(0, I): the trajectory [x_T, ..., x_0], shape (T + 1, n, D)."""

    def step(self, x_t: np.ndarray, level: int, seed: int) -> np.ndarray:
        """One draw of x_{level-1} from each row of x_t (N, D): shape (N, D)."""


class OracleChainModel:
    """The exact sampler: every step draws from the true q(x_{t-1} | x_t) through the oracle's
    exact x_0 posterior, i.e. a perfect generator. It scores near 0 (the sampling floor)."""

    def __init__(self, oracle: MixtureOracle) -> None:
        self.oracle = oracle

    def _run(self, x: np.ndarray, levels: list[int], rng: np.random.Generator) -> np.ndarray:
        _, trajectory = sample_chain(lambda x_t, label: self.oracle.sample_x0(x_t, label + 1, rng), x,
                                     self.oracle.schedule, NumpyOps(rng), levels, return_trajectory=True)
        return np.stack(trajectory)

    def chain(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        levels = chain_levels(self.oracle.schedule.timesteps)
        return self._run(rng.standard_normal((n, self.oracle.data.dim)), levels, rng)

    def step(self, x_t: np.ndarray, level: int, seed: int) -> np.ndarray:
        return self._run(np.asarray(x_t, dtype=np.float64), [level, level - 1], np.random.default_rng(seed))[-1]


class EntryChainModel:
    """A backend's entry module (`sample`, `sample_step`, in data units) as a `ChainModel`.

    Network units are data units / config.data.scale: the diffusion acts on those.
    """

    def __init__(self, entry: Any, checkpoint: pathlib.Path, config: Config, device: str | None) -> None:
        self.entry, self.checkpoint, self.scale, self.device = entry, checkpoint, float(config.data.scale), device

    def chain(self, n: int, seed: int) -> np.ndarray:
        _, trajectory, _ = self.entry.sample(self.checkpoint, n, None, seed, device=self.device, trajectory=True)
        return np.asarray(trajectory, dtype=np.float64) / self.scale

    def step(self, x_t: np.ndarray, level: int, seed: int) -> np.ndarray:
        drawn = self.entry.sample_step(self.checkpoint, np.asarray(x_t * self.scale, dtype=np.float32), level, seed,
                                       device=self.device)
        return np.asarray(drawn, dtype=np.float64) / self.scale


def scaled_mixture(mixture: GaussianMixture, factor: float) -> GaussianMixture:
    """The distribution of factor * x for x ~ mixture."""
    return GaussianMixture(mixture.weights, mixture.means * factor, mixture.variances * factor**2)


def mixture_quantile(mixture: GaussianMixture, p: float, iterations: int = 100) -> float:
    """The p-quantile of a 1-D mixture, by bisection of its CDF over its support."""
    lo, hi = mixture_support(mixture)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if float(mixture.cdf(np.array(mid))) < p else (lo, mid)
    return 0.5 * (lo + hi)


def evaluate_denoising(
    model: ChainModel, data: GaussianMixture, schedule: Schedule, n_chain: int, n_step: int, seed: int,
    scale: float = 1.0,
) -> DenoisingScores:
    """The denoising-distribution test of `model` on 1-D mixture `data` (data units).

    The chain: W1 between the model's x_k (from n_chain chains) and the exact q(x_k); the
    best-Gaussian chain starts from the model's own x_T. The step: at x_{k+1} on the quartiles
    of q(x_{k+1}), n_step draws of x_k against q(x_k | x_{k+1}); the best Gaussian step's
    distance is exact (no sampling). The exact sampler's distances are the sampling noise at these
    sample sizes, what a perfect model would score (a sampled figure can fall below by chance). All in network units, reported in data units (W1 scales linearly).
    """
    if n_chain < 2 or n_step < 2:
        raise EvaluationError(f"the denoising test needs at least 2 samples per level, got {n_chain} and {n_step}")
    oracle = MixtureOracle(scaled_mixture(data, 1.0 / scale), schedule)
    exact = OracleChainModel(oracle)
    timesteps = schedule.timesteps
    model_chain = model.chain(n_chain, seed)
    if model_chain.shape[:2] != (timesteps + 1, n_chain):
        raise EvaluationError(f"the model's trajectory has shape {model_chain.shape}, expected ({timesteps + 1}, {n_chain}, 1)")
    levels = list(range(timesteps - 1, -1, -1))
    exact_marginals = [oracle.marginal(k) for k in levels]
    rng = np.random.default_rng([seed, 1])
    gaussian_chain = sample_best_gaussian_chain(oracle, model_chain[0], rng)
    exact_chain = exact.chain(n_chain, seed + 1)
    chain_model = marginal_distances([model_chain[timesteps - k] for k in levels], exact_marginals)
    chain_gaussian = marginal_distances([gaussian_chain[timesteps - k] for k in levels], exact_marginals)
    chain_exact = marginal_distances([exact_chain[timesteps - k] for k in levels], exact_marginals)
    rows = []
    for index, k in enumerate(levels):
        t = k + 1
        points = np.array([mixture_quantile(oracle.marginal(t), p) for p in STEP_QUANTILES])
        starts = np.repeat(points, n_step)[:, None]
        model_draws = model.step(starts, t, seed + t).reshape(len(points), n_step)
        exact_draws = exact.step(starts, t, seed + 1 + t).reshape(len(points), n_step)
        truths = [oracle.denoising(np.array([x]), t) for x in points]
        rows.append(LevelScores(
            level=k,
            chain_model=scale * chain_model[index],
            chain_gaussian=scale * chain_gaussian[index],
            chain_exact=scale * chain_exact[index],
            step_points=tuple(float(scale * x) for x in points),
            step_model=tuple(scale * step_distance(d, q) for d, q in zip(model_draws, truths)),
            step_gaussian=tuple(scale * best_gaussian_step_distance(q) for q in truths),
            step_exact=tuple(scale * step_distance(d, q) for d, q in zip(exact_draws, truths)),
        ))
    return DenoisingScores(tuple(rows), n_chain, n_step)


# --- images -----------------------------------------------------------------------------------


class ImageFeatureExtractor(Protocol):
    """A feature network for images (the FID Inception): `name` identifies network and weights."""

    name: str

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, C, H, W) -> (features (N, F), class logits (N, K))."""


@dataclass(frozen=True)
class ReferenceStatistics:
    """Feature mean and covariance of the reference images, and their features when known
    (precision/recall need them; a pytorch-fid stats file has only mu and sigma)."""

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray | None
    source: str
    n: int


def to_uint8_nchw(images: np.ndarray) -> np.ndarray:
    """NCHW floats in [-1, 1] -> NCHW uint8, rounded as when samples are saved as PNG."""
    return np.ascontiguousarray(to_uint8_images(images).transpose(0, 3, 1, 2))


def uint8_images_from_batches(batches: Iterable[np.ndarray], n: int) -> np.ndarray:
    """n sample images as uint8 NCHW from batches of NCHW floats in [-1, 1], converted as they come:
    eval's 50,000 samples at 256 px are 9.8 GB as uint8 but would be 39 GB held as float32."""
    def convert(batch: np.ndarray) -> np.ndarray:
        if batch.ndim != 4:
            raise EvaluationError(f"image samples must be (N, C, H, W), got a batch of shape {batch.shape}")
        return to_uint8_nchw(batch)

    return gather_batches(batches, n, np.uint8, convert)


def extract_in_chunks(extractor: ImageFeatureExtractor, images: np.ndarray, chunk: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Features (float32) and logits of many images, `chunk` at a time (memory-mapped sets stay on disk)."""
    features, logits = [], []
    for start, count in batch_ranges(len(images), chunk, "features"):
        f, lg = extractor(np.asarray(images[start : start + count]))
        features.append(np.asarray(f, dtype=np.float32))
        logits.append(np.asarray(lg, dtype=np.float32))
    return np.concatenate(features), np.concatenate(logits)


def images_key(images: np.ndarray, extractor_name: str, chunk: int = 1024) -> str:
    """A content key for cached statistics: the images' bytes, shape and the extractor's identity."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{images.shape}|{images.dtype}|{extractor_name}".encode())
    for start in range(0, len(images), chunk):
        digest.update(np.ascontiguousarray(images[start : start + chunk]).tobytes())
    return digest.hexdigest()


def reference_statistics(
    images: np.ndarray, extractor: ImageFeatureExtractor, label: str, cache_dir: pathlib.Path | None = None
) -> ReferenceStatistics:
    """Statistics of uint8 reference images, computed once and cached in `cache_dir`/fid.

    The cache file is named by `label` and a key of the images' content and the extractor, so
    changed images or other weights are never served stale statistics. It keeps the features
    too (float32; 410 MB for CIFAR-10's 50,000 x 2048), which precision/recall need.
    """
    if len(images) < 2:
        raise EvaluationError(f"the reference {label} needs at least 2 images, has {len(images)}")
    folder = (cache_dir if cache_dir is not None else cache_root()) / "fid"
    path = folder / f"{_safe_name(label)}-{images_key(images, extractor.name)}.npz"
    if path.is_file():
        return load_reference_file(path)
    features, _ = extract_in_chunks(extractor, images)
    mu, sigma = feature_statistics(features)
    with replaced_atomically(path) as partial:  # readers (other processes sharing the cache) see it whole
        np.savez(partial, mu=mu, sigma=sigma, features=features, extractor=np.array(extractor.name))
    return ReferenceStatistics(mu, sigma, features, str(path), len(features))


def _safe_name(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[-80:]


def _read_npz(path: pathlib.Path, names: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """Those of the arrays `names` that the .npz at `path` holds, read without unpickling (which
    could run code). Anything else is refused in one line saying the file is not a readable `what`,
    never with numpy's advice to load it with allow_pickle."""
    refusal = f"{path} is not a readable {what}"
    try:
        data = np.load(path, allow_pickle=False)
    except OSError as exc:
        if exc.errno is None:  # numpy's own complaint about the content, not the system's
            raise EvaluationError(refusal) from None
        raise EvaluationError(f"cannot read {path}: {exc.strerror}") from None
    except Exception:  # noqa: BLE001  (numpy's parsers raise many types on junk: not an .npz)
        raise EvaluationError(refusal) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise EvaluationError(f"{refusal}: it is a single .npy array")
    arrays: dict[str, np.ndarray] = {}
    with data:
        for name in (name for name in names if name in data):
            try:
                array = data[name]
            except Exception:  # noqa: BLE001  (an object array, or a damaged member)
                array = None
            if not isinstance(array, np.ndarray):  # a member that is not .npy comes back as bytes
                raise EvaluationError(f"{refusal}: its '{name}' is damaged or holds Python objects")
            arrays[name] = array
    return arrays


def load_reference_file(path: pathlib.Path) -> ReferenceStatistics:
    """Reference statistics from an .npz with `mu` and `sigma` (pytorch-fid's format), and
    optionally `features` (as this module caches them)."""
    what = ".npz of FID statistics (numeric 'mu' and 'sigma' arrays, as pytorch-fid saves them)"
    arrays = _read_npz(path, ("mu", "sigma", "features"), what)
    if "mu" not in arrays or "sigma" not in arrays:
        raise EvaluationError(f"{path} holds no 'mu' and 'sigma' arrays (FID reference statistics)")
    for name, array in arrays.items():
        if array.dtype.kind not in "iuf":
            raise EvaluationError(f"{path} is not a readable {what}: its '{name}' holds {array.dtype}, not numbers")
    mu, sigma = arrays["mu"].astype(np.float64), arrays["sigma"].astype(np.float64)
    features = arrays.get("features")
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise EvaluationError(f"{path}: mu must be (F,) and sigma (F, F), got {mu.shape} and {sigma.shape}")
    return ReferenceStatistics(mu, sigma, features, str(path), len(features) if features is not None else 0)


def evaluate_images(
    images: np.ndarray, extractor: ImageFeatureExtractor, reference: ReferenceStatistics,
    splits: int = 10, k: int = 3,
) -> ImageScores:
    """FID and IS of uint8 NCHW sample images; precision/recall (k-NN) when the reference has
    features, on equally many real and fake features: m = min(N_real, N_fake) of each, the
    reference's m drawn at random (seeded) because a reference is stored in an order (an image
    folder by path, often class by class) and its first m would cover only part of it."""
    if len(images) < 2:
        raise EvaluationError(f"FID needs at least 2 samples, got {len(images)}")
    features, logits = extract_in_chunks(extractor, images)
    if features.shape[1] != len(reference.mu):
        raise EvaluationError(f"sample features are {features.shape[1]}-d but the reference {reference.source} is "
                              f"{len(reference.mu)}-d")
    mu, sigma = feature_statistics(features)
    fid = frechet_distance(mu, sigma, reference.mu, reference.sigma)
    score = inception_score(logits, splits=min(splits, len(logits)), from_logits=True)
    precision = recall = None
    if reference.features is not None:
        m = min(len(features), len(reference.features))
        if m > k:
            precision, recall = precision_recall(reference_subset(reference.features, m), features[:m], k=k)
    return ImageScores(fid, score, precision, recall, len(images), reference.source, reference.n)


def reference_subset(features: np.ndarray, m: int, seed: int = 0) -> np.ndarray:
    """m of the reference features, all of them if there are no more, else a seeded uniform draw
    without replacement (kept in stored order)."""
    if m >= len(features):
        return features
    return features[np.sort(np.random.default_rng(seed).choice(len(features), m, replace=False))]


# --- Stacked MNIST ----------------------------------------------------------------------------


DigitClassifier = Callable[[np.ndarray], np.ndarray]
"""uint8 digits (N, 1, H, W) -> predicted classes (N,) in 0..9."""


def stacked_mnist_labels(images: np.ndarray, classify: DigitClassifier) -> np.ndarray:
    """Mode label 100 a + 10 b + c of uint8 (N, 3, H, W) images, each channel classified alone."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise EvaluationError(f"Stacked MNIST samples must be (N, 3, H, W), got {images.shape}")
    n, _, h, w = images.shape
    digits = np.asarray(classify(images.reshape(n * 3, 1, h, w))).reshape(n, 3)
    return (digits * np.array([100, 10, 1])).sum(axis=1).astype(np.int64)


def evaluate_stacked_mnist(images: np.ndarray, classify: DigitClassifier, classifier_accuracy: float) -> StackedMNISTScores:
    modes, kl = stacked_mnist_coverage(stacked_mnist_labels(images, classify))
    return StackedMNISTScores(modes, kl, classifier_accuracy, len(images))


# --- sample files -----------------------------------------------------------------------------


_SAMPLES_NPZ = ".npz of numeric arrays written by `ddgan sample`"


def load_samples_file(path: pathlib.Path) -> np.ndarray:
    """The `samples` array of an .npz written by `ddgan sample --out FILE.npz` (data units), or the
    images of a folder (`ddgan sample --out DIR`, or anyone's), as uint8 NCHW."""
    if path.is_dir():
        return read_sample_folder(path)
    if path.suffix.lower() != ".npz":
        raise EvaluationError(f"--samples must be an .npz file or a folder of images written by `ddgan sample`, "
                              f"got '{path}'")
    if not path.is_file():
        raise EvaluationError(f"samples file {path} does not exist")
    arrays = _read_npz(path, ("samples",), _SAMPLES_NPZ)
    if "samples" not in arrays:
        raise EvaluationError(f"{path} holds no 'samples' array")
    samples = arrays["samples"]
    if samples.ndim not in (2, 4) or len(samples) == 0 or not np.issubdtype(samples.dtype, np.number):
        raise EvaluationError(f"{path}: samples must be a non-empty (N, D) or (N, C, H, W) array, got {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise EvaluationError(f"{path}: samples hold non-finite values")
    return samples


def samples_file_dataset(path: pathlib.Path) -> str | None:
    """The dataset a samples file or folder says it is of (`ddgan sample` records it), or None
    (older files, folders of others' images)."""
    if path.is_dir():
        name = read_sample_record(path).get("dataset")
        return name if isinstance(name, str) else None
    name = _read_npz(path, ("dataset",), _SAMPLES_NPZ).get("dataset")
    return str(name) if name is not None and name.ndim == 0 and name.dtype.kind == "U" else None


def samples_file_steps(path: pathlib.Path) -> int | None:
    """The K of the chain that drew a samples file or folder (`ddgan sample` records it), or None
    (older files, folders of others' images)."""
    if path.is_dir():
        steps = read_sample_record(path).get("steps")
        return steps if isinstance(steps, int) and not isinstance(steps, bool) else None
    steps = _read_npz(path, ("steps",), _SAMPLES_NPZ).get("steps")
    return int(steps) if steps is not None and steps.ndim == 0 and steps.dtype.kind in "iu" else None


def evaluate_samples_1d(samples: np.ndarray, data: GaussianMixture) -> ChainMarginalScores:
    """W1 between stored 1-D samples of x_0 and the data distribution (a samples file has no
    model to draw steps from, so only this part of the denoising test applies)."""
    return ChainMarginalScores((0,), (float(marginal_distances([samples], [data])[0]),), len(samples))
