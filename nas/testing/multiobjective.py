"""Checks of multi-objective searchers (`Searcher.multi_objective`): their `front()` is the
Pareto front of what they were told, and a model-based one finds a better front than random
search (more hypervolume) on a two-objective problem for the same budget.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

from nas.dominance import dominates, hypervolume
from nas.testing.driver import MAX_BUDGET, _drive, _label, make_searcher, run
from nas.testing.problems import ZDT_REFERENCE, mixed_problem, zdt_objective, zdt_space
from nas.testing.watchdog import guarded
from nas.types import Result, Trial
from searchers.base import Searcher
from searchers.registry import get_class

#: Seeds of `check_mo_beats_random`, each run by the searcher and by `mo-random`.
MO_BEATS_RANDOM_SEEDS = (0, 1, 2, 3, 4)
#: Full-budget trials per seed in `check_mo_beats_random` (multi-fidelity: this many
#: max_budgets in all).
MO_BEATS_RANDOM_TRIALS = 60


def front_of(pairs: Iterable[tuple[Trial, Result]],
             full_budget: float = MAX_BUDGET) -> list[tuple[Trial, tuple[float, ...]]]:
    """The usable results at the highest budget any reached, with their objective values (the
    pool a searcher's `front()` is chosen from)."""
    usable = [(t, v) for t, r in pairs if (v := r.objective_values()) is not None]
    if not usable:
        return []
    top = max(t.budget_or(full_budget) for t, _ in usable)
    return [(t, v) for t, v in usable if math.isclose(t.budget_or(full_budget), top)]


@guarded
def check_front(cls: type[Searcher]) -> None:
    """After 60 trials (3 in flight, some failed), `front()` names told trials at the top
    budget that no other such trial dominates, and every such trial it leaves out is dominated
    by or equal to one it names."""
    problem = mixed_problem()
    searcher = make_searcher(cls, problem.space, seed=2)
    pairs, _ = _drive(searcher, problem, 60, fail_every=5, in_flight=3)
    ids = list(searcher.front())
    assert len(ids) == len(set(ids)), f"{_label(cls)}.front() repeats ids: {ids}"
    pool = {t.id: v for t, v in front_of(pairs)}
    stray = sorted(set(ids) - set(pool))
    assert not stray, (f"{_label(cls)}.front() names {stray}: not usable results at the top "
                       f"budget (those are {sorted(pool)})")
    for i in ids:
        beaten = [j for j, v in pool.items() if dominates(v, pool[i])]
        assert not beaten, f"{_label(cls)}.front() names trial {i}, which {beaten} dominate"
    for j, v in pool.items():
        assert j in ids or any(dominates(pool[i], v) or pool[i] == v for i in ids), (
            f"{_label(cls)}.front() leaves out trial {j} {v}, which nothing on it dominates")
    assert pool == {} or ids, f"{_label(cls)}.front() is empty after {len(pairs)} trials"


def _final_hypervolume(cls: type[Searcher], seed: int) -> float:
    searcher = make_searcher(cls, zdt_space(), seed=seed)
    if cls.multi_fidelity:
        pairs = run(searcher, zdt_objective, total_budget=MO_BEATS_RANDOM_TRIALS * MAX_BUDGET)
    else:
        pairs = run(searcher, zdt_objective, MO_BEATS_RANDOM_TRIALS)
    return hypervolume([v for _, v in front_of(pairs)], ZDT_REFERENCE)


@guarded
def check_mo_beats_random(cls: type[Searcher]) -> None:
    """Median final hypervolume over 5 seeds on the ZDT1-like problem is above `mo-random`'s.

    Equal total budget: 60 full trials, or 60 * max_budget summed over multi-fidelity trials.
    """
    baseline = get_class("mo-random")
    ours = [_final_hypervolume(cls, seed) for seed in MO_BEATS_RANDOM_SEEDS]
    theirs = [_final_hypervolume(baseline, seed) for seed in MO_BEATS_RANDOM_SEEDS]
    assert statistics.median(ours) > statistics.median(theirs), (
        f"{_label(cls)} claims model_based but finds no better front than random search: "
        f"median hypervolume {statistics.median(ours):.4g} vs {statistics.median(theirs):.4g} "
        f"(per seed {[f'{h:.4g}' for h in ours]} vs {[f'{h:.4g}' for h in theirs]})")
