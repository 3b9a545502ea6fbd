"""Assertions the checks share: valid configurations and trials, and a sound ask/tell log."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ConfigSpace import Configuration, ConfigurationSpace, OrdinalHyperparameter
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    FloatHyperparameter,
    IntegerHyperparameter,
)

from nas.testing.driver import MAX_BUDGET, MIN_BUDGET, _Event, _label
from nas.types import Trial
from searchers.base import Searcher

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
            before = parent.budget_or(MAX_BUDGET)
            after = trial.budget_or(MAX_BUDGET)
            assert before < after, (
                f"{where}: budget {trial.budget!r} is not above its parent's {parent.budget!r}")
        asked[trial.id] = trial


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
