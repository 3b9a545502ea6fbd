"""Conformance checks for searchers, shipped so plugin authors can run them on their own classes.

Decorate a pytest test taking ``cls, check`` with ``parametrize_with_checks([MySearcher])`` and
call ``check(cls)`` in it; every check raises AssertionError naming what broke. Or call
``check_searcher(MySearcher)``: one AssertionError lists every check that failed.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import random
import signal
import statistics
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from ConfigSpace import (
    Categorical,
    Configuration,
    ConfigurationSpace,
    Constant,
    EqualsCondition,
    Float,
    ForbiddenAndConjunction,
    ForbiddenEqualsClause,
    ForbiddenInClause,
    GreaterThanCondition,
    InCondition,
    Integer,
    OrdinalHyperparameter,
)
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    FloatHyperparameter,
    IntegerHyperparameter,
)

from nas.types import Result, Trial, TrialStatus, plain
from searchers.base import Searcher
from searchers.registry import get_class

__all__ = [
    "BEATS_RANDOM_SEEDS",
    "BEATS_RANDOM_TRIALS",
    "CHECK_TIMEOUT_S",
    "ETA",
    "IN_FLIGHT",
    "IN_FLIGHT_TRIALS",
    "MAX_BUDGET",
    "MIN_BUDGET",
    "TINY_TIMEOUT_S",
    "Problem",
    "all_checks",
    "assert_valid_config",
    "assert_valid_trial",
    "check_beats_random",
    "check_budgets",
    "check_conditional",
    "check_deterministic",
    "check_failed_results",
    "check_global_rng_untouched",
    "check_in_flight",
    "check_many_asks_before_tell",
    "check_options_roundtrip",
    "check_replay",
    "check_searcher",
    "check_seeds_differ",
    "check_tiny_space",
    "check_valid_configs",
    "continuous_problem",
    "continuous_space",
    "incumbent",
    "make_searcher",
    "mixed_problem",
    "mixed_space",
    "parametrize_with_checks",
    "run",
    "tiny_problem",
    "tiny_space",
]

#: Budgets given to multi-fidelity searchers by `make_searcher` (three rungs of eta = 3).
MIN_BUDGET = 1
MAX_BUDGET = 27
ETA = 3
#: Wall-clock limit of one check; only an endless loop should come near it.
CHECK_TIMEOUT_S = 30.0
#: Wall-clock limit of the tiny-space run, where "sample until unseen" loops never end.
TINY_TIMEOUT_S = 10.0

Check = Callable[[type[Searcher]], None]
Objective = Callable[[Trial], float]
T = TypeVar("T")


# -- test spaces ---------------------------------------------------------------------------------

def mixed_space() -> ConfigurationSpace:
    """A 10-parameter space: int (log), float (log), categorical, ordinal, constant, conditions.

    `momentum` is active only for ``optimizer == "sgd"``, `nesterov` only when momentum > 0.5
    (nested), `negative_slope` for two activations; sgd with gelu or elu is forbidden.
    """
    space = ConfigurationSpace(name="conformance-mixed")
    space.add([
        Integer("n_layers", (1, 6), default=2),
        Integer("width", (16, 1024), log=True),
        Float("lr", (1e-5, 1e-1), log=True),
        Categorical("optimizer", ["adam", "sgd", "rmsprop"]),
        Float("momentum", (0.0, 0.99)),
        Categorical("nesterov", ["off", "on"]),
        Categorical("activation", ["relu", "gelu", "leaky_relu", "elu"]),
        Float("negative_slope", (1e-3, 0.3), log=True),
        OrdinalHyperparameter("batch_size", [16, 32, 64, 128, 256]),
        Constant("arch", "mlp"),
    ])
    space.add([
        EqualsCondition(space["momentum"], space["optimizer"], "sgd"),
        GreaterThanCondition(space["nesterov"], space["momentum"], 0.5),
        InCondition(space["negative_slope"], space["activation"], ["leaky_relu", "elu"]),
    ])
    # An In-clause makes the forbidden region large (1/6 of the space), so a searcher that
    # ignores forbiddens is caught within a few dozen asks.
    space.add(ForbiddenAndConjunction(
        ForbiddenEqualsClause(space["optimizer"], "sgd"),
        ForbiddenInClause(space["activation"], ["gelu", "elu"]),
    ))
    return space


def tiny_space() -> ConfigurationSpace:
    """One categorical parameter with two values: a searcher must not loop looking for new ones."""
    space = ConfigurationSpace(name="conformance-tiny")
    space.add(Categorical("choice", ["a", "b"]))
    return space


def continuous_space() -> ConfigurationSpace:
    """Two floats, one of them on a log scale."""
    space = ConfigurationSpace(name="conformance-continuous")
    space.add([Float("x", (-5.0, 5.0)), Float("y", (1e-3, 1.0), log=True)])
    return space


# -- synthetic objectives ------------------------------------------------------------------------

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
    key = json.dumps({"budget": float(budget), "config": plain(dict(config))}, sort_keys=True)
    return zlib.crc32(key.encode()) / 2**32


@dataclass(frozen=True)
class Problem:
    """A deterministic synthetic objective on a test space, with its known optimum.

    `f` is the noise-free loss; `loss` adds a low-fidelity error that vanishes at `max_budget`.
    """

    name: str
    make_space: Callable[[], ConfigurationSpace]
    f: Callable[[Mapping[str, Any]], float]
    best_config: Mapping[str, Any]
    optimum: float = 0.0
    fidelity_error: float = 0.1
    min_budget: float = MIN_BUDGET
    max_budget: float = MAX_BUDGET

    def space(self) -> ConfigurationSpace:
        """A fresh copy of the problem's space."""
        return self.make_space()

    def loss(self, config: Mapping[str, Any], budget: float | None = None) -> float:
        """The observed loss at `budget` (None: the full budget, where it equals `f`).

        Lower budgets read worse by up to twice `fidelity_error`, with a pseudo-random share.
        """
        value = self.f(config)
        if budget is None:
            return value
        b = min(max(float(budget), self.min_budget), self.max_budget)
        # Log-scaled so each rung of a geometric (eta) schedule removes the same share of error.
        shortfall = math.log(self.max_budget / b) / math.log(self.max_budget / self.min_budget)
        return value + shortfall * self.fidelity_error * (1.0 + _unit_hash(config, b))

    def regret(self, config: Mapping[str, Any]) -> float:
        """How far `config`'s noise-free loss lies above the optimum."""
        return self.f(config) - self.optimum

    def __call__(self, trial: Trial) -> float:
        """The loss of `trial` at its budget; a `Problem` is an objective for `run`."""
        return self.loss(trial.config, trial.budget)


def mixed_problem() -> Problem:
    """A weighted distance to a fixed target on `mixed_space`; 0 at the target."""
    best = {"n_layers": 4, "width": 256, "lr": 3e-3, "optimizer": "sgd", "momentum": 0.9,
            "nesterov": "on", "activation": "leaky_relu", "negative_slope": 0.01,
            "batch_size": 64, "arch": "mlp"}
    return Problem("mixed", mixed_space, _mixed_f, best, fidelity_error=0.2)


def tiny_problem() -> Problem:
    """``choice == "b"`` is best (loss 0), ``"a"`` scores 1."""
    return Problem("tiny", tiny_space, _tiny_f, {"choice": "b"})


def continuous_problem() -> Problem:
    """A quadratic bowl in normalised (x, log y) with its minimum 0 at x = 1.5, y = 0.01."""
    # A small fidelity error keeps low budgets informative, as a multi-fidelity method assumes;
    # at 0.05 the cheap rungs rank near-optimal configs at random and BOHB ties with random.
    return Problem("continuous", continuous_space, _continuous_f, {"x": 1.5, "y": 0.01},
                   fidelity_error=0.02)


# -- building and driving searchers --------------------------------------------------------------

def make_searcher(cls: type[Searcher], space: ConfigurationSpace, seed: int | None = 0,
                  **overrides: Any) -> Searcher:
    """Build `cls` over `space`; multi-fidelity classes get min_budget=1, max_budget=27, eta=3."""
    options: dict[str, Any] = {}
    if cls.multi_fidelity:
        options = {"min_budget": MIN_BUDGET, "max_budget": MAX_BUDGET}
        params = inspect.signature(cls).parameters.values()
        if any(p.name == "eta" or p.kind is p.VAR_KEYWORD for p in params):
            options["eta"] = ETA
    options.update(overrides)
    return cls(space, seed=seed, **options)


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
        return full_budget if trial.budget is None else float(trial.budget)

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
            loss = float(objective(trial))
            result = Result(loss=loss, epochs=cost(trial)) if math.isfinite(loss) else \
                Result.failure(TrialStatus.DIVERGED, "loss is not finite", epochs=cost(trial))
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
    """The best successful trial at the highest budget any successful trial reached."""
    ok = [(full_budget if t.budget is None else float(t.budget), r.loss, t.id, t)
          for t, r in pairs if r.ok]
    if not ok:
        return None
    top = max(entry[0] for entry in ok)
    return min((entry for entry in ok if entry[0] == top), key=lambda e: (e[1], e[2]))[3]


# -- validity helpers ----------------------------------------------------------------------------

_PLAIN = (int, float, str, bool)


def assert_valid_config(space: ConfigurationSpace, config: Mapping[str, Any],
                        where: str = "config") -> None:
    """Assert `config` is a valid, plain configuration of `space` (inactive parameters absent)."""
    assert isinstance(config, Mapping), f"{where}: config is a {type(config).__name__}, not a dict"
    unknown = sorted(set(config) - set(space))
    assert not unknown, f"{where}: names not in the space: {unknown} in {dict(config)}"
    for name, value in config.items():
        hp = space[name]
        assert type(value) in _PLAIN, (
            f"{where}: {name}={value!r} is a {type(value).__module__}.{type(value).__name__}; "
            "configs hold plain int/float/str/bool (see nas.types.plain)")
        if isinstance(hp, IntegerHyperparameter):
            assert type(value) is int, f"{where}: integer {name}={value!r} is not an int"
        elif isinstance(hp, FloatHyperparameter):
            assert type(value) is float and math.isfinite(value), \
                f"{where}: float {name}={value!r} is not a finite float"
        else:
            if isinstance(hp, CategoricalHyperparameter):
                choices = hp.choices
            elif isinstance(hp, OrdinalHyperparameter):
                choices = hp.sequence
            else:
                choices = (hp.value,)
            # Compare types too: True == 1 and 64.0 == 64, but neither is the space's value.
            assert any(type(value) is type(c) and value == c for c in choices), \
                f"{where}: {name}={value!r} is not one of {list(choices)}"
    try:
        Configuration(space, values=dict(config)).check_valid_configuration()
    except Exception as exc:
        raise AssertionError(
            f"{where}: invalid configuration ({type(exc).__name__}: {exc}): {dict(config)}"
        ) from None


def assert_valid_trial(space: ConfigurationSpace, trial: Any, where: str = "trial") -> None:
    """Assert `trial` is a `Trial` with an int id, a valid config and plain JSON content."""
    assert isinstance(trial, Trial), f"{where}: ask() returned {trial!r}, not a Trial or None"
    where = f"{where} (trial {trial.id})"
    assert type(trial.id) is int and trial.id >= 0, f"{where}: id {trial.id!r} is not an int >= 0"
    assert_valid_config(space, trial.config, where)
    b = trial.budget
    assert b is None or (type(b) in (int, float) and math.isfinite(b)), \
        f"{where}: budget {b!r} is neither None nor a finite number"
    assert trial.parent is None or type(trial.parent) is int, \
        f"{where}: parent {trial.parent!r} is neither None nor an int id"
    assert isinstance(trial.info, Mapping), f"{where}: info is not a dict"
    try:
        data = trial.to_dict()
        json.dumps(data["config"], allow_nan=False)
        again = json.loads(json.dumps(data))
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{where}: not JSON-serialisable: {exc}") from None
    assert again == data, f"{where}: changes through JSON (a NaN?): {data} -> {again}"


def _assert_log_conforms(cls: type[Searcher], space: ConfigurationSpace,
                         events: Sequence[_Event], what: str) -> None:
    """Every asked trial is valid, has a fresh id, a budget fit for `cls` and a sound parent."""
    asked: dict[int, Trial] = {}
    told: set[int] = set()
    for k, event in enumerate(events):
        trial = event.trial
        if event.kind == "tell":
            assert trial is not None
            told.add(trial.id)
            continue
        if trial is None:
            continue
        where = f"{_label(cls)} {what}, ask #{k}"
        assert_valid_trial(space, trial, where)
        where = f"{where} (trial {trial.id})"
        assert trial.id not in asked, \
            f"{where}: id {trial.id} was already used by {asked[trial.id]}"
        if cls.multi_fidelity:
            assert trial.budget is not None and \
                MIN_BUDGET * (1 - 1e-9) <= trial.budget <= MAX_BUDGET * (1 + 1e-9), (
                    f"{where}: multi-fidelity budget {trial.budget!r} outside "
                    f"[min_budget={MIN_BUDGET}, max_budget={MAX_BUDGET}]")
        else:
            assert trial.budget is None, (
                f"{where}: a full-budget searcher must ask budget=None, got {trial.budget!r}")
        if trial.parent is not None:
            parent = asked.get(trial.parent)
            assert parent is not None, f"{where}: parent {trial.parent} was never asked before"
            assert trial.parent in told, (
                f"{where}: parent {trial.parent} is still running; only a finished trial can "
                "be continued")
            assert dict(parent.config) == dict(trial.config), (
                f"{where}: config {dict(trial.config)} differs from its parent's "
                f"{dict(parent.config)}")
            before = MAX_BUDGET if parent.budget is None else parent.budget
            after = MAX_BUDGET if trial.budget is None else trial.budget
            assert before < after, (
                f"{where}: budget {trial.budget!r} is not above its parent's {parent.budget!r}")
        asked[trial.id] = trial


# -- watchdog ------------------------------------------------------------------------------------

class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so a searcher's `except Exception` cannot eat it."""


def _within(seconds: float, what: str, fn: Callable[[], T]) -> T:
    """`fn()`, failing with AssertionError if it runs longer than `seconds` (an endless loop)."""
    message = f"{what} did not finish within {seconds:g} s: an endless loop in ask or tell?"
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
        if outer_delay and outer_delay <= seconds:
            return fn()  # an enclosing limit (pytest-timeout, an outer check) fires first anyway

        def on_alarm(signum: int, frame: Any) -> None:
            raise _Timeout

        start = time.monotonic()
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return fn()
        except _Timeout:
            raise AssertionError(message) from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if outer_delay:
                left = max(outer_delay - (time.monotonic() - start), 1e-3)
                signal.setitimer(signal.ITIMER_REAL, left, outer_interval)
    # No SIGALRM here (Windows, a worker thread): run it in a daemon thread and stop waiting.
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True, name=f"check: {what}")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise AssertionError(message)
    if "error" in box:
        raise box["error"]
    return box["value"]


# -- the checks ----------------------------------------------------------------------------------

_CHECKS: list[tuple[Check, Callable[[type[Searcher]], bool]]] = []


def _label(cls: type[Searcher]) -> str:
    return getattr(cls, "name", "") or cls.__name__


def _check(applies: Callable[[type[Searcher]], bool] = lambda cls: True,
           ) -> Callable[[Check], Check]:
    """Register a check (run when `applies(cls)`) and guard it with the wall-clock watchdog."""

    def deco(fn: Check) -> Check:
        @functools.wraps(fn)
        def guarded(cls: type[Searcher]) -> None:
            what = f"{fn.__name__}({_label(cls)})"
            try:
                # CHECK_TIMEOUT_S is read at call time so a test can shorten it.
                _within(CHECK_TIMEOUT_S, what, lambda: fn(cls))
            except AssertionError:
                raise
            except Exception as exc:
                # One failure type for every check; the chained traceback shows where it broke.
                raise AssertionError(f"{what} raised {type(exc).__name__}: {exc}") from exc

        _CHECKS.append((guarded, applies))
        return guarded

    return deco


def _key(trial: Trial | None) -> dict[str, Any] | None:
    return None if trial is None else trial.to_dict()


def _first_difference(a: Sequence[Trial | None], b: Sequence[Trial | None]) -> str:
    for k, (x, y) in enumerate(zip(a, b, strict=False)):
        if _key(x) != _key(y):
            return f"ask #{k}: {_key(x)} != {_key(y)}"
    return f"lengths {len(a)} != {len(b)}"


def _asks(events: Sequence[_Event]) -> list[Trial | None]:
    return [e.trial for e in events if e.kind == "ask"]


def _assert_ran(cls: type[Searcher], pairs: Sequence[Any], n: int, what: str) -> None:
    assert len(pairs) == n, (
        f"{_label(cls)} {what}: stopped proposing after {len(pairs)} of {n} trials (ask() gave "
        "None with nothing pending) on a space it has not exhausted")


@_check()
def check_valid_configs(cls: type[Searcher]) -> None:
    """40 asks on `mixed_space`: valid configs (conditions, forbiddens), plain JSON, unique ids.

    Also asserts the user's space object is left untouched (structure and random state).
    """
    problem = mixed_problem()
    space = problem.space()
    structure = json.dumps(space.to_serialized_dict(), sort_keys=True)
    rng_state = space.random.get_state()[1].tobytes()
    searcher = make_searcher(cls, space, seed=0)
    pairs, events = _drive(searcher, problem, 40)
    _assert_ran(cls, pairs, 40, "on the mixed space")
    _assert_log_conforms(cls, problem.space(), events, "on the mixed space")
    assert json.dumps(space.to_serialized_dict(), sort_keys=True) == structure, (
        f"{_label(cls)} changed the space it was given; keep a private copy")
    assert space.random.get_state()[1].tobytes() == rng_state, (
        f"{_label(cls)} sampled from (or reseeded) the user's space object; keep a private copy "
        "(the base class provides self.space)")


@_check()
def check_budgets(cls: type[Searcher]) -> None:
    """Budgets: None for full-budget searchers, else in [min, max], several, max within 150 asks.

    A trial's parent is an earlier, already told trial with the same config and a smaller budget.
    """
    problem = continuous_problem()
    space = problem.space()
    searcher = make_searcher(cls, space, seed=0)
    if not cls.multi_fidelity:
        pairs, events = _drive(searcher, problem, 30)
        _assert_ran(cls, pairs, 30, "on the continuous space")
        _assert_log_conforms(cls, problem.space(), events, "on the continuous space")
        return
    events: list[_Event] = []
    budgets: set[float] = set()
    for _ in range(150):
        trial = searcher.ask()
        events.append(_Event("ask", trial))
        assert trial is not None, (
            f"{_label(cls)}: ask() gave None with nothing pending after {len(events) // 2} trials")
        result = Result(loss=problem(trial), epochs=float(trial.budget or MAX_BUDGET))
        searcher.tell(trial, result)
        events.append(_Event("tell", trial, result))
        if trial.budget is not None:
            budgets.add(float(trial.budget))
        if len(events) >= 60 and len(budgets) > 1 and \
                any(math.isclose(b, MAX_BUDGET, rel_tol=1e-9) for b in budgets):
            break
    _assert_log_conforms(cls, problem.space(), events, "budgets run")
    assert len(budgets) > 1, f"{_label(cls)}: every trial ran at budget {budgets}; no fidelities"
    assert any(math.isclose(b, MAX_BUDGET, rel_tol=1e-9) for b in budgets), (
        f"{_label(cls)}: max_budget={MAX_BUDGET} never asked in 150 trials (budgets: "
        f"{sorted(budgets)})")


@_check()
def check_deterministic(cls: type[Searcher]) -> None:
    """Same seed and same tells give the same 30 asks (config, budget, parent, info)."""
    problem = mixed_problem()
    runs = [_asks(_drive(make_searcher(cls, problem.space(), seed=42), problem, 30)[1])
            for _ in range(2)]
    assert [_key(t) for t in runs[0]] == [_key(t) for t in runs[1]], (
        f"{_label(cls)} with seed=42 asked differently on a second run; "
        f"{_first_difference(*runs)}. Draw every random number from self.rng")


@_check()
def check_seeds_differ(cls: type[Searcher]) -> None:
    """Seeds 0 and 1 give different sequences of 30 asks."""
    problem = mixed_problem()
    runs = []
    for seed in (0, 1):
        asks = _asks(_drive(make_searcher(cls, problem.space(), seed=seed), problem, 30)[1])
        runs.append([None if t is None else (t.to_dict()["config"], t.budget, t.parent)
                     for t in asks])
    assert runs[0] != runs[1], f"{_label(cls)} asks the same 30 trials for seeds 0 and 1"


def _global_rng_states() -> dict[str, Any]:
    legacy = np.random.get_state()
    states: dict[str, Any] = {"random": random.getstate(),
                              "numpy.random": (legacy[0], legacy[1].tobytes(), *legacy[2:])}
    torch = sys.modules.get("torch")
    if torch is not None:
        states["torch"] = torch.random.get_rng_state().numpy().tobytes()
    return states


@_check()
def check_global_rng_untouched(cls: type[Searcher]) -> None:
    """Building and driving the searcher leaves the global RNGs alone (random, numpy, torch)."""
    random_state, numpy_state = random.getstate(), np.random.get_state()
    torch = sys.modules.get("torch")
    torch_state = None if torch is None else torch.random.get_rng_state()
    before = _global_rng_states()
    try:
        problem = mixed_problem()
        _drive(make_searcher(cls, problem.space(), seed=0), problem, 20, in_flight=2)
        after = _global_rng_states()
    finally:
        # Put them back so one bad searcher cannot make other tests flaky.
        random.setstate(random_state)
        np.random.set_state(numpy_state)
        if torch is not None:
            torch.random.set_rng_state(torch_state)
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, (
        f"{_label(cls)} used the global random state of {changed}; draw from self.rng instead")


@_check()
def check_many_asks_before_tell(cls: type[Searcher]) -> None:
    """Up to 20 asks before any tell (None only while some are pending), shuffled tells, 30 more.

    The 30 run with 4 in flight; every trial stays valid, with unique ids and sound parents.
    """
    problem = mixed_problem()
    space = problem.space()
    searcher = make_searcher(cls, space, seed=3)
    events: list[_Event] = []
    asked: list[Trial] = []
    for _ in range(20):
        trial = searcher.ask()
        events.append(_Event("ask", trial))
        if trial is None:
            assert asked, f"{_label(cls)}: the first ask() gave None with nothing pending"
            break
        asked.append(trial)
    order = np.random.default_rng(3).permutation(len(asked))
    for i in order:
        trial = asked[int(i)]
        result = Result(loss=problem(trial))
        searcher.tell(trial, result)
        events.append(_Event("tell", trial, result))
    pairs, more = _drive(searcher, problem, 30, in_flight=4)
    _assert_ran(cls, pairs, 30, "after out-of-order tells")
    _assert_log_conforms(cls, problem.space(), events + more, "with many asks before a tell")


#: Trials kept running at once in `check_in_flight`: a few, and more than a bracket's rung.
IN_FLIGHT = (3, 12)
#: Trials `check_in_flight` runs per setting of `IN_FLIGHT`.
IN_FLIGHT_TRIALS = 60


@_check()
def check_in_flight(cls: type[Searcher]) -> None:
    """60 trials with 3, then 12, in flight, told in a shuffled completion order (some FAILED).

    Trials stay valid, a parent is told before it is continued, `continuable()` names only asked
    trials, and the same seed and completion order give the same asks.
    """
    problem = mixed_problem()
    for in_flight in IN_FLIGHT:
        what = f"with {in_flight} in flight, told out of order"
        runs = []
        for _ in range(2):
            searcher = make_searcher(cls, problem.space(), seed=8)
            pairs, events = _drive(searcher, problem, IN_FLIGHT_TRIALS, fail_every=7,
                                   in_flight=in_flight, tell_order_seed=in_flight,
                                   record_continuable=True)
            _assert_ran(cls, pairs, IN_FLIGHT_TRIALS, what)
            _assert_log_conforms(cls, problem.space(), events, what)
            asked: set[int] = set()
            for event in events:
                if event.trial is None:
                    continue
                if event.kind == "ask":
                    asked.add(event.trial.id)
                elif event.continuable is not None:
                    unknown = sorted(i for i in event.continuable if i not in asked)
                    assert not unknown, (
                        f"{_label(cls)} {what}: continuable() after telling trial "
                        f"{event.trial.id} names {unknown}, never asked")
            runs.append(_asks(events))
        assert [_key(t) for t in runs[0]] == [_key(t) for t in runs[1]], (
            f"{_label(cls)} {what}, seed=8 and the same completion order, asked differently on a "
            f"second run; {_first_difference(*runs)}. Draw every random number from self.rng")


@_check()
def check_failed_results(cls: type[Searcher]) -> None:
    """Failed results: FAILED and DIVERGED (loss inf) tells, then 40 more valid asks.

    The first 40 trials have every third FAILED and some DIVERGED; 40 all-failing trials must
    neither crash the searcher nor make it stop proposing.
    """
    problem = mixed_problem()
    space = problem.space()
    calls = [0]

    def flaky(trial: Trial) -> float:
        calls[0] += 1
        return math.inf if calls[0] % 4 == 0 else problem(trial)

    searcher = make_searcher(cls, space, seed=5)
    first, events = _drive(searcher, flaky, 40, fail_every=3)
    statuses = {r.status for _, r in first}
    assert {TrialStatus.FAILED, TrialStatus.DIVERGED} <= statuses, f"check broken: {statuses}"
    _assert_ran(cls, first, 40, "with failures")
    second, more = _drive(searcher, problem, 40)
    _assert_ran(cls, second, 40, "after failures")
    _assert_log_conforms(cls, problem.space(), events + more, "after failed results")

    doomed = make_searcher(cls, space, seed=6)
    pairs, events = _drive(doomed, problem, 40, fail_every=1)
    _assert_ran(cls, pairs, 40, "when every trial fails")
    _assert_log_conforms(cls, problem.space(), events, "when every trial fails")


@_check()
def check_tiny_space(cls: type[Searcher]) -> None:
    """30 trials on one 2-valued categorical end within TINY_TIMEOUT_S with both values tried.

    Repeats are fine, and so is stopping (ask() -> None with nothing pending) once both values
    were proposed; one more ask() after the run must return None or a valid trial.
    """
    problem = tiny_problem()
    space = problem.space()
    searcher = make_searcher(cls, space, seed=0)
    pairs, events = _within(TINY_TIMEOUT_S, f"{_label(cls)} on a 2-point space",
                            lambda: _drive(searcher, problem, 30))
    _assert_log_conforms(cls, problem.space(), events, "on a 2-point space")
    seen = {t.config["choice"] for t, _ in pairs}
    assert seen == {"a", "b"}, (
        f"{_label(cls)} proposed only {sorted(seen)} in {len(pairs)} trials on a 2-point space")
    extra = _within(TINY_TIMEOUT_S, f"{_label(cls)} asked past a 2-point space", searcher.ask)
    if extra is not None:
        assert_valid_trial(problem.space(), extra, f"{_label(cls)} asked past a 2-point space")


@_check()
def check_conditional(cls: type[Searcher]) -> None:
    """Over 60 trials on `mixed_space`, conditional parameters appear exactly when active.

    Both first-level children (`momentum`, `negative_slope`) must appear at least once.
    """
    problem = mixed_problem()
    pairs, _ = _drive(make_searcher(cls, problem.space(), seed=11), problem, 60)
    _assert_ran(cls, pairs, 60, "on the mixed space")
    for trial, _ in pairs:
        c = dict(trial.config)
        where = f"{_label(cls)} trial {trial.id} {c}"
        assert ("momentum" in c) == (c.get("optimizer") == "sgd"), \
            f"{where}: momentum must be set exactly when optimizer == 'sgd'"
        assert ("negative_slope" in c) == (c.get("activation") in ("leaky_relu", "elu")), \
            f"{where}: negative_slope must be set exactly when activation is leaky_relu or elu"
        momentum = c.get("momentum")
        assert ("nesterov" in c) == (isinstance(momentum, float) and momentum > 0.5), \
            f"{where}: nesterov must be set exactly when momentum is set and > 0.5"
    for child in ("momentum", "negative_slope"):
        assert any(child in t.config for t, _ in pairs), (
            f"{_label(cls)} never activated the conditional parameter {child!r} in 60 trials")


@_check()
def check_replay(cls: type[Searcher]) -> None:
    """Replaying a 25-trial journal (3 in flight, failures) rebuilds the searcher exactly.

    A fresh searcher with the same seed asks what the journal holds when given its tells (through
    JSON, as a resume would), and then asks the same next trial as the original.
    """
    problem = mixed_problem()
    original = make_searcher(cls, problem.space(), seed=7)
    _, events = _drive(original, problem, 25, fail_every=4, in_flight=3)
    replica = make_searcher(cls, problem.space(), seed=7)
    for k, event in enumerate(events):
        if event.kind == "ask":
            got = replica.ask()
            assert _key(got) == _key(event.trial), (
                f"{_label(cls)} replay, ask #{k}: asked {_key(got)} but the journal holds "
                f"{_key(event.trial)}")
        else:
            assert event.trial is not None and event.result is not None
            # As a resume would: rebuilt from stored JSON, equal but not the same objects.
            trial = Trial.from_dict(json.loads(json.dumps(event.trial.to_dict())))
            result = Result.from_dict(json.loads(json.dumps(event.result.to_dict())))
            replica.tell(trial, result)
    a, b = original.ask(), replica.ask()
    assert _key(a) == _key(b), (
        f"{_label(cls)} after replaying {len(events)} events: the original asks {_key(a)}, the "
        f"replayed one {_key(b)}")


@_check()
def check_options_roundtrip(cls: type[Searcher]) -> None:
    """`options` is JSON and ``cls(space, seed=seed, **options)`` asks the same 15 trials.

    Also: `name` is set and the capability flags are bools.
    """
    assert isinstance(cls.name, str) and cls.name, f"{cls.__name__}.name is empty"
    assert type(cls.multi_fidelity) is bool and type(cls.model_based) is bool, \
        f"{_label(cls)}: multi_fidelity and model_based must be bools"
    problem = mixed_problem()
    searcher = make_searcher(cls, problem.space(), seed=4)
    assert searcher.seed == 4, f"{_label(cls)}.seed is {searcher.seed!r}, not the given 4"
    options = searcher.options
    assert isinstance(options, Mapping), f"{_label(cls)}.options is not a dict: {options!r}"
    try:
        stored = json.loads(json.dumps(dict(options), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{_label(cls)}.options is not JSON: {exc}") from None
    try:
        rebuilt = cls(problem.space(), seed=searcher.seed, **stored)
    except TypeError as exc:
        raise AssertionError(
            f"{_label(cls)}(space, seed=..., **options) failed ({exc}); options must name every "
            "constructor setting (min_budget, max_budget, ... included)") from None
    repr(rebuilt)
    runs = [_asks(_drive(s, problem, 15)[1]) for s in (searcher, rebuilt)]
    assert [_key(t) for t in runs[0]] == [_key(t) for t in runs[1]], (
        f"{_label(cls)} rebuilt from options={stored} asks differently: "
        f"{_first_difference(*runs)}")


#: Seeds of `check_beats_random`, each run by the searcher and by random search.
BEATS_RANDOM_SEEDS = (0, 1, 2, 3, 4)
#: Full-budget trials per seed in `check_beats_random` (multi-fidelity: this many max_budgets).
BEATS_RANDOM_TRIALS = 60


def _final_regret(cls: type[Searcher], problem: Problem, seed: int) -> float:
    searcher = make_searcher(cls, problem.space(), seed=seed)
    if cls.multi_fidelity:
        pairs = run(searcher, problem, total_budget=BEATS_RANDOM_TRIALS * MAX_BUDGET)
    else:
        pairs = run(searcher, problem, BEATS_RANDOM_TRIALS)
    best = incumbent(pairs)
    return math.inf if best is None else problem.regret(best.config)


@_check(applies=lambda cls: cls.model_based)
def check_beats_random(cls: type[Searcher]) -> None:
    """Median final regret over 5 seeds on `continuous_problem` is below random search's.

    Equal total budget: 60 full trials, or 60 * max_budget summed over multi-fidelity trials.
    """
    baseline = get_class("random")
    problem = continuous_problem()
    ours = [_final_regret(cls, problem, seed) for seed in BEATS_RANDOM_SEEDS]
    theirs = [_final_regret(baseline, problem, seed) for seed in BEATS_RANDOM_SEEDS]
    assert statistics.median(ours) < statistics.median(theirs), (
        f"{_label(cls)} claims model_based but does not beat random search: median regret "
        f"{statistics.median(ours):.3g} vs {statistics.median(theirs):.3g} "
        f"(per seed {[f'{r:.3g}' for r in ours]} vs {[f'{r:.3g}' for r in theirs]})")


# -- pytest integration --------------------------------------------------------------------------

def all_checks(cls: type[Searcher]) -> list[Check]:
    """The checks that apply to `cls`, chosen from its capability attributes."""
    return [check for check, applies in _CHECKS if applies(cls)]


def check_searcher(factory: type[Searcher] | str) -> None:
    """Run every conformance check that applies to a searcher class (or registered name).

    Returns if all pass, else raises one AssertionError listing each failing check with its
    message (like scikit-learn's ``check_estimator``)::

        from nas.testing import check_searcher
        from mypkg import MySearcher
        check_searcher(MySearcher)
    """
    cls = get_class(factory) if isinstance(factory, str) else factory
    if not (isinstance(cls, type) and issubclass(cls, Searcher)):
        raise TypeError(f"check_searcher takes a Searcher subclass or a name, got {factory!r}")
    checks = all_checks(cls)
    failures = []
    for check in checks:
        try:
            check(cls)
        except AssertionError as exc:  # the guard turns every other exception into one
            failures.append(f"{check.__name__}: {exc}")
    if failures:
        raise AssertionError(
            f"{_label(cls)} fails {len(failures)} of {len(checks)} conformance checks:\n"
            + "\n".join(f"- {failure}" for failure in failures))


def parametrize_with_checks(classes: Iterable[type[Searcher]]) -> Any:
    """A ``pytest.mark.parametrize`` over ``(cls, check)`` with ids like ``tpe-check_budgets``.

    Decorate ``def test_x(cls, check): check(cls)``; pytest is imported only here.
    """
    import pytest

    params = [pytest.param(cls, check, id=f"{_label(cls)}-{check.__name__}")
              for cls in classes for check in all_checks(cls)]
    return pytest.mark.parametrize(("cls", "check"), params)
