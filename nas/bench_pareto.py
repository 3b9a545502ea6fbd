"""`nas bench` on multi-objective problems: objective values per row and hypervolume regret.

A problem with `objectives` is searched by multi-objective searchers only (`nas.optimize` with
the objectives' names). The incumbent front at any moment is what `nas show` would print: the
run's usable results that no other beats in their observed values, at whatever budget (a
front needs many points, and the highest budget alone holds few). It is scored at its members'
true (noise-free, full-budget) objective values where the problem knows them, as
single-objective regret uses `true_loss`, so a low budget's flattering values buy nothing. Its
hypervolume regret is ``optimum_hypervolume - HV(front)`` at the problem's
reference point; a problem that states neither is measured from the worst value seen in each
objective plus 10% of its range, and from the hypervolume of every run's fronts together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nas.dominance import dominates, hypervolume
from nas.errors import UserError
from nas.problems import Problem
from nas.problems.multiobjective import worst_reference
from nas.types import Result

#: The baseline multi-objective searchers are tested against (single-objective: `random`).
BASELINE = "mo-random"
_LEVEL_RTOL = 1e-9


def is_multi_objective(problem: Problem) -> bool:
    """True for a problem whose `evaluate` returns several objectives."""
    return len(getattr(problem, "objectives", ()) or ()) > 1


def check_searchers(problems: Mapping[str, Problem], searchers: Sequence[str]) -> None:
    """A multi-objective problem with a single-objective searcher is the user's mistake."""
    import searchers as registry
    from nas.engine.options import multi_objective_searchers

    for name, problem in problems.items():
        if not is_multi_objective(problem):
            continue
        single = [s for s in searchers if not registry.get_class(s).multi_objective]
        if single:
            raise UserError(
                f"problem {name!r} has {len(problem.objectives)} objectives "
                f"({', '.join(problem.objectives)}) but {', '.join(single)} minimise one: "
                f"choose from {', '.join(multi_objective_searchers())}")


def row_values(problem: Problem, result: Result, config: Mapping[str, Any]) -> dict[str, Any]:
    """A multi-objective problem's row's extra fields, observed and true objective values
    (none for a single-objective problem)."""
    if not is_multi_objective(problem):
        return {}
    values = result.objective_values()
    true = None
    if values is not None:
        try:
            true = [float(v) for v in problem.true_objectives(config)]
        except (NotImplementedError, AttributeError):
            true = None
    return {"objectives": None if values is None else list(values), "true_objectives": true}


class IncumbentFront:
    """A run's incumbent front as results arrive: the results no other beats in their observed
    values, at any budget (the front `nas show` prints), scored by the hypervolume of their
    true values (a low budget's flattering values buy nothing)."""

    def __init__(self, reference: Sequence[float]) -> None:
        self.reference = tuple(float(v) for v in reference)
        self.points: list[tuple[tuple[float, ...], tuple[float, ...]]] = []  # observed, true
        #: The hypervolume of the front's true values at `reference`.
        self.volume = 0.0

    def add(self, observed: Sequence[float], true: Sequence[float] | None = None) -> float:
        """Take in one usable result; the front's hypervolume after it."""
        seen = tuple(float(v) for v in observed)
        if any(dominates(p, seen) or p == seen for p, _ in self.points):
            return self.volume
        real = seen if true is None else tuple(float(v) for v in true)
        self.points = [(p, t) for p, t in self.points if not dominates(seen, p)] + [(seen, real)]
        self.volume = hypervolume([t for _, t in self.points], self.reference)
        return self.volume


def _point(row: Mapping[str, Any]) -> list[float] | None:
    """The values a row's result counts with on a front: true ones where known."""
    return row["true_objectives"] or row["objectives"]


def measures(rows: Sequence[Mapping[str, Any]], problem: Problem
             ) -> tuple[tuple[float, ...], float]:
    """The reference point and optimum hypervolume the problem's regret is measured from."""
    reference = getattr(problem, "reference_point", None)
    optimum = float(getattr(problem, "optimum_hypervolume", math.nan))
    points = [p for r in rows if (p := _point(r)) is not None]
    if reference is None:
        reference = worst_reference(np.array(points)) if points else (0.0,) * len(
            problem.objectives)
    if not math.isfinite(optimum):
        top = [p for r in rows if (p := _point(r)) is not None
               and r["budget"] >= problem.max_budget * (1 - _LEVEL_RTOL)]
        optimum = hypervolume(top, reference) if top else 0.0
    return tuple(float(v) for v in reference), optimum


def fields(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The results.csv columns multi-objective rows add (none without such rows)."""
    return ["objectives", "true_objectives", "hypervolume"] if any(
        "objectives" in r for r in rows) else []


def annotate(rows: Sequence[dict[str, Any]], problems: Mapping[str, Problem]
             ) -> tuple[list[dict[str, Any]], dict[str, Problem]]:
    """Set each multi-objective problem's rows' ``hypervolume`` (of the run's incumbent front
    once that evaluation is in) and ``regret`` (optimum hypervolume minus it); rows in run
    order. Returns the other rows and problems, for single-objective regret."""
    several = {n for n, p in problems.items() if is_multi_objective(p)}
    by_problem: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["problem"] in several:
            by_problem.setdefault(row["problem"], []).append(row)
    for name, mine in by_problem.items():
        reference, optimum = measures(mine, problems[name])
        fronts: dict[tuple[str, int], IncumbentFront] = {}
        for row in mine:
            key = (row["searcher"], row["seed"])
            if row["objectives"] is not None:
                fronts.setdefault(key, IncumbentFront(reference)).add(row["objectives"],
                                                                      _point(row))
            front = fronts.get(key)
            row["hypervolume"] = None if front is None else front.volume
            row["regret"] = None if front is None else optimum - front.volume
    return ([r for r in rows if r["problem"] not in several],
            {n: p for n, p in problems.items() if n not in several})


def describe(problem: Problem, rows: Sequence[Mapping[str, Any]], searchers: Sequence[str]
             ) -> tuple[str | None, str | None, str]:
    """The regret's description for summary.md, the baseline searcher and the plot's name of
    the regret; (None, None, "regret") for a single-objective problem (bench's own)."""
    if not is_multi_objective(problem):
        return None, None, "regret"
    reference, optimum = measures(rows, problem)
    known = getattr(problem, "reference_point", None) is not None and math.isfinite(
        float(getattr(problem, "optimum_hypervolume", math.nan)))
    where = "stated by the problem" if known else "from the runs' results"
    values = "true objective values" if any(r["true_objectives"] for r in rows) \
        else "observed values"
    text = (f"hypervolume regret: {optimum:.6g} (optimum hypervolume) minus the hypervolume of "
            f"the incumbent front (results non-dominated in their observed values, at any "
            f"budget, scored at their {values}) at reference point "
            f"({', '.join(f'{v:.6g}' for v in reference)}) of ({', '.join(problem.objectives)}), "
            f"{where}")
    return text, BASELINE if BASELINE in searchers else "random", "hypervolume regret"

