"""Pareto fronts of a search's trained models: validation error against size, FLOPs, latency.

Every objective is minimised. A trial is on the front when no other trained trial is at least as
good in every objective and better in one. Only usable results (ok or truncated, not
infeasible) with a measured footprint take part, at whatever budget they trained: the front
says which models the search holds, with their budgets beside them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nas.dominance import dominates, hypervolume, non_dominated
from nas.errors import UserError
from nas.objectives import MEASURED, VAL_ERROR
from nas.records import TrialRecord

__all__ = ["DEFAULT_FRONT", "OBJECTIVES", "Front", "FrontPoint", "check_objectives",
           "front_of", "hypervolume_2d", "non_dominated", "pareto_front", "reader"]


#: The objectives the trainer measures (`nas.objectives.MEASURED`), read off a trial record.
OBJECTIVES = MEASURED
#: The front a search of one objective is shown: accuracy against size.
DEFAULT_FRONT = ("val_error", "params")


@dataclass(frozen=True)
class FrontPoint:
    """One trial on a Pareto front and its objective values, in the front's order."""

    record: TrialRecord
    values: tuple[float, ...]


def check_objectives(names: Sequence[str], searched: Sequence[str] | None = None
                     ) -> tuple[str, ...]:
    """`names` if each is known (measured, or one of the search's own `searched`) and they are
    at least two, distinct; else one clear error."""
    names = tuple(n.strip() for n in names if n.strip())
    known = [*MEASURED, *(n for n in searched or () if n not in MEASURED)]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"unknown objective {unknown[0]!r}: choose from {', '.join(known)}")
    if len(names) < 2 or len(set(names)) != len(names):
        raise UserError(f"a Pareto front needs two or more distinct objectives, got {names}")
    return names


def reader(name: str, searched: Sequence[str] | None = None, *, usable_only: bool = True
           ) -> Callable[[TrialRecord], float | None]:
    """How to read objective `name` off a record: the value the search ranked it by, else the
    trainer's measurement; None where it has none (or, with `usable_only`, is not usable)."""
    searched = tuple(searched or ())
    index = searched.index(name) if name in searched else None
    measured = MEASURED.get(name)

    def value(record: TrialRecord) -> float | None:
        result = record.result
        if result is None or (usable_only and not result.ok):
            return None
        if index is not None and result.objectives is not None:
            out: float | None = result.objectives[index]
        else:
            out = None if measured is None else measured(result)
        return None if out is None or not math.isfinite(out) else float(out)
    return value


def pareto_front(records: Sequence[TrialRecord],
                 objectives: Sequence[str] = DEFAULT_FRONT, *,
                 searched: Sequence[str] | None = None) -> list[FrontPoint]:
    """The trials on the front of `objectives`, best first in the first objective; `searched`:
    the search's own objectives (a function's, which only its results hold)."""
    names = check_objectives(objectives, searched)
    readers = [reader(n, searched) for n in names]
    usable: list[tuple[TrialRecord, tuple[float, ...]]] = []
    for record in records:
        values = [read(record) for read in readers]
        if all(v is not None for v in values):
            usable.append((record, tuple(float(v) for v in values if v is not None)))
    keep = non_dominated([values for _, values in usable])
    points = [FrontPoint(*usable[i]) for i in keep]
    return sorted(points, key=lambda point: point.values)


def front_of(records: Sequence[TrialRecord], searched: Sequence[str] | None,
             objectives: Sequence[str] | None = None
             ) -> tuple[tuple[str, ...], list[FrontPoint]]:
    """The objectives shown and the front of `records`: `objectives` if given, else the
    search's own (`searched`), else validation error against parameters."""
    names = check_objectives(objectives or searched or DEFAULT_FRONT, searched)
    points = pareto_front(records, names, searched=searched)
    if VAL_ERROR in names:  # most accurate first, whatever the order the objectives are named in
        points.sort(key=lambda point: point.values[names.index(VAL_ERROR)])
    return names, points


class Front:
    """Trials no other beats in every objective, kept up to date as results arrive (a search
    keeps their checkpoints, so any point of its front can be exported). Equal points all stay."""

    def __init__(self) -> None:
        self.points: dict[int, tuple[float, ...]] = {}

    def add(self, trial_id: int, values: Sequence[float]) -> bool:
        """Take in one trial's objective values; whether they joined the front."""
        point = tuple(float(v) for v in values)
        if any(dominates(q, point) for q in self.points.values()):
            return False
        self.points = {i: q for i, q in self.points.items() if not dominates(point, q)}
        self.points[trial_id] = point
        return True

    def ids(self) -> set[int]:
        """The trials on the front."""
        return set(self.points)


def hypervolume_2d(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """The area both objectives (minimised) dominate between `points` and `reference`; points
    not better than the reference in both count nothing."""
    return hypervolume(list(points), reference)
