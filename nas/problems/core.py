"""The problems' shared parts: `Problem`, the registry of problems, and their helpers."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from ConfigSpace import ConfigurationSpace

from nas.errors import UserError
from nas.registry import Registry, loose_name

if TYPE_CHECKING:
    from nas.types import Trial

__all__ = ["PROBLEMS", "Evaluation", "Problem", "available", "get"]

#: What a problem's `evaluate` returns: a loss, several objectives, or a dict holding "loss".
Evaluation = float | tuple[float, ...] | dict[str, Any]

# Hyperband computes rung budgets as max_budget * eta**-k, which can land a few ulps outside the
# range (81 * 3**-4 == 1.0000000000000002); such budgets are clipped instead of rejected.
_BUDGET_RTOL = 1e-9


@dataclass(frozen=True)
class Problem:
    """A benchmark problem: a space, a budget range, a known optimum and an evaluation function."""

    name: str
    description: str
    min_budget: float
    max_budget: float
    budget_unit: str
    optimum: float  # best achievable loss at max_budget (noise-free); nan if unknown
    _space: Callable[[], ConfigurationSpace] = field(repr=False)
    _evaluate: Callable[[Mapping[str, Any], float, int], Evaluation] = field(repr=False)
    _true_loss: Callable[[Mapping[str, Any]], float] | None = field(repr=False, default=None)
    # Left out of the hash: a dict is unhashable, and a problem stays hashable with one.
    best_config: Mapping[str, Any] | None = field(default=None, hash=False)
    """A configuration known to reach `optimum`, where one is."""
    #: A multi-objective problem's objective names, in the order `evaluate` returns them (all
    #: minimised); empty for a single-objective problem.
    objectives: tuple[str, ...] = ()
    #: The point hypervolumes are measured from (multi-objective problems).
    reference_point: tuple[float, ...] | None = None
    #: The hypervolume of the true front at max_budget from `reference_point`; nan if unknown.
    optimum_hypervolume: float = math.nan
    _true_objectives: Callable[[Mapping[str, Any]], tuple[float, ...]] | None = field(
        repr=False, default=None)

    @property
    def multi_objective(self) -> bool:
        """True when `evaluate` returns several objective values."""
        return len(self.objectives) > 1

    @property
    def space(self) -> ConfigurationSpace:
        """A fresh configuration space on each call: callers may seed or change it freely."""
        return self._space()

    def evaluate(
        self, config: Mapping[str, Any], budget: float, seed: int = 0
    ) -> Evaluation:
        """The loss of `config` at `budget` (a dict with "loss" for training problems; a
        multi-objective problem's is a tuple of its objectives, or a dict whose "loss" is one).

        Deterministic given (config, budget, seed); a budget outside the range is a ValueError.
        """
        return self._evaluate(config, self._check_budget(budget), _check_seed(seed))

    def loss(self, config: Mapping[str, Any], budget: float | None = None) -> float:
        """The loss of `config` at `budget` clipped into the budget range (None: max_budget).

        Seed 0; a training problem's dict gives its "loss", a multi-objective problem its first
        objective. Clipped, not refused: a searcher under test that asks a budget out of range
        is caught by the check, not the objective.
        """
        lo, hi = self.min_budget, self.max_budget
        value = self._evaluate(config, hi if budget is None else min(max(float(budget), lo), hi), 0)
        value = value["loss"] if isinstance(value, Mapping) else value
        return float(value[0] if isinstance(value, (tuple, list)) else value)

    def __call__(self, trial: Trial) -> float:
        """`loss` of the trial's config at its budget: a problem is an objective for
        `nas.testing.run`."""
        return self.loss(trial.config, trial.budget)

    def true_loss(self, config: Mapping[str, Any]) -> float:
        """Noise-free loss at the maximum budget (the expectation for noisy problems)."""
        if self._true_loss is None:
            raise NotImplementedError(
                f"problem {self.name!r} has no known noise-free loss; evaluate it at "
                f"max_budget={self.max_budget:g} instead"
            )
        return self._true_loss(config)

    def true_objectives(self, config: Mapping[str, Any]) -> tuple[float, ...]:
        """Noise-free objective values of a multi-objective problem at the maximum budget."""
        if self._true_objectives is None:
            raise NotImplementedError(f"problem {self.name!r} has no known noise-free "
                                      "objective values")
        return self._true_objectives(config)

    def regret(self, config: Mapping[str, Any]) -> float:
        """``true_loss(config) - optimum``: non-negative up to float error."""
        return self.true_loss(config) - self.optimum

    def _check_budget(self, budget: Any) -> float:
        try:
            value = float(budget)
        except (TypeError, ValueError):
            raise ValueError(
                f"budget must be a number in [{self.min_budget:g}, {self.max_budget:g}] "
                f"({self.budget_unit}), got {budget!r}"
            ) from None
        lo, hi = self.min_budget, self.max_budget
        if not (lo * (1 - _BUDGET_RTOL) <= value <= hi * (1 + _BUDGET_RTOL)):
            raise ValueError(
                f"budget {budget!r} is outside [{lo:g}, {hi:g}] ({self.budget_unit}) "
                f"for problem {self.name!r}"
            )
        return min(max(value, lo), hi)


# ---------------------------------------------------------------- registry

PROBLEMS: Registry[Callable[[], Problem]] = Registry("problem", key=loose_name)
"""Factories of the problems by name; each call builds a fresh `Problem`."""


def available() -> list[str]:
    """Names of the registered problems, sorted."""
    return PROBLEMS.available()


def get(name: str) -> Problem:
    """The problem registered as `name`; an unknown name is a `UserError`."""
    return PROBLEMS.get(name)()


# ---------------------------------------------------------------- shared helpers


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _values(config: Mapping[str, Any], names: tuple[str, ...]) -> np.ndarray:
    """The named entries of `config` as a float64 vector, in the order of `names`."""
    missing = [n for n in names if n not in config]
    if missing:
        raise UserError(f"configuration lacks {', '.join(missing)}")
    return np.array([float(config[n]) for n in names], dtype=np.float64)


# Synthetic budgets run from 1 to 81 so that Hyperband/BOHB with eta=3 get five rungs
# (1, 3, 9, 27, 81). The fidelity is logarithmic in the budget, s = log(b/min) / log(max/min), so
# those rungs sit at s = 0, 1/4, 1/2, 3/4, 1: every rung sees a different function. A linear map
# would put the three lowest rungs at s <= 0.1, i.e. nearly the same (most biased) function.
_MF_MIN_BUDGET = 1.0
_MF_MAX_BUDGET = 81.0


def _fidelity(budget: float) -> float:
    """Scalar fidelity s in [0, 1] of a synthetic budget in [1, 81] (log scale)."""
    s = math.log(budget / _MF_MIN_BUDGET) / math.log(_MF_MAX_BUDGET / _MF_MIN_BUDGET)
    return min(max(s, 0.0), 1.0)

