"""`smac-hyperband`: SMAC3's multi-fidelity facade as a peer searcher (extra `compare`).

It runs the shipped conformance suite (its beats-random check, minutes of forest refits, runs in
tests/searchers/test_conformance.py with -m slow); the rest checks what is SMAC's: Hyperband's
ladder, failures, the files and logging it must not leave behind, a replay in another process,
and `nas bench` with its version recorded. SMAC is in the `test` extra; without it this skips.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

smac = pytest.importorskip("smac")

from ConfigSpace import ConfigurationSpace  # noqa: E402
from smac.runhistory.enumerations import StatusType  # noqa: E402

import searchers  # noqa: E402
from nas import testing  # noqa: E402
from nas.bench import bench  # noqa: E402
from nas.errors import UserError  # noqa: E402
from nas.types import Result, Trial, TrialStatus  # noqa: E402
from searchers import Searcher  # noqa: E402
from searchers.smac_adapter import SMACHyperband  # noqa: E402
from tests.helpers import unavailable_message  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
INSTALL = 'pip install "smac>=2.4"'


def _line() -> ConfigurationSpace:
    """One float: SMAC's random initial design is 10 configurations, so its forest comes soon."""
    return ConfigurationSpace(name="line", space={"x": (0.0, 1.0)})


def _parabola(trial: Trial) -> float:
    return (trial.config["x"] - 0.3) ** 2 + 1 / trial.budget_or(9.0)


# -- conformance ---------------------------------------------------------------------------------

# `costly_asks` marks them all slow in `parametrize_with_checks`; all but the comparison with
# random search take a second or two, so they run here by default.
CHEAP = [c for c in testing.all_checks(SMACHyperband) if c is not testing.check_beats_random]


@pytest.mark.parametrize("check", CHEAP, ids=lambda c: c.__name__)
def test_conformance(check: Callable[[type[Searcher]], None]) -> None:
    check(SMACHyperband)


def test_its_full_suite_is_slow() -> None:
    mark = testing.parametrize_with_checks([SMACHyperband]).mark
    assert [p.values[1] for p in mark.args[1]] == [*CHEAP, testing.check_beats_random]
    assert all(any(m.name == "slow" for m in p.marks) for p in mark.args[1])


# -- registry ------------------------------------------------------------------------------------


def test_listed_lazily_and_only_when_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "smac-hyperband" in searchers.available()
    assert searchers.get_class("smac-hyperband") is SMACHyperband
    assert SMACHyperband.multi_fidelity and SMACHyperband.model_based
    assert SMACHyperband.costly_asks and SMACHyperband.library == "smac"
    code = ("import sys, searchers; names = searchers.available(); "
            "assert 'smac-hyperband' in names, names; "
            "assert not {'smac', 'dask', 'sklearn'} & set(sys.modules), 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)
    assert unavailable_message(monkeypatch, "smac-hyperband") \
        == f"searcher 'smac-hyperband' needs nas_no_such_module: {INSTALL}"


def test_seed_and_options() -> None:
    space = testing.continuous_space()
    a, b = (SMACHyperband(space, seed=s, min_budget=1, max_budget=27) for s in (5, 6))
    assert a.smac_seed == SMACHyperband(space, seed=5, min_budget=1, max_budget=27).smac_seed
    assert a.smac_seed != b.smac_seed and a.smac.scenario.seed == a.smac_seed
    assert a.smac.scenario.configspace is not a.space  # its own copy, which SMAC reseeds
    assert a.options == {"min_budget": 1.0, "max_budget": 27.0, "eta": 3.0}
    for bad in ({"min_budget": 9, "max_budget": 9}, {"min_budget": 0}, {"eta": 1.5}):
        with pytest.raises(UserError, match="bad options for searcher 'smac-hyperband'"):
            searchers.get("smac-hyperband", space, **{"min_budget": 1, "max_budget": 27, **bad})


# -- budgets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("low", "high", "eta"), [(1, 27, 3), (1, 243, 3), (2, 32, 2),
                                                  (0.5, 10, 3)])
def test_budgets_lie_on_the_hyperband_ladder(low: float, high: float, eta: float) -> None:
    problem = testing.continuous_problem()
    searcher = SMACHyperband(problem.space, seed=0, min_budget=low, max_budget=high, eta=eta)
    first = searchers.hyperband_layout(low, high, eta)[0]  # the bracket that climbs every rung
    # As many rungs as our Hyperband: SMAC alone loses one at 1..243 (float rounding).
    assert len(searcher.budgets) == len(first.rungs)
    for budget, rung in zip(searcher.budgets, first.rungs, strict=True):
        assert math.isclose(budget, rung.budget, rel_tol=1e-9) and low <= budget <= high
    assert searcher.budgets[-1] == high
    # SMAC's Hyperband: the first bracket's rungs one after the other, each trial from scratch.
    # (Fewer trials than our layout's at a rung: SMAC samples its first random configurations
    # from the same random state as its initial design, so some come twice and run once.)
    climb = 10 if high == 243 else None  # its lowest rung only there: the climb takes seconds
    pairs: list[tuple[Trial, Result]] = []
    while len(pairs) < (climb or math.inf) and not (pairs and pairs[-1][0].budget == high):
        assert len(pairs) < 2 * sum(r.n_configs for r in first.rungs)
        trial = searcher.ask()
        pairs.append((trial, Result(loss=problem(trial))))
        searcher.tell(*pairs[-1])
    budgets = [t.budget for t, _ in pairs]
    assert budgets == sorted(budgets)
    for budget, rung in zip(searcher.budgets, first.rungs, strict=True):
        assert budgets.count(budget) <= rung.n_configs
        assert budgets.count(budget) > rung.n_configs // 2 or climb is not None
    assert all(t.parent is None and searcher.budgets[t.info["rung"]] == t.budget
               for t, _ in pairs)
    assert searcher.continuable() == set()


# -- failures ------------------------------------------------------------------------------------


def _costs(searcher: SMACHyperband, status: StatusType) -> list[float]:
    return [v.cost for v in searcher.smac.runhistory.values() if v.status == status]


def test_failures_cost_more_than_every_loss_and_are_never_promoted() -> None:
    searcher = SMACHyperband(_line(), seed=0, min_budget=1, max_budget=9)
    rung = [searcher.ask() for _ in range(9)]  # the first bracket's lowest rung
    assert {t.budget for t in rung} == {1.0}
    for trial in rung[:6]:  # failures first, while no loss is known: they cost 1.0
        status = TrialStatus.DIVERGED if trial.id % 2 else TrialStatus.FAILED
        searcher.tell(trial, Result.failure(status, "boom"))
    assert _costs(searcher, StatusType.CRASHED) == [1.0] * 6
    for k, trial in enumerate(rung[6:]):  # then losses far above that cost
        searcher.tell(trial, Result(loss=50.0 + k))
    assert _costs(searcher, StatusType.CRASHED) == [104.0] * 6  # 52 + 52: above them again
    promoted = [searcher.ask() for _ in range(3)]
    assert {t.budget for t in promoted} == {3.0}
    assert [t.config for t in promoted] == [t.config for t in rung[6:]]
    for trial in promoted:
        searcher.tell(trial, Result(loss=_parabola(trial)))
    pairs = testing.run(searcher, _parabola, 15, fail_every=3)  # and it goes on, forest too
    assert {t.budget for t, _ in pairs} == {1.0, 3.0, 9.0}
    assert any(t.info["smac_origin"].startswith("Acquisition") for t, _ in pairs)
    failed, losses = _costs(searcher, StatusType.CRASHED), _costs(searcher, StatusType.SUCCESS)
    assert len(failed) == 6 + 5 and len(set(failed)) == 1
    assert math.isfinite(failed[0]) and failed[0] > max(losses)
    searcher.tell(rung[0], Result(loss=0.0))  # told twice: ignored
    assert len(searcher.smac.runhistory) == 9 + 3 + 15


def test_ask_gives_none_once_smac_has_ended() -> None:
    problem = testing.tiny_problem()
    searcher = SMACHyperband(problem.space, seed=0, min_budget=1, max_budget=27)
    pairs = testing.run(searcher, problem, 30)
    assert 2 <= len(pairs) < 30 and {t.config["choice"] for t, _ in pairs} == {"a", "b"}
    assert searcher.ask() is None and searcher.ask() is None  # no new configuration to try


# -- files, logging, replay ----------------------------------------------------------------------


def _logging_state() -> tuple[object, ...]:
    root, own = logging.getLogger(), logging.getLogger("smac")
    return (list(root.handlers), root.level, own.level, list(own.handlers), own.propagate,
            logging.root.manager.disable)


def test_writes_no_file_and_leaves_logging_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    work, temp, home = tmp_path / "work", tmp_path / "tmp", tmp_path / "home"
    for folder in (work, temp, home):
        folder.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("HOME", str(home))
    caplog.set_level(logging.DEBUG)  # the root logger passes everything on
    before = _logging_state()
    searcher = SMACHyperband(_line(), seed=0, min_budget=1, max_budget=9)
    pairs = testing.run(searcher, _parabola, 20, fail_every=5)
    assert any(t.info["smac_origin"].startswith("Acquisition") for t, _ in pairs)  # the forest
    # SMAC would replace the root logger's handlers and log at INFO to stdout.
    assert _logging_state() == before
    assert [r for r in caplog.records if r.name.startswith("smac")] == []
    # ... and save its run in ./smac3_output on every tell.
    assert list(work.iterdir()) == [] and list(temp.iterdir()) == []
    assert list(home.iterdir()) == []


@pytest.mark.slow
def test_its_numpy_warnings_stay_inside_the_adapter() -> None:
    import warnings

    from nas import problems

    problem = problems.get("mixed-20d")
    searcher = SMACHyperband(problem.space, seed=3, min_budget=problem.min_budget,
                             max_budget=problem.max_budget)
    with warnings.catch_warnings():
        # SMAC's forest averages empty slices of inactive values at about trial 206 here.
        warnings.simplefilter("error", RuntimeWarning)
        for _ in range(240):
            trial = searcher.ask()
            assert trial is not None
            searcher.tell(trial, Result(loss=problem.evaluate(trial.config, trial.budget,
                                                              seed=0)))


_ASKS = """
import json
from tests.searchers.test_smac import asks
print(json.dumps(asks()))
"""


def asks() -> list[dict[str, object]]:
    """20 trials on the line, 2 in flight, some failing: the forest proposes 5 of them."""
    searcher = SMACHyperband(_line(), seed=3, min_budget=1, max_budget=9)
    pairs = testing.run(searcher, _parabola, 20, fail_every=4, in_flight=2)
    return [t.to_dict() for t, _ in pairs]


def test_asks_alike_in_another_process() -> None:
    # SMAC's local search drops repeated start points through a set: left as it is, their order
    # (and so every later ask) would follow string hashes, salted anew in each process.
    here = os.environ.get("PYTHONHASHSEED", "random")
    other = {**os.environ, "PYTHONHASHSEED": "1" if here != "1" else "2"}
    out = subprocess.run([sys.executable, "-c", _ASKS], capture_output=True, text=True,
                         check=True, cwd=ROOT, env=other, timeout=300).stdout
    mine = asks()
    assert any(str(t["info"]["smac_origin"]).endswith("Local Search") for t in mine)
    assert json.loads(out) == mine


# -- nas bench -----------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", ["2x", pytest.param("10x", marks=pytest.mark.slow)])
def test_bench_runs_it_and_records_its_version(tmp_path: Path, budget: str) -> None:
    out = tmp_path / "b"
    result = bench(["mf-branin"], ["smac-hyperband", "random"], seeds=2, budget=budget, out=out)
    assert result.ran == 4
    expected = {"smac-hyperband": f"smac {importlib.metadata.version('smac')}"}
    assert result.versions == expected
    rows = json.loads((out / "results.json").read_text())
    assert {r["searcher"]: r["library"] for r in rows} == {"random": None, **expected}
    assert f"smac-hyperband: {expected['smac-hyperband']}" in result.summary
    ladder = [r.budget for r in searchers.hyperband_layout(1, 81, 3)[0].rungs]
    budgets = {r["budget"] for r in rows if r["searcher"] == "smac-hyperband"}
    assert budgets <= set(ladder) and min(budgets) == 1.0
