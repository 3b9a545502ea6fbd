"""Budget schedules: which budget the next trial gets and which finished trial moves up.

A schedule never chooses a configuration: its `next` returns a typed action, and the searcher
asks its proposer for a new configuration when the action is `Sample`. Hyperband (Li et al.
2018) runs brackets of successive halving synchronously; ASHA (Li et al. 2020) promotes
without waiting. Both rank a rung's results by one rule (`searchers.rankings`): `RungRanking`
unless given another (Pareto or scalarised ranks of objective vectors).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from searchers.fidelity import FidelityCheck
from searchers.rankings import Outcome, Ranking, RankingFactory, RungRanking, rung_ranking

# Rank thresholds are floors/ceilings of n / eta; keep an exact 6 / 3 from rounding down.
_EPS = 1e-9


# -- layout ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rung:
    """One stage of a bracket: `n_configs` trials at `budget`."""

    budget: float
    n_configs: int


@dataclass(frozen=True)
class Bracket:
    """A successive-halving run; `index` is Hyperband's s (s = 0 runs everything at max)."""

    index: int
    rungs: tuple[Rung, ...]

    @property
    def cost(self) -> float:
        """Total budget of the bracket when every trial trains from scratch."""
        return sum(r.budget * r.n_configs for r in self.rungs)


def hyperband_layout(min_budget: float, max_budget: float, eta: float = 3) -> tuple[Bracket, ...]:
    """Hyperband's brackets, most exploratory first.

    With s_max = floor(log_eta(max / min)), bracket s starts ceil((s_max + 1) / (s + 1) * eta^s)
    configurations at max * eta^-s and keeps the best 1/eta at each following rung.
    """
    if not (0 < min_budget <= max_budget < math.inf):
        raise ValueError(
            f"need 0 < min_budget <= max_budget (finite), got {min_budget:g}, {max_budget:g}"
        )
    if not eta >= 2:  # also refuses NaN
        raise ValueError(f"eta must be at least 2, got {eta:g}")
    s_max = math.floor(math.log(max_budget / min_budget) / math.log(eta) + 1e-9)
    brackets = []
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) / (s + 1) * eta**s - 1e-9)
        rungs = tuple(
            Rung(budget=max_budget * eta ** (i - s), n_configs=max(1, math.floor(n * eta**-i
                                                                                 + 1e-9)))
            for i in range(s + 1)
        )
        brackets.append(Bracket(index=s, rungs=rungs))
    return tuple(brackets)


# -- actions -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    """Start a new configuration (the proposer's choice) at `budget` (None: the run's own)."""

    budget: float | None
    #: Goes into the trial's `info` (e.g. bracket and rung), before its origin.
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Promote:
    """Continue finished trial `trial_id`, whose configuration is `config`, at `budget`."""

    trial_id: int
    config: Mapping[str, Any]
    budget: float
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Wait:
    """Nothing can start until a running trial is told."""


@dataclass(frozen=True)
class Done:
    """The schedule is complete: nothing will ever start again."""


Action: TypeAlias = Sample | Promote | Wait | Done
#: The (budget, loss) of a trial's ancestors, lowest budget first.
Lineage: TypeAlias = tuple[tuple[float, float], ...]
class Schedule(Protocol):
    """Decides budgets and promotions from the results it records; proposes no configuration."""

    def next(self, trial_id: int) -> Action:
        """The next action; a `Sample` or `Promote` is started as trial `trial_id`."""

    def record(self, trial_id: int, config: Mapping[str, Any], loss: Outcome) -> None:
        """A finished trial's result; a failure arrives as ``loss = inf`` (or None)."""

    def continuable(self) -> set[int]:
        """Ids of finished trials that a later `Promote` may still name."""


# -- schedules ---------------------------------------------------------------------------------

class FullBudget:
    """Every trial is a new configuration at the run's own trial budget (random search, TPE)."""

    def next(self, trial_id: int) -> Action:
        """Always `Sample(None)`."""
        return Sample(None)

    def record(self, trial_id: int, config: Mapping[str, Any], loss: Outcome) -> None:
        """Nothing to schedule from results."""

    def continuable(self) -> set[int]:
        """No trial is ever continued."""
        return set()


class FullFirst:
    """One new configuration at `budget` (the largest) first, then `schedule`'s actions.

    With the default configuration proposed first, the search holds a fully trained model
    before its brackets start, so its result at any deadline is at least that model.
    """

    def __init__(self, schedule: Schedule, budget: float) -> None:
        self.schedule = schedule
        self.budget = budget
        self._started = False

    def next(self, trial_id: int) -> Action:
        """`Sample(budget)` the first time, then the wrapped schedule's."""
        if self._started:
            return self.schedule.next(trial_id)
        self._started = True
        return Sample(self.budget, {"first": "full budget"})

    def record(self, trial_id: int, config: Mapping[str, Any], loss: Outcome) -> None:
        """The wrapped schedule's record (it ignores the first trial, which it never started)."""
        self.schedule.record(trial_id, config, loss)

    def continuable(self) -> set[int]:
        """The wrapped schedule's."""
        return self.schedule.continuable()

    def relayout(self, layout: tuple[Bracket, ...]) -> bool:
        """The wrapped schedule's `relayout` (False when it has none)."""
        relayout = getattr(self.schedule, "relayout", None)
        return bool(relayout(layout)) if relayout is not None else False


@dataclass
class _BracketRun:
    """A bracket in progress: its current rung's trials (running and finished)."""

    bracket: Bracket
    number: int
    #: The lr schedule's span of its trials, when the layout changed after the search began.
    horizon: float | None = None
    rung: int = 0
    queue: list[tuple[Mapping[str, Any], int]] = field(default_factory=list)
    started: set[int] = field(default_factory=set)
    results: Ranking = field(default_factory=RungRanking)
    to_sample: int = 0
    #: The queued promotions' losses at the rung they leave.
    results_below: dict[int, float] = field(default_factory=dict)

    @property
    def waiting(self) -> bool:
        """True while trials of the current rung are still out."""
        return len(self.results) < len(self.started)


class HyperbandSchedule:
    """Hyperband's brackets in turn, each rung synchronous: the best of a finished rung move up.

    While a bracket waits for its rung, the next one starts (as in BOHB's parallel version);
    with `max_brackets`, the schedule waits instead once that many have started, and is done
    when they have all finished. With a `check`, the promotions' losses are measured, and a
    new bracket never starts at a budget the check found misleading (`FidelityCheck`).
    """

    def __init__(self, layout: tuple[Bracket, ...], *, max_brackets: int | None = None,
                 check: FidelityCheck | None = None,
                 ranking: RankingFactory = rung_ranking) -> None:
        self.layout = layout
        self.max_brackets = max_brackets
        self.check = check
        self.ranking = ranking
        # With a check, a promoted trial's lineage (its ancestors' budgets and losses) and own
        # budget until its result arrives; then its lineage, for its own promotion.
        self._parents: dict[int, tuple[Lineage, float]] = {}
        self._lineage: dict[int, Lineage] = {}
        self._relaid = False
        # Brackets in progress, oldest first; several only while trials run in parallel.
        self._runs: list[_BracketRun] = []
        self._brackets_started = 0
        self._trial_rung: dict[int, tuple[int, int]] = {}

    def next(self, trial_id: int) -> Action:
        """The next trial of the oldest bracket that has one; a new bracket if all are waiting.

        Told before every ask (one worker), only one bracket is ever in progress.
        """
        i = 0
        while True:
            if i == len(self._runs):
                if self._brackets_started == self.max_brackets:
                    return Wait() if self._runs else Done()
                self._runs.append(self._start_bracket())
            run = self._runs[i]
            if run.queue or run.to_sample:
                return self._next_of(run, trial_id)
            if run.waiting:
                i += 1
            elif not self._promote(run):
                del self._runs[i]  # bracket finished

    def record(self, trial_id: int, config: Mapping[str, Any], loss: Outcome) -> None:
        """Rank the result in the rung that started it (if that rung is still running)."""
        where = self._trial_rung.pop(trial_id, None)
        parent = self._parents.pop(trial_id, None)
        if parent is not None and self.check is not None:
            lineage, budget = parent
            self.check.add(*lineage[-1], budget, loss)
            self._lineage[trial_id] = lineage
            if budget >= self.layout[0].rungs[-1].budget * (1 - _EPS):
                self.check.add_lineage(lineage, budget, loss)
        for run in self._runs:
            if where == (run.number, run.rung):
                run.results.add(trial_id, loss, config)
                break

    def continuable(self) -> set[int]:
        """Per bracket in progress: its running rung's trials (when another rung follows) and
        those queued to move up."""
        ids: set[int] = set()
        for run in self._runs:
            ids |= {parent for _, parent in run.queue}
            if run.rung + 1 < len(run.bracket.rungs):
                ids |= run.started
        return ids

    def relayout(self, layout: tuple[Bracket, ...]) -> bool:
        """Lay the brackets not yet started out anew (a re-planned trial budget); those in
        progress keep theirs. Their trials say their bracket's top budget (`horizon` in their
        info): the lr schedule spans it, so a promotion continues its parent seamlessly."""
        self.layout, self._relaid = layout, True
        return True

    def _start_bracket(self) -> _BracketRun:
        layout = self.layout
        if self.check is not None:
            # Brackets whose first rung's budget misleads are left out while it does.
            floor = self.check.lowest_trusted(r.budget for b in layout for r in b.rungs)
            layout = tuple(b for b in layout if b.rungs[0].budget >= floor * (1 - _EPS)) \
                or layout[-1:]
        bracket = layout[self._brackets_started % len(layout)]
        run = _BracketRun(bracket=bracket, number=self._brackets_started,
                          to_sample=bracket.rungs[0].n_configs,
                          horizon=bracket.rungs[-1].budget if self._relaid else None,
                          results=self.ranking(self._brackets_started))
        self._brackets_started += 1
        return run

    def _next_of(self, run: _BracketRun, trial_id: int) -> Action:
        budget = run.bracket.rungs[run.rung].budget
        info: dict[str, Any] = {"bracket": run.bracket.index, "rung": run.rung}
        if run.horizon is not None:
            info["horizon"] = run.horizon
        run.started.add(trial_id)
        self._trial_rung[trial_id] = (run.number, run.rung)
        if run.queue:
            config, parent = run.queue.pop(0)
            if self.check is not None:
                below = run.bracket.rungs[run.rung - 1].budget
                lineage = (*self._lineage.pop(parent, ()), (below, run.results_below[parent]))
                self._parents[trial_id] = (lineage, budget)
            return Promote(parent, config, budget, info)
        run.to_sample -= 1
        return Sample(budget, info)

    def _promote(self, run: _BracketRun) -> bool:
        """Queue the best of a finished rung for the next; False when the bracket is done."""
        if run.rung + 1 >= len(run.bracket.rungs):
            return False
        keep = run.bracket.rungs[run.rung + 1].n_configs
        ids = list(run.results.candidates(keep))
        if not ids:
            return False
        run.results_below = {tid: run.results.loss(tid) for tid in ids}
        run.queue = [(run.results.promote(tid), tid) for tid in ids]
        run.rung += 1
        run.started, run.results = set(), self.ranking(run.number)
        return True


class ASHASchedule:
    """Asynchronous successive halving over `budgets` (lowest first): never waits.

    Each `next` promotes the best not yet promoted trial within the top floor(n / eta) of the
    highest rung that has one, and otherwise samples a new configuration at the lowest budget
    (with a `check`, the lowest the check still trusts).
    """

    def __init__(self, budgets: tuple[float, ...], eta: float, *,
                 check: FidelityCheck | None = None,
                 ranking: RankingFactory = rung_ranking) -> None:
        self.budgets = budgets
        self.eta = eta
        self.check = check
        self._rungs = [ranking(k) for k in range(len(budgets))]
        self._rung_of: dict[int, int] = {}
        # With a check, a promoted trial's (parent's budget, parent's loss, own budget).
        self._parents: dict[int, tuple[float, float, float]] = {}

    def next(self, trial_id: int) -> Action:
        """A promotion from the highest rung that has one due, else a new sample at rung 0."""
        for k in range(len(self.budgets) - 2, -1, -1):
            top = math.floor(len(self._rungs[k]) / self.eta + _EPS)
            tid = next(self._rungs[k].candidates(top), None)
            if tid is not None:
                self._rung_of[trial_id] = k + 1
                if self.check is not None:
                    self._parents[trial_id] = (self.budgets[k], self._rungs[k].loss(tid),
                                               self.budgets[k + 1])
                return Promote(tid, self._rungs[k].promote(tid), self.budgets[k + 1],
                               {"rung": k + 1})
        base = 0
        if self.check is not None:
            floor = self.check.lowest_trusted(self.budgets)
            base = next(k for k, b in enumerate(self.budgets) if b >= floor * (1 - _EPS))
        self._rung_of[trial_id] = base
        return Sample(self.budgets[base], {"rung": base})

    def record(self, trial_id: int, config: Mapping[str, Any], loss: Outcome) -> None:
        """Rank the result in its rung; the top rung keeps no configuration (nothing above)."""
        k = self._rung_of.pop(trial_id, None)
        parent = self._parents.pop(trial_id, None)
        if parent is not None and self.check is not None:
            self.check.add(*parent, loss)
        if k is not None:
            self._rungs[k].add(trial_id, loss, config if k + 1 < len(self.budgets) else None)

    def continuable(self) -> set[int]:
        """Unpromoted finished trials below the top rung ranked within ceil(2 n / eta) + 1.

        One ranked lower needs its rung to about double before it moves up; if it does, it
        retrains from scratch (correct, dearer), and disk holds ~n / eta + 1 per rung, not n.
        """
        ids: set[int] = set()
        for rung in self._rungs[:-1]:
            ids.update(rung.candidates(math.ceil(2 * len(rung) / self.eta - _EPS) + 1))
        return ids
