"""Multi-fidelity test problems that searchers are tested and benchmarked on (lower loss is better).

`mf-branin` and `mf-hartmann6`: the multi-fidelity Branin and Hartmann6 of Kandasamy et al. 2017
(BOCA, ICML), noise-free; `counting-ones`: Falkner, Klein & Hutter 2018 (BOHB, ICML), noisy;
`digits-mlp`, `digits-conv`, `mnist1d-mlp`: a residual MLP or residual conv cells trained on
scikit-learn digits or MNIST-1D through the project's trainer. Importing this module does not
import torch; only evaluating a training problem (or asking for its space) does.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from ConfigSpace import Categorical, ConfigurationSpace, Float

from nas.errors import UserError
from nas.registry import Registry, loose_name

if TYPE_CHECKING:
    from nas.data import Dataset
    from nas.types import Trial

__all__ = ["Problem", "available", "get"]

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
    _evaluate: Callable[[Mapping[str, Any], float, int], float | dict[str, Any]] = field(
        repr=False
    )
    _true_loss: Callable[[Mapping[str, Any]], float] | None = field(repr=False, default=None)
    # Left out of the hash: a dict is unhashable, and a problem stays hashable with one.
    best_config: Mapping[str, Any] | None = field(default=None, hash=False)
    """A configuration known to reach `optimum`, where one is."""

    @property
    def space(self) -> ConfigurationSpace:
        """A fresh configuration space on each call: callers may seed or change it freely."""
        return self._space()

    def evaluate(
        self, config: Mapping[str, Any], budget: float, seed: int = 0
    ) -> float | dict[str, Any]:
        """The loss of `config` at `budget` (a dict with "loss" for training problems).

        Deterministic given (config, budget, seed); a budget outside the range is a ValueError.
        """
        return self._evaluate(config, self._check_budget(budget), _check_seed(seed))

    def loss(self, config: Mapping[str, Any], budget: float | None = None) -> float:
        """The loss of `config` at `budget` clipped into the budget range (None: max_budget).

        Seed 0; a training problem's dict gives its "loss". Clipped, not refused: a searcher
        under test that asks a budget out of range is caught by the check, not the objective.
        """
        lo, hi = self.min_budget, self.max_budget
        value = self._evaluate(config, hi if budget is None else min(max(float(budget), lo), hi), 0)
        return float(value["loss"] if isinstance(value, Mapping) else value)

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


# ---------------------------------------------------------------- mf-branin

_BRANIN_B = 5.1 / (4 * math.pi**2)
_BRANIN_C = 5 / math.pi
_BRANIN_T = 1 / (8 * math.pi)
# Kandasamy et al. 2017 (BOCA), synthetic experiments: z in [0, 1]^3 shifts three coefficients,
#   b(z) = b - 0.01 (1 - z1),  c(z) = c - 0.1 (1 - z2),  t(z) = t + 0.05 (1 - z3).
_BRANIN_SHIFT = np.array([-0.01, -0.1, 0.05])
# At z = 1 the minimum is 10 t = 5 / (4 pi) = 0.397887..., at x = (-pi, 12.275), (pi, 2.275),
# (3 pi, 2.475).
_BRANIN_OPTIMUM = 5 / (4 * math.pi)


def _branin(x: np.ndarray, z: np.ndarray) -> float:
    b, c, t = np.array([_BRANIN_B, _BRANIN_C, _BRANIN_T]) + _BRANIN_SHIFT * (1.0 - z)
    x1, x2 = x
    return float((x2 - b * x1**2 + c * x1 - 6.0) ** 2 + 10.0 * (1.0 - t) * math.cos(x1) + 10.0)


def _mf_synthetic(name: str, description: str, function: Callable[[np.ndarray, np.ndarray], float],
                  bounds: Mapping[str, tuple[float, float]], n_fidelities: int,
                  optimum: float) -> Problem:
    """A noise-free synthetic function whose fidelity vector is (s, ..., s) for budget -> s."""
    names = tuple(bounds)

    def space() -> ConfigurationSpace:
        out = ConfigurationSpace(name=name)
        out.add([Float(n, bounds[n]) for n in names])
        return out

    def evaluate(config: Mapping[str, Any], budget: float, seed: int) -> float:
        # Noise-free: the seed is accepted for a uniform interface and ignored.
        return function(_values(config, names), np.full(n_fidelities, _fidelity(budget)))

    def true_loss(config: Mapping[str, Any]) -> float:
        return function(_values(config, names), np.ones(n_fidelities))

    return Problem(name=name, description=description, min_budget=_MF_MIN_BUDGET,
                   max_budget=_MF_MAX_BUDGET, budget_unit="fidelity", optimum=optimum,
                   _space=space, _evaluate=evaluate, _true_loss=true_loss)


@PROBLEMS.register("mf-branin")
def _mf_branin() -> Problem:
    return _mf_synthetic(
        "mf-branin", "multi-fidelity Branin (Kandasamy et al. 2017), 2 floats, noise-free",
        _branin, {"x1": (-5.0, 10.0), "x2": (0.0, 15.0)}, 3, _BRANIN_OPTIMUM,
    )


# ---------------------------------------------------------------- mf-hartmann6

_HARTMANN_NAMES = tuple(f"x{i}" for i in range(1, 7))
_HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_HARTMANN_A = np.array([
    [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
    [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
    [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
    [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
])
_HARTMANN_P = 1e-4 * np.array([
    [1312.0, 1696.0, 5569.0, 124.0, 8283.0, 5886.0],
    [2329.0, 4135.0, 8307.0, 3736.0, 1004.0, 9991.0],
    [2348.0, 1451.0, 3522.0, 2883.0, 3047.0, 6650.0],
    [4047.0, 8828.0, 8732.0, 5743.0, 1091.0, 381.0],
])
# Kandasamy et al. 2017 (BOCA): z in [0, 1]^4 lowers the four weights, alpha'(z) = alpha -
# 0.1 (1 - z).
_HARTMANN_DELTA = 0.1
# Minimum at z = 1, at x* = (0.201690, 0.150011, 0.476874, 0.275332, 0.311652, 0.657301);
# refined with L-BFGS-B and Nelder-Mead from the textbook -3.32237.
_HARTMANN_OPTIMUM = -3.322368011415515


def _hartmann6(x: np.ndarray, z: np.ndarray) -> float:
    alpha = _HARTMANN_ALPHA - _HARTMANN_DELTA * (1.0 - z)
    inner = np.sum(_HARTMANN_A * (x - _HARTMANN_P) ** 2, axis=1)
    return float(-np.sum(alpha * np.exp(-inner)))


@PROBLEMS.register("mf-hartmann6")
def _mf_hartmann6() -> Problem:
    return _mf_synthetic(
        "mf-hartmann6", "multi-fidelity Hartmann6 (Kandasamy et al. 2017), 6 floats, noise-free",
        _hartmann6, dict.fromkeys(_HARTMANN_NAMES, (0.0, 1.0)), 4, _HARTMANN_OPTIMUM,
    )


# ---------------------------------------------------------------- counting-ones

_N_ONES = 8
_CAT_NAMES = tuple(f"cat{i}" for i in range(_N_ONES))
_CONT_NAMES = tuple(f"x{i}" for i in range(_N_ONES))


def _counting_ones_space() -> ConfigurationSpace:
    space = ConfigurationSpace(name="counting-ones")
    # Integer choices: ConfigSpace 1.2 samples them as numpy ints and serialises them as ints.
    space.add([Categorical(n, [0, 1]) for n in _CAT_NAMES])
    space.add([Float(n, (0.0, 1.0)) for n in _CONT_NAMES])
    return space


def _counting_ones_evaluate(config: Mapping[str, Any], budget: float, seed: int) -> float:
    cats = _values(config, _CAT_NAMES)
    xs = _values(config, _CONT_NAMES)
    if not np.all((xs >= 0.0) & (xs <= 1.0)):
        raise UserError(f"counting-ones probabilities must lie in [0, 1], got {xs.tolist()}")
    # The budget counts Bernoulli samples per continuous parameter: whole samples only.
    n = max(1, round(budget))
    # Noise depends on (seed, budget, config) alone: the exact bits of the values, as 32-bit words
    # in a fixed byte order, seed the generator (Python's hash() is salted per process).
    words = np.concatenate([cats, xs]).astype("<f8").view("<u4")
    rng = np.random.default_rng(np.random.SeedSequence([seed, n, *words.tolist()]))
    # Binomial(n, x) / n has the distribution of the mean of n Bernoulli(x) draws, in O(1).
    means = rng.binomial(n, xs) / n
    return -float(cats.sum() + means.sum())


def _counting_ones_true_loss(config: Mapping[str, Any]) -> float:
    return -float(_values(config, _CAT_NAMES).sum() + _values(config, _CONT_NAMES).sum())


@PROBLEMS.register("counting-ones")
def _counting_ones() -> Problem:
    return Problem(
        name="counting-ones",
        description="counting ones (Falkner et al. 2018): 8 binary + 8 Bernoulli-sampled floats",
        min_budget=9.0,
        max_budget=729.0,
        budget_unit="samples",
        optimum=-float(2 * _N_ONES),
        _space=_counting_ones_space,
        _evaluate=_counting_ones_evaluate,
        _true_loss=_counting_ones_true_loss,
    )


# ---------------------------------------------------------------- training problems
#
# Budgets run from 1 to 27 epochs: Hyperband/BOHB with eta=3 get four rungs (1, 3, 9, 27). Each
# space is narrowed so that a typical configuration trains 27 epochs in at most a few seconds on
# one CPU core (sampled medians 0.5-1.5 s, largest configurations 3-7 s). Spaces and evaluation
# functions are module-level functions and partials of them, so that a problem's `evaluate`
# pickles for worker processes.

_TRAIN_MIN_BUDGET = 1.0
_TRAIN_MAX_BUDGET = 27.0


def _mlp_space(**overrides: Any) -> ConfigurationSpace:
    """The residual MLP space with `overrides`; imports torch, only when a space is asked for."""
    from spaces import residual_mlp

    return residual_mlp(**overrides)


def _conv_space(**overrides: Any) -> ConfigurationSpace:
    """The residual conv space with `overrides`; imports torch, only when a space is asked for."""
    from spaces import residual_conv

    return residual_conv(**overrides)


@functools.cache
def _dataset(name: str) -> Dataset:
    """Built-in dataset `name` with its default splits, loaded once per process."""
    from nas.data import load

    return load(name)


def _train_evaluate(dataset: str, config: Mapping[str, Any], budget: float,
                    seed: int) -> dict[str, Any]:
    """Train the model `config` describes on `dataset` for `budget` epochs; loss 1 - val acc."""
    from nas.trainer import TrainerOptions, train_config
    from nas.types import TrialStatus

    result = train_config(config, _dataset(dataset), epochs=budget, seed=seed,
                          options=TrainerOptions(device="cpu")).result
    if result.status is TrialStatus.DIVERGED:
        # Worst possible loss; accuracy and validation loss of a diverged model are unknown.
        return {"loss": 1.0, "val_accuracy": None, "val_loss": None, "epochs": result.epochs,
                "status": result.status.value, "error": result.error}
    return {
        "loss": 1.0 - float(result.metrics["val_accuracy"]),
        # Validation cross-entropy orders equal accuracies, as in a search.
        "tiebreak_loss": float(result.metrics["val_loss"]),
        "val_accuracy": float(result.metrics["val_accuracy"]),
        "val_loss": float(result.metrics["val_loss"]),
        "epochs": result.epochs,
        "status": result.status.value,
    }


def _training_problem(name: str, description: str, dataset: str,
                      space: Callable[[], ConfigurationSpace]) -> Problem:
    """A problem that trains on built-in `dataset` for 1 to 27 epochs; loss 1 - val accuracy."""
    # No true loss: the optimum is unknown and training noise has no closed-form expectation, so
    # regret is left to the synthetic problems.
    return Problem(
        name=name,
        description=description,
        min_budget=_TRAIN_MIN_BUDGET,
        max_budget=_TRAIN_MAX_BUDGET,
        budget_unit="ep",
        optimum=math.nan,
        _space=space,
        _evaluate=functools.partial(_train_evaluate, dataset),
        _true_loss=None,
    )


@PROBLEMS.register("digits-mlp")
def _digits_mlp() -> Problem:
    return _training_problem(
        "digits-mlp", "residual MLP (width 16-256, 1-4 blocks) on sklearn digits; loss 1 - val acc",
        "digits", functools.partial(_mlp_space, width=(16, 256), n_blocks=(1, 4)),
    )


@PROBLEMS.register("digits-conv")
def _digits_conv() -> Problem:
    # One stage (8x8 maps throughout) of one or two cells with three searched edges (the cell
    # of a pre-activation basic block and its variants); a third cell node would nearly double
    # the time of the largest configurations.
    space = functools.partial(_conv_space, n_stages=1, channel_growth="double", n_cells=(1, 2),
                              channels=(8, 16), n_nodes=2)
    return _training_problem(
        "digits-conv",
        "residual conv cells (1 stage, 1-2 cells, 8-16 channels) on sklearn digits; "
        "loss 1 - val acc",
        "digits", space,
    )


@PROBLEMS.register("mnist1d-mlp")
def _mnist1d_mlp() -> Problem:
    return _training_problem(
        "mnist1d-mlp", "residual MLP (width 16-128, 1-3 blocks) on MNIST-1D; loss 1 - val acc",
        "mnist1d", functools.partial(_mlp_space, width=(16, 128), n_blocks=(1, 3)),
    )
