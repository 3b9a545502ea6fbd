"""Ladders: a few configurations climb every rung, so the fidelity check sees all of it early.

A schedule's own promotions reach the top budget late and only from the best of each rung, so a
low budget that misleads (ranks configurations unlike the top one) shows up after most of a
search's budget is spent. `Ladders` first samples `count` configurations at the lowest budget
and promotes each of them through every rung whatever its rank: each gives the check a direct
pair (loss at a budget, loss at the top) for every budget of the ladder. With continuation a
ladder costs one trial at the top budget; the wrapped schedule runs beside and after them.

With a `pool` above 1, each round of ladders first samples `pool` configurations per ladder at
the lowest budget and climbs those at spread ranks of that budget (the best, the worst, and
evenly between; a single ladder takes the best): the pairs then span the low budget's range, so
a ranking that the top reverses shows, and where it does not, the best climbs to be an early
incumbent (docs/decisions.md, "Ladders from a pool").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from searchers.fidelity import FidelityCheck
from searchers.schedules import Action, Bracket, Lineage, Promote, Sample, Schedule


@dataclass
class _Ladder:
    """One climbing configuration: its latest trial, and what the rungs below reported."""

    trial_id: int
    rung: int = 0
    config: Mapping[str, Any] | None = None
    loss: float | None = None
    lineage: Lineage = ()

    @property
    def ready(self) -> bool:
        """Told, so its next rung can start."""
        return self.loss is not None


#: Ladders the first round starts at once (later rounds start one each).
FIRST_ROUND = 3


def layout_pool(layout: tuple[Bracket, ...], ladders: int) -> int:
    """Pool per ladder so that the first round samples as many configurations at the lowest
    budget as the most exploratory bracket's first rung: it costs what that rung costs, and
    its best, climbing first, is as good an early incumbent as that rung's best."""
    return max(1, layout[0].rungs[0].n_configs // max(1, min(FIRST_ROUND, ladders)))


class Ladders:
    """`count` configurations climb all of `budgets` first; then (and while they run)
    `schedule`'s actions. Every ladder result goes to `check`, not to `schedule`."""

    def __init__(self, schedule: Schedule, budgets: tuple[float, ...], count: int,
                 check: FidelityCheck, *, first: int = FIRST_ROUND, pool: int = 1) -> None:
        if count < 0 or pool < 1:
            raise ValueError(f"count must be >= 0 and pool >= 1, got {count}, {pool}")
        self.pool = int(pool)
        # A round's pool: trial id -> (config, loss), the loss None while it runs; the round
        # starts this many ladders (0: no round open).
        self._pool: dict[int, tuple[Mapping[str, Any] | None, float | None]] = {}
        self._round = 0
        self.schedule = schedule
        self.budgets = budgets
        self.count = count
        self.first = min(first, count)
        self.check = check
        self._ladders: list[_Ladder] = []
        self._of: dict[int, _Ladder] = {}
        self._closed = count == 0

    def next(self, trial_id: int) -> Action:
        """A new ladder, else a told ladder's next rung, else the wrapped schedule's action."""
        if not self._closed and len(self._ladders) >= self.first and self._all_climbed():
            # Decided once, when the ladders so far are all up: later evidence comes from the
            # schedule's own promotions, and a ladder in mid-search would only delay them.
            self._closed = len(self._ladders) >= self.count or self.check.settled(self.budgets)
        wanted = len(self._ladders) < self.first or (not self._closed and self._all_climbed())
        if wanted and self.pool == 1:
            # A ladder per sample, started at once: a pool of one would wait for its round to be
            # told, and with trials in parallel journals written before pools replay this way.
            ladder = _Ladder(trial_id)
            self._ladders.append(ladder)
            self._of[trial_id] = ladder
            return Sample(self.budgets[0], {"ladder": len(self._ladders) - 1, "rung": 0})
        if wanted and not self._round:
            # A new round: `first` ladders at the start, one at a time after.
            self._round = self.first if not self._ladders else 1
        if self._round and len(self._pool) < self.pool * self._round:
            self._pool[trial_id] = (None, None)
            return Sample(self.budgets[0], {"ladder pool": len(self._pool) - 1, "rung": 0})
        if self._round and all(loss is not None for _, loss in self._pool.values()):
            self._climb_from_pool()
        for number, ladder in enumerate(self._ladders):
            if ladder.ready and ladder.rung + 1 < len(self.budgets) and ladder.config:
                parent, config = ladder.trial_id, ladder.config
                assert ladder.loss is not None
                ladder.lineage += ((self.budgets[ladder.rung], ladder.loss),)
                ladder.trial_id, ladder.rung, ladder.loss = trial_id, ladder.rung + 1, None
                self._of[trial_id] = ladder
                return Promote(parent, config, self.budgets[ladder.rung],
                               {"ladder": number, "rung": ladder.rung})
        return self.schedule.next(trial_id)

    def _climb_from_pool(self) -> None:
        """Start the round's ladders from its told pool, at spread ranks of their losses."""
        k = self._round
        told = sorted((loss, tid) for tid, (_, loss) in self._pool.items()
                      if loss is not None and loss < float("inf"))
        picks = told if len(told) <= k else \
            [told[round(i * (len(told) - 1) / max(k - 1, 1))] for i in range(k)]
        for loss, tid in picks:
            ladder = _Ladder(tid, config=self._pool[tid][0], loss=loss)
            self._ladders.append(ladder)
        if not picks:  # every pool trial failed: a failed ladder, so the round still counts
            self._ladders.append(_Ladder(-1, loss=float("inf")))
        self._pool, self._round = {}, 0

    def _all_climbed(self) -> bool:
        return all(lad.ready and (lad.rung + 1 == len(self.budgets) or not lad.config)
                   for lad in self._ladders)

    def record(self, trial_id: int, config: Mapping[str, Any], loss: float) -> None:
        """A ladder's result feeds the check (a failed one stops climbing); any other trial's
        goes to the wrapped schedule."""
        if trial_id in self._pool:
            self._pool[trial_id] = (dict(config), float("inf") if loss is None else loss)
            return
        ladder = self._of.pop(trial_id, None)
        if ladder is None:
            self.schedule.record(trial_id, config, loss)
            return
        ladder.config, ladder.loss = (dict(config) if loss < float("inf") else None), loss
        budget = self.budgets[ladder.rung]
        if ladder.lineage:
            self.check.add(*ladder.lineage[-1], budget, loss)
        if ladder.rung + 1 == len(self.budgets):
            self.check.add_lineage(ladder.lineage, budget, loss)

    def continuable(self) -> set[int]:
        """Told ladders below the top, and the wrapped schedule's."""
        own = {lad.trial_id for lad in self._ladders
               if lad.ready and lad.config and lad.rung + 1 < len(self.budgets)}
        told = {tid for tid, (_, loss) in self._pool.items() if loss is not None}
        return own | told | self.schedule.continuable()

    def relayout(self, layout: tuple[Bracket, ...]) -> bool:
        """The wrapped schedule's `relayout` (False when it has none); ladders keep theirs."""
        relayout = getattr(self.schedule, "relayout", None)
        return bool(relayout(layout)) if relayout is not None else False
