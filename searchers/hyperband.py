"""Hyperband (Li et al. 2018): brackets of successive halving over a geometric ladder of budgets.

The schedule (which budget, which trial is promoted) is separate from the proposer (which new
configuration): Hyperband proposes at random, BOHB swaps in a kernel-density proposer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ConfigSpace import ConfigurationSpace

from nas.types import Result, Trial
from searchers.base import Searcher
from searchers.registry import register


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


@dataclass
class _BracketRun:
    """A bracket in progress: the trials of its current rung and their results."""

    bracket: Bracket
    number: int
    rung: int = 0
    queue: list[tuple[dict[str, Any], int | None]] = field(default_factory=list)
    asked: dict[int, dict[str, Any]] = field(default_factory=dict)
    losses: dict[int, float] = field(default_factory=dict)
    to_propose: int = 0

    @property
    def waiting(self) -> bool:
        """True while trials of the current rung are still out."""
        return len(self.losses) < len(self.asked)


class RandomProposer:
    """Proposes configurations uniformly at random from the space."""

    def __init__(self, space: ConfigurationSpace) -> None:
        self.space = space

    def propose(self, budget: float) -> tuple[dict[str, Any], str]:
        """A new configuration and where it came from."""
        return dict(self.space.sample_configuration()), "random"

    def observe(self, config: Mapping[str, Any], budget: float, loss: float) -> None:
        """Random proposals learn nothing."""


class DefaultFirst:
    """Proposes the space's default configuration once, then whatever `proposer` proposes.

    A space's default is usually a known-good setting: evaluating it first (as Syne Tune's
    searchers and SMAC's initial designs do) gives every search one sound candidate.
    """

    def __init__(self, proposer: Any, space: ConfigurationSpace) -> None:
        self.proposer = proposer
        self.space = space
        self.proposed_default = False

    def propose(self, budget: float) -> tuple[dict[str, Any], str]:
        """The default on the first call, the wrapped proposer's choice after."""
        if not self.proposed_default:
            self.proposed_default = True
            return dict(self.space.get_default_configuration()), "default"
        return self.proposer.propose(budget)

    def observe(self, config: Mapping[str, Any], budget: float, loss: float) -> None:
        """Pass the result on to the wrapped proposer."""
        self.proposer.observe(config, budget, loss)


class SuccessiveHalving(Searcher):
    """What the successive-halving family shares: its budget ladder, eta and proposer seam.

    The schedule (subclasses) decides budgets and promotions; `_make_proposer` new configs
    (the space's default first, with `include_default`).
    """

    multi_fidelity = True

    def __init__(self, space: ConfigurationSpace, *, min_budget: float, max_budget: float,
                 eta: float = 3, seed: int | None = 0, include_default: bool = False) -> None:
        super().__init__(space, seed=seed)
        self.min_budget = float(min_budget)
        self.max_budget = float(max_budget)
        self.eta = float(eta)
        self.include_default = bool(include_default)
        self.layout = hyperband_layout(self.min_budget, self.max_budget, self.eta)
        proposer = self._make_proposer()
        self.proposer = DefaultFirst(proposer, self.space) if self.include_default else proposer

    def _make_proposer(self) -> Any:
        return RandomProposer(self.space)

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {"min_budget": self.min_budget, "max_budget": self.max_budget, "eta": self.eta,
                "include_default": self.include_default}


@register("hyperband")
class Hyperband(SuccessiveHalving):
    """Hyperband; a promoted trial names the trial it continues as `parent`.

    Synchronous within a bracket; with trials in parallel, brackets overlap rather than idle.
    """

    def __init__(self, space: ConfigurationSpace, *, min_budget: float, max_budget: float,
                 eta: float = 3, seed: int | None = 0, include_default: bool = False) -> None:
        super().__init__(space, min_budget=min_budget, max_budget=max_budget, eta=eta,
                         seed=seed, include_default=include_default)
        # Brackets in progress, oldest first; several only while trials run in parallel.
        self._runs: list[_BracketRun] = []
        self._brackets_started = 0
        self._trial_rung: dict[int, tuple[int, int]] = {}

    def ask(self) -> Trial:
        """The next trial of the oldest bracket that has one; a new bracket if all are waiting.

        Told before every ask (one worker), only one bracket is ever in progress; with trials
        still running, later brackets start meanwhile, as in BOHB's parallel version.
        """
        i = 0
        while True:
            if i == len(self._runs):
                self._runs.append(self._start_bracket())
            run = self._runs[i]
            if run.queue or run.to_propose:
                return self._next_of(run)
            if run.waiting:
                i += 1
            elif not self._promote(run):
                del self._runs[i]  # bracket finished

    def tell(self, trial: Trial, result: Result) -> None:
        """Record a result in the rung that asked it and in the proposer's model."""
        super().tell(trial, result)
        loss = result.loss if result.ok else math.inf
        where = self._trial_rung.pop(trial.id, None)
        for run in self._runs:
            if where == (run.number, run.rung):
                run.losses[trial.id] = loss
                break
        self.proposer.observe(trial.config, float(trial.budget or self.max_budget), loss)

    def continuable(self) -> set[int]:
        """Per bracket in progress: its running rung's trials (when another rung follows) and
        those queued to move up."""
        ids: set[int] = set()
        for run in self._runs:
            ids |= {parent for _, parent in run.queue if parent is not None}
            if run.rung + 1 < len(run.bracket.rungs):
                ids |= set(run.asked)
        return ids

    # -- schedule ------------------------------------------------------------------------------

    def _start_bracket(self) -> _BracketRun:
        bracket = self.layout[self._brackets_started % len(self.layout)]
        run = _BracketRun(bracket=bracket, number=self._brackets_started,
                          to_propose=bracket.rungs[0].n_configs)
        self._brackets_started += 1
        return run

    def _next_of(self, run: _BracketRun) -> Trial:
        rung = run.bracket.rungs[run.rung]
        if run.queue:
            config, parent = run.queue.pop(0)
            origin = "promoted"
        else:
            config, origin = self.proposer.propose(rung.budget)
            parent = None
            run.to_propose -= 1
        trial = self._new_trial(config, budget=rung.budget, parent=parent,
                                bracket=run.bracket.index, rung=run.rung, origin=origin)
        run.asked[trial.id] = dict(trial.config)
        self._trial_rung[trial.id] = (run.number, run.rung)
        return trial

    def _promote(self, run: _BracketRun) -> bool:
        """Move the best of a finished rung up; False when the bracket is done."""
        if run.rung + 1 >= len(run.bracket.rungs):
            return False
        # Failures never move up; ties go to the earlier trial.
        ranked = sorted((loss, tid) for tid, loss in run.losses.items() if math.isfinite(loss))
        keep = run.bracket.rungs[run.rung + 1].n_configs
        promoted = [(run.asked[tid], tid) for _, tid in ranked[:keep]]
        if not promoted:
            return False
        run.rung += 1
        run.queue = promoted
        run.asked, run.losses = {}, {}
        return True
