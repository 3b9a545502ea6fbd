from __future__ import annotations

import dataclasses
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


def _brute(kde: ParzenEstimator, y: np.ndarray, x: np.ndarray, pw: float, mv: str,
           weights: np.ndarray | None = None) -> float:
    w = np.ones(len(x)) if weights is None else weights * len(x) / weights.sum()

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

    def mixture(dims: list[int]) -> float:
        """Log of the mixture over the observations of the product kernel over `dims`."""
        total = sum(w[i] * np.prod([k1(y[j], row[j], j, i) for j in dims])
                    for i, row in enumerate(x))
        total += pw * np.prod([u1(y[j], j) for j in dims])
        return math.log(total / (len(x) + pw))

    if mv == "joint":
        return mixture([0, 1, 2, 3])
    if mv == "independent":  # the continuous dims together, each categorical alone
        return mixture([0, 1]) + mixture([2]) + mixture([3])
    return sum(mixture([j]) for j in range(4))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("rule", ["normal", "neighbors"])
@pytest.mark.parametrize("model", ["joint", "independent", "univariate"])
@pytest.mark.parametrize("prior_weight", [0.0, 1.0])
def test_logpdf_matches_brute_force(model: str, prior_weight: float, rule: str,
                                    weighted: bool) -> None:
    x = _data()
    weights = np.random.default_rng(2).random(len(x)) * 5 + 1e-3 if weighted else None
    kde = ParzenEstimator(x, CAT, K, multivariate=model != "univariate",
                          prior_weight=prior_weight, bandwidth_rule=rule,
                          categoricals="independent" if model == "independent" else "joint",
                          weights=weights)
    y = kde.sample(12, np.random.default_rng(1))
    y[0, 1] = np.nan  # an activity pattern no observation has
    got = kde.logpdf(y)
    want = [_brute(kde, row, x, prior_weight, model, weights) for row in y]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_continuous_density_integrates_to_one() -> None:
    x = np.array([[0.1], [0.5], [0.97]])
    kde = ParzenEstimator(x, np.array([False]), np.array([0]), min_bandwidth=0.05)
    grid = np.linspace(0, 1, 20001)[:, None]
    assert np.trapezoid(np.exp(kde.logpdf(grid)), grid[:, 0]) == pytest.approx(1.0, abs=1e-3)


def test_independent_categoricals_are_a_density_drawn_from_every_observation() -> None:
    # Nineteen observations near 0.1 with choice 0, one at 0.9 with choice 1.
    x = np.array([[0.1 + 0.001 * i, 0.0] for i in range(19)] + [[0.9, 1.0]])
    cat, k = np.array([False, True]), np.array([0, 2])
    joint, independent = (ParzenEstimator(x, cat, k, min_bandwidth=0.05, prior_weight=1.0,
                                          categoricals=c) for c in ("joint", "independent"))
    grid = np.linspace(0, 1, 20001)
    mass = sum(np.trapezoid(np.exp(independent.logpdf(np.c_[grid, np.full_like(grid, c)])),
                            grid) for c in (0.0, 1.0))
    assert mass == pytest.approx(1.0, abs=1e-3)
    # The joint density ties choice 1 to x near 0.9; the independent one's odds of the two
    # choices are the same at every x.
    def odds(kde: ParzenEstimator, at: float) -> float:
        return float(np.diff(kde.logpdf(np.array([[at, 0.0], [at, 1.0]])))[0])

    assert odds(joint, 0.1) < -1.0 < 1.0 < odds(joint, 0.9)
    assert odds(independent, 0.1) == pytest.approx(odds(independent, 0.9), abs=1e-9)
    assert odds(independent, 0.1) < -1.0
    for kde, share in ((joint, (0.6, 1.0)), (independent, (0.0, 0.4))):
        draws = kde.sample(4000, np.random.default_rng(0))
        high = draws[draws[:, 0] > 0.8, 1]
        assert share[0] < np.mean(high == 1.0) < share[1]
    with pytest.raises(ValueError, match="categoricals"):
        ParzenEstimator(x, cat, k, categoricals="grouped")
    # Categorical dims only: one density per dim, as the univariate model has.
    data = _data()[:, CAT]
    y = data[:7]
    alone, univariate = (ParzenEstimator(data, CAT[CAT], K[CAT], prior_weight=1.0,
                                         multivariate=m, categoricals="independent")
                         for m in (True, False))
    np.testing.assert_allclose(alone.logpdf(y), univariate.logpdf(y), rtol=1e-12)


@pytest.mark.parametrize("model", ["joint", "independent", "univariate"])
def test_weighted_draws_start_from_observations_in_proportion_to_their_weights(
        model: str) -> None:
    # Two far-apart clusters of one observation each, weighted 9 to 1.
    x = np.array([[0.05, 0.0], [0.95, 1.0]])
    cat, k = np.array([False, True]), np.array([0, 2])
    kde = ParzenEstimator(x, cat, k, min_bandwidth=0.01, multivariate=model != "univariate",
                          categoricals="independent" if model == "independent" else "joint",
                          weights=np.array([9.0, 1.0]), bandwidth_scale=0.05)
    draws = kde.sample(20000, np.random.default_rng(0))
    assert np.mean(draws[:, 0] < 0.5) == pytest.approx(0.9, abs=0.01)
    # A categorical value is kept, or with chance lam drawn uniformly from both.
    lam = kde.bandwidth[1]
    assert np.mean(draws[:, 1] == 0.0) == pytest.approx(0.9 * (1 - lam) + lam / 2, abs=0.01)
    with pytest.raises(ValueError, match="weights"):
        ParzenEstimator(x, cat, k, weights=np.array([1.0, 0.0]))


def test_improvements_measure_the_good_from_the_best_bad_loss() -> None:
    obs = Observations(1)
    for v, loss in [(0.1, 3.0), (0.2, 1.0), (0.3, 2.0), (0.4, math.inf), (0.5, 1.0)]:
        obs.add(np.array([v]), loss)
    good, _ = obs.split(2)
    np.testing.assert_array_equal(good[:, 0], [0.2, 0.5])  # the ties in age order
    np.testing.assert_array_equal(obs.improvements(2), [1.0, 1.0])  # below the 2.0
    np.testing.assert_array_equal(obs.improvements(3), [2.0, 2.0, 1.0])  # below the 3.0
    assert obs.improvements(4) is None  # the next is a failure: no distance to measure
    assert obs.improvements(5) is None
    # The best ties with the next: both measured from the first loss above them.
    np.testing.assert_array_equal(obs.improvements(1), [1.0])
    obs.add(np.array([0.6]), 2.0)
    np.testing.assert_array_equal(obs.improvements(3), [2.0, 2.0, 1.0])  # past the tied 2.0


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


def test_ei_weighting_draws_tpe_towards_its_best_trials_and_is_journaled() -> None:
    from ConfigSpace import ConfigurationSpace, Float

    import searchers
    from nas.errors import UserError
    from nas.types import Result

    space = ConfigurationSpace(space={"x": Float("x", (0.0, 1.0))})

    def proposals(weighting: str) -> np.ndarray:
        tpe = searchers.get("tpe", space, seed=0, n_startup=3, gamma=0.5, weighting=weighting)
        # Two good results, one far better (x = 0.1) than the other (x = 0.6), then bad ones.
        for x, loss in [(0.1, 0.0), (0.6, 0.9), (0.95, 1.0), (0.9, 1.1), (0.85, 1.2)]:
            trial = tpe.ask()
            tpe.tell(dataclasses.replace(trial, config={"x": x}), Result(loss=loss))
        return np.array([tpe.ask().config["x"] for _ in range(40)])

    uniform, ei = proposals("uniform"), proposals("ei")
    assert np.mean(ei < 0.35) > np.mean(uniform < 0.35) + 0.2
    tpe = searchers.get("tpe", space, seed=0, weighting="ei")
    assert tpe.options["weighting"] == "ei" and tpe.proposer.weighting == "ei"
    with pytest.raises(UserError, match="weighting"):
        searchers.get("tpe", space, seed=0, weighting="linear")


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
    np.testing.assert_allclose(tight.logpdf(y), [_brute(tight, row, x, 0.0, "joint") for row in y],
                               rtol=1e-9, atol=1e-9)
    assert tight.logpdf(x[:1])[0] > plain.logpdf(x[:1])[0]
    with pytest.raises(ValueError, match="bandwidth_scale"):
        ParzenEstimator(x, CAT, K, bandwidth_scale=0.0)
