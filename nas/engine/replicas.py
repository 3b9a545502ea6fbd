"""Replicas: the best full-budget configuration trained again with new seeds, for the ensemble.

Seeds of one configuration are interchangeable and their average fixes most of one model's
errors (measurements: docs/decisions.md, "Replicas"). A search keeps the last part of its budget
for them: the phase plans from a read-only view of the ledger and the search's best trials, and
hands the loop replica trials, which are journaled like any trial but never told to the searcher.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from nas.engine.ledger import LedgerView
from nas.journal import TrialRecord
from nas.types import Trial, TrialKind, TrialStatus

#: The most of a search's budget that its replicas may take.
SHARE = 0.5
#: A time budget's reserve holds this much more than a replica's estimate (its configuration's
#: own training time, measured within 5 %), so the planned replicas still fit once the
#: searcher's last trial ran a little over.
TIME_MARGIN = 1.1
#: A replica that started may take this many times its estimate, past the search's budget if it
#: must (as Optuna lets a running trial finish at its timeout): cut short, it would be wasted.
OVERRUN = 2.0
#: ... but never more than this share of a time budget past it: the budget is the user's
#: wall clock (issue 20: within 10 %, the end's scoring included), and a machine that slowed
#: down after the estimate was measured would otherwise stretch it by a whole replica.
PAST_BUDGET = 0.05
#: Once the planned replicas are done, more follow while the time left fits one (at what the
#: finished ones took), up to this many times the replicas wanted: the plan's estimate may come
#: from a slower moment (a neighbour since gone, threads since retuned), and the time it kept
#: would otherwise end the search early, unused.
MORE = 2
#: Why the searcher's phase ended once replicas were due.
KEPT_FOR_REPLICAS = "the rest of the budget is kept for replicas"
#: The replica's `Trial.info`: the trial it repeats and how many replicas were planned.
_OF, _COUNT = "replica_of", "replicas"


@dataclass(frozen=True)
class ReplicaPlan:
    """Train `count` replicas of trial `target`, each costing about `cost` in the ledger's unit."""

    target: int
    count: int
    cost: float


def target(records: Iterable[TrialRecord], full_budget: Callable[[TrialRecord], bool]
           ) -> TrialRecord | None:
    """The best searcher trial that trained to the full budget and was not cut short."""
    full = [r for r in records if r.status is TrialStatus.OK and r.result is not None
            and r.result.ok and r.kind is TrialKind.SEARCH and r.result.reused_from is None
            and full_budget(r)]
    return min(full, key=TrialRecord.rank_key, default=None)


def fit(wanted: int, room: float, each: float) -> int:
    """How many of `wanted` replicas costing `each` fit in `room` (none costs nothing: all)."""
    if each <= 0:
        return wanted
    return max(0, min(wanted, math.floor(room / each)))


class ReplicaPhase:
    """Plans and hands out the replicas; what it decides is kept so a resume decides the same.

    `candidates` gives the best trials so far (the target is the best full-budget one among
    them), `lineage_seconds` how long a trial's model took with its parents, `full` whether a
    trial trained to the full budget, `source` the journaled trial of an id.
    """

    def __init__(self, wanted: int, ledger: LedgerView, *,
                 candidates: Callable[[], Sequence[TrialRecord]],
                 lineage_seconds: Callable[[int], float],
                 budget_of: Callable[[Trial], float],
                 full: Callable[[TrialRecord], bool],
                 source: Callable[[int], TrialRecord]) -> None:
        self.wanted = wanted
        self.ledger = ledger
        self._candidates = candidates
        self._lineage_seconds = lineage_seconds
        self._budget_of = budget_of
        self._full = full
        self._source = source
        #: True once the searcher's phase has ended and replicas (if any) are due.
        self.active = False
        self.plan: ReplicaPlan | None = None
        self.ids: list[int] = []
        #: Why the searcher's phase ended; why no replica was trained ("" while neither).
        self.searcher_done = ""
        self.dropped = ""

    # -- planning ------------------------------------------------------------------------------

    def reserve(self) -> float:
        """What the searcher's phase leaves to the replicas, in the ledger's unit."""
        if not self.wanted or self.active:
            return 0.0
        plan = self._plan(SHARE * self.ledger.limit.amount, padded=True)
        return 0.0 if plan is None else plan.count * self.ledger.padded(plan.cost, TIME_MARGIN)

    def fits(self, committed: float) -> bool:
        """Whether at least one replica of the best full-budget trial fits in what is left
        once the running trials got what they were promised (`committed`)."""
        plan = self._plan(self.ledger.remaining - committed)
        return plan is not None and plan.count > 0

    def searcher_share_spent(self, committed: float, typical: float | None) -> bool:
        """Whether what is left after the reserve is too little for another searcher trial."""
        room = self.ledger.remaining - committed - self.reserve()
        return self.ledger.share_spent(room, typical)

    def cost_of(self, record: TrialRecord) -> float:
        """What one replica of `record` costs: training from scratch to its budget, as long as
        it and its parents took together."""
        return self.ledger.retrain_cost(self._lineage_seconds(record.id),
                                        self._budget_of(record.trial))

    def _target(self) -> TrialRecord | None:
        return target(self._candidates(), self._full)

    def _plan(self, room: float, *, padded: bool = False) -> ReplicaPlan | None:
        """Replicas of the best full-budget trial so far, as many as fit in `room` (with the
        reserve's margin when `padded`)."""
        best = self._target()
        if best is None:
            return None
        each = self.cost_of(best)
        room_each = self.ledger.padded(each, TIME_MARGIN) if padded else each
        return ReplicaPlan(best.id, fit(self.wanted, room, room_each), each)

    # -- transitions ---------------------------------------------------------------------------

    def end_searcher(self, why: str) -> bool:
        """The searcher's phase ends for `why`; True when the journal must keep the reason
        (replicas follow, and a resume among them says it too)."""
        keep = not self.active and bool(self.wanted)
        self.searcher_done = why
        self.active = True
        return keep

    def drop(self) -> None:
        """No replica fits (the best became a costlier configuration, or none trained in full):
        none is trained, and a searcher stopped only for them goes on."""
        best = self._target()
        self.dropped = ("no trial trained to the full budget" if best is None else
                        f"trial {best.id}'s training does not fit in what is left")
        self.wanted = 0
        if self.searcher_done == KEPT_FOR_REPLICAS:
            # Safe to ask again: no replica was journaled, and the ask that did not fit went
            # back to the queue, so the journal's asks stay the searcher's asks in order.
            self.active = False
            self.searcher_done = ""

    def next(self, new_id: int) -> Trial | None:
        """The next replica (numbered `new_id`), None once the planned ones are under way."""
        if self.plan is None:
            # Fixed once: replicas all repeat one configuration, however many fit.
            self.plan = self._plan(self.ledger.remaining)
            if self.plan is None:
                return None
        if len(self.ids) >= self.plan.count and not self._grow():
            return None
        plan = self.plan
        if self.ledger.cuts_short(plan.cost):
            return None  # one cut short would only dilute the ensemble
        source = self._source(plan.target).trial
        self.ids.append(new_id)
        return Trial(id=new_id, config=source.config, budget=source.budget,
                     info={_OF: plan.target, _COUNT: plan.count}, kind=TrialKind.REPLICA)

    def _grow(self) -> bool:
        """Plan more replicas when the planned ones are done and the time left fits another
        (`MORE`); whether it did."""
        assert self.plan is not None
        if len(self.ids) >= MORE * self.wanted:
            return False
        done = [self._source(i) for i in self.ids]
        if any(r.result is None for r in done):
            return False  # still running: their times are the estimate
        ok = [r for r in done if r.status is TrialStatus.OK]
        if not ok:
            return False
        each = max(self.cost_of(r) for r in ok)
        more = fit(MORE * self.wanted - len(self.ids), self.ledger.remaining, each)
        if not more:
            return False
        self.plan = ReplicaPlan(self.plan.target, len(self.ids) + more, each)
        return True

    def forget(self, trial: Trial) -> None:
        """`trial`, handed out by `next`, was never started (the budget could not afford it):
        it is no replica, and the end must not look it up."""
        if trial.kind is TrialKind.REPLICA and trial.id in self.ids:
            self.ids.remove(trial.id)

    def room(self, trial: Trial, room: float) -> float:
        """Time a trial may take: a replica up to OVERRUN times its estimate, but at most
        PAST_BUDGET of the budget past its end (cut there, it is left out of the ensemble)."""
        if trial.kind is TrialKind.REPLICA and self.plan is not None:
            return max(room, min(OVERRUN * self.plan.cost,
                                 room + PAST_BUDGET * self.ledger.limit.amount))
        return room

    def restore(self, record: TrialRecord, searcher_done: str, journaled: int) -> None:
        """Replay one of the `journaled` replicas (in id order): the phase was under way."""
        count = int(record.trial.info.get(_COUNT, journaled))
        if not self.active:
            self.searcher_done = searcher_done
            self.active = True
            source = self._source(int(record.trial.info[_OF]))
            self.plan = ReplicaPlan(source.id, count, self.cost_of(source))
        elif self.plan is not None and count > self.plan.count:  # planned by `_grow`
            self.plan = ReplicaPlan(self.plan.target, count, self.plan.cost)
        self.ids.append(record.id)

    # -- what the search keeps and reports -----------------------------------------------------

    def keep(self) -> set[int]:
        """Trials whose checkpoints the phase needs: the replicas and their original."""
        return set(self.ids) | ({self.plan.target} if self.plan is not None else set())

    def group(self, status_of: Callable[[int], TrialStatus]) -> list[int]:
        """The original and the replicas that trained in full (none trained: empty); seeds of
        one configuration, they start the ensemble as a plain average."""
        if self.plan is None:
            return []
        full = [i for i in self.ids if status_of(i) is TrialStatus.OK]
        return [self.plan.target, *full] if full else []

    def told(self, why: str) -> str:
        """Why the search stopped, told with the replicas it trained (none: `why`)."""
        if not self.ids or self.plan is None:
            return why
        n = len(self.ids)
        return (f"{self.searcher_done}; then {n} replica{'s' * (n != 1)} of trial "
                f"{self.plan.target} trained with new seeds")

    def last_word(self, stopped: str) -> str:
        """The final stop line: with why no replica was trained, if none was."""
        return f"{stopped} (no replicas: {self.dropped})" if self.dropped else stopped

    def summary(self) -> Mapping[str, object] | None:
        """What the journal's summary records of the replicas."""
        if self.plan is not None:
            return {"of": self.plan.target, "trials": list(self.ids)}
        return {"dropped": self.dropped} if self.dropped else None
