from __future__ import annotations

import math

import numpy as np
import pytest
from ConfigSpace import Categorical, ConfigurationSpace, Float

import searchers
from nas.types import Result, TrialStatus
from searchers import BOHB, Hyperband


def _space() -> ConfigurationSpace:
    s = ConfigurationSpace()
    s.add([Float("x", (0, 1)), Float("y", (0, 1)), Categorical("c", ["a", "b"])])
    return s


def _loss(config: dict, budget: float) -> float:
    return (config["x"] - 0.3) ** 2 + (config["y"] - 0.7) ** 2 + 0.1 * (config["c"] == "b") \
        + 1.0 / budget


def test_successive_halving_promotes_the_best_with_parents() -> None:
    hb = Hyperband(_space(), min_budget=1, max_budget=9, eta=3, seed=0)
    first = [hb.ask() for _ in range(9)]
    assert all(t.budget == 1 and t.parent is None for t in first)
    losses = {t.id: _loss(t.config, 1) for t in first}
    for t in first:
        hb.tell(t, Result(loss=losses[t.id]))
    second = [hb.ask() for _ in range(3)]
    best3 = sorted(losses, key=losses.get)[:3]
    assert [t.parent for t in second] == best3
    assert all(t.budget == 3 for t in second)
    by_id = {t.id: t for t in first}
    assert all(t.config == by_id[t.parent].config for t in second)
    assert hb.continuable() == {t.id for t in second}  # the last rung of the bracket follows
    for t in second:
        hb.tell(t, Result(loss=_loss(t.config, 3)))
    third = hb.ask()
    best = min(second, key=lambda t: _loss(t.config, 3))
    assert (third.budget, third.parent, third.info["rung"]) == (9, best.id, 2)


def test_failures_are_never_promoted_and_an_all_failed_rung_ends_the_bracket() -> None:
    hb = Hyperband(_space(), min_budget=1, max_budget=9, eta=3, seed=0)
    first = [hb.ask() for _ in range(9)]
    for i, t in enumerate(first):
        ok = i in (4, 7)
        hb.tell(t, Result(loss=0.5) if ok else Result.failure(TrialStatus.FAILED, "x"))
    second = [hb.ask() for _ in range(2)]
    assert {t.parent for t in second} == {first[4].id, first[7].id}
    for t in second:
        hb.tell(t, Result.failure(TrialStatus.DIVERGED, "nan"))
    nxt = hb.ask()  # the bracket is over: the next bracket (s = 1) starts at budget 3
    assert nxt.budget == 3 and nxt.parent is None and nxt.info["bracket"] == 1


def test_brackets_cycle_through_the_layout() -> None:
    hb = Hyperband(_space(), min_budget=1, max_budget=9, eta=3, seed=0)
    brackets = []
    for _ in range(60):
        t = hb.ask()
        brackets.append(t.info["bracket"])
        hb.tell(t, Result(loss=_loss(t.config, t.budget)))
    order = [b for i, b in enumerate(brackets) if i == 0 or brackets[i - 1] != b]
    assert order[:4] == [2, 1, 0, 2]


def test_bohb_fits_the_largest_budget_with_enough_points() -> None:
    bohb = BOHB(_space(), min_budget=1, max_budget=9, eta=3, seed=0, random_fraction=0.0)
    proposer = bohb.proposer
    assert proposer.models.min_points == 4  # d + 1 with d = 3 modelled dims
    assert proposer.split.min_points == 4
    origins = []
    for _ in range(80):
        t = bohb.ask()
        origins.append(t.info["origin"])
        bohb.tell(t, Result(loss=_loss(t.config, t.budget)))
    assert "model" in origins
    first_model = origins.index("model")
    assert all(o in ("random", "promoted") for o in origins[:first_model])
    counts = {b: o.n for b, o in proposer.observations.items()}
    assert counts[1.0] >= 6  # the model needs N_min + 2 = 6 points before it is used


def test_bohb_random_fraction_one_is_hyperband() -> None:
    a = BOHB(_space(), min_budget=1, max_budget=9, seed=3, random_fraction=1.0)
    for _ in range(40):
        t = a.ask()
        assert t.info["origin"] in ("random", "promoted")
        a.tell(t, Result(loss=_loss(t.config, t.budget)))


@pytest.mark.parametrize(
    "kwargs",
    [{"random_fraction": 2}, {"top_n_percent": 0}, {"n_samples": 0}, {"bandwidth_factor": 0}],
)
def test_bohb_validates_its_options(kwargs) -> None:
    with pytest.raises(ValueError):
        BOHB(_space(), min_budget=1, max_budget=9, **kwargs)


def test_tpe_concentrates_near_the_optimum() -> None:
    tpe = searchers.get("tpe", _space(), seed=0, n_startup=10)
    xs = []
    for i in range(80):
        t = tpe.ask()
        assert t.info["origin"] == ("random" if i < 10 else "model")
        if i >= 50:
            xs.append((t.config["x"], t.config["y"]))
        tpe.tell(t, Result(loss=_loss(t.config, 9)))
    near = [math.hypot(x - 0.3, y - 0.7) < 0.15 for x, y in xs]
    assert sum(near) / len(near) > 0.5  # random search would land there ~7 % of the time


@pytest.mark.parametrize("multivariate", [True, False])
def test_tpe_options_and_univariate_mode(multivariate: bool) -> None:
    tpe = searchers.get("tpe", _space(), seed=0, n_startup=3, multivariate=multivariate)
    assert tpe.options["multivariate"] is multivariate
    for _ in range(15):
        t = tpe.ask()
        tpe.tell(t, Result(loss=_loss(t.config, 9)))
    with pytest.raises(ValueError):
        searchers.TPE(_space(), gamma=1.5)


# -- in parallel: brackets overlap -------------------------------------------------------------


def test_a_waiting_rung_starts_the_next_bracket_instead_of_returning_none() -> None:
    hb = Hyperband(_space(), min_budget=1, max_budget=9, eta=3, seed=0)
    asked = [hb.ask() for _ in range(20)]  # nothing told: every rung waits
    assert [t.info["bracket"] for t in asked] == [2] * 9 + [1] * 5 + [0] * 3 + [2] * 3
    assert [t.budget for t in asked] == [1] * 9 + [3] * 5 + [9] * 3 + [1] * 3
    assert all(t.parent is None for t in asked)
    # The rung-0 trials of both brackets that have a next rung may still be continued.
    assert hb.continuable() == {t.id for t in asked[:14]} | {t.id for t in asked[17:]}


def test_results_reach_their_bracket_and_the_oldest_bracket_goes_first() -> None:
    hb = Hyperband(_space(), min_budget=1, max_budget=9, eta=3, seed=0)
    asked = [hb.ask() for _ in range(17)]  # brackets s = 2, 1, 0, all waiting
    s2, s1 = asked[:9], asked[9:14]
    for t in reversed(s1):  # the second bracket's rung finishes first, out of order
        hb.tell(t, Result(loss=_loss(t.config, 3)))
    up = hb.ask()
    best = min(s1, key=lambda t: (_loss(t.config, 3), t.id))
    assert (up.budget, up.parent, up.info["bracket"], up.info["rung"]) == (9, best.id, 1, 1)
    fresh = hb.ask()  # every bracket waits again: a fourth one starts
    assert (fresh.budget, fresh.parent, fresh.info["bracket"]) == (1, None, 2)
    order = np.random.default_rng(0).permutation(9)
    for i in order:
        hb.tell(s2[i], Result(loss=_loss(s2[i].config, 1)))
    promoted = [hb.ask() for _ in range(3)]  # the oldest bracket's promotions come first
    best3 = sorted(s2, key=lambda t: (_loss(t.config, 1), t.id))[:3]
    assert [t.parent for t in promoted] == [t.id for t in best3]
    assert all(t.budget == 3 and t.info["bracket"] == 2 for t in promoted)
    nxt = hb.ask()  # then the fourth bracket goes on
    assert (nxt.budget, nxt.parent, nxt.info["bracket"]) == (1, None, 2)


def test_bohb_in_parallel_never_waits_and_continues_only_told_trials() -> None:
    bohb = BOHB(_space(), min_budget=1, max_budget=9, eta=3, seed=1)
    rng = np.random.default_rng(1)
    pending, told, origins = [], set(), []
    for _ in range(150):
        if len(pending) == 6:
            t = pending.pop(int(rng.integers(len(pending))))
            bohb.tell(t, Result(loss=_loss(t.config, t.budget)))
            told.add(t.id)
        kept = bohb.continuable()
        t = bohb.ask()
        assert t is not None
        if t.parent is not None:
            assert t.parent in told and t.parent in kept
        pending.append(t)
        origins.append(t.info["origin"])
    assert {"random", "model", "promoted"} <= set(origins)


@pytest.mark.parametrize("name", ["hyperband", "bohb", "asha"])
def test_include_default_proposes_the_default_configuration_once_first(name: str) -> None:
    space = _space()
    default = dict(space.get_default_configuration())
    runs = {}
    for include in (True, False):
        s = searchers.get(name, space, min_budget=1, max_budget=9, seed=3,
                          include_default=include)
        trials = []
        for _ in range(30):
            trial = s.ask()
            trials.append(trial)
            s.tell(trial, Result(loss=_loss(dict(trial.config), trial.budget)))
        runs[include] = trials
        assert s.options["include_default"] is include
    with_default, without = runs[True], runs[False]
    assert dict(with_default[0].config) == default and with_default[0].budget == 1
    assert with_default[0].info["origin"] == "default"
    assert [t.info["origin"] for t in with_default].count("default") == 1
    assert all(dict(t.config) != default for t in without)


def test_a_rebudget_lays_out_only_the_brackets_not_yet_started() -> None:
    # Issue 20: the trial budget is re-planned as real trial times come in.
    space = ConfigurationSpace(space={"x": Float("x", (0.0, 1.0))}, seed=0)
    s = searchers.get("bohb", space, seed=0, min_budget=1, max_budget=9, eta=3,
                      include_default=True, full_first=True)
    first = s.ask()
    assert first.budget == 9 and "horizon" not in first.info
    s.tell(first, Result(loss=0.5))
    started = s.ask()  # the most exploratory bracket of the 1-9 layout begins
    assert started.budget == 1
    assert s.rebudget(27) and s.next_id == started.id + 1
    # The running bracket keeps its rungs and says no horizon; brackets after it run to 27.
    budgets, horizons = [], set()
    while True:
        trial = s.ask()
        if trial is None:
            break
        s.tell(trial, Result(loss=trial.config["x"]))
        budgets.append(trial.budget)
        if "horizon" in trial.info:
            horizons.add((trial.info["bracket"], trial.info["horizon"]))
        if len(budgets) > 60:
            break
    s.tell(started, Result(loss=0.9))
    assert max(budgets) == 27 and horizons and {h for _, h in horizons} == {27.0}
    assert 27.0 not in budgets[:8]  # the bracket in progress finished on its own ladder first
    assert not searchers.get("asha", space, seed=0, min_budget=1, max_budget=9).rebudget(27)
    assert not searchers.get("tpe", space, seed=0).rebudget(27)
