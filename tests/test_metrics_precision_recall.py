"""Improved precision and recall against known geometries and a brute-force scipy reference."""

import numpy as np
import pytest
import scipy.spatial.distance
from hypothesis import given, settings
from hypothesis import strategies as st

from ddgan_core.errors import DDGANError
from ddgan_core.metrics import precision_recall


def _brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    def radii(x):
        return np.sort(scipy.spatial.distance.cdist(x, x), axis=1)[:, k]  # column 0 is the point itself

    def inside(points, manifold):
        return (scipy.spatial.distance.cdist(points, manifold) <= radii(manifold)[None, :]).any(axis=1)

    return inside(fake, real).mean(), inside(real, fake).mean()


@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1, 40))
@settings(max_examples=25, deadline=None)
def test_matches_brute_force_for_any_batch_size(seed, k, batch_size):
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((60, 3))
    fake = 0.8 * rng.standard_normal((45, 3)) + 0.7
    expected = _brute_force(real, fake, k)
    assert precision_recall(real, fake, k=k, batch_size=batch_size) == pytest.approx(expected, abs=1e-12)


def test_identical_sets_score_one_and_one():
    features = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
    assert precision_recall(features, features.copy(), batch_size=64) == (1.0, 1.0)


def test_a_distant_fake_set_scores_zero_and_zero():
    rng = np.random.default_rng(1)
    real = rng.standard_normal((200, 8))
    assert precision_recall(real, rng.standard_normal((200, 8)) + 50.0, batch_size=64) == (0.0, 0.0)


def test_fakes_covering_half_the_real_manifold_give_recall_near_one_half():
    """Real: uniform on the unit square. Fake: the same density on its left half only."""
    rng = np.random.default_rng(2)
    real = rng.random((2000, 2))
    fake = rng.random((1000, 2)) * [0.5, 1.0]
    precision, recall = precision_recall(real, fake, batch_size=512)
    assert precision > 0.95
    assert recall == pytest.approx(0.5, abs=0.04)


@pytest.mark.parametrize(
    "real, fake, kwargs, message",
    [
        (np.zeros((10, 3)), np.zeros((10, 4)), {}, "differ in size"),
        (np.zeros((3, 3)), np.zeros((10, 3)), {}, "at least 4 rows"),
        (np.zeros((10, 3)), np.zeros((10, 3)), {"k": 0}, "k must be an integer >= 1"),
        (np.zeros((10, 3)), np.zeros((10, 3)), {"batch_size": 0}, "batch_size must be"),
        (np.zeros((10, 3)), np.zeros((10, 3)), {"k": True}, "k must be"),
        (np.zeros(10), np.zeros((10, 3)), {}, "2-D"),
    ],
)
def test_bad_input_is_refused_in_one_line(real, fake, kwargs, message):
    with pytest.raises(DDGANError, match=message) as info:
        precision_recall(real, fake, **kwargs)
    assert "\n" not in str(info.value)


def test_a_point_exactly_on_a_radius_is_inside_as_in_the_paper():
    """Kynkäänniemi et al. count a sample inside when its distance is <= the k-NN radius."""
    real, fake = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([[4.0], [5.0]])
    # real radii (1-NN, not itself) are 1: fake 4 lies exactly on real 3's; fake radii are 1: real 3 on fake 4's
    assert precision_recall(real, fake, k=1) == (0.5, 0.25)
