"""Hyperband (Li et al. 2018): brackets of successive halving over a geometric ladder of budgets.

The schedule (which budget, which trial is promoted) is separate from the proposer (which new
configuration): Hyperband proposes at random, BOHB swaps in a kernel-density proposer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ConfigSpace import ConfigurationSpace

from searchers.base import ScheduledSearcher
from searchers.fidelity import FidelityCheck
from searchers.ladders import Ladders
from searchers.priors import Prior
from searchers.proposers import Proposer, RandomProposer
from searchers.registry import register
from searchers.schedules import FullFirst, HyperbandSchedule, Schedule, hyperband_layout


class SuccessiveHalving(ScheduledSearcher):
    """What the successive-halving family shares: its budget ladder, eta and random proposer.

    Subclasses choose the schedule over `layout`; BOHB's variants also the proposer.
    """

    multi_fidelity = True

    def __init__(self, space: ConfigurationSpace, *, min_budget: float, max_budget: float,
                 eta: float = 3, seed: int | None = 0, include_default: bool = False,
                 full_first: bool = False, check_fidelity: bool = False,
                 ladders: int = 0, ladder_pool: int = 1,
                 min_trust: float = FidelityCheck.min_trust,
                 prior: Prior | Mapping[str, Any] | str | None = None) -> None:
        """`full_first`: the first trial trains at `max_budget` before any bracket (with
        `include_default`, the default configuration: an anytime incumbent).
        `check_fidelity`: Hyperband's brackets stop starting at budgets whose promotions
        rank configurations unlike the top budget (`searchers.fidelity`). `ladders`: that
        many configurations first climb every rung, for the check (`searchers.ladders`), each
        picked from `ladder_pool` sampled at the lowest budget. `min_trust`: the check's
        Kendall tau with the top at or below which a budget misleads.
        `prior`: a decaying share of new configurations comes from it (`searchers.priors`)."""
        if ladders < 0 or (ladders and not check_fidelity) or ladder_pool < 1:
            raise ValueError("ladders must be >= 0, and need check_fidelity; ladder_pool >= 1")
        if not -1 <= min_trust < 1:
            raise ValueError(f"min_trust must lie in [-1, 1), got {min_trust}")
        self.ladders = int(ladders)
        self.ladder_pool = int(ladder_pool)
        self.check_fidelity = bool(check_fidelity)
        #: Shared by the schedule (which brackets start) and a model-based proposer (which
        #: budgets it models): both follow the same measured trust.
        self.min_trust = float(min_trust)
        self.fidelity = FidelityCheck(min_trust=self.min_trust) if self.check_fidelity else None
        self.min_budget = float(min_budget)
        self.max_budget = float(max_budget)
        self.eta = float(eta)
        self.full_first = bool(full_first)
        self.layout = hyperband_layout(self.min_budget, self.max_budget, self.eta)
        super().__init__(space, seed=seed, include_default=include_default, prior=prior)
        if self.ladders:
            assert self.fidelity is not None
            self.schedule = Ladders(self.schedule, self.budgets, self.ladders, self.fidelity,
                                    pool=self.ladder_pool)
        if self.full_first:
            self.schedule = FullFirst(self.schedule, self.max_budget)

    @property
    def budgets(self) -> tuple[float, ...]:
        """Budget of each rung of the most exploratory bracket, lowest first, ending at the
        (current) max budget."""
        return tuple(r.budget for r in self.layout[0].rungs)

    def _make_proposer(self) -> Proposer:
        return RandomProposer(self.space)

    def rebudget(self, max_budget: float) -> bool:
        """Brackets not yet started run up to `max_budget` (the same ladder ratio and eta):
        a re-planned trial budget. False when its schedule cannot change (ASHA)."""
        relayout = getattr(self.schedule, "relayout", None)
        if relayout is None or not max_budget > 0:
            return False
        low = max_budget * self.min_budget / self.max_budget
        return bool(relayout(hyperband_layout(low, float(max_budget), self.eta)))

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        options = {"min_budget": self.min_budget, "max_budget": self.max_budget,
                   "eta": self.eta, "include_default": self.include_default}
        # Only when set: journals and traces of searches without them read as before.
        if self.full_first:
            options["full_first"] = True
        if self.check_fidelity:
            options["check_fidelity"] = True
            options["min_trust"] = self.min_trust
        if self.ladders:
            options["ladders"] = self.ladders
            options["ladder_pool"] = self.ladder_pool
        return {**options, **self._prior_options()}


@register("hyperband")
class Hyperband(SuccessiveHalving):
    """Hyperband; a promoted trial names the trial it continues as `parent`.

    Synchronous within a bracket; with trials in parallel, brackets overlap rather than idle.
    """

    def _make_schedule(self) -> Schedule:
        return HyperbandSchedule(self.layout, check=self.fidelity)
