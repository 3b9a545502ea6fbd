"""The Optuna baselines (`optuna-tpe`, `optuna-tpe-hyperband`; extra `compare`).

The conformance suite runs them too (test_conformance.py); these check what is theirs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from ConfigSpace import (  # noqa: E402
    Categorical,
    ConfigurationSpace,
    EqualsCondition,
    Float,
    ForbiddenAndConjunction,
    ForbiddenEqualsClause,
    Integer,
    OrConjunction,
)
from optuna.trial import TrialState  # noqa: E402

import nas  # noqa: E402
import searchers  # noqa: E402
from nas import testing  # noqa: E402
from nas.errors import UserError  # noqa: E402
from nas.problems import get as get_problem  # noqa: E402
from nas.types import Result, Trial, TrialStatus  # noqa: E402
from searchers import optuna_adapters, registry  # noqa: E402
from searchers.optuna_adapters import OptunaTPE, OptunaTPEHyperband  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = [OptunaTPE, OptunaTPEHyperband]


def _make(cls: type, space: ConfigurationSpace, seed: int = 0, **options) -> searchers.Searcher:
    return testing.make_searcher(cls, space, seed=seed, **options)


def _forbidding_space() -> ConfigurationSpace:
    """Half of the (a, b) grid is forbidden, and the best allowed point sits next to it."""
    space = ConfigurationSpace(name="forbidding")
    space.add([Categorical("a", ["p", "q", "r", "s"]),
               Categorical("b", ["p", "q", "r", "s"], default="r"), Float("x", (0.0, 1.0))])
    for a, b in [("p", "p"), ("p", "q"), ("q", "p"), ("q", "q"), ("r", "r"), ("r", "s"),
                 ("s", "r"), ("s", "s")]:
        space.add(ForbiddenAndConjunction(ForbiddenEqualsClause(space["a"], a),
                                          ForbiddenEqualsClause(space["b"], b)))
    return space


def _forbidding_loss(trial: Trial) -> float:
    c = trial.config
    # Best at (p, r) or (q, s): each one step from a forbidden cell, so a model keeps probing.
    return (0.0 if (c["a"], c["b"]) in {("p", "r"), ("q", "s")} else 1.0) + (c["x"] - 0.3) ** 2


# -- registry ----------------------------------------------------------------------------------


def test_listed_when_installed_and_built_by_name() -> None:
    assert {"optuna-tpe", "optuna-tpe-hyperband"} <= set(searchers.available())
    assert searchers.get_class("optuna-tpe") is OptunaTPE
    assert searchers.get_class("optuna-tpe-hyperband") is OptunaTPEHyperband
    built = searchers.get("optuna-tpe-hyperband", testing.continuous_space(), seed=1,
                          min_budget=1, max_budget=27)
    assert (built.name, built.multi_fidelity, built.model_based) == (
        "optuna-tpe-hyperband", True, True)
    assert not OptunaTPE.multi_fidelity and OptunaTPE.model_based


def test_importing_searchers_does_not_import_optuna() -> None:
    code = ("import sys, searchers; names = searchers.available(); "
            "assert 'optuna' not in sys.modules, 'optuna imported'; "
            "assert 'optuna-tpe' in names, names")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


@pytest.mark.parametrize("name", ["optuna-tpe", "optuna-tpe-hyperband"])
def test_missing_dependency_is_a_one_line_user_error(monkeypatch, name: str) -> None:
    entry = registry._LAZY[name]
    monkeypatch.setitem(registry._LAZY, name,
                        dataclasses.replace(entry, requires="nas_no_such_module_for_tests"))
    assert name not in searchers.available()
    expected = f"searcher {name!r} needs nas_no_such_module_for_tests: " \
               "pip install 'nas-engine[compare]'"
    for call in (lambda: searchers.get_class(name),
                 lambda: searchers.get(name, testing.continuous_space(), min_budget=1,
                                       max_budget=9)):
        with pytest.raises(UserError) as info:
            call()
        assert str(info.value) == expected
        assert "\n" not in str(info.value)


def test_lazy_entries_point_at_the_adapters() -> None:
    entry = registry._LAZY["optuna-tpe"]
    assert (entry.requires, entry.extra) == ("optuna", "compare")
    assert entry.target == "searchers.optuna_adapters:OptunaTPE"


def test_bad_options_are_user_errors() -> None:
    space = testing.continuous_space()
    with pytest.raises(UserError, match="eta"):
        searchers.get("optuna-tpe-hyperband", space, min_budget=1, max_budget=9, eta=2.5)
    with pytest.raises(UserError, match="multivariate"):
        searchers.get("optuna-tpe", space, multivariate=False, group=True)
    with pytest.raises(UserError, match="n_startup_trials"):
        searchers.get("optuna-tpe", space, n_startup_trials=-1)


# -- search quality ----------------------------------------------------------------------------


def _median_regret(searcher: str, budget, seeds=range(5), **budgets) -> float:
    problem = get_problem("mf-branin")
    regrets = []
    for seed in seeds:
        result = nas.optimize(problem.evaluate, problem.space, searcher, budget, seed=seed,
                              storage=":memory:", **budgets)
        regrets.append(problem.regret(result.best_config))
    return statistics.median(regrets)


def test_optuna_tpe_beats_random_on_mf_branin() -> None:
    full = {"max_budget": 81}
    assert _median_regret("optuna-tpe", "40trials", **full) < \
        _median_regret("random", "40trials", **full)


def test_optuna_tpe_hyperband_beats_random_on_mf_branin() -> None:
    # Equal spend: 30 full-budget trials' worth of budget units for both.
    assert _median_regret("optuna-tpe-hyperband", 30 * 81, min_budget=1, max_budget=81) < \
        _median_regret("random", "30trials", max_budget=81)


# -- the space: conditions, types, forbidden clauses ---------------------------------------------


@pytest.mark.parametrize("cls", ADAPTERS)
def test_conditional_parameters_are_suggested_only_when_active(cls) -> None:
    problem = testing.mixed_problem()
    searcher = _make(cls, problem.space, seed=2)
    pairs = testing.run(searcher, problem, 60, in_flight=2)
    told = {t.info["optuna_trial"]: t for t, _ in pairs}
    by_number = {ot.number: ot for ot in searcher.study.trials}
    for number, trial in told.items():
        params = by_number[number].params
        active = set(trial.config) - {"arch"}  # the Constant is never suggested
        assert set(params) == active, (trial.config, params)
    configs = [t.config for t, _ in pairs]
    assert any("nesterov" in c for c in configs)  # a grandchild became active
    assert any("momentum" in c and "nesterov" not in c for c in configs)


def test_choices_keep_their_types() -> None:
    space = ConfigurationSpace(name="typed")
    space.add([Categorical("flag", [True, False]), Categorical("mixed", [1, 2.5, "x", False]),
               Integer("n", (1, 64), log=True), Float("lr", (1e-4, 1.0), log=True)])
    space.add(EqualsCondition(space["lr"], space["flag"], True))
    searcher = OptunaTPE(space, seed=0, n_startup_trials=3)
    pairs = testing.run(searcher, lambda t: float(t.config["n"]), 12)
    for trial, _ in pairs:
        testing.assert_valid_trial(space, trial)
    assert searcher.codec.by_value == {"flag": True, "mixed": True}


def test_other_choices_are_suggested_by_index() -> None:
    space = ConfigurationSpace(name="odd")
    space.add([Categorical("norm", [None, "batch", "layer"]), Float("x", (0.0, 1.0))])
    searcher = OptunaTPE(space, seed=0, n_startup_trials=3)
    pairs = testing.run(searcher, lambda t: t.config["x"], 15)
    assert not searcher.codec.by_value["norm"]
    assert {t.config["norm"] for t, _ in pairs} == {None, "batch", "layer"}
    for trial, _ in pairs:
        ot = searcher.study.trials[trial.info["optuna_trial"]]
        assert ot.params["norm"] == [None, "batch", "layer"].index(trial.config["norm"])


def test_or_conditions_follow_their_parents() -> None:
    space = ConfigurationSpace(name="or")
    space.add([Categorical("a", ["u", "v", "w"]), Categorical("b", ["u", "v"]),
               Float("child", (0.0, 1.0))])
    space.add(OrConjunction(EqualsCondition(space["child"], space["a"], "u"),
                            EqualsCondition(space["child"], space["b"], "v")))
    pairs = testing.run(OptunaTPE(space, seed=1, n_startup_trials=5), lambda t: 0.0, 30)
    for trial, _ in pairs:
        c = trial.config
        assert ("child" in c) == (c["a"] == "u" or c["b"] == "v"), c


@pytest.mark.parametrize("cls", ADAPTERS)
def test_forbidden_configurations_never_come_out(cls) -> None:
    space = _forbidding_space()
    searcher = _make(cls, space, seed=0, n_startup_trials=5)
    pairs = testing.run(searcher, _forbidding_loss, 80, in_flight=3)
    for trial, _ in pairs:
        testing.assert_valid_trial(space, trial)
    # Forbidden draws happened, and went back to Optuna as PRUNED trials without a value.
    rejected = [ot for ot in searcher.study.trials
                if ot.state is TrialState.PRUNED and not ot.intermediate_values]
    assert rejected
    assert sum(t.info.get("rejected", 0) for t, _ in pairs) == len(rejected)


def test_fallback_after_too_many_forbidden_draws(monkeypatch) -> None:
    monkeypatch.setattr(optuna_adapters, "MAX_REJECTED", 0)
    space = _forbidding_space()
    searcher = OptunaTPE(space, seed=0, n_startup_trials=2)
    pairs = testing.run(searcher, _forbidding_loss, 10)
    by_number = {ot.number: ot for ot in searcher.study.trials}
    for trial, result in pairs:
        testing.assert_valid_trial(space, trial)
        assert trial.info["origin"] == "fallback"
        ot = by_number[trial.info["optuna_trial"]]
        # The Optuna trial took the fallback configuration, so TPE learns from it.
        assert ot.params == dict(trial.config) and ot.value == result.loss


# -- the Hyperband variant -----------------------------------------------------------------------


def test_hyperband_rungs_and_steps() -> None:
    searcher = OptunaTPEHyperband(testing.continuous_space(), min_budget=1, max_budget=81)
    assert searcher.budgets == pytest.approx((1, 3, 9, 27, 81))
    assert searcher.steps == (1, 3, 9, 27, 81)
    odd = OptunaTPEHyperband(testing.continuous_space(), min_budget=2, max_budget=100, eta=2)
    assert odd.budgets[-1] == 100 and odd.budgets[0] >= 2
    assert odd.steps == tuple(2**k for k in range(len(odd.budgets)))


def test_hyperband_prunes_and_continues() -> None:
    problem = testing.continuous_problem()
    searcher = _make(OptunaTPEHyperband, problem.space, seed=0)
    told: set[int] = set()
    asked: dict[int, Trial] = {}
    pending: list[Trial] = []
    for _ in range(300):  # 3 in flight, told oldest first
        if len(pending) == 3:
            trial = pending.pop(0)
            searcher.tell(trial, Result(loss=problem(trial)))
            told.add(trial.id)
            assert searcher.continuable() <= told
        trial = searcher.ask()
        assert trial is not None
        if trial.parent is not None:
            parent = asked[trial.parent]
            assert trial.parent in told
            assert dict(parent.config) == dict(trial.config)
            k = parent.info["rung"]
            assert (trial.info["rung"], trial.budget) == (k + 1, searcher.budgets[k + 1])
            assert trial.info["optuna_trial"] == parent.info["optuna_trial"]
        else:
            assert trial.budget == searcher.budgets[0]
        asked[trial.id] = trial
        pending.append(trial)
    states = [ot.state for ot in searcher.study.trials if ot.intermediate_values]
    pruned = states.count(TrialState.PRUNED)
    complete = states.count(TrialState.COMPLETE)
    assert pruned > complete > 0  # most Optuna trials never reach max_budget
    assert any(t.parent is not None for t in asked.values())
    top = [t for t in asked.values() if t.budget == searcher.budgets[-1]]
    assert all(t.parent is not None for t in top)  # max_budget is only reached by climbing
    # Optuna's value of a finished trial is the loss told at max_budget.
    finished = [ot for ot in searcher.study.trials if ot.state is TrialState.COMPLETE]
    assert all(max(ot.intermediate_values) == searcher.steps[-1] for ot in finished)


def test_hyperband_failed_trial_is_not_continued() -> None:
    searcher = OptunaTPEHyperband(testing.continuous_space(), min_budget=1, max_budget=9,
                                  seed=0)
    first = searcher.ask()
    searcher.tell(first, Result.failure(TrialStatus.FAILED, "boom"))
    assert searcher.continuable() == set()
    second = searcher.ask()
    assert second.parent is None and second.info["optuna_trial"] != first.info["optuna_trial"]
    assert searcher.study.trials[first.info["optuna_trial"]].state is TrialState.FAIL


# -- determinism and the journal -----------------------------------------------------------------


def _asks(cls: type, seed: int) -> list[dict]:
    problem = testing.mixed_problem()
    pairs = testing.run(_make(cls, problem.space, seed=seed), problem, 30, in_flight=3,
                        fail_every=5, tell_order_seed=1)
    return [t.to_dict() for t, _ in pairs]


@pytest.mark.parametrize("cls", ADAPTERS)
def test_same_seed_same_asks(cls) -> None:
    assert _asks(cls, 3) == _asks(cls, 3)
    assert _asks(cls, 3) != _asks(cls, 4)


def test_same_asks_whatever_the_hash_seed() -> None:
    """A resume runs in a new process: str hashing (set order) must not change the asks."""
    code = ("import json; from nas import testing; import searchers; "
            "p = testing.mixed_problem(); out = []\n"
            "for name in ('optuna-tpe', 'optuna-tpe-hyperband'):\n"
            "    s = testing.make_searcher(searchers.get_class(name), p.space, seed=5)\n"
            "    out.append([t.to_dict() for t, _ in testing.run(s, p, 25, in_flight=3)])\n"
            "print(json.dumps(out))")
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("cls", ADAPTERS)
def test_options_rebuild_the_searcher(cls) -> None:
    searcher = _make(cls, testing.continuous_space(), seed=9, n_startup_trials=4,
                     constant_liar=False)
    stored = json.loads(json.dumps(searcher.options))
    assert stored["n_startup_trials"] == 4 and stored["constant_liar"] is False
    rebuilt = cls(testing.continuous_space(), seed=9, **stored)
    assert rebuilt.options == searcher.options
    assert rebuilt.sampler_seed == searcher.sampler_seed


# -- quiet -------------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_optuna_logs_nothing_and_its_level_is_restored(recwarn) -> None:
    logger = logging.getLogger("optuna")
    level = logger.level
    handler = _Records()
    logger.addHandler(handler)
    try:
        problem = testing.mixed_problem()
        for cls in ADAPTERS:
            testing.run(_make(cls, problem.space, seed=0), problem, 20, fail_every=4)
    finally:
        logger.removeHandler(handler)
    assert handler.records == []
    assert logger.level == level
    assert not [w for w in recwarn if issubclass(w.category, optuna.exceptions.OptunaWarning)]


def test_optuna_verbosity_is_left_alone() -> None:
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.DEBUG)
    try:
        searcher = OptunaTPE(testing.continuous_space(), seed=0)
        trial = searcher.ask()
        searcher.tell(trial, Result(loss=1.0))
        assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
    finally:
        optuna.logging.set_verbosity(before)


def test_failed_results_are_failed_optuna_trials() -> None:
    searcher = OptunaTPE(testing.continuous_space(), seed=0)
    trials = [searcher.ask() for _ in range(3)]
    searcher.tell(trials[0], Result(loss=0.5))
    searcher.tell(trials[1], Result.failure(TrialStatus.DIVERGED, "nan"))
    searcher.tell(trials[2], Result(loss=math.inf, status=TrialStatus.OK))
    states = [searcher.study.trials[t.info["optuna_trial"]].state for t in trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL]
    searcher.tell(trials[0], Result(loss=0.1))  # told twice: ignored by Optuna, no error
    assert searcher.study.trials[trials[0].info["optuna_trial"]].value == 0.5
