"""The ledger: a search's total budget, what has been charged against it, and how.

Each unit is a strategy, so the loop never branches on units: a budget of epochs or of the
objective's own units charges each trial what it spent; a budget of trials charges one per
trial; a time budget charges the wall clock, loop included, and stops trials at a deadline.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from nas.budget import Budget, Unit, charge, display_amount
from nas.types import Result


class Ledger:
    """A budget of epochs (or the objective's units): a trial is charged what it spent.

    Build one with `Ledger.for_budget`, which picks the strategy of the budget's unit.
    """

    def __init__(self, limit: Budget, *, spent: float = 0.0) -> None:
        self.limit = limit
        self.spent = float(spent)

    @classmethod
    def for_budget(cls, limit: Budget, *, spent: float = 0.0,
                   since: float | None = None) -> Ledger:
        """The ledger of `limit`'s unit: time, a number of trials, or an amount; a time budget
        counts from `since` (``time.monotonic()``; default now)."""
        if limit.unit is Unit.SECONDS:
            return TimeLedger(limit, spent=spent, since=since)
        kind = TrialLedger if limit.unit is Unit.TRIALS else Ledger
        return kind(limit, spent=spent)

    @property
    def unit(self) -> Unit:
        """The unit everything is charged in."""
        return self.limit.unit

    @property
    def remaining(self) -> float:
        """What is left to spend (never negative)."""
        return max(0.0, self.limit.amount - self.spent)

    @property
    def exhausted(self) -> bool:
        """True once nothing is left."""
        return self.remaining <= 1e-9

    def can_afford(self, cost: float) -> bool:
        """Whether a trial expected to cost `cost` may start."""
        return not self.exhausted and cost <= self.remaining + 1e-9

    def charge(self, cost: float) -> None:
        """Record what a trial actually spent."""
        if cost < 0 or not math.isfinite(cost):
            raise ValueError(f"cannot charge {cost!r}")
        self.spent += cost

    # -- the strategy: what a unit means for planning, charging and stopping -------------------

    def start_clock(self) -> None:
        """A run (or a resumed one) starts now; only a time budget cares."""

    def tick(self) -> None:
        """Catch up with the wall clock; only a time budget charges time as it passes."""

    def planned_cost(self, budget: float, parent_budget: float = 0.0) -> float:
        """What a trial of `budget` costs before it runs: a continued one only its increment."""
        return budget - parent_budget

    def retrain_cost(self, seconds: float, budget: float) -> float:
        """What training a configuration again from scratch costs: its whole `budget`
        (`seconds` is what its lineage took)."""
        return budget

    def padded(self, cost: float, margin: float) -> float:
        """A reserve for something estimated to cost `cost`: exact here, so no `margin`."""
        return cost

    def settle(self, result: Result) -> None:
        """Charge a finished trial."""
        self.charge(charge(result, self.unit))

    def finish_cost(self, seconds: float) -> float:
        """What the search's end (scoring its models for `seconds`) costs: nothing here, as
        only a time budget pays for time."""
        return 0.0

    def deadline(self, room: float) -> float | None:
        """Wall-clock time (``time.time()``) at which a trial given `room` must stop; None:
        a trial stops at its own budget."""
        return None

    def too_little_left(self, typical: float | None) -> bool:
        """Whether a trial that typically costs `typical` would almost surely be cut short."""
        return False

    def cuts_short(self, cost: float) -> bool:
        """Whether a trial estimated to cost `cost` would be stopped before it ends (here the
        trial's own budget bounds it, and `can_afford` decides)."""
        return False

    def share_spent(self, room: float, typical: float | None) -> bool:
        """Whether `room` (what is left to the searcher) is too little for its next trial."""
        return room <= 0

    def view(self) -> LedgerView:
        """A read-only view for the phases that plan but never charge."""
        return LedgerView(self)

    def __str__(self) -> str:
        return f"{display_amount(self.spent, self.unit)} / {self.limit}"


class TrialLedger(Ledger):
    """A budget of trials: each trial costs one, whatever it trains."""

    def planned_cost(self, budget: float, parent_budget: float = 0.0) -> float:
        """One trial."""
        return 1.0

    def retrain_cost(self, seconds: float, budget: float) -> float:
        """One trial."""
        return 1.0


class TimeLedger(Ledger):
    """A time budget: the wall clock is charged as it passes, and trials stop at a deadline."""

    def __init__(self, limit: Budget, *, spent: float = 0.0, since: float | None = None) -> None:
        """`since` (``time.monotonic()``): when the budget started counting, if before now (a
        search charges its data loading and its planning too)."""
        super().__init__(limit, spent=spent)
        self._clock = (time.monotonic() if since is None else since, self.spent)

    def start_clock(self) -> None:
        """Charge what passed since the ledger began, then count on from now."""
        self.tick()
        self._clock = (time.monotonic(), self.spent)

    def tick(self) -> None:
        """Charge what passed since the last look."""
        start, spent = self._clock
        now = spent + time.monotonic() - start
        if now > self.spent:
            self.charge(now - self.spent)

    def planned_cost(self, budget: float, parent_budget: float = 0.0) -> float:
        """Nothing up front: time is bounded by the deadline instead."""
        return 0.0

    def retrain_cost(self, seconds: float, budget: float) -> float:
        """As long as the configuration's lineage took."""
        return seconds

    def padded(self, cost: float, margin: float) -> float:
        """A time estimate is noisy: reserve `margin` times it."""
        return margin * cost

    def settle(self, result: Result) -> None:
        """The trial's time is the wall clock's, charged as it passes."""
        self.tick()

    def finish_cost(self, seconds: float) -> float:
        """Its `seconds`."""
        return seconds

    def deadline(self, room: float) -> float | None:
        """`room` seconds from now."""
        return time.time() + room

    def too_little_left(self, typical: float | None) -> bool:
        """Less than half a typical trial left: it would almost surely be cut short."""
        return typical is not None and self.remaining < 0.5 * typical

    def cuts_short(self, cost: float) -> bool:
        """Less time left than `cost`: the deadline would stop it."""
        return self.remaining < cost

    def share_spent(self, room: float, typical: float | None) -> bool:
        """Less than half a typical trial of room."""
        return room < 0.5 * (typical or 0.0)


@dataclass(frozen=True)
class LedgerView:
    """What a planning phase may read of the ledger; reading it catches up with the clock."""

    _ledger: Ledger

    @property
    def limit(self) -> Budget:
        """The total budget."""
        return self._ledger.limit

    @property
    def remaining(self) -> float:
        """What is left now."""
        self._ledger.tick()
        return self._ledger.remaining

    def retrain_cost(self, seconds: float, budget: float) -> float:
        """See `Ledger.retrain_cost`."""
        return self._ledger.retrain_cost(seconds, budget)

    def padded(self, cost: float, margin: float) -> float:
        """See `Ledger.padded`."""
        return self._ledger.padded(cost, margin)

    def share_spent(self, room: float, typical: float | None) -> bool:
        """See `Ledger.share_spent`."""
        return self._ledger.share_spent(room, typical)

    def cuts_short(self, cost: float) -> bool:
        """See `Ledger.cuts_short` (after catching up with the clock)."""
        self._ledger.tick()
        return self._ledger.cuts_short(cost)

    def too_little_left(self, typical: float | None) -> bool:
        """See `Ledger.too_little_left` (after catching up with the clock)."""
        self._ledger.tick()
        return self._ledger.too_little_left(typical)
