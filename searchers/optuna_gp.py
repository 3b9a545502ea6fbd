"""Optuna's Gaussian-process sampler as an external baseline: `optuna-gp` (extra `compare`).

It runs through the study, space codec and forbidden-clause handling of `optuna-tpe`
(`searchers.optuna_adapters`); only the sampler differs. This module imports optuna, and the
sampler imports torch when it first fits, so the registry loads it only on first use.
"""

from __future__ import annotations

from typing import Any

import optuna
from ConfigSpace import ConfigurationSpace
from optuna.trial import TrialState

from searchers.optuna_adapters import OptunaTPE
from searchers.registry import register

__all__ = ["OptunaGP"]


@register("optuna-gp")
class OptunaGP(OptunaTPE):
    """Optuna's GPSampler (Gaussian process, log expected improvement), full budget; `compare`.

    Floats and integers (ordinals as integer indices) are modelled on their own or log scales.
    Categoricals go to Optuna's GP as they are: its kernel compares a categorical dimension by
    equality (Hamming distance) and its acquisition search tries each choice. A conditional
    parameter is outside the GP's space (the parameters every finished trial has) and is drawn
    by the sampler's seeded RandomSampler. The GP learns from COMPLETE trials only, so failed
    trials (told FAIL) are not in its data, and a forbidden draw is told COMPLETE with the worst
    loss seen so far (PRUNED before any trial finished): told PRUNED it would be invisible to the
    GP, whose next draw would land in the same forbidden spot. Options: `n_startup_trials`
    random trials first, `deterministic_objective` (no noise in the GP).
    """

    costly_asks = True  # about a second an ask on a 10-parameter space

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0,
                 n_startup_trials: int = 10, deterministic_objective: bool = False) -> None:
        # Read by `_make_sampler`, which the base constructor calls.
        self.deterministic_objective = bool(deterministic_objective)
        super().__init__(space, seed=seed, n_startup_trials=n_startup_trials)

    def _make_sampler(self) -> optuna.samplers.BaseSampler:
        # The RandomSampler it uses for startup trials and conditional parameters gets the
        # same seed, so the searcher's seed decides every draw.
        return optuna.samplers.GPSampler(
            seed=self.sampler_seed, n_startup_trials=self.n_startup_trials,
            deterministic_objective=self.deterministic_objective,
            warn_independent_sampling=False)

    def _reject(self, trial: optuna.Trial) -> None:
        done = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        values = [t.value for t in done if t.value is not None]
        if not values:
            super()._reject(trial)
            return
        trial.set_user_attr("forbidden", True)  # marks it for whoever reads the study
        self.study.tell(trial, max(values))

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {"n_startup_trials": self.n_startup_trials,
                "deterministic_objective": self.deterministic_objective}
