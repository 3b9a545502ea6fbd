"""Synthetic problems: the multi-fidelity Branin and Hartmann6 of Kandasamy et al. 2017 (BOCA,
ICML), noise-free, and counting-ones of Falkner, Klein & Hutter 2018 (BOHB, ICML), noisy."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from ConfigSpace import Categorical, ConfigurationSpace, Float

from nas.errors import UserError
from nas.problems.core import (
    _MF_MAX_BUDGET,
    _MF_MIN_BUDGET,
    PROBLEMS,
    Problem,
    _fidelity,
    _values,
)

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
