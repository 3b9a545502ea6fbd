"""Multi-objective problems with a known front, for benchmarking multi-objective searchers.

`zdt1-mf`, `zdt2-mf` (Zitzler, Deb & Thiele 2000; 2 objectives, 6 floats) and `dtlz2-mf` (Deb,
Thiele, Laumanns & Zitzler 2002; 3 objectives, 7 floats) with a fidelity added: budgets 1..81
map to s in [0, 1] as for the synthetic problems, and below s = 1 the distance variables'
optimum is shifted by ``SHIFT * (1 - s)``, so low budgets rank configurations much as the full
budget does (informative) but send a search to the wrong distance (biased). Noise-free; at
max_budget each is the textbook function. `tab-mlp-digits-mo`, `tab-mlp-mnist1d-mo`: the
recorded learning curves of `nas.problems.tabular` with validation error against log10 of the
answering model's parameter count (held in the table: no training, no torch).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace, Float

from nas.dominance import hypervolume
from nas.problems import tabular
from nas.problems.core import (
    _MF_MAX_BUDGET,
    _MF_MIN_BUDGET,
    PROBLEMS,
    Problem,
    _fidelity,
    _values,
)

__all__ = ["DTLZ2_HYPERVOLUME", "DTLZ2_REFERENCE", "SHIFT", "ZDT1_HYPERVOLUME",
           "ZDT2_HYPERVOLUME", "ZDT_REFERENCE", "worst_reference"]

#: How far the distance variables' optimum moves at the lowest fidelity (s = 0): far enough
#: that a low rung's best distance is a poor full-budget one, near enough that rungs agree on
#: most orderings.
SHIFT = 0.2
#: A reference point is each objective's worst value anywhere in the space (the table, for the
#: tabular problems) plus this share of its range: every evaluated point then adds hypervolume,
#: so regret moves with any progress, not only once a point enters a box around the front.
REFERENCE_MARGIN = 0.1

# ---------------------------------------------------------------- ZDT1 / ZDT2

_ZDT_NAMES = tuple(f"x{i}" for i in range(1, 7))


def _zdt(x: np.ndarray, s: float, shape: Callable[[float], float]) -> tuple[float, float]:
    """ZDT with shape h: f1 = x1, f2 = g (1 - h(f1 / g)); g's distance term shifted below s=1."""
    f1 = float(x[0])
    # |x - 0| = x at s = 1: the textbook g = 1 + 9 / (d - 1) * sum(x_2..x_d).
    g = 1.0 + 9.0 * float(np.mean(np.abs(x[1:] - SHIFT * (1.0 - s))))
    return f1, g * (1.0 - shape(f1 / g))


def _zdt1_shape(r: float) -> float:
    return math.sqrt(r)


def _zdt2_shape(r: float) -> float:
    return r * r


# ---------------------------------------------------------------- DTLZ2

_DTLZ_NAMES = tuple(f"x{i}" for i in range(1, 8))
_DTLZ_M = 3


def _dtlz2(x: np.ndarray, s: float) -> tuple[float, float, float]:
    """DTLZ2 with 3 objectives: (1 + g) times a point of the unit sphere's positive octant."""
    g = float(np.sum((x[_DTLZ_M - 1:] - 0.5 - SHIFT * (1.0 - s)) ** 2))
    a, b = x[0] * math.pi / 2, x[1] * math.pi / 2
    r = 1.0 + g
    return (r * math.cos(a) * math.cos(b), r * math.cos(a) * math.sin(b), r * math.sin(a))


# ---------------------------------------------------------------- analytic problems


def _mo_evaluate(function: Callable[[np.ndarray, float], tuple[float, ...]],
                 names: tuple[str, ...], config: Mapping[str, Any], budget: float,
                 seed: int) -> tuple[float, ...]:
    # Noise-free: the seed is accepted for a uniform interface and ignored.
    return function(_values(config, names), _fidelity(budget))


def _mo_true(function: Callable[[np.ndarray, float], tuple[float, ...]],
             names: tuple[str, ...], config: Mapping[str, Any]) -> tuple[float, ...]:
    return function(_values(config, names), 1.0)


def _unit_space(name: str, names: tuple[str, ...]) -> ConfigurationSpace:
    space = ConfigurationSpace(name=name)
    space.add([Float(n, (0.0, 1.0)) for n in names])
    return space


def _analytic(name: str, description: str, function: Callable[[np.ndarray, float],
              tuple[float, ...]], names: tuple[str, ...], objectives: tuple[str, ...],
              reference: tuple[float, ...], optimum_hypervolume: float) -> Problem:
    """A noise-free multi-objective function on [0, 1]^d."""
    return Problem(
        name=name, description=description, min_budget=_MF_MIN_BUDGET,
        max_budget=_MF_MAX_BUDGET, budget_unit="fidelity", optimum=math.nan,
        _space=functools.partial(_unit_space, name, names),
        _evaluate=functools.partial(_mo_evaluate, function, names),
        objectives=objectives,
        reference_point=reference,
        optimum_hypervolume=optimum_hypervolume,
        _true_objectives=functools.partial(_mo_true, function, names),
    )


# ZDT's f1 = x1 spans [0, 1] and f2 [0, 10] (g <= 10 at s = 1; f2 = g at x1 = 0); DTLZ2's
# objectives each span [0, 2.25] (g <= 5 * 0.5^2). Plus 10% of the range, the reference points are
# (1.1, 11) and 2.475 in each objective. The true fronts (g = 0 or 1 at s = 1): f2 = 1 - sqrt(f1)
# and f2 = 1 - f1^2 for f1 in [0, 1], so the optimum is the box less the area under the front
# (1/3, 2/3); DTLZ2's is the unit sphere's octant, and a point of the box is dominated by it
# exactly when its norm is >= 1: the box less pi / 6.
ZDT_REFERENCE = (1.0 + REFERENCE_MARGIN, 10.0 * (1.0 + REFERENCE_MARGIN))
DTLZ2_REFERENCE = (2.25 * (1.0 + REFERENCE_MARGIN),) * 3
ZDT1_HYPERVOLUME = math.prod(ZDT_REFERENCE) - 1.0 / 3.0
ZDT2_HYPERVOLUME = math.prod(ZDT_REFERENCE) - 2.0 / 3.0
DTLZ2_HYPERVOLUME = math.prod(DTLZ2_REFERENCE) - math.pi / 6.0


@PROBLEMS.register("zdt1-mf")
def _zdt1_mf() -> Problem:
    return _analytic("zdt1-mf", "ZDT1 (convex front), 2 objectives, 6 floats, distance "
                     "optimum shifted at low fidelity, noise-free",
                     functools.partial(_zdt, shape=_zdt1_shape), _ZDT_NAMES, ("f1", "f2"),
                     ZDT_REFERENCE, ZDT1_HYPERVOLUME)


@PROBLEMS.register("zdt2-mf")
def _zdt2_mf() -> Problem:
    return _analytic("zdt2-mf", "ZDT2 (concave front), 2 objectives, 6 floats, distance "
                     "optimum shifted at low fidelity, noise-free",
                     functools.partial(_zdt, shape=_zdt2_shape), _ZDT_NAMES, ("f1", "f2"),
                     ZDT_REFERENCE, ZDT2_HYPERVOLUME)


@PROBLEMS.register("dtlz2-mf")
def _dtlz2_mf() -> Problem:
    return _analytic("dtlz2-mf", "DTLZ2 (spherical front), 3 objectives, 7 floats, distance "
                     "optimum shifted at low fidelity, noise-free",
                     _dtlz2, _DTLZ_NAMES, ("f1", "f2", "f3"), DTLZ2_REFERENCE,
                     DTLZ2_HYPERVOLUME)


# ---------------------------------------------------------------- tabular: error vs size

_TABULAR_OBJECTIVES = ("val_error", "log10_params")


def _tab_evaluate(dataset: str, config: Mapping[str, Any], budget: float, seed: int
                  ) -> dict[str, Any]:
    """The tabular lookup with "loss" = [validation error, log10 parameters]."""
    out = tabular._evaluate(dataset, config, budget, seed)
    return {**out, "loss": [out["loss"], math.log10(out["params"])]}


@functools.cache
def _tab_points(dataset: str) -> np.ndarray:
    """Each table entry's true objectives: final error (seed mean), log10 parameters."""
    held = tabular.table(dataset)
    return np.stack([held.final_losses.astype(np.float64),
                     np.log10(held.params.astype(np.float64))], axis=1)


def _tab_true(dataset: str, config: Mapping[str, Any]) -> tuple[float, ...]:
    index, _ = tabular.table(dataset).nearest(config)
    return tuple(float(v) for v in _tab_points(dataset)[index])


def worst_reference(points: np.ndarray) -> tuple[float, ...]:
    """Each objective's worst value among `points` plus `REFERENCE_MARGIN` of its range."""
    low, high = points.min(axis=0), points.max(axis=0)
    return tuple(float(v) for v in high + REFERENCE_MARGIN * (high - low))


def _tabular_mo(dataset: str) -> Problem:
    base = tabular._tabular_problem(dataset)
    points = _tab_points(dataset)
    # Every configuration is answered by a table entry, so the table's own front is reachable:
    # its hypervolume is the optimum, and hypervolume regret is never negative.
    reference = worst_reference(points)
    return Problem(
        name=f"{base.name}-mo", description=base.description.replace(
            "loss 1 - val acc", "validation error vs log10 parameters"),
        min_budget=base.min_budget, max_budget=base.max_budget, budget_unit=base.budget_unit,
        optimum=math.nan, _space=base._space,
        _evaluate=functools.partial(_tab_evaluate, dataset),
        objectives=_TABULAR_OBJECTIVES, reference_point=reference,
        optimum_hypervolume=hypervolume(points, reference),
        _true_objectives=functools.partial(_tab_true, dataset),
    )


@PROBLEMS.register("tab-mlp-digits-mo")
def _tab_digits_mo() -> Problem:
    return _tabular_mo("digits")


@PROBLEMS.register("tab-mlp-mnist1d-mo")
def _tab_mnist1d_mo() -> Problem:
    return _tabular_mo("mnist1d")
