"""The peer libraries added for `nas bench`: `optuna-gp` (Optuna's GPSampler) and `dehb` (DEHB).

Each runs the shipped conformance suite; the rest checks what is theirs: DEHB's budgets, its
failures, forbidden clauses, the files and logging it must not leave behind, the GP's seeds, and
`nas bench` with both, versions recorded. DEHB is installed without its dependencies (it pins
numpy<2); with NAS_REQUIRE_DEHB=1 (CI) its tests fail instead of skipping when it is missing.
"""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from ConfigSpace import (  # noqa: E402
    Categorical,
    ConfigurationSpace,
    Float,
    ForbiddenAndConjunction,
    ForbiddenEqualsClause,
)

import searchers  # noqa: E402
from nas import testing  # noqa: E402
from nas.bench import bench, library_versions  # noqa: E402
from nas.errors import UserError  # noqa: E402
from nas.testing import parametrize_with_checks  # noqa: E402
from nas.types import Result, TrialStatus  # noqa: E402
from searchers import Searcher  # noqa: E402
from searchers.optuna_gp import OptunaGP  # noqa: E402
from tests.helpers import unavailable_message  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
HAVE_DEHB = importlib.util.find_spec("dehb") is not None
REQUIRE_DEHB = os.environ.get("NAS_REQUIRE_DEHB") == "1"
needs_dehb = pytest.mark.skipif(not HAVE_DEHB and not REQUIRE_DEHB,
                                reason='pip install --no-deps "dehb==0.1.2" loguru')


def _dehb() -> type[Searcher]:
    return searchers.get_class("dehb")


# -- conformance ---------------------------------------------------------------------------------


@needs_dehb
@parametrize_with_checks([searchers.get_class("dehb")] if HAVE_DEHB else [])
def test_dehb_conformance(cls: type[Searcher], check: Callable[[type[Searcher]], None]) -> None:
    check(cls)


def test_optuna_gp_checks_are_slow_with_a_longer_watchdog() -> None:
    # tests/searchers/test_conformance.py runs them (with -m slow): about a second an ask.
    mark = parametrize_with_checks([OptunaGP]).mark
    assert all(any(m.name == "slow" for m in p.marks) for p in mark.args[1])
    assert OptunaGP.costly_asks and not searchers.get_class("tpe").costly_asks


def test_dehb_is_installed_where_required() -> None:
    assert HAVE_DEHB or not REQUIRE_DEHB, (
        'NAS_REQUIRE_DEHB=1 but dehb is missing: pip install --no-deps "dehb==0.1.2" loguru')


# -- registry ------------------------------------------------------------------------------------


def test_listed_lazily_and_only_when_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "optuna-gp" in searchers.available()
    assert ("dehb" in searchers.available()) == HAVE_DEHB
    assert searchers.get_class("optuna-gp") is OptunaGP
    assert OptunaGP.model_based and not OptunaGP.multi_fidelity
    code = ("import sys, searchers; searchers.available(); "
            "assert not {'dehb', 'optuna', 'loguru'} & set(sys.modules), 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)
    # No extra can install it (it pins numpy<2): the message gives the command that does.
    assert unavailable_message(monkeypatch, "dehb") == (
        "searcher 'dehb' needs nas_no_such_module: pip install --no-deps \"dehb==0.1.2\" loguru")


# -- optuna-gp -----------------------------------------------------------------------------------


def _gp_asks(seed: int, n: int = 8) -> list[dict]:
    problem = testing.continuous_problem()
    searcher = OptunaGP(problem.space, seed=seed, n_startup_trials=4)
    return [t.to_dict() for t, _ in testing.run(searcher, problem, n)]


def test_optuna_gp_asks_follow_the_seed() -> None:
    first = _gp_asks(3)
    assert first == _gp_asks(3)
    other = _gp_asks(4)
    assert [t["config"] for t in first[:4]] != [t["config"] for t in other[:4]]  # startup
    assert [t["config"] for t in first[4:]] != [t["config"] for t in other[4:]]  # the GP's


def test_optuna_gp_is_a_gp_sampler_seeded_from_its_generator() -> None:
    space = testing.continuous_space()
    a, b = OptunaGP(space, seed=1), OptunaGP(space, seed=2)
    assert isinstance(a.study.sampler, optuna.samplers.GPSampler)
    assert a.sampler_seed == OptunaGP(space, seed=1).sampler_seed != b.sampler_seed
    assert a.options == {"n_startup_trials": 10, "deterministic_objective": False}
    with pytest.raises(UserError, match="n_startup_trials"):
        searchers.get("optuna-gp", space, n_startup_trials=-1)


def _forbidding_space() -> ConfigurationSpace:
    """Half of the (a, b) grid is forbidden."""
    space = ConfigurationSpace(name="forbidding")
    space.add([Categorical("a", ["p", "q"]), Categorical("b", ["p", "q"], default="q"),
               Float("x", (0.0, 1.0))])
    for a in ("p", "q"):
        space.add(ForbiddenAndConjunction(ForbiddenEqualsClause(space["a"], a),
                                          ForbiddenEqualsClause(space["b"], a)))
    return space


def test_optuna_gp_tells_forbidden_draws_as_the_worst_loss() -> None:
    space = _forbidding_space()
    searcher = OptunaGP(space, seed=0, n_startup_trials=3)
    pairs = testing.run(searcher, lambda t: (t.config["x"] - 0.3) ** 2, 10, fail_every=4)
    for trial, _ in pairs:
        testing.assert_valid_trial(space, trial)
    trials = searcher.study.trials
    assert [ot.state for ot in trials].count(optuna.trial.TrialState.FAIL) == 2
    forbidden = [ot for ot in trials if ot.user_attrs.get("forbidden")]
    assert forbidden  # half the grid is forbidden: some draws land there
    for ot in forbidden:  # told as the worst loss of the trials finished before it
        earlier = [t.value for t in trials[:ot.number]
                   if t.state.name == "COMPLETE" and not t.user_attrs.get("forbidden")]
        assert ot.value == max(earlier)
    # Seen by the GP, they keep it from drawing the same forbidden spot over and over.
    assert sum(t.info.get("rejected", 0) for t, _ in pairs) < 2 * len(pairs)


# -- dehb ----------------------------------------------------------------------------------------


@needs_dehb
@pytest.mark.parametrize(("low", "high", "eta"), [(1, 27, 3), (1, 243, 3), (2, 100, 2),
                                                  (0.5, 10, 3)])
def test_dehb_budgets_lie_on_its_fidelity_grid(low: float, high: float, eta: float) -> None:
    problem = testing.continuous_problem()
    searcher = _dehb()(problem.space, seed=0, min_budget=low, max_budget=high, eta=eta)
    grid = [float(f) for f in searcher.dehb.fidelities]
    assert low <= searcher.budgets[0] and searcher.budgets[-1] == high
    # As many rungs as our Hyperband has: DEHB alone loses one at 1..243 (float rounding).
    assert len(grid) == len(searchers.hyperband_layout(low, high, eta)[0].rungs)
    seen: set[float] = set()
    while seen != set(searcher.budgets):  # the first bracket climbs every rung
        assert len(searcher.history) < 400, sorted(seen)
        trial = searcher.ask()
        assert trial.parent is None  # DEHB never continues a trial
        assert low <= trial.budget <= high
        assert math.isclose(trial.budget, grid[trial.info["rung"]], rel_tol=1e-9)
        seen.add(trial.budget)
        searcher.tell(trial, Result(loss=problem(trial), seconds=0.1))
    assert searcher.continuable() == set()


@needs_dehb
def test_dehb_failed_trials_are_the_worst_fitness() -> None:
    from searchers import dehb_adapter

    problem = testing.continuous_problem()
    searcher = _dehb()(problem.space, seed=0, min_budget=1, max_budget=9)
    first = [searcher.ask() for _ in range(9)]  # the first bracket's lowest rung
    assert {t.budget for t in first} == {1.0}
    for trial in first:  # the whole rung fails: DEHB must still promote and go on
        status = TrialStatus.DIVERGED if trial.id % 2 else TrialStatus.FAILED
        searcher.tell(trial, Result.failure(status, "boom"))
    assert {row[2] for row in searcher.dehb.history} == {dehb_adapter.FAILED_FITNESS}
    assert math.isfinite(dehb_adapter.FAILED_FITNESS)
    pairs = testing.run(searcher, problem, 40, fail_every=3)
    assert {t.budget for t, _ in pairs} > {1.0}
    searcher.tell(first[0], Result(loss=0.0))  # told twice: ignored
    assert len(searcher.dehb.history) == 9 + 40


@needs_dehb
def test_dehb_never_asks_a_forbidden_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    from searchers import dehb_adapter

    problem = testing.mixed_problem()
    searcher = _dehb()(problem.space, seed=1, min_budget=1, max_budget=9)
    pairs = testing.run(searcher, problem, 150, in_flight=3)
    for trial, _ in pairs:
        testing.assert_valid_trial(problem.space, trial)
    # DE's mutants do break forbidden clauses: they were drawn again, never asked.
    assert sum(t.info.get("rejected", 0) for t, _ in pairs) > 0
    monkeypatch.setattr(dehb_adapter, "MAX_REJECTED", 0)  # a forbidden mutant: a sample now
    fallback = testing.run(_dehb()(problem.space, seed=1, min_budget=1, max_budget=9),
                           problem, 60)
    for trial, _ in fallback:
        testing.assert_valid_trial(problem.space, trial)
    assert any(t.info["origin"] == "fallback" for t, _ in fallback)


@needs_dehb
def test_dehb_writes_no_file_and_leaves_loguru_alone(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from loguru import logger

    work, temp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    messages: list[str] = []
    sink = logger.add(messages.append, level="TRACE", format="{message}")
    try:
        problem = testing.mixed_problem()
        searcher = _dehb()(problem.space, seed=0, min_budget=1, max_budget=27)
        testing.run(searcher, problem, 120, fail_every=5)  # new incumbents: DEHB would save
        logger.info("still mine")
    finally:
        logger.remove(sink)
    # DEHB logged nothing, and kept the user's handlers (its own set-up replaces them).
    assert messages == ["still mine\n"]
    assert list(work.iterdir()) == [] and list(temp.iterdir()) == []


@needs_dehb
def test_dehb_copies_and_pickles_ask_alike() -> None:
    problem = testing.mixed_problem()
    searcher = _dehb()(problem.space, seed=2, min_budget=1, max_budget=27)
    testing.run(searcher, problem, 30, fail_every=4)
    # DEHB's __getstate__ drops its logger; a copy must still ask (and log nothing).
    copies = [copy.deepcopy(searcher), pickle.loads(pickle.dumps(searcher))]
    runs = [[t.to_dict() for t, _ in testing.run(s, problem, 40)] for s in [searcher, *copies]]
    assert runs[0] == runs[1] == runs[2]
    copies[0].dehb.logger.warning("dropped")


@needs_dehb
def test_dehb_seed_and_options() -> None:
    space = testing.continuous_space()
    cls = _dehb()
    a, b = (cls(space, seed=s, min_budget=1, max_budget=27) for s in (5, 6))
    assert a.dehb_seed == cls(space, seed=5, min_budget=1, max_budget=27).dehb_seed
    assert a.dehb_seed != b.dehb_seed
    assert a.options == {"min_budget": 1.0, "max_budget": 27.0, "eta": 3.0,
                         "mutation_factor": 0.5, "crossover_prob": 0.5,
                         "strategy": "rand1_bin"}
    for bad in ({"min_budget": 9, "max_budget": 9}, {"eta": 1.5}, {"strategy": "nope_bin"},
                {"crossover_prob": 2.0}, {"mutation_factor": 0.0}):
        with pytest.raises(UserError, match="bad options for searcher 'dehb'"):
            searchers.get("dehb", space, **{"min_budget": 1, "max_budget": 27, **bad})


# -- nas bench -----------------------------------------------------------------------------------


@needs_dehb
def test_bench_runs_the_peers_and_records_their_versions(tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = bench(["mf-branin"], ["random", "dehb", "optuna-gp"], seeds=1, budget="2x",
                   out=out)
    assert result.ran == 3
    expected = {"dehb": f"dehb {importlib.metadata.version('dehb')}",
                "optuna-gp": f"optuna {importlib.metadata.version('optuna')}"}
    assert result.versions == expected
    rows = json.loads((out / "results.json").read_text())
    assert {r["searcher"]: r["library"] for r in rows} == {"random": None, **expected}
    assert f"dehb: {expected['dehb']}" in result.summary
    assert min(r["budget"] for r in rows if r["searcher"] == "dehb") < 81.0  # fidelities
    assert {r["budget"] for r in rows if r["searcher"] == "optuna-gp"} == {81.0}


def test_bench_records_the_optuna_version_for_every_optuna_peer() -> None:
    versions = library_versions(["random", "optuna-tpe", "optuna-tpe-hyperband", "optuna-gp"])
    assert set(versions) == {"optuna-tpe", "optuna-tpe-hyperband", "optuna-gp"}
    assert set(versions.values()) == {f"optuna {optuna.__version__}"}
