"""Feature statistics and the Fréchet distance against closed forms and scipy's sqrtm."""

import statistics

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ddgan_core.errors import DDGANError
from ddgan_core.metrics import feature_statistics, frechet_distance
from ddgan_core.metrics.frechet import trace_sqrt_product

finite = st.floats(-10, 10, allow_nan=False)
variances = st.one_of(st.just(0.0), st.floats(1e-5, 20))  # zero or resolvable: see the diagonal test


def _random_spd(rng: np.random.Generator, dim: int, rank: int | None = None) -> np.ndarray:
    factor = rng.standard_normal((dim, rank or dim))
    return factor @ factor.T / dim


def test_statistics_are_the_mean_and_unbiased_covariance():
    features = np.array([[0.0, 1.0], [2.0, 5.0], [4.0, 3.0]])
    mu, sigma = feature_statistics(features)
    np.testing.assert_allclose(mu, [2.0, 3.0])
    assert sigma[0, 0] == pytest.approx(statistics.variance([0.0, 2.0, 4.0]))  # (N - 1) divisor: 4, not 8/3
    assert sigma[1, 1] == pytest.approx(statistics.variance([1.0, 5.0, 3.0]))
    assert sigma[0, 1] == sigma[1, 0] == pytest.approx(statistics.covariance([0.0, 2.0, 4.0], [1.0, 5.0, 3.0]))
    assert mu.dtype == sigma.dtype == np.float64


def test_single_feature_gives_a_1x1_covariance():
    mu, sigma = feature_statistics(np.array([[0.0], [2.0]], dtype=np.float32))
    assert mu.shape == (1,) and sigma.shape == (1, 1)
    assert sigma[0, 0] == pytest.approx(2.0)


@given(
    st.integers(1, 6).flatmap(
        lambda d: st.tuples(
            hnp.arrays(np.float64, d, elements=finite),
            hnp.arrays(np.float64, d, elements=finite),
            hnp.arrays(np.float64, d, elements=variances),
            hnp.arrays(np.float64, d, elements=variances),
        )
    )
)
def test_diagonal_covariances_match_the_closed_form(case):
    """Commuting covariances: d^2 = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2, zero variances included.

    Variances are zero or resolvable (>= 1e-5, so that every product a b is far above the numerical
    rank tolerance d eps max(a b)). Below that tolerance an eigenvalue is numerically zero, as for
    np.linalg.matrix_rank, and counts as zero: the tests of rank-deficient covariances below."""
    mu1, mu2, a, b = case
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


@given(st.integers(0, 2**32 - 1), st.integers(2, 12))
@settings(max_examples=30)
def test_full_covariances_match_scipy_sqrtm(seed, dim):
    """The pytorch-fid formula with scipy's general matrix square root as the reference."""
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.standard_normal(dim), rng.standard_normal(dim)
    s1, s2 = _random_spd(rng, dim), _random_spd(rng, dim)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-7, abs=1e-9)


def test_singular_covariances_need_no_offset():
    """Rank-deficient covariances (fewer samples than features): the exact value, to round-off.

    With S1 = P A P and S2 = P B P for an orthogonal P and diagonal A, B that share zeros, the
    matrices commute and the closed form applies.
    """
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    a = np.array([3.0, 2.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0])
    b = np.array([1.0, 0.0, 4.0, 0.5, 2.0, 0.0, 0.0, 0.0])
    s1, s2 = rotation @ np.diag(a) @ rotation.T, rotation @ np.diag(b) @ rotation.T
    s1, s2 = 0.5 * (s1 + s1.T), 0.5 * (s2 + s2.T)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(np.zeros(8), s1, np.zeros(8), s2) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("samples", "features"), [(20, 64), (100, 256)])
def test_fewer_samples_than_features_score_zero_against_themselves(samples, features):
    """A covariance of N < F samples has F - N + 1 zero eigenvalues. They come back as +-eps |S|,
    and their square roots (about 1e-8 |S|^{1/2} each) must not enter tr((S S)^{1/2}) = tr(S)."""
    x = 3.0 * np.random.default_rng(1).standard_normal((samples, features))
    mu, sigma = feature_statistics(x)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-12 * np.trace(sigma)


@pytest.mark.parametrize("seed", range(3))
def test_a_rank_one_covariance_against_fewer_samples_than_features_is_exact(seed):
    """S1 = u u^T, S2 of N < F samples: S1 and S2 do not commute, yet tr((S1 S2)^{1/2}) = sqrt(u^T S2 u)
    (S1 S2 has rank one, its one eigenvalue is u^T S2 u); in either order, to round-off."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(32)
    _, s2 = feature_statistics(rng.standard_normal((10, 32)))
    expected = np.sqrt(u @ s2 @ u)
    assert trace_sqrt_product(np.outer(u, u), s2) == pytest.approx(expected, rel=1e-12)
    assert trace_sqrt_product(s2, np.outer(u, u)) == pytest.approx(expected, rel=1e-12)


def test_identical_feature_sets_score_zero_and_shifted_sets_score_the_shift():
    rng = np.random.default_rng(1)
    features = rng.standard_normal((500, 64)) @ rng.standard_normal((64, 64))
    mu, sigma = feature_statistics(features)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-8 * np.trace(sigma)
    shift = rng.standard_normal(64)
    mu2, sigma2 = feature_statistics(features + shift)
    assert frechet_distance(mu, sigma, mu2, sigma2) == pytest.approx(shift @ shift, rel=1e-6)


def test_fewer_samples_than_features_gives_a_finite_nonnegative_distance():
    rng = np.random.default_rng(2)
    mu1, s1 = feature_statistics(rng.standard_normal((20, 100)))
    mu2, s2 = feature_statistics(rng.standard_normal((20, 100)) + 1.0)
    assert np.linalg.matrix_rank(s1) < 100
    d = frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(d) and d > 100.0  # the mean shift alone contributes |1|^2 * 100


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.zeros(3), np.eye(2), np.zeros(3), np.eye(3)), "covariance \\(F, F\\)"),
        ((np.zeros(3), np.eye(3), np.zeros(2), np.eye(2)), "different feature sizes"),
        ((np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2)), "symmetric"),
        ((np.array([np.nan, 0.0]), np.eye(2), np.zeros(2), np.eye(2)), "finite"),
    ],
)
def test_bad_statistics_are_refused_in_one_line(args, message):
    with pytest.raises(DDGANError, match=message) as info:
        frechet_distance(*args)
    assert "\n" not in str(info.value)


def test_a_covariance_symmetric_to_round_off_is_accepted_and_one_asymmetric_beyond_it_refused():
    sigma = np.array([[2.0, 0.5], [0.5, 1.0]])
    expected = frechet_distance(np.zeros(2), sigma, np.ones(2), np.eye(2))
    rounded = sigma + np.array([[0.0, 1e-12], [0.0, 0.0]])  # the round-off of a covariance computed elsewhere
    assert frechet_distance(np.zeros(2), rounded, np.ones(2), np.eye(2)) == pytest.approx(expected, abs=1e-11)
    skewed = sigma + np.array([[0.0, 1e-6], [0.0, 0.0]])  # 1e-6 of the largest entry: not a covariance
    with pytest.raises(DDGANError, match="symmetric"):
        frechet_distance(np.zeros(2), skewed, np.ones(2), np.eye(2))


@pytest.mark.parametrize("features", [np.zeros((1, 4)), np.zeros(5), np.full((3, 2), np.inf)])
def test_bad_features_are_refused(features):
    with pytest.raises(DDGANError):
        feature_statistics(features)
