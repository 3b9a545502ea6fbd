"""ASHA (Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning"): successive
halving without synchronisation, so a free worker never waits for a rung to fill up.
"""

from __future__ import annotations

import itertools
import math
from bisect import insort
from collections.abc import Iterator
from typing import Any

from ConfigSpace import ConfigurationSpace

from nas.types import Result, Trial
from searchers.hyperband import SuccessiveHalving
from searchers.registry import register

# Rank thresholds are floors/ceilings of n / eta; keep an exact 6 / 3 from rounding down.
_EPS = 1e-9


@register("asha")
class ASHA(SuccessiveHalving):
    """Asynchronous successive halving over the budgets of Hyperband's most exploratory bracket.

    Each ask promotes the best not yet promoted trial within the top 1/eta of the highest rung
    that has one, and otherwise starts a new configuration at the lowest budget.
    """

    def __init__(self, space: ConfigurationSpace, *, min_budget: float, max_budget: float,
                 eta: float = 3, seed: int | None = 0, include_default: bool = False) -> None:
        super().__init__(space, min_budget=min_budget, max_budget=max_budget, eta=eta,
                         seed=seed, include_default=include_default)
        #: Budget of each rung, lowest first, ending at max_budget.
        self.budgets: tuple[float, ...] = tuple(r.budget for r in self.layout[0].rungs)
        # Per rung, finished trials as (loss, id) kept sorted: failures (inf) last, ties to the
        # earlier trial, so ranking is deterministic and each ask costs no sort.
        self._ranked: list[list[tuple[float, int]]] = [[] for _ in self.budgets]
        self._promoted: list[set[int]] = [set() for _ in self.budgets]
        self._rung_of: dict[int, int] = {}
        # Configurations of finished trials that may still be promoted (not in the top rung).
        self._configs: dict[int, dict[str, Any]] = {}

    def ask(self) -> Trial:
        """A promotion from the highest rung that has one due, else a new config at rung 0."""
        for k in range(len(self.budgets) - 2, -1, -1):
            tid = next(self._unpromoted(k, self._top(k)), None)
            if tid is not None:
                self._promoted[k].add(tid)
                return self._new_at(k + 1, self._configs.pop(tid), parent=tid,
                                    origin="promoted")
        config, origin = self.proposer.propose(self.budgets[0])
        return self._new_at(0, config, parent=None, origin=origin)

    def tell(self, trial: Trial, result: Result) -> None:
        """Rank the result in its rung (a failure as inf, never promoted) and show it to the
        proposer."""
        super().tell(trial, result)
        loss = result.loss if result.ok and math.isfinite(result.loss) else math.inf
        k = self._rung_of.pop(trial.id, None)
        if k is not None:
            insort(self._ranked[k], (loss, trial.id))
            if k + 1 < len(self.budgets) and math.isfinite(loss):
                self._configs[trial.id] = dict(trial.config)
        self.proposer.observe(trial.config, float(trial.budget or self.max_budget), loss)

    def continuable(self) -> set[int]:
        """Unpromoted finished trials below the top rung ranked within ceil(2 n / eta) + 1.

        One ranked lower needs its rung to about double before it moves up; if it does, it
        retrains from scratch (correct, dearer), and disk holds ~n / eta + 1 per rung, not n.
        """
        ids: set[int] = set()
        for k in range(len(self.budgets) - 1):
            window = math.ceil(2 * len(self._ranked[k]) / self.eta - _EPS) + 1
            ids.update(self._unpromoted(k, window))
        return ids

    # -- schedule ------------------------------------------------------------------------------

    def _top(self, k: int) -> int:
        """How many of rung k's finished trials rank high enough to move up: floor(n / eta)."""
        return math.floor(len(self._ranked[k]) / self.eta + _EPS)

    def _unpromoted(self, k: int, limit: int) -> Iterator[int]:
        """Ids among the best `limit` finished trials of rung k not yet promoted, best first."""
        for loss, tid in itertools.islice(self._ranked[k], limit):
            if not math.isfinite(loss):
                return  # failures rank last and never move up
            if tid not in self._promoted[k]:
                yield tid

    def _new_at(self, k: int, config: dict[str, Any], *, parent: int | None,
                origin: str) -> Trial:
        trial = self._new_trial(config, budget=self.budgets[k], parent=parent, rung=k,
                                origin=origin)
        self._rung_of[trial.id] = k
        return trial
