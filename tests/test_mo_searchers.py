from __future__ import annotations

import math

import numpy as np
import pytest

import searchers
from nas.testing import MAX_BUDGET, make_searcher, mixed_space, run, zdt_objective, zdt_space
from nas.testing.multiobjective import front_of
from nas.types import Result, TrialStatus
from searchers._kde import ParetoObservations
from searchers.rankings import ChebyshevRanking, ParetoRanking, RungRanking, pareto_order

MO = ("mo-random", "motpe", "moasha", "mobohb", "hyperband-rw")


def test_pareto_order_fronts_then_contribution_then_age() -> None:
    # Front 1: (0, 1), (0.5, 0.5), (1, 0); (0.5, 0.5) adds least volume at the reference 1.1.
    vectors = [(1.0, 1.0), (0.5, 0.5), (0.0, 1.0), (1.0, 0.0), (0.5, 0.5)]
    order = pareto_order(vectors)
    assert set(order[:4]) == {0, 1, 2, 3, 4} - {0}
    assert order[-1] == 0  # dominated by all
    assert order.index(2) < order.index(1) and order.index(3) < order.index(1)
    assert order.index(1) < order.index(4)  # equal points: the earlier first


def test_pareto_ranking_promotes_once_and_never_a_failure() -> None:
    rung = ParetoRanking()
    rung.add(0, (2.0, 2.0), {"a": 0})
    rung.add(1, None, {"a": 1})
    rung.add(2, (1.0, 3.0), {"a": 2})
    rung.add(3, (math.inf, 0.0), {"a": 3})
    rung.add(4, (3.0, 1.0), {"a": 4})
    assert len(rung) == 5
    assert set(rung.candidates(3)) == {0, 2, 4}
    assert list(rung.candidates(5))[-1:] != [1]
    assert 1 not in rung.candidates(5) and 3 not in rung.candidates(5)
    assert rung.promote(2) == {"a": 2}
    assert 2 not in rung.candidates(5)
    assert rung.loss(1) == math.inf and rung.loss(0) == (2.0, 2.0)


def test_one_objective_ranks_as_the_scalar_rule() -> None:
    losses = [0.5, 0.2, 0.2, math.inf, 0.9, 0.1]
    scalar, vector = RungRanking(), ParetoRanking()
    for i, loss in enumerate(losses):
        scalar.add(i, loss, {})
        vector.add(i, (loss,), {})
    assert list(vector.candidates(6)) == list(scalar.candidates(6)) == [5, 1, 2, 0, 4]


def test_chebyshev_ranking_follows_its_weights() -> None:
    points = [(0.0, 1.0), (1.0, 0.0), (0.5, 0.5)]
    first = ChebyshevRanking([0.9, 0.1])
    second = ChebyshevRanking([0.1, 0.9])
    for i, p in enumerate(points):
        first.add(i, p, {})
        second.add(i, p, {})
    assert next(first.candidates(1)) == 0 and next(second.candidates(1)) == 1
    balanced = ChebyshevRanking([0.5, 0.5])
    for i, p in enumerate(points):
        balanced.add(i, p, {})
    assert next(balanced.candidates(1)) == 2


def test_pareto_observations_split_by_front_and_failures_bad() -> None:
    obs = ParetoObservations(1)
    values = [(3.0, 3.0), None, (1.0, 2.0), (2.0, 1.0), (2.0, 2.0), (0.0, 5.0)]
    for i, v in enumerate(values):
        obs.add(np.array([float(i)]), v)
    good, bad = obs.split(3)
    assert sorted(good[:, 0]) == [2.0, 3.0, 5.0]
    assert bad[-1, 0] == 1.0  # the failure is the worst
    assert obs.losses[1] == math.inf


def test_hyperband_rw_weights_depend_on_seed_and_bracket_only() -> None:
    space = mixed_space()
    a = make_searcher(searchers.get_class("hyperband-rw"), space, seed=3)
    b = make_searcher(searchers.get_class("hyperband-rw"), space, seed=3)
    for _ in range(5):
        a.ask()  # drawing proposals must not change the weights
    assert np.array_equal(a.weights(4), b.weights(4))
    assert not np.array_equal(a.weights(4), a.weights(5))
    assert a.weights(0).sum() == pytest.approx(1.0)
    other = make_searcher(searchers.get_class("hyperband-rw"), space, seed=4)
    assert not np.array_equal(a.weights(0), other.weights(0))


@pytest.mark.parametrize("name", MO)
def test_one_objective_works(name: str) -> None:
    cls = searchers.get_class(name)
    searcher = make_searcher(cls, zdt_space(), seed=0, n_objectives=1)
    pairs = run(searcher, lambda t: (zdt_objective(t)[1],), 30)
    assert len(pairs) == 30
    pool = {t.id: v for t, v in front_of(pairs)}
    best = min(pool.values())
    # One objective: the front is the first trial with the lowest loss at the top budget.
    assert searcher.front() == [min(i for i, v in pool.items() if v == best)]


@pytest.mark.parametrize("name", MO)
def test_wrong_number_of_objectives_is_refused(name: str) -> None:
    searcher = make_searcher(searchers.get_class(name), zdt_space(), seed=0)
    trial = searcher.ask()
    with pytest.raises(ValueError, match="objective values"):
        searcher.tell(trial, Result(loss=0.5, objectives=(0.5, 0.1, 0.2)))
    # A failure has no values and is fine.
    other = searcher.ask() or trial
    searcher.tell(other, Result.failure(TrialStatus.FAILED, "boom"))


def test_mo_searchers_refuse_the_fidelity_check() -> None:
    with pytest.raises(ValueError, match="fidelities"):
        searchers.get_class("moasha")(zdt_space(), seed=0, min_budget=1, max_budget=27,
                                      check_fidelity=True)


def test_moasha_promotes_the_pareto_best_and_continues_its_parent() -> None:
    searcher = make_searcher(searchers.get_class("moasha"), zdt_space(), seed=1)
    pairs = run(searcher, zdt_objective, total_budget=20 * MAX_BUDGET)
    promoted = [t for t, _ in pairs if t.parent is not None]
    assert promoted
    by_id = {t.id: t for t, _ in pairs}
    for t in promoted:
        parent = by_id[t.parent]
        assert parent.config == t.config and parent.budget < t.budget
