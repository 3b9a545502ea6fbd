"""Ladders: a few configurations climb every rung, so the fidelity check sees all of it early.

A schedule's own promotions reach the top budget late and only from the best of each rung, so a
low budget that misleads (ranks configurations unlike the top one) shows up after most of a
search's budget is spent. `Ladders` first samples `count` configurations at the lowest budget
and promotes each of them through every rung whatever its rank: each gives the check a direct
pair (loss at a budget, loss at the top) for every budget of the ladder. With continuation a
ladder costs one trial at the top budget; the wrapped schedule runs beside and after them.
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


class Ladders:
    """`count` configurations climb all of `budgets` first; then (and while they run)
    `schedule`'s actions. Every ladder result goes to `check`, not to `schedule`."""

    def __init__(self, schedule: Schedule, budgets: tuple[float, ...], count: int,
                 check: FidelityCheck, *, first: int = 3) -> None:
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
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
        if len(self._ladders) < self.first or (not self._closed and self._all_climbed()):
            ladder = _Ladder(trial_id)
            self._ladders.append(ladder)
            self._of[trial_id] = ladder
            return Sample(self.budgets[0], {"ladder": len(self._ladders) - 1, "rung": 0})
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

    def _all_climbed(self) -> bool:
        return all(lad.ready and (lad.rung + 1 == len(self.budgets) or not lad.config)
                   for lad in self._ladders)

    def record(self, trial_id: int, config: Mapping[str, Any], loss: float) -> None:
        """A ladder's result feeds the check (a failed one stops climbing); any other trial's
        goes to the wrapped schedule."""
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
        return own | self.schedule.continuable()

    def relayout(self, layout: tuple[Bracket, ...]) -> bool:
        """The wrapped schedule's `relayout` (False when it has none); ladders keep theirs."""
        relayout = getattr(self.schedule, "relayout", None)
        return bool(relayout(layout)) if relayout is not None else False
