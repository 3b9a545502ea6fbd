"""Replicas: the best full-budget configuration trained again with new seeds, for the ensemble.

Seeds of one configuration are interchangeable, and their average fixes most of one model's
errors: on digits at 600 s, the best configuration of each search plus two replicas, averaged,
made 1 / 1 / 1 test errors (seeds 0-2) against 0 / 4 / 2 for the searches' own ensembles. A
search keeps the last part of its budget for them: `reserve` says how much, `plan` how many fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from nas.budget import Unit
from nas.storage import TrialRecord
from nas.types import TrialStatus

#: The most of a search's budget that its replicas may take.
SHARE = 0.5
#: A replica's time is estimated by its configuration's own training (measured within 5 % on
#: digits); the reserve holds this much more, so that the planned replicas still fit once the
#: searcher's last trial ran a little over.
TIME_MARGIN = 1.1
#: A replica that started may take this many times its estimate, past the search's budget if
#: it must (as Optuna lets a running trial finish at its timeout): cut short, it would be
#: wasted. It starts only once its estimate fits, so the budget is overrun only by noise.
OVERRUN = 2.0
#: The key of a replica's `Trial.info` naming the trial it repeats.
KEY = "replica_of"


@dataclass(frozen=True)
class ReplicaPlan:
    """Train `count` replicas of trial `target`, each costing about `cost` in the ledger's unit."""

    target: int
    count: int
    cost: float


def is_replica(record: TrialRecord) -> bool:
    """Whether `record` is a replica (not a searcher's trial: never replayed to the searcher)."""
    return KEY in record.trial.info


def target(records: Iterable[TrialRecord], full_budget: Callable[[TrialRecord], bool]
           ) -> TrialRecord | None:
    """The best searcher trial that trained to the full budget and was not cut short."""
    full = [r for r in records if r.status is TrialStatus.OK and r.result is not None
            and r.result.ok and not is_replica(r) and "reused_from" not in r.result.metrics
            and full_budget(r)]
    return min(full, key=TrialRecord.rank_key, default=None)


def cost(record: TrialRecord, unit: Unit, lineage_seconds: float, budget: float) -> float:
    """What one replica of `record` will cost in `unit`: it trains from scratch to `budget`, as
    long as `record` and its parents took together."""
    if unit is Unit.SECONDS:
        return lineage_seconds
    if unit is Unit.TRIALS:
        return 1.0
    return budget


def padded(each: float, unit: Unit) -> float:
    """What the reserve holds for one replica costing `each` in `unit`."""
    return TIME_MARGIN * each if unit is Unit.SECONDS else each


def fit(wanted: int, room: float, each: float) -> int:
    """How many of `wanted` replicas costing `each` fit in `room` (none costs nothing: all)."""
    if each <= 0:
        return wanted
    return max(0, min(wanted, math.floor(room / each)))
