"""Checks that a searcher is reproducible: its seed alone decides what it asks.

Same seed, same asks; other seeds, other asks; no global random state; a replayed journal
rebuilds it; its `options` rebuild it.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from nas.testing.driver import _drive, _label, make_searcher
from nas.testing.problems import mixed_problem
from nas.testing.validity import _asks, _first_difference, _key
from nas.testing.watchdog import guarded
from nas.types import Result, Trial
from searchers.base import Searcher


@guarded
def check_deterministic(cls: type[Searcher]) -> None:
    """Same seed and same tells give the same 30 asks (config, budget, parent, info)."""
    problem = mixed_problem()
    runs = [_asks(_drive(make_searcher(cls, problem.space, seed=42), problem, 30)[1])
            for _ in range(2)]
    assert [_key(t) for t in runs[0]] == [_key(t) for t in runs[1]], (
        f"{_label(cls)} with seed=42 asked differently on a second run; "
        f"{_first_difference(*runs)}. Draw every random number from self.rng")


@guarded
def check_seeds_differ(cls: type[Searcher]) -> None:
    """Seeds 0 and 1 give different sequences of 30 asks."""
    problem = mixed_problem()
    runs = []
    for seed in (0, 1):
        asks = _asks(_drive(make_searcher(cls, problem.space, seed=seed), problem, 30)[1])
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


@guarded
def check_global_rng_untouched(cls: type[Searcher]) -> None:
    """Building and driving the searcher leaves the global RNGs alone (random, numpy, torch)."""
    random_state, numpy_state = random.getstate(), np.random.get_state()
    torch = sys.modules.get("torch")
    torch_state = None if torch is None else torch.random.get_rng_state()
    before = _global_rng_states()
    try:
        problem = mixed_problem()
        _drive(make_searcher(cls, problem.space, seed=0), problem, 20, in_flight=2)
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


@guarded
def check_replay(cls: type[Searcher]) -> None:
    """Replaying a 25-trial journal (3 in flight, failures) rebuilds the searcher exactly.

    A fresh searcher with the same seed asks what the journal holds when given its tells (through
    JSON, as a resume would), and then asks the same next trial as the original.
    """
    problem = mixed_problem()
    original = make_searcher(cls, problem.space, seed=7)
    _, events = _drive(original, problem, 25, fail_every=4, in_flight=3)
    replica = make_searcher(cls, problem.space, seed=7)
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


@guarded
def check_options_roundtrip(cls: type[Searcher]) -> None:
    """`options` is JSON and ``cls(space, seed=seed, **options)`` asks the same 15 trials.

    Also: `name` is set and the capability flags are bools.
    """
    assert isinstance(cls.name, str) and cls.name, f"{cls.__name__}.name is empty"
    assert type(cls.multi_fidelity) is bool and type(cls.model_based) is bool, \
        f"{_label(cls)}: multi_fidelity and model_based must be bools"
    problem = mixed_problem()
    searcher = make_searcher(cls, problem.space, seed=4)
    assert searcher.seed == 4, f"{_label(cls)}.seed is {searcher.seed!r}, not the given 4"
    options = searcher.options
    assert isinstance(options, Mapping), f"{_label(cls)}.options is not a dict: {options!r}"
    try:
        stored = json.loads(json.dumps(dict(options), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{_label(cls)}.options is not JSON: {exc}") from None
    try:
        rebuilt = cls(problem.space, seed=searcher.seed, **stored)
    except TypeError as exc:
        raise AssertionError(
            f"{_label(cls)}(space, seed=..., **options) failed ({exc}); options must name every "
            "constructor setting (min_budget, max_budget, ... included)") from None
    repr(rebuilt)
    runs = [_asks(_drive(s, problem, 15)[1]) for s in (searcher, rebuilt)]
    assert [_key(t) for t in runs[0]] == [_key(t) for t in runs[1]], (
        f"{_label(cls)} rebuilt from options={stored} asks differently: "
        f"{_first_difference(*runs)}")
