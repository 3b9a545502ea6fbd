from __future__ import annotations

import math

import pytest

import searchers
from nas import problems
from nas.types import Result
from searchers.fidelity import FidelityCheck, kendall_tau
from searchers.schedules import HyperbandSchedule, Sample, hyperband_layout


def test_kendall_tau_counts_agreeing_and_disagreeing_orders() -> None:
    assert kendall_tau([(1, 10), (2, 20), (3, 30)]) == 1.0
    assert kendall_tau([(1, 30), (2, 20), (3, 10)]) == -1.0
    # Ties count neither way: of three pairs of pairs, one discordant, two tied.
    assert kendall_tau([(1, 5), (1, 6), (2, 5)]) == pytest.approx(-1 / 3)
    assert kendall_tau([(1, 1)]) == 0.0


def test_a_check_keeps_each_steps_tau_as_pairs_arrive() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    check, points = FidelityCheck(), []
    for low, high in rng.normal(size=(40, 2)).round(1):  # rounded: ties too
        check.add(3.0, float(low), 9.0, float(low + high))
        points.append((float(low), float(low + high)))
        assert check.tau(3.0, 9.0) == pytest.approx(kendall_tau(points))


def _pairs(check: FidelityCheck, low: float, high: float, agree: bool, n: int = 6) -> None:
    for i in range(n):
        check.add(low, float(i), high, float(i if agree else -i))


def test_a_budget_is_trusted_only_as_far_as_the_steps_above_it_keep_its_order() -> None:
    check = FidelityCheck(min_pairs=6, min_trust=0.3)
    _pairs(check, 1, 3, agree=True)
    _pairs(check, 3, 9, agree=True)
    _pairs(check, 9, 27, agree=False)  # the ranking turns over between 9 and 27
    _pairs(check, 27, 81, agree=True)
    assert check.trust(27) == 1.0 and check.trust(9) == 0.0 and check.trust(1) == 0.0
    assert check.misleading() == [1, 3, 9]
    assert check.lowest_trusted([1, 3, 9, 27, 81]) == 27
    check.add(1, math.inf, 3, 0.0)  # a failure says nothing about the order
    assert len(check.pairs[1, 3]) == 6


def test_too_few_pairs_are_no_evidence() -> None:
    check = FidelityCheck(min_pairs=6)
    _pairs(check, 9, 27, agree=False, n=5)
    assert check.misleading() == [] and check.lowest_trusted([1, 9, 27]) == 1


def test_a_hyperband_schedule_starts_no_bracket_at_a_misleading_budget() -> None:
    check = FidelityCheck()
    _pairs(check, 3, 9, agree=False)
    layout = hyperband_layout(1, 81, 3)
    schedule = HyperbandSchedule(layout, check=check)
    action = schedule.next(0)
    assert isinstance(action, Sample) and action.budget is not None and action.budget >= 9
    assert HyperbandSchedule(layout).next(0) == Sample(1.0, {"bracket": 4, "rung": 0})


def _run(name: str, problem: problems.Problem, factor: float = 30, **options: object
         ) -> tuple[list[tuple[dict, float | None]], searchers.Searcher]:
    searcher = searchers.get(name, problem.space, seed=0, min_budget=problem.min_budget,
                             max_budget=problem.max_budget, **options)
    asked, spent = [], 0.0
    while spent < factor * problem.max_budget:
        trial = searcher.ask()
        assert trial is not None and trial.budget is not None
        asked.append((dict(trial.config), trial.budget))
        spent += trial.budget
        searcher.tell(trial, Result(loss=problem.evaluate(trial.config, trial.budget)))
    return asked, searcher


@pytest.mark.parametrize("name", ["bohb", "hyperband", "asha"])
def test_the_check_finds_misleading_low_budgets_and_moves_up(name: str) -> None:
    problem = problems.get("mixed-10d")
    asked, searcher = _run(name, problem, check_fidelity=True)
    assert searcher.options["check_fidelity"] is True
    fidelity = searcher.fidelity
    assert fidelity is not None and fidelity.misleading()
    floor = fidelity.lowest_trusted(r.budget for r in searcher.layout[0].rungs)
    assert floor > problem.min_budget
    plain, _ = _run(name, problem)
    # With the check, fewer trials start at the lowest budget than without it.
    assert sum(b == problem.min_budget for _, b in asked) \
        < sum(b == problem.min_budget for _, b in plain)


def test_where_budgets_agree_the_check_changes_nothing() -> None:
    problem = problems.get("mf-branin")
    checked, searcher = _run("bohb", problem, check_fidelity=True)
    plain, _ = _run("bohb", problem)
    assert searcher.fidelity is not None and searcher.fidelity.pairs  # it measured
    assert searcher.fidelity.misleading() == [] and checked == plain
