"""ASHA (Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning"): successive
halving without synchronisation, so a free worker never waits for a rung to fill up.
"""

from __future__ import annotations

from searchers.hyperband import SuccessiveHalving
from searchers.registry import register
from searchers.schedules import ASHASchedule, Schedule


@register("asha")
class ASHA(SuccessiveHalving):
    """Asynchronous successive halving over the budgets of Hyperband's most exploratory bracket.

    Each ask promotes the best not yet promoted trial within the top 1/eta of the highest rung
    that has one, and otherwise starts a new configuration at the lowest budget.
    """

    def _make_schedule(self) -> Schedule:
        return ASHASchedule(self.budgets, self.eta, check=self.fidelity)
