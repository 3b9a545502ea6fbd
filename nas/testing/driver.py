"""Building searchers and driving them through ask/tell, as a runner would, without training.

`run` drives a searcher on an objective; `_drive` also returns the ask/tell event log that the
checks replay and inspect.
"""

from __future__ import annotations

import inspect
import json
import math
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace

from nas.journal import incumbent_key
from nas.types import Result, Trial, TrialStatus, plain
from searchers.base import Searcher

#: Budgets given to multi-fidelity searchers by `make_searcher` (three rungs of eta = 3).
MIN_BUDGET = 1
MAX_BUDGET = 27
ETA = 3

#: Objectives given to a multi-objective searcher by `make_searcher`.
N_OBJECTIVES = 2

#: A loss, or a multi-objective search's values (the first is the loss).
Objective = Callable[[Trial], float | Sequence[float]]


def _label(cls: type[Searcher]) -> str:
    """How messages name a searcher class: its registered name, else the class name."""
    return getattr(cls, "name", "") or cls.__name__


def make_searcher(cls: type[Searcher], space: ConfigurationSpace, seed: int | None = 0,
                  **overrides: Any) -> Searcher:
    """Build `cls` over `space`; multi-fidelity classes get min_budget=1, max_budget=27, eta=3,
    multi-objective ones n_objectives=2."""
    options: dict[str, Any] = {}
    if cls.multi_fidelity:
        options = {"min_budget": MIN_BUDGET, "max_budget": MAX_BUDGET}
        params = inspect.signature(cls).parameters.values()
        if any(p.name == "eta" or p.kind is p.VAR_KEYWORD for p in params):
            options["eta"] = ETA
    if getattr(cls, "multi_objective", False):
        options["n_objectives"] = N_OBJECTIVES
    options.update(overrides)
    return cls(space, seed=seed, **options)


def size_objective(config: Mapping[str, Any]) -> float:
    """A stand-in second objective (a model's size): fixed by the configuration alone, in
    [0, 1); crc32 of its JSON because Python's str hash is salted."""
    key = json.dumps(stable(config), sort_keys=True)
    return zlib.crc32(key.encode()) / 2**32


def stable(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with floats to 10 significant digits: what a hash of it may read, so that a
    value another CPU's exp and log round differently in the last bit hashes alike."""
    return {k: float(f"{v:.10g}") if isinstance(v, float) else v
            for k, v in plain(dict(config)).items()}


def _result(searcher: Searcher, trial: Trial, value: float | Sequence[float],
            epochs: float) -> Result:
    """The result of an objective's value: a tuple gives a multi-objective result whose loss
    is its first value; a multi-objective searcher told a plain loss gets `size_objective` as
    its second (so the single-objective test problems drive it too)."""
    if isinstance(value, (int, float)):
        loss, values = float(value), None
        if getattr(searcher, "multi_objective", False):
            n = getattr(searcher, "n_objectives", N_OBJECTIVES)
            values = (loss, size_objective(trial.config))[:n] + (loss,) * max(0, n - 2)
    else:
        values = tuple(float(v) for v in value)
        loss = values[0]
    if not all(math.isfinite(v) for v in (loss, *(values or ()))):
        return Result.failure(TrialStatus.DIVERGED, "loss is not finite", epochs=epochs)
    return Result(loss=loss, epochs=epochs, objectives=values)


@dataclass(frozen=True)
class _Event:
    """One step of a drive: an ask (trial may be None) or a tell (trial and result)."""

    kind: str
    trial: Trial | None
    result: Result | None = None
    #: After a tell, what `continuable()` returned (only when the drive was asked to record it).
    continuable: frozenset[int] | None = None


def _drive(searcher: Searcher, objective: Objective, n_trials: int | None = None, *,
           total_budget: float | None = None, fail_every: int | None = None,
           in_flight: int = 1, full_budget: float = MAX_BUDGET,
           tell_order_seed: int | None = None, record_continuable: bool = False,
           ) -> tuple[list[tuple[Trial, Result]], list[_Event]]:
    """`run`, also returning the ask/tell event log (for replays and lineage checks)."""
    if n_trials is None and total_budget is None:
        raise ValueError("give n_trials or total_budget")
    # A private generator: the completion order must not touch (or depend on) global state.
    order = None if tell_order_seed is None else np.random.default_rng(tell_order_seed)
    pending: deque[Trial] = deque()
    done: list[tuple[Trial, Result]] = []
    events: list[_Event] = []
    asked = 0
    spent = 0.0

    def cost(trial: Trial) -> float:
        return trial.budget_or(full_budget)

    def tell_next() -> None:
        if order is None:
            trial = pending.popleft()
        else:
            k = int(order.integers(len(pending)))
            trial = pending[k]
            del pending[k]
        if fail_every and (len(done) + 1) % fail_every == 0:
            result = Result.failure(TrialStatus.FAILED, "synthetic failure", epochs=cost(trial))
        else:
            result = _result(searcher, trial, objective(trial), cost(trial))
        searcher.tell(trial, result)
        done.append((trial, result))
        kept = frozenset(searcher.continuable()) if record_continuable else None
        events.append(_Event("tell", trial, result, kept))

    while n_trials is None or asked < n_trials:
        if len(pending) >= in_flight:
            tell_next()
            continue
        trial = searcher.ask()
        events.append(_Event("ask", trial))
        if trial is None:
            if not pending:
                break  # nothing pending and nothing to propose: the searcher is exhausted
            tell_next()
            continue
        if total_budget is not None and spent + cost(trial) > total_budget * (1 + 1e-9):
            break  # it does not fit: leave it unrun, as a budget-bound runner would
        spent += cost(trial)
        asked += 1
        pending.append(trial)
    while pending:
        tell_next()
    return done, events


def run(searcher: Searcher, objective: Objective, n_trials: int | None = None, *,
        total_budget: float | None = None, fail_every: int | None = None, in_flight: int = 1,
        full_budget: float = MAX_BUDGET, tell_order_seed: int | None = None,
        ) -> list[tuple[Trial, Result]]:
    """Ask and tell until `n_trials` ran or `total_budget` is spent; returns (trial, result)s.

    `in_flight` trials may wait untold, finishing oldest first or in an order drawn from
    `tell_order_seed`; every `fail_every`-th tell FAILED, a non-finite loss DIVERGED. Stops
    early if ask() gives None with nothing pending.
    """
    return _drive(searcher, objective, n_trials, total_budget=total_budget,
                  fail_every=fail_every, in_flight=in_flight, full_budget=full_budget,
                  tell_order_seed=tell_order_seed)[0]


def incumbent(pairs: Iterable[tuple[Trial, Result]],
              full_budget: float = MAX_BUDGET) -> Trial | None:
    """The best successful trial at the highest budget any successful trial reached (the rule
    of `nas.journal.incumbent_key`; ties to the earlier trial)."""
    ok = [(incumbent_key(t.budget_or(full_budget), r.loss), t.id, t)
          for t, r in pairs if r.ok]
    return min(ok, key=lambda e: (e[0], e[1]))[2] if ok else None
