"""The test problems of the conformance suite: deterministic objectives on the test spaces.

Each is a `nas.problems.Problem` with a known optimum and `best_config`; below `MAX_BUDGET` the
observed loss reads worse by a low-fidelity error that shrinks as the budget grows.
"""

from __future__ import annotations

import functools
import json
import math
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from ConfigSpace import ConfigurationSpace, Float

from nas.problems import Problem
from nas.testing.driver import MAX_BUDGET, MIN_BUDGET, stable
from nas.testing.spaces import continuous_space, mixed_space, tiny_space
from nas.types import Trial


def _number(config: Mapping[str, Any], key: str) -> float | None:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _squared(value: float | None, target: float, scale: float) -> float:
    # A missing or malformed value costs as much as the far end of the range; never raise here,
    # so a broken searcher fails the check that validates configs rather than the objective.
    return 1.0 if value is None else ((value - target) / scale) ** 2


def _log10(value: float | None) -> float | None:
    return math.log10(value) if value is not None and value > 0 else None


def _mixed_f(config: Mapping[str, Any]) -> float:
    loss = _squared(_number(config, "n_layers"), 4.0, 5.0)
    width = _number(config, "width")
    loss += _squared(math.log2(width) if width and width > 0 else None, 8.0, 6.0)
    loss += _squared(_log10(_number(config, "lr")), math.log10(3e-3), 4.0)
    loss += {"sgd": 0.0, "adam": 0.3, "rmsprop": 0.5}.get(config.get("optimizer"), 1.0)
    # Conditional parameters count only while active, as they would in a real network.
    if "momentum" in config:
        loss += _squared(_number(config, "momentum"), 0.9, 0.99)
    if "nesterov" in config:
        loss += {"on": 0.0, "off": 0.1}.get(config.get("nesterov"), 1.0)
    loss += {"leaky_relu": 0.0, "gelu": 0.1, "elu": 0.15, "relu": 0.2}.get(
        config.get("activation"), 1.0)
    if "negative_slope" in config:
        loss += _squared(_log10(_number(config, "negative_slope")), -2.0, 2.5)
    sizes = [16, 32, 64, 128, 256]
    size = config.get("batch_size")
    loss += 0.05 * abs(sizes.index(size) - 2) if size in sizes else 1.0
    return loss


def _continuous_f(config: Mapping[str, Any]) -> float:
    return (_squared(_number(config, "x"), 1.5, 10.0)
            + _squared(_log10(_number(config, "y")), -2.0, 3.0))


def _tiny_f(config: Mapping[str, Any]) -> float:
    return {"a": 1.0, "b": 0.0}.get(config.get("choice"), 2.0)


def _unit_hash(config: Mapping[str, Any], budget: float) -> float:
    """A number in [0, 1) fixed by (config, budget); crc32 because Python's str hash is salted."""
    key = json.dumps({"budget": float(budget), "config": stable(config)}, sort_keys=True)
    return zlib.crc32(key.encode()) / 2**32


def _observed(f: Callable[[Mapping[str, Any]], float], fidelity_error: float,
              config: Mapping[str, Any], budget: float, seed: int) -> float:
    """`f(config)` plus a low-fidelity error: up to twice `fidelity_error` at `MIN_BUDGET`, with a
    pseudo-random share, none at `MAX_BUDGET`; the seed is ignored (noise-free)."""
    value = f(config)
    # Log-scaled so each rung of a geometric (eta) schedule removes the same share of error.
    shortfall = math.log(MAX_BUDGET / budget) / math.log(MAX_BUDGET / MIN_BUDGET)
    return value + shortfall * fidelity_error * (1.0 + _unit_hash(config, budget))


def _problem(name: str, description: str, space: Callable[[], Any],
             f: Callable[[Mapping[str, Any]], float], best: Mapping[str, Any],
             fidelity_error: float = 0.1) -> Problem:
    """A test problem with optimum 0 at `best`, over budgets `MIN_BUDGET` to `MAX_BUDGET`."""
    return Problem(name=name, description=description, min_budget=float(MIN_BUDGET),
                   max_budget=float(MAX_BUDGET), budget_unit="budget", optimum=0.0,
                   _space=space, _evaluate=functools.partial(_observed, f, fidelity_error),
                   _true_loss=f, best_config=best)


def mixed_problem() -> Problem:
    """A weighted distance to a fixed target on `mixed_space`; 0 at the target."""
    best = {"n_layers": 4, "width": 256, "lr": 3e-3, "optimizer": "sgd", "momentum": 0.9,
            "nesterov": "on", "activation": "leaky_relu", "negative_slope": 0.01,
            "batch_size": 64, "arch": "mlp"}
    return _problem("mixed", "weighted distance to a target on the 10-parameter mixed space",
                    mixed_space, _mixed_f, best, fidelity_error=0.2)


def tiny_problem() -> Problem:
    """``choice == "b"`` is best (loss 0), ``"a"`` scores 1."""
    return _problem("tiny", "one categorical of two values: 'b' scores 0, 'a' scores 1",
                    tiny_space, _tiny_f, {"choice": "b"})


def continuous_problem() -> Problem:
    """A quadratic bowl in normalised (x, log y) with its minimum 0 at x = 1.5, y = 0.01."""
    # A small fidelity error keeps low budgets informative, as a multi-fidelity method assumes;
    # at 0.05 the cheap rungs rank near-optimal configs at random and BOHB ties with random.
    return _problem("continuous", "quadratic bowl in (x, log y), 0 at x = 1.5, y = 0.01",
                    continuous_space, _continuous_f, {"x": 1.5, "y": 0.01}, fidelity_error=0.02)


# -- a two-objective problem -------------------------------------------------------------------

#: Where the hypervolume of `zdt_objectives` is measured from: just beyond the worst values.
ZDT_REFERENCE = (1.1, 3.1)


def zdt_space(dim: int = 4) -> ConfigurationSpace:
    """`dim` floats x0, x1, ... in [0, 1], the space of `zdt_objectives`."""
    space = ConfigurationSpace(seed=0)
    space.add([Float(f"x{i}", (0.0, 1.0), default=0.5) for i in range(dim)])
    return space


def zdt_objectives(config: Mapping[str, Any], budget: float = MAX_BUDGET,
                   fidelity_error: float = 0.3) -> tuple[float, float]:
    """A ZDT1-like pair, both minimised: f1 = x0 (fixed, like a model's size) and
    f2 = g (1 - sqrt(f1 / g)) with g = 1 + 2 mean(x1, ...); the true front is g = 1. Below
    `MAX_BUDGET`, g reads worse by a low-fidelity error (up to twice `fidelity_error`)."""
    xs = [_number(config, f"x{i}") for i in range(len(config))]
    values = [min(max(x, 0.0), 1.0) if x is not None else 1.0 for x in xs] or [1.0]
    f1 = values[0]
    g = 1.0 + 2.0 * (sum(values[1:]) / max(1, len(values) - 1))
    shortfall = math.log(MAX_BUDGET / budget) / math.log(MAX_BUDGET / MIN_BUDGET)
    g += shortfall * fidelity_error * (1.0 + _unit_hash(config, budget))
    return f1, g * (1.0 - math.sqrt(f1 / g))


def zdt_objective(trial: Trial) -> tuple[float, float]:
    """`zdt_objectives` of a trial at its budget (None: `MAX_BUDGET`), for `nas.testing.run`."""
    return zdt_objectives(trial.config, trial.budget_or(MAX_BUDGET))
