"""Backend-neutral evaluation (ddgan_core.evaluation) against cases whose answers are known."""

import dataclasses
import json
import math
import pathlib

import numpy as np
import pytest

from ddgan_core.config import preset
from ddgan_core.datasets.toy import grid25, mixture1d
from ddgan_core.evaluation import (
    EntryChainModel,
    EvalReport,
    EvaluationError,
    OracleChainModel,
    PointScores,
    evaluate_denoising,
    evaluate_images,
    evaluate_points,
    evaluate_samples_1d,
    load_reference_file,
    load_samples_file,
    mixture_quantile,
    reference_statistics,
    reference_subset,
    samples_file_dataset,
    scaled_mixture,
    stacked_mnist_labels,
    to_uint8_nchw,
)
from ddgan_core.metrics.denoising import best_gaussian_step, sample_best_gaussian_chain
from ddgan_core.oracle import MixtureOracle
from ddgan_core.schedule import make_schedule

NEAR_ZERO = 0.1  # W1 of 1,500-3,000 exact draws from mixture1d: 0.02-0.07 (mode shares vary)


# --- point data ---------------------------------------------------------------------------------


def test_a_set_missing_a_third_of_the_grid_modes_scores_exactly_that():
    centres = grid25().means
    kept = centres[:17]  # 8 of 25 modes (about a third) never sampled
    angles = np.linspace(0, 2 * np.pi, 36, endpoint=False)
    offsets = 0.02 * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # 0.4 sigma from the centre
    on_modes = (kept[:, None, :] + offsets[None]).reshape(-1, 2)
    far = np.full((len(on_modes) // 9, 2), 10.0)  # one tenth of all samples far from every mode
    scores = evaluate_points(np.concatenate([on_modes, far]), grid25())
    assert scores.modes_covered == 17 and scores.n_modes == 25
    assert scores.high_quality_fraction == pytest.approx(0.9, abs=1e-12)
    assert scores.reverse_kl == pytest.approx(math.log(25 / 17), abs=1e-12)
    assert scores.counts == (36,) * 17 + (0,) * 8


def test_json_has_no_infinity_when_no_sample_is_high_quality():
    scores = evaluate_points(np.full((10, 2), 10.0), grid25())
    payload = EvalReport("grid25", "x", {"n": 10}, scores).to_json()
    assert payload["metrics"]["reverse_kl"] is None and payload["metrics"]["modes_covered"] == 0
    json.loads(json.dumps(payload, allow_nan=False))


# --- the denoising-distribution test ------------------------------------------------------------


class GaussianStepModel:
    """A diffusion model with the best possible single-Gaussian steps (moment-matched to the truth)."""

    def __init__(self, oracle: MixtureOracle) -> None:
        self.oracle = oracle

    def chain(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return np.stack(sample_best_gaussian_chain(self.oracle, rng.standard_normal(n), rng))[:, :, None]

    def step(self, x_t: np.ndarray, level: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        draws = [rng.normal(*_moments(self.oracle, float(x), level)) for x in x_t[:, 0]]
        return np.array(draws)[:, None]


def _moments(oracle: MixtureOracle, x: float, level: int) -> tuple[float, float]:
    mean, variance = best_gaussian_step(oracle.denoising(np.array([x]), level))
    return mean, math.sqrt(variance)


def test_the_exact_sampler_scores_near_zero_and_the_single_gaussian_step_worse():
    schedule = make_schedule(2)
    oracle = MixtureOracle(mixture1d(), schedule)
    exact = evaluate_denoising(OracleChainModel(oracle), mixture1d(), schedule, 3000, 1500, seed=0)
    gaussian = evaluate_denoising(GaussianStepModel(oracle), mixture1d(), schedule, 3000, 1500, seed=0)
    assert [s.level for s in exact.levels] == [1, 0]
    for row in exact.levels:
        assert row.chain_model < NEAR_ZERO and max(row.step_model) < NEAR_ZERO
    last_exact, last_gaussian = exact.levels[-1], gaussian.levels[-1]
    # the largest step (into x_0) is multimodal: a Gaussian cannot follow it, along the chain or alone
    assert last_gaussian.chain_model > 0.2 > last_exact.chain_model
    assert np.mean(last_gaussian.step_model) > 0.2 > np.mean(last_exact.step_model)
    # the Gaussian model's sampled distances agree with the exact best-Gaussian reference columns
    np.testing.assert_allclose(last_gaussian.step_model, last_gaussian.step_gaussian, atol=NEAR_ZERO)
    assert last_gaussian.chain_model == pytest.approx(last_gaussian.chain_gaussian, abs=NEAR_ZERO)


def test_distances_are_reported_in_data_units_when_the_run_rescales_the_data():
    """A model in network units (data / 2) is compared with the scaled oracle; W1 is scaled back."""
    schedule = make_schedule(2)
    scale = 2.0
    network_oracle = MixtureOracle(scaled_mixture(mixture1d(), 1 / scale), schedule)
    scores = evaluate_denoising(OracleChainModel(network_oracle), mixture1d(), schedule, 3000, 1500, 0, scale=scale)
    for row in scores.levels:
        assert row.chain_model < 2 * NEAR_ZERO and max(row.step_model) < 2 * NEAR_ZERO
    median = mixture_quantile(mixture1d(), 0.5)
    assert float(mixture1d().cdf(np.array(median))) == pytest.approx(0.5, abs=1e-9)
    x1_median = mixture_quantile(network_oracle.marginal(1), 0.5)
    assert scores.levels[-1].step_points[1] == pytest.approx(scale * x1_median)


class DataUnitsEntry:
    """A backend entry module's `sample` / `sample_step` (data units) around an exact sampler."""

    def __init__(self, model: OracleChainModel, scale: float) -> None:
        self.model, self.scale = model, scale

    def sample(self, checkpoint, n, steps, seed, device=None, trajectory=False):
        path = self.model.chain(n, seed) * self.scale
        return path[-1], path, None

    def sample_step(self, checkpoint, x_t, level, seed, device=None):
        return self.model.step(np.asarray(x_t, dtype=np.float64) / self.scale, level, seed) * self.scale


def test_a_backend_entry_in_data_units_is_scored_like_the_model_behind_it():
    schedule = make_schedule(2)
    scale = 2.0
    exact = OracleChainModel(MixtureOracle(scaled_mixture(mixture1d(), 1 / scale), schedule))
    config = preset("toy2d")
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, scale=scale))
    entry_model = EntryChainModel(DataUnitsEntry(exact, scale), pathlib.Path("unused"), config, None)
    np.testing.assert_allclose(entry_model.chain(5, 0), exact.chain(5, 0))
    x_t = np.array([[0.3], [-1.0]])
    np.testing.assert_allclose(entry_model.step(x_t, 1, 7), exact.step(x_t, 1, 7))


def test_denoising_json_lists_both_references_per_level():
    schedule = make_schedule(2)
    oracle = MixtureOracle(mixture1d(), schedule)
    payload = evaluate_denoising(OracleChainModel(oracle), mixture1d(), schedule, 200, 100, 0).to_dict()
    level = payload["levels"][0]
    assert set(level["chain_w1"]) == set(level["step_w1"]) == {"model", "best_gaussian", "exact_sampler"}
    assert len(level["step_points"]) == 3 and payload["n_chain"] == 200


def test_samples_of_the_data_itself_score_near_zero():
    samples = mixture1d().sample(4000, np.random.default_rng(0))
    assert evaluate_samples_1d(samples, mixture1d()).w1[0] < NEAR_ZERO


# --- images -------------------------------------------------------------------------------------


class PixelFeatures:
    """A stand-in feature network: the pixels themselves (features) and their row sums (logits)."""

    name = "pixels-v1"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        flat = images.reshape(len(images), -1).astype(np.float64)
        return flat, np.stack([flat[:, :8].sum(1), flat[:, 8:].sum(1)], axis=1) / 100.0


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(20, 230, (n, 1, 4, 4), dtype=np.uint8)


def test_identical_sets_give_fid_zero_and_precision_recall_one(tmp_path):
    images = _images(40, 0)
    extractor = PixelFeatures()
    reference = reference_statistics(images, extractor, "ref", tmp_path)
    scores = evaluate_images(images, extractor, reference)
    assert scores.fid == pytest.approx(0.0, abs=1e-6)
    assert scores.precision == 1.0 and scores.recall == 1.0


def test_a_constant_shift_of_every_pixel_gives_fid_features_times_shift_squared(tmp_path):
    images = _images(40, 1)
    extractor = PixelFeatures()
    reference = reference_statistics(images, extractor, "ref", tmp_path)
    scores = evaluate_images(images + np.uint8(10), extractor, reference)
    assert scores.fid == pytest.approx(16 * 10.0**2, rel=1e-6)  # |mu1 - mu2|^2; covariances equal


def test_reference_statistics_are_computed_once_and_keyed_by_content(tmp_path):
    extractor = PixelFeatures()
    images = _images(30, 2)
    first = reference_statistics(images, extractor, "cifar10-train-32px", tmp_path)
    calls = extractor.calls
    second = reference_statistics(images.copy(), extractor, "cifar10-train-32px", tmp_path)
    assert extractor.calls == calls and second.source == first.source
    np.testing.assert_array_equal(first.sigma, second.sigma)
    np.testing.assert_array_equal(first.features, second.features)
    changed = images.copy()
    changed[0, 0, 0, 0] += 1
    third = reference_statistics(changed, extractor, "cifar10-train-32px", tmp_path)
    assert extractor.calls > calls and third.source != first.source
    assert len(list((tmp_path / "fid").glob("*.npz"))) == 2


def test_pytorch_fid_statistics_files_load_without_features(tmp_path):
    path = tmp_path / "stats.npz"
    np.savez(path, mu=np.zeros(3), sigma=np.eye(3))
    reference = load_reference_file(path)
    assert reference.features is None and reference.sigma.shape == (3, 3)
    bad = tmp_path / "bad.npz"
    np.savez(bad, mean=np.zeros(3))
    with pytest.raises(EvaluationError, match="no 'mu' and 'sigma'"):
        load_reference_file(bad)
    scores = evaluate_images(_images(5, 3)[:, :, :1, :3], PixelFeatures(), reference)
    assert scores.precision is None and scores.recall is None


def test_samples_in_minus_one_one_become_the_uint8_pixels_they_came_from():
    images = _images(3, 4)
    assert np.array_equal(to_uint8_nchw(images / 127.5 - 1.0), images)


def test_stacked_mnist_labels_read_each_channel_as_a_digit():
    digits = np.array([[3, 0, 7], [9, 9, 1]])
    images = np.repeat(np.repeat(digits[:, :, None, None], 2, axis=2), 2, axis=3).astype(np.uint8)
    labels = stacked_mnist_labels(images, lambda d: d[:, 0, 0, 0])
    assert labels.tolist() == [307, 991]


# --- sample files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, arrays, message",
    [
        ("s.png", None, "must be an .npz"),
        ("missing.npz", None, "does not exist"),
        ("other.npz", {"points": np.zeros((3, 2))}, "no 'samples'"),
        ("flat.npz", {"samples": np.zeros(5)}, "non-empty"),
        ("nan.npz", {"samples": np.full((2, 2), np.nan)}, "non-finite"),
    ],
)
def test_bad_samples_files_are_refused_in_one_line(tmp_path, name, arrays, message):
    path = tmp_path / name
    if arrays is not None:
        np.savez(path, **arrays)
    with pytest.raises(EvaluationError, match=message) as caught:
        load_samples_file(path)
    assert "\n" not in str(caught.value)


def _write_junk(path: pathlib.Path, kind: str) -> None:
    """A file named .npz that is not an .npz of numeric arrays, in one of the ways seen in use."""
    objects = np.array([{"a": 1}], dtype=object)
    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(3000))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "pickled .npy":
        with open(path, "wb") as handle:
            np.save(handle, objects, allow_pickle=True)
    elif kind == "numeric .npy":
        with open(path, "wb") as handle:
            np.save(handle, np.zeros((2, 2)))
    else:  # "object arrays": an .npz, but its arrays need unpickling
        np.savez(path, samples=objects, mu=objects, sigma=np.eye(1), dataset=objects)


_NOT_NPZ = {
    "random bytes": "",
    "empty": "",
    "pickled .npy": "",
    "numeric .npy": ": it is a single .npy array",
}
_SAMPLES = "is not a readable .npz of numeric arrays written by `ddgan sample`"
_STATISTICS = "is not a readable .npz of FID statistics (numeric 'mu' and 'sigma' arrays, as pytorch-fid saves them)"


@pytest.mark.parametrize("kind", [*_NOT_NPZ, "object arrays"])
def test_junk_npz_files_are_refused_saying_what_they_are_not_without_numpy_pickle_advice(tmp_path, kind):
    path = tmp_path / "junk.npz"
    _write_junk(path, kind)
    detail = _NOT_NPZ.get(kind, ": its 'samples' is damaged or holds Python objects")
    with pytest.raises(EvaluationError) as caught:
        load_samples_file(path)
    assert str(caught.value) == f"{path} {_SAMPLES}{detail}"
    detail = _NOT_NPZ.get(kind, ": its 'mu' is damaged or holds Python objects")
    with pytest.raises(EvaluationError) as caught:
        load_reference_file(path)
    assert str(caught.value) == f"{path} {_STATISTICS}{detail}"


def test_a_samples_file_whose_dataset_needs_unpickling_is_refused(tmp_path):
    path = tmp_path / "samples.npz"
    np.savez(path, samples=np.zeros((3, 2)), dataset=np.array(["grid25"], dtype=object))
    with pytest.raises(EvaluationError) as caught:
        samples_file_dataset(path)
    assert str(caught.value) == f"{path} {_SAMPLES}: its 'dataset' is damaged or holds Python objects"
    np.savez(path, samples=np.zeros((3, 2)), dataset=np.array("grid25"))
    assert samples_file_dataset(path) == "grid25"


def test_statistics_that_are_not_numbers_are_refused(tmp_path):
    path = tmp_path / "stats.npz"
    np.savez(path, mu=np.array(["a", "b"]), sigma=np.eye(2))
    with pytest.raises(EvaluationError) as caught:
        load_reference_file(path)
    assert str(caught.value) == f"{path} {_STATISTICS}: its 'mu' holds <U1, not numbers"


def test_point_scores_render_as_a_table():
    scores = PointScores(3, 25, 0.5, 1.0, (1,) * 3 + (0,) * 22)
    (table,) = scores.tables()
    assert table.rows[0] == ("modes covered", "3 / 25")


def test_precision_recall_draw_the_reference_at_random_not_its_first_images(tmp_path):
    # A reference stored class by class (an image folder sorted by path) and a perfect generator
    # with fewer samples: the first images would be one class only, and precision would be ~1/2.
    rng = np.random.default_rng(5)
    dark = rng.integers(20, 60, (200, 1, 4, 4), dtype=np.uint8)
    light = rng.integers(190, 230, (200, 1, 4, 4), dtype=np.uint8)
    extractor = PixelFeatures()
    reference = reference_statistics(np.concatenate([dark, light]), extractor, "sorted", tmp_path)
    samples = np.concatenate([dark[:50], light[:50]])[rng.permutation(100)]
    scores = evaluate_images(samples, extractor, reference)
    assert scores.precision > 0.9 and scores.recall > 0.8
    assert len(reference_subset(reference.features, 100)) == 100
    np.testing.assert_array_equal(reference_subset(reference.features, 100), reference_subset(reference.features, 100))
