"""The conformance checks, and running them: `all_checks`, `check_searcher`, pytest's
`parametrize_with_checks`.

Every check raises AssertionError naming what broke (the watchdog turns any other exception,
or an endless loop, into one).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from nas.problems import Problem
from nas.testing.driver import (
    MAX_BUDGET,
    _drive,
    _Event,
    _label,
    _result,
    incumbent,
    make_searcher,
    run,
)
from nas.testing.multiobjective import check_front, check_mo_beats_random
from nas.testing.problems import continuous_problem, mixed_problem, tiny_problem
from nas.testing.queue import check_enqueue, check_imports, check_space_change
from nas.testing.reproducibility import (
    check_deterministic,
    check_global_rng_untouched,
    check_options_roundtrip,
    check_replay,
    check_seeds_differ,
)
from nas.testing.validity import (
    _asks,
    _assert_log_conforms,
    _assert_ran,
    _first_difference,
    _key,
    assert_valid_trial,
)
from nas.testing.watchdog import Check, _within, guarded
from nas.types import Trial, TrialStatus
from searchers.base import Searcher
from searchers.registry import get_class

#: Wall-clock limit of the tiny-space run, where "sample until unseen" loops never end.
TINY_TIMEOUT_S = 10.0


@guarded
def check_valid_configs(cls: type[Searcher]) -> None:
    """40 asks on `mixed_space`: valid configs (conditions, forbiddens), plain JSON, unique ids.

    Also asserts the user's space object is left untouched (structure and random state).
    """
    problem = mixed_problem()
    space = problem.space
    structure = json.dumps(space.to_serialized_dict(), sort_keys=True)
    rng_state = space.random.get_state()[1].tobytes()
    searcher = make_searcher(cls, space, seed=0)
    pairs, events = _drive(searcher, problem, 40)
    _assert_ran(cls, pairs, 40, "on the mixed space")
    _assert_log_conforms(cls, problem.space, events, "on the mixed space")
    assert json.dumps(space.to_serialized_dict(), sort_keys=True) == structure, (
        f"{_label(cls)} changed the space it was given; keep a private copy")
    assert space.random.get_state()[1].tobytes() == rng_state, (
        f"{_label(cls)} sampled from (or reseeded) the user's space object; keep a private copy "
        "(the base class provides self.space)")


@guarded
def check_budgets(cls: type[Searcher]) -> None:
    """Budgets: None for full-budget searchers, else in [min, max], several, max within 150 asks.

    A trial's parent is an earlier, already told trial with the same config and a smaller budget.
    """
    problem = continuous_problem()
    space = problem.space
    searcher = make_searcher(cls, space, seed=0)
    if not cls.multi_fidelity:
        pairs, events = _drive(searcher, problem, 30)
        _assert_ran(cls, pairs, 30, "on the continuous space")
        _assert_log_conforms(cls, problem.space, events, "on the continuous space")
        return
    events: list[_Event] = []
    budgets: set[float] = set()
    for _ in range(150):
        trial = searcher.ask()
        events.append(_Event("ask", trial))
        assert trial is not None, (
            f"{_label(cls)}: ask() gave None with nothing pending after {len(events) // 2} trials")
        result = _result(searcher, trial, problem(trial), trial.budget_or(MAX_BUDGET))
        searcher.tell(trial, result)
        events.append(_Event("tell", trial, result))
        if trial.budget is not None:
            budgets.add(float(trial.budget))
        if len(events) >= 60 and len(budgets) > 1 and \
                any(math.isclose(b, MAX_BUDGET, rel_tol=1e-9) for b in budgets):
            break
    _assert_log_conforms(cls, problem.space, events, "budgets run")
    assert len(budgets) > 1, f"{_label(cls)}: every trial ran at budget {budgets}; no fidelities"
    assert any(math.isclose(b, MAX_BUDGET, rel_tol=1e-9) for b in budgets), (
        f"{_label(cls)}: max_budget={MAX_BUDGET} never asked in 150 trials (budgets: "
        f"{sorted(budgets)})")


@guarded
def check_many_asks_before_tell(cls: type[Searcher]) -> None:
    """Up to 20 asks before any tell (None only while some are pending), shuffled tells, 30 more.

    The 30 run with 4 in flight; every trial stays valid, with unique ids and sound parents.
    """
    problem = mixed_problem()
    space = problem.space
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
        result = _result(searcher, trial, problem(trial), 0.0)
        searcher.tell(trial, result)
        events.append(_Event("tell", trial, result))
    pairs, more = _drive(searcher, problem, 30, in_flight=4)
    _assert_ran(cls, pairs, 30, "after out-of-order tells")
    _assert_log_conforms(cls, problem.space, events + more, "with many asks before a tell")


#: Trials kept running at once in `check_in_flight`: a few, and more than a bracket's rung.
IN_FLIGHT = (3, 12)
#: Trials `check_in_flight` runs per setting of `IN_FLIGHT`.
IN_FLIGHT_TRIALS = 60


@guarded
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
            searcher = make_searcher(cls, problem.space, seed=8)
            pairs, events = _drive(searcher, problem, IN_FLIGHT_TRIALS, fail_every=7,
                                   in_flight=in_flight, tell_order_seed=in_flight,
                                   record_continuable=True)
            _assert_ran(cls, pairs, IN_FLIGHT_TRIALS, what)
            _assert_log_conforms(cls, problem.space, events, what)
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


@guarded
def check_failed_results(cls: type[Searcher]) -> None:
    """Failed results: FAILED and DIVERGED (loss inf) tells, then 40 more valid asks.

    The first 40 trials have every third FAILED and some DIVERGED; 40 all-failing trials must
    neither crash the searcher nor make it stop proposing.
    """
    problem = mixed_problem()
    space = problem.space
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
    _assert_log_conforms(cls, problem.space, events + more, "after failed results")

    doomed = make_searcher(cls, space, seed=6)
    pairs, events = _drive(doomed, problem, 40, fail_every=1)
    _assert_ran(cls, pairs, 40, "when every trial fails")
    _assert_log_conforms(cls, problem.space, events, "when every trial fails")


@guarded
def check_tiny_space(cls: type[Searcher]) -> None:
    """30 trials on one 2-valued categorical end within TINY_TIMEOUT_S with both values tried.

    Repeats are fine, and so is stopping (ask() -> None with nothing pending) once both values
    were proposed; one more ask() after the run must return None or a valid trial.
    """
    problem = tiny_problem()
    space = problem.space
    searcher = make_searcher(cls, space, seed=0)
    pairs, events = _within(TINY_TIMEOUT_S, f"{_label(cls)} on a 2-point space",
                            lambda: _drive(searcher, problem, 30))
    _assert_log_conforms(cls, problem.space, events, "on a 2-point space")
    seen = {t.config["choice"] for t, _ in pairs}
    assert seen == {"a", "b"}, (
        f"{_label(cls)} proposed only {sorted(seen)} in {len(pairs)} trials on a 2-point space")
    extra = _within(TINY_TIMEOUT_S, f"{_label(cls)} asked past a 2-point space", searcher.ask)
    if extra is not None:
        assert_valid_trial(problem.space, extra, f"{_label(cls)} asked past a 2-point space")


@guarded
def check_conditional(cls: type[Searcher]) -> None:
    """Over 60 trials on `mixed_space`, conditional parameters appear exactly when active.

    Both first-level children (`momentum`, `negative_slope`) must appear at least once.
    """
    problem = mixed_problem()
    pairs, _ = _drive(make_searcher(cls, problem.space, seed=11), problem, 60)
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


#: Seeds of `check_beats_random`, each run by the searcher and by random search. Eleven, not
#: five: with five, one seed decided the median, and a searcher that beats random search at
#: p < 0.001 over 40 seeds failed (docs/decisions.md, "The top model starts sooner").
BEATS_RANDOM_SEEDS = tuple(range(11))
#: Full-budget trials per seed in `check_beats_random` (multi-fidelity: this many max_budgets).
BEATS_RANDOM_TRIALS = 60


def _final_regret(cls: type[Searcher], problem: Problem, seed: int) -> float:
    searcher = make_searcher(cls, problem.space, seed=seed)
    if cls.multi_fidelity:
        pairs = run(searcher, problem, total_budget=BEATS_RANDOM_TRIALS * MAX_BUDGET)
    else:
        pairs = run(searcher, problem, BEATS_RANDOM_TRIALS)
    best = incumbent(pairs)
    return math.inf if best is None else problem.regret(best.config)


@guarded
def check_beats_random(cls: type[Searcher]) -> None:
    """Median final regret over 11 seeds on `continuous_problem` is below random search's.

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


@guarded
def check_admissible(cls: type[Searcher]) -> None:
    """A searcher that `filters_proposals` asks new configurations that pass `admissible` (a
    search's size limit) whenever its proposals find one, and still asks when none passes."""
    problem = mixed_problem()
    searcher = make_searcher(cls, problem.space, seed=0)

    def small(config: Any) -> bool:
        return int(config["width"]) <= 64

    fresh = 0
    for _ in range(20):
        trial = searcher.ask(admissible=small)  # type: ignore[call-arg]
        assert trial is not None, f"{_label(cls)} asked nothing with a filter"
        assert_valid_trial(problem.space, trial, f"{_label(cls)} with a filter")
        if trial.parent is None:
            fresh += 1
            assert small(trial.config), (
                f"{_label(cls)} asked width={trial.config['width']} although the filter "
                "admits only width <= 64 (a third of the space's log-scaled widths pass)")
        budget = trial.budget if trial.budget is not None else problem.max_budget
        searcher.tell(trial, _result(searcher, trial, problem.loss(trial.config, budget), 0.0))
    assert fresh, f"{_label(cls)} proposed no new configuration in 20 asks"
    trial = searcher.ask(admissible=lambda config: False)  # type: ignore[call-arg]
    assert trial is not None, f"{_label(cls)} asked nothing when no proposal passed"


def _filters(cls: type[Searcher]) -> bool:
    return bool(cls.filters_proposals)


def _always(cls: type[Searcher]) -> bool:
    return True


def _model_based(cls: type[Searcher]) -> bool:
    return bool(cls.model_based) and not _multi_objective(cls)


def _multi_objective(cls: type[Searcher]) -> bool:
    return bool(getattr(cls, "multi_objective", False))


def _model_based_multi_objective(cls: type[Searcher]) -> bool:
    return bool(cls.model_based) and _multi_objective(cls)


# Every check with when it applies, in the order they run and report: what each ask must
# satisfy first, the slow comparison with random search last.
_CHECKS: tuple[tuple[Check, Callable[[type[Searcher]], bool]], ...] = (
    (check_valid_configs, _always),
    (check_budgets, _always),
    (check_deterministic, _always),
    (check_seeds_differ, _always),
    (check_global_rng_untouched, _always),
    (check_many_asks_before_tell, _always),
    (check_in_flight, _always),
    (check_failed_results, _always),
    (check_tiny_space, _always),
    (check_conditional, _always),
    (check_replay, _always),
    (check_options_roundtrip, _always),
    (check_enqueue, _always),
    (check_imports, _always),
    (check_space_change, _always),
    (check_admissible, _filters),
    (check_front, _multi_objective),
    (check_beats_random, _model_based),
    (check_mo_beats_random, _model_based_multi_objective),
)


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

    Decorate ``def test_x(cls, check): check(cls)``; pytest is imported only here. The checks
    of a class with `costly_asks` are marked ``slow``.
    """
    import pytest

    params = [pytest.param(cls, check, id=f"{_label(cls)}-{check.__name__}",
                           marks=[pytest.mark.slow] if cls.costly_asks else [])
              for cls in classes for check in all_checks(cls)]
    return pytest.mark.parametrize(("cls", "check"), params)
