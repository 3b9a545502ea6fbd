"""`optuna-motpe`: Optuna's multi-objective TPE through the ask/tell contract (extra `compare`).

The conformance suite runs it too (tests/searchers/test_conformance.py, one objective)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from optuna.trial import TrialState  # noqa: E402

import nas  # noqa: E402
import searchers  # noqa: E402
from nas import testing  # noqa: E402
from nas.dominance import hypervolume  # noqa: E402
from nas.errors import UserError  # noqa: E402
from nas.problems import get as get_problem  # noqa: E402
from nas.types import Result, TrialStatus  # noqa: E402
from searchers import registry  # noqa: E402
from searchers.optuna_mo import OptunaMOTPE  # noqa: E402


def _two(trial_config: dict) -> tuple[float, float]:
    x = trial_config["x"]
    return (x**2, (x - 1.0) ** 2)


def test_registered_lazily_as_a_multi_objective_optuna_peer() -> None:
    entry = registry._LAZY["optuna-motpe"]
    assert (entry.requires, entry.extra) == ("optuna", "compare")
    assert searchers.get_class("optuna-motpe") is OptunaMOTPE
    assert OptunaMOTPE.multi_objective and not OptunaMOTPE.multi_fidelity
    assert OptunaMOTPE.library == "optuna" and OptunaMOTPE.model_based
    built = searchers.get("optuna-motpe", testing.continuous_space(), seed=3, n_objectives=3)
    assert built.study.directions == [optuna.study.StudyDirection.MINIMIZE] * 3
    assert isinstance(built.study.sampler, optuna.samplers.TPESampler)
    assert built.options["n_objectives"] == 3
    assert "n_objectives" in OptunaMOTPE(testing.continuous_space()).options


def test_missing_optuna_is_a_one_line_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = registry._LAZY["optuna-motpe"]
    monkeypatch.setitem(registry._LAZY, "optuna-motpe",
                        dataclasses.replace(entry, requires="nas_no_such_module_for_tests"))
    with pytest.raises(UserError) as info:
        searchers.get_class("optuna-motpe")
    assert str(info.value) == ("searcher 'optuna-motpe' needs nas_no_such_module_for_tests: "
                               "pip install 'nas-engine[compare]'")


def test_bad_n_objectives_is_a_user_error() -> None:
    for bad in (0, 1.5, True):
        with pytest.raises(UserError, match="n_objectives"):
            searchers.get("optuna-motpe", testing.continuous_space(), n_objectives=bad)


def test_ask_tell_gives_optuna_every_objective_value_and_failures() -> None:
    searcher = OptunaMOTPE(testing.continuous_space(), seed=0, n_objectives=2)
    asked = [searcher.ask() for _ in range(3)]
    assert all(t is not None and t.budget is None for t in asked)  # full budget
    first, second, third = asked
    searcher.tell(first, Result(loss=0.5, objectives=(0.5, 2.0)))
    searcher.tell(second, Result.failure(TrialStatus.FAILED, "boom"))
    with pytest.raises(ValueError, match="3 objective values"):
        searcher.tell(third, Result(loss=0.1, objectives=(0.1, 0.2, 0.3)))
    trials = searcher.study.get_trials(deepcopy=False)
    assert trials[0].state is TrialState.COMPLETE and trials[0].values == [0.5, 2.0]
    assert trials[1].state is TrialState.FAIL
    searcher.tell(third, Result(loss=0.1, objectives=(0.1, 0.2)))
    assert searcher.study.get_trials(deepcopy=False)[2].values == [0.1, 0.2]


def test_same_seed_same_asks() -> None:
    def run(seed: int) -> list[dict]:
        searcher = OptunaMOTPE(testing.continuous_space(), seed=seed, n_objectives=2,
                               n_startup_trials=3)
        configs = []
        for _ in range(8):
            trial = searcher.ask()
            assert trial is not None
            configs.append(dict(trial.config))
            values = _two(trial.config)
            searcher.tell(trial, Result(loss=values[0], objectives=values))
        return configs

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_optimize_with_objectives_reaches_the_zdt1_front() -> None:
    problem = get_problem("zdt1-mf")
    result = nas.optimize(problem.evaluate, problem.space, "optuna-motpe",
                          40 * problem.max_budget, min_budget=problem.min_budget,
                          max_budget=problem.max_budget, seed=0, storage=":memory:",
                          objectives=problem.objectives)
    values = np.array([r.result.objectives for r in result.trials
                       if r.result is not None and r.result.objectives is not None])
    assert len(values) == 40
    # 40 trials of MOTPE beat the hypervolume of 40 random configurations.
    space = problem.space
    space.seed(0)
    randoms = np.array([problem.evaluate(dict(c), 81.0)
                        for c in space.sample_configuration(40)])
    ours = hypervolume(values, problem.reference_point)
    assert ours > hypervolume(randoms, problem.reference_point)
    assert math.isfinite(ours) and ours <= problem.optimum_hypervolume
