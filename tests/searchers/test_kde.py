from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import truncnorm

from searchers._kde import Observations, ParzenEstimator, density_ratio_candidates

CAT = np.array([False, False, True, True])
K = np.array([0, 0, 3, 2])


def _data(n: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.random((n, 4))
    x[:, 2] = rng.integers(0, 3, n)
    x[:, 3] = rng.integers(0, 2, n)
    x[rng.random((n, 4)) < 0.2] = np.nan
    return x


def _brute(kde: ParzenEstimator, y: np.ndarray, x: np.ndarray, pw: float, mv: bool) -> float:
    def k1(a: float, b: float, j: int, i: int) -> float:
        if np.isnan(a) and np.isnan(b):
            return 1.0
        if np.isnan(a) or np.isnan(b):
            return 1e-3
        if CAT[j]:
            bw = kde.bandwidth[j]
            return 1 - bw if a == b else bw / (K[j] - 1)
        bw = kde.kernel_bandwidth[i, j]  # observation i's own kernel
        return truncnorm.pdf(a, -b / bw, (1 - b) / bw, loc=b, scale=bw)

    def u1(a: float, j: int) -> float:
        return 1.0 if np.isnan(a) or not CAT[j] else 1.0 / K[j]

    n = len(x)
    if mv:
        total = sum(np.prod([k1(y[j], row[j], j, i) for j in range(4)])
                    for i, row in enumerate(x))
        total += pw * np.prod([u1(y[j], j) for j in range(4)])
        return math.log(total / (n + pw))
    return sum(math.log((sum(k1(y[j], row[j], j, i) for i, row in enumerate(x))
                         + pw * u1(y[j], j)) / (n + pw)) for j in range(4))


@pytest.mark.parametrize("rule", ["normal", "neighbors"])
@pytest.mark.parametrize("multivariate", [True, False])
@pytest.mark.parametrize("prior_weight", [0.0, 1.0])
def test_logpdf_matches_brute_force(multivariate: bool, prior_weight: float, rule: str) -> None:
    x = _data()
    kde = ParzenEstimator(x, CAT, K, multivariate=multivariate, prior_weight=prior_weight,
                          bandwidth_rule=rule)
    y = kde.sample(12, np.random.default_rng(1))
    y[0, 1] = np.nan  # an activity pattern no observation has
    got = kde.logpdf(y)
    want = [_brute(kde, row, x, prior_weight, multivariate) for row in y]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_continuous_density_integrates_to_one() -> None:
    x = np.array([[0.1], [0.5], [0.97]])
    kde = ParzenEstimator(x, np.array([False]), np.array([0]), min_bandwidth=0.05)
    grid = np.linspace(0, 1, 20001)[:, None]
    assert np.trapezoid(np.exp(kde.logpdf(grid)), grid[:, 0]) == pytest.approx(1.0, abs=1e-3)


def test_samples_stay_in_range_and_near_the_data() -> None:
    x = np.array([[0.2, 1.0], [0.25, 1.0]])
    kde = ParzenEstimator(x, np.array([False, True]), np.array([0, 3]))
    s = kde.sample(2000, np.random.default_rng(0))
    assert (s[:, 0] >= 0).all() and (s[:, 0] <= 1).all()
    assert abs(np.median(s[:, 0]) - 0.225) < 0.05
    assert set(np.unique(s[:, 1])) <= {0.0, 1.0, 2.0}
    assert np.mean(s[:, 1] == 1.0) > 0.5
    # Inactive values stay inactive in draws.
    x[:, 0] = np.nan
    s = ParzenEstimator(x, np.array([False, True]), np.array([0, 3])).sample(
        10, np.random.default_rng(0))
    assert np.isnan(s[:, 0]).all()


def test_bandwidth_rules() -> None:
    x = np.array([[0.5, 0.0]] * 5)
    kde = ParzenEstimator(x, np.array([False, True]), np.array([0, 2]), min_bandwidth=1e-3)
    assert kde.bandwidth[0] == pytest.approx(1e-3) and kde.bandwidth[1] == pytest.approx(1e-3)
    clipped = ParzenEstimator(x, np.array([False, True]), np.array([0, 2]), magic_clip=True)
    assert clipped.bandwidth[0] == pytest.approx(1 / 6)
    spread = ParzenEstimator(np.array([[0.0, 0.0], [1.0, 1.0]] * 3), np.array([False, True]),
                             np.array([0, 2]))
    assert spread.bandwidth[1] <= 0.5  # a categorical bandwidth never exceeds uniform


def test_neighbor_bandwidths_follow_the_gaps_between_observations() -> None:
    x = np.array([[0.1], [0.2], [0.6], [np.nan], [0.9]])
    kde = ParzenEstimator(x, np.array([False]), np.array([0]), bandwidth_rule="neighbors")
    # Inner points: the larger gap beside them; the outermost: the gap inwards only.
    np.testing.assert_allclose(kde.kernel_bandwidth[[0, 1, 2, 4], 0], [0.1, 0.4, 0.4, 0.3])
    assert np.isfinite(kde.logpdf(np.array([[0.5], [np.nan]]))).all()
    crowded = ParzenEstimator(np.array([[0.5]] * 4), np.array([False]), np.array([0]),
                              bandwidth_rule="neighbors", magic_clip=True)
    assert crowded.kernel_bandwidth[:, 0] == pytest.approx([0.2] * 4)  # the clip, not zero
    with pytest.raises(ValueError, match="bandwidth_rule"):
        ParzenEstimator(x, np.array([False]), np.array([0]), bandwidth_rule="silverman")


def test_observations_grow_and_split_deterministically() -> None:
    obs = Observations(2)
    for i in range(40):
        obs.add(np.array([i, i]), [3.0, 1.0, math.inf, 1.0][i % 4])
    assert obs.n == 40 and obs.vectors.shape == (40, 2)
    good, bad = obs.split(5)
    assert good[:, 0].tolist() == [1, 3, 5, 7, 9]  # loss 1.0, oldest first
    assert len(bad) == 35 and np.isinf(obs.losses[bad[-1, 0].astype(int)])
    good, bad = obs.split(3, 4)
    assert len(good) == 3 and len(bad) == 4


def test_density_ratio_prefers_the_good_region() -> None:
    rng = np.random.default_rng(0)
    good = ParzenEstimator(rng.normal(0.2, 0.03, (10, 1)).clip(0, 1), np.array([False]),
                           np.array([0]))
    bad = ParzenEstimator(rng.random((50, 1)), np.array([False]), np.array([0]))
    ranked = density_ratio_candidates(good, bad, 64, rng)
    assert abs(ranked[0, 0] - 0.2) < 0.1


def test_tpe_takes_a_bandwidth_rule_and_journals_it() -> None:
    from ConfigSpace import ConfigurationSpace, Float

    import searchers
    from nas.errors import UserError

    space = ConfigurationSpace(space={"x": Float("x", (0.0, 1.0))})
    tpe = searchers.get("tpe", space, seed=0, bandwidth_rule="neighbors")
    assert tpe.options["bandwidth_rule"] == "neighbors"
    assert tpe.proposer.bandwidth_rule == "neighbors"
    with pytest.raises(UserError, match="bandwidth_rule"):
        searchers.get("tpe", space, seed=0, bandwidth_rule="silverman")


@pytest.mark.parametrize("rule", ["normal", "neighbors"])
def test_bandwidth_scale_narrows_the_continuous_kernels_only(rule: str) -> None:
    x = _data()
    plain = ParzenEstimator(x, CAT, K, bandwidth_rule=rule, magic_clip=True)
    tight = ParzenEstimator(x, CAT, K, bandwidth_rule=rule, magic_clip=True, bandwidth_scale=0.5)
    np.testing.assert_allclose(tight.kernel_bandwidth[:, ~CAT],
                               0.5 * plain.kernel_bandwidth[:, ~CAT])
    np.testing.assert_array_equal(tight.kernel_bandwidth[:, CAT], plain.kernel_bandwidth[:, CAT])
    # Still a normalised density, and one that peaks higher at its observations.
    y = tight.sample(12, np.random.default_rng(1))
    np.testing.assert_allclose(tight.logpdf(y), [_brute(tight, row, x, 0.0, True) for row in y],
                               rtol=1e-9, atol=1e-9)
    assert tight.logpdf(x[:1])[0] > plain.logpdf(x[:1])[0]
    with pytest.raises(ValueError, match="bandwidth_scale"):
        ParzenEstimator(x, CAT, K, bandwidth_scale=0.0)
