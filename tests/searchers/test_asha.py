from __future__ import annotations

import math

import numpy as np
import pytest
from ConfigSpace import ConfigurationSpace, Float

import searchers
from nas.types import Result, Trial, TrialStatus
from searchers import ASHA, hyperband_layout


def _space() -> ConfigurationSpace:
    s = ConfigurationSpace()
    s.add([Float("x", (0, 1)), Float("y", (0, 1))])
    return s


def _asha(**kwargs) -> ASHA:
    return ASHA(_space(), **{"min_budget": 1, "max_budget": 27, "eta": 3, "seed": 0, **kwargs})


def _ok(loss: float) -> Result:
    return Result(loss=loss)


def _failed() -> Result:
    return Result.failure(TrialStatus.FAILED, "synthetic")


def _is_new(trial: Trial) -> bool:
    return trial.budget == 1 and trial.parent is None and trial.info == {
        "rung": 0, "origin": "random"}


def test_rungs_are_those_of_the_most_exploratory_bracket() -> None:
    assert _asha().budgets == (1, 3, 9, 27)
    odd = ASHA(_space(), min_budget=2, max_budget=100)
    assert odd.budgets == tuple(r.budget for r in hyperband_layout(2, 100, 3)[0].rungs)
    assert odd.budgets[-1] == 100
    built = searchers.get("asha", _space(), seed=3, min_budget=1, max_budget=9, eta=2)
    assert isinstance(built, ASHA) and ASHA.multi_fidelity and not ASHA.model_based
    assert built.options == {"min_budget": 1.0, "max_budget": 9.0, "eta": 2.0,
                             "include_default": False}


def test_two_results_promote_nothing_and_a_new_config_comes() -> None:
    asha = _asha()
    a, b = asha.ask(), asha.ask()
    asha.tell(a, _ok(0.5))
    asha.tell(b, _ok(0.2))
    assert _is_new(asha.ask())  # floor(2 / 3) = 0 places in the top third


def test_after_three_results_the_best_is_promoted_on_the_next_ask() -> None:
    asha = _asha()
    first = [asha.ask() for _ in range(3)]
    for t, loss in zip(first, (0.5, 0.2, 0.9), strict=True):
        asha.tell(t, _ok(loss))
    up = asha.ask()
    assert (up.budget, up.parent, up.config) == (3, first[1].id, first[1].config)
    assert up.info == {"rung": 1, "origin": "promoted"}
    new = asha.ask()
    assert _is_new(new)  # the one place of the top third is taken
    more = [asha.ask() for _ in range(2)]
    for t, loss in zip([new, *more], (0.6, 0.3, 0.8), strict=True):
        asha.tell(t, _ok(loss))
    # Six results at rung 0: the top two are 0.2 (promoted already) and 0.3.
    assert asha.ask().parent == more[0].id


def test_promotion_happens_while_other_trials_are_pending() -> None:
    asha = _asha()
    asked = [asha.ask() for _ in range(6)]
    for t, loss in ((asked[3], 0.4), (asked[1], 0.1), (asked[5], 0.7)):  # out of order
        asha.tell(t, _ok(loss))
    up = asha.ask()
    assert (up.budget, up.parent) == (3, asked[1].id)
    assert {asked[0].id, asked[2].id, asked[4].id} <= set(asha.pending)


def test_higher_rungs_promote_first() -> None:
    asha = _asha()
    first = [asha.ask() for _ in range(9)]
    for i, t in enumerate(first):
        asha.tell(t, _ok(0.1 * (i + 1)))
    rung1 = [asha.ask() for _ in range(3)]
    assert [t.parent for t in rung1] == [t.id for t in first[:3]]
    late = asha.ask()
    assert _is_new(late)
    for t, loss in zip(rung1, (0.3, 0.05, 0.2), strict=True):
        asha.tell(t, _ok(loss))
    asha.tell(late, _ok(0.01))  # rung 0 has a promotion due too now
    top = asha.ask()
    assert (top.budget, top.parent, top.info["rung"]) == (9, rung1[1].id, 2)
    below = asha.ask()
    assert (below.budget, below.parent) == (3, late.id)


def test_failed_trials_are_never_promoted() -> None:
    asha = _asha()
    first = [asha.ask() for _ in range(3)]
    for t in first:
        asha.tell(t, _failed())
    assert _is_new(asha.ask())  # all three failed: nothing moves up
    more = [asha.ask() for _ in range(3)]
    asha.tell(more[0], _ok(0.5))
    asha.tell(more[1], Result.failure(TrialStatus.DIVERGED, "nan"))
    asha.tell(more[2], _failed())
    # Seven results, top two: 0.5 and a failure. Only 0.5 moves up.
    assert asha.ask().parent == more[0].id
    assert _is_new(asha.ask())
    assert asha.continuable().isdisjoint({t.id for t in first} | {more[1].id, more[2].id})


def test_continuable_shrinks_as_the_rung_fills_and_after_promotions() -> None:
    asha = _asha()
    asked = [asha.ask() for _ in range(6)]
    assert asha.continuable() == set()  # nothing finished yet
    asha.tell(asked[0], _ok(10.0))
    assert asha.continuable() == {asked[0].id}  # window ceil(2 / 3) + 1 = 2
    for i, t in enumerate(asked[1:], start=1):
        asha.tell(t, _ok(float(i)))
    # Six results: window ceil(12 / 3) + 1 = 5, so the worst (10.0) is let go.
    assert asha.continuable() == {t.id for t in asked[1:]}
    up = asha.ask()
    assert up.parent == asked[1].id
    assert asha.continuable() == {t.id for t in asked[2:]}  # promoted: no longer kept
    asha.tell(up, _ok(0.5))
    assert up.id in asha.continuable()  # rung 1 is not the top rung


def test_the_top_rung_is_never_continuable() -> None:
    asha = ASHA(_space(), min_budget=1, max_budget=9, eta=3, seed=0)
    top: list[int] = []
    for _ in range(60):
        t = asha.ask()
        asha.tell(t, _ok(t.config["x"] + 1 / t.budget))
        if t.budget == 9:
            top.append(t.id)
    assert top and asha.continuable().isdisjoint(top)


def test_one_rung_never_promotes() -> None:
    asha = ASHA(_space(), min_budget=5, max_budget=5, seed=0)
    for _ in range(10):
        t = asha.ask()
        assert t.budget == 5 and t.parent is None
        asha.tell(t, _ok(t.config["x"]))
    assert asha.continuable() == set()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_asynchronous_run_follows_the_promotion_rule(seed: int) -> None:
    """Against a plain re-implementation: 300 trials, 8 in flight, random completion order."""
    eta, budgets = 3, (1.0, 3.0, 9.0, 27.0)
    asha = _asha(seed=seed)
    rng = np.random.default_rng(seed)
    results: list[dict[int, float]] = [{} for _ in budgets]
    promoted: list[set[int]] = [set() for _ in budgets]
    rung_of: dict[int, int] = {}
    pending: list[Trial] = []
    for n in range(300):
        while len(pending) >= 8:
            t = pending.pop(int(rng.integers(len(pending))))
            res = _failed() if rng.random() < 0.1 else _ok(
                (t.config["x"] - 0.3) ** 2 + 1 / t.budget + 0.05 * rng.random())
            asha.tell(t, res)
            results[rung_of[t.id]][t.id] = res.loss if res.ok else math.inf
        # Which promotion is due: the highest rung with one, the best of its top 1/eta.
        due = None
        for k in range(len(budgets) - 2, -1, -1):
            ranked = sorted((loss, tid) for tid, loss in results[k].items())
            top = ranked[: len(ranked) // eta]
            free = [tid for loss, tid in top if math.isfinite(loss) and tid not in promoted[k]]
            if free:
                due = (k, free[0])
                break
        kept = asha.continuable()
        t = asha.ask()
        if due is None:
            assert t.budget == 1 and t.parent is None, f"ask #{n}"
            rung_of[t.id] = 0
        else:
            k, parent = due
            assert (t.budget, t.parent, t.info["rung"]) == (budgets[k + 1], parent, k + 1)
            assert parent in kept  # its checkpoint was kept for exactly this
            promoted[k].add(parent)
            rung_of[t.id] = k + 1
        pending.append(t)
    assert promoted[2], "the run never promoted to the top rung"


# -- async-bohb: ASHA's schedule, BOHB's proposer ----------------------------------------------


def test_async_bohb_is_registered_with_bohbs_options() -> None:
    cls = searchers.get_class("async-bohb")
    assert cls is searchers.AsyncBOHB and issubclass(cls, ASHA)
    assert cls.multi_fidelity and cls.model_based
    built = searchers.get("async-bohb", _space(), seed=3, min_budget=1, max_budget=9)
    assert built.options == searchers.BOHB(_space(), min_budget=1, max_budget=9).options
    assert built.budgets == (1, 3, 9)


def _drive(s: ASHA, n: int, seed: int) -> list[Trial]:
    rng = np.random.default_rng(seed)
    pending: list[Trial] = []
    asked = []
    for _ in range(n):
        if len(pending) == 4:
            t = pending.pop(int(rng.integers(len(pending))))
            s.tell(t, _ok((t.config["x"] - 0.3) ** 2 + 1 / t.budget))
        t = s.ask()
        asked.append(t)
        pending.append(t)
    return asked


def test_async_bohb_with_only_random_proposals_asks_what_asha_asks() -> None:
    # The random fraction draws from the searcher's generator, the random samples come from the
    # space's: with every proposal random, the schedule and the samples are ASHA's own.
    asha = _drive(_asha(seed=5), 120, seed=0)
    bohb = _drive(searchers.AsyncBOHB(_space(), min_budget=1, max_budget=27, eta=3, seed=5,
                                      random_fraction=1.0), 120, seed=0)
    assert [t.to_dict() for t in bohb] == [t.to_dict() for t in asha]


def test_async_bohb_models_new_configurations_and_promotes_like_asha() -> None:
    s = searchers.AsyncBOHB(_space(), min_budget=1, max_budget=27, eta=3, seed=0,
                            random_fraction=0.0)
    asked = _drive(s, 150, seed=1)
    origins = [t.info["origin"] for t in asked]
    assert {"random", "model", "promoted"} == set(origins)
    assert all((t.parent is None) == (t.info["origin"] != "promoted") for t in asked)
    assert all(t.budget == 1 for t in asked if t.parent is None)
    assert max(t.budget for t in asked) == 27
