"""Optuna's multi-objective TPE as an external baseline: `optuna-motpe` (extra `compare`).

Optuna's TPESampler ranks a multi-objective study's trials by non-dominated sorting and
hypervolume contributions (MOTPE, Ozaki et al. 2020/2022). Optuna cannot prune a study of
several objectives (its trials cannot report intermediate values), so every trial runs at the
full budget. Space codec, forbidden draws and seeding are those of `optuna-tpe`
(`searchers.optuna_adapters`); this module imports optuna, so the registry loads it lazily.
"""

from __future__ import annotations

from typing import Any

from ConfigSpace import ConfigurationSpace
from optuna.trial import TrialState

from nas.types import Result, Trial
from searchers.base import Searcher
from searchers.optuna_adapters import OptunaTPE, _quiet
from searchers.registry import register

__all__ = ["OptunaMOTPE"]


@register("optuna-motpe")
class OptunaMOTPE(OptunaTPE):
    """Optuna's TPESampler on a study of `n_objectives` minimised objectives, full budget.

    Options as `optuna-tpe`'s, plus `n_objectives` (the search's, given by `nas.optimize`).
    """

    multi_objective = True

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0,
                 n_objectives: int = 1, n_startup_trials: int = 10,
                 multivariate: bool = True, group: bool = True,
                 constant_liar: bool = True) -> None:
        if isinstance(n_objectives, bool) or int(n_objectives) != n_objectives \
                or n_objectives < 1:
            raise ValueError(f"n_objectives must be a whole number >= 1, got {n_objectives!r}")
        # Read by `_directions`, which the base constructor calls.
        self.n_objectives = int(n_objectives)
        super().__init__(space, seed=seed, n_startup_trials=n_startup_trials,
                         multivariate=multivariate, group=group, constant_liar=constant_liar)

    def _directions(self) -> list[str]:
        return ["minimize"] * self.n_objectives

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {"n_objectives": self.n_objectives, **super().options}

    def tell(self, trial: Trial, result: Result) -> None:
        """COMPLETE with the objective values of a usable result, FAIL otherwise."""
        values = result.objective_values()
        if values is not None and len(values) != self.n_objectives:
            raise ValueError(f"trial {trial.id} has {len(values)} objective values; this "
                             f"search has {self.n_objectives}")
        Searcher.tell(self, trial, result)
        otrial = self._running.pop(trial.id, None)
        if otrial is None:
            return  # not asked here, or told twice
        if values is None:
            self._finish(otrial, None, TrialState.FAIL)
            return
        with _quiet():
            self.study.tell(otrial, list(values))
