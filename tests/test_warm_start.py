"""Warm starts: an earlier search's trials told to a new search's searcher, never trained,
charged or returned; the best K retrained on request; a resume (even after kill -9) exact."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path
from typing import Any

import pytest
from ConfigSpace import Categorical, ConfigurationSpace, Float

import nas
from nas.budget import Unit
from nas.cli import main
from nas.errors import UserError
from nas.journal import JournalView
from nas.warmstart import WarmStart, load_warm_start
from tests.helpers import kill_after


def _space(high: float = 5.0, extra: bool = False) -> ConfigurationSpace:
    space = ConfigurationSpace(seed=0)
    space.add([Float("x", (-5.0, high), default=min(1.0, high)),
               Float("y", (-5.0, 5.0), default=2.0),
               Categorical("kind", ["a", "b"], default="a")])
    if extra:
        space.add(Float("z", (0.0, 1.0), default=0.25))
    return space


def _loss(config: dict[str, Any], budget: float) -> float:
    return (config["x"] - 1.5) ** 2 + config["y"] ** 2 + (config["kind"] == "b") + 1 / budget


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished TPE run of 40 trials (the earlier search)."""
    db = tmp_path_factory.mktemp("first") / "first.db"
    nas.optimize(_loss, _space(), "tpe", "40trials", seed=0, storage=db)
    return db


def test_imports_are_told_not_run_and_change_the_first_proposals(tmp_path, first) -> None:
    cold = nas.optimize(_loss, _space(), "tpe", "6trials", seed=1, storage=tmp_path / "c.db")
    warm = nas.optimize(_loss, _space(), "tpe", "6trials", seed=1, storage=tmp_path / "w.db",
                        warm_start=[first])
    # Cold TPE starts at random; warm, its model already holds 40 results.
    assert {r.trial.info["origin"] for r in cold.trials} == {"random"}
    assert {r.trial.info["origin"] for r in warm.trials} == {"model"}
    assert len(warm.trials) == 6 and [r.id for r in warm.trials] == list(range(6))
    assert warm.spent == 6  # the imports cost nothing
    best_imported = min(r.result.loss for r in JournalView.load(first).records if r.result)
    assert warm.best is not None and warm.best.result.loss > best_imported  # never returned
    assert sum(r.result.loss for r in warm.trials) < sum(r.result.loss for r in cold.trials)
    settings = JournalView.load(tmp_path / "w.db").settings
    assert len(WarmStart.of(settings).imported) == 40


def test_a_changed_space_keeps_what_fits_and_fills_new_hyperparameters(first) -> None:
    records = [r for r in JournalView.load(first).records if r.result is not None]
    narrowed = _space(high=0.0, extra=True)
    warm = load_warm_start([first], narrowed, unit=Unit.UNITS, full_budget=1.0)
    outside = sum(r.trial.config["x"] > 0.0 for r in records)
    assert 0 < outside < len(records)
    assert len(warm.imported) == len(records) - outside
    assert warm.dropped == {"outside the new space": outside}
    assert all(i.config["z"] == 0.25 and i.config["x"] <= 0.0 for i in warm.imported)
    assert f"left out: {outside} outside the new space" in warm.describe()


def test_retrain_trains_the_best_imports_first_at_the_full_budget(tmp_path, first) -> None:
    result = nas.optimize(_loss, _space(), "bohb", "40u", min_budget=1, max_budget=9, seed=2,
                          storage=tmp_path / "r.db", warm_start=[first], warm_start_retrain=2)
    best = sorted((r for r in JournalView.load(first).records if r.result),
                  key=lambda r: r.result.loss)
    head = result.trials[:2]
    assert [r.trial.info["origin"] for r in head] == ["retrained", "retrained"]
    assert all(r.trial.budget is None for r in head)
    for got, want in zip(head, best[:2], strict=True):  # ConfigSpace rounds to 13 digits
        assert got.trial.config["kind"] == want.trial.config["kind"]
        assert got.trial.config["x"] == pytest.approx(want.trial.config["x"], abs=1e-12)


def test_multi_fidelity_imports_keep_their_budgets(tmp_path) -> None:
    db = tmp_path / "mf.db"
    nas.optimize(_loss, _space(), "bohb", "60u", min_budget=1, max_budget=9, seed=0, storage=db)
    view = JournalView.load(db)
    warm = load_warm_start([db], _space(), unit=Unit.UNITS, full_budget=9.0)
    assert sorted({i.budget for i in warm.imported}, key=lambda b: b or 99) == sorted(
        {r.trial.budget if r.trial.budget != 9 else None for r in view.records},
        key=lambda b: b or 99)
    # The same unit over a larger full budget: the same amounts; a new unit: the same shares.
    assert {i.budget for i in load_warm_start([db], _space(), unit=Unit.UNITS,
                                              full_budget=27.0).imported} >= {1.0, 3.0, 9.0}
    shares = load_warm_start([db], _space(), unit=Unit.SECONDS, full_budget=90.0).imported
    assert {i.budget for i in shares} >= {10.0, 30.0}


def test_mistakes_are_one_line(tmp_path, first, capsys) -> None:
    with pytest.raises(UserError, match="no such journal"):
        nas.optimize(_loss, _space(), "tpe", "3trials", storage=tmp_path / "a.db",
                     warm_start=[tmp_path / "missing.db"])
    with pytest.raises(UserError, match="needs --warm-start"):
        nas.optimize(_loss, _space(), "tpe", "3trials", storage=tmp_path / "b.db",
                     warm_start_retrain=2)
    with pytest.raises(UserError, match="number of trials >= 0"):
        nas.optimize(_loss, _space(), "tpe", "3trials", storage=tmp_path / "c.db",
                     warm_start=[first], warm_start_retrain=-1)
    code = main(["search", "--data", "synthetic", "--budget", "1trials", "--warm-start",
                 str(tmp_path / "nope.db"), "--db", str(tmp_path / "d.db"), "--no-progress"])
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such journal" in err[0]


_SCRIPT = textwrap.dedent("""
    import sys, time
    import nas
    from tests.test_warm_start import _loss, _space

    def slow(config, budget):
        time.sleep(0.05)
        return _loss(config, budget)

    nas.optimize(slow, _space(), "bohb", "60u", min_budget=1, max_budget=9, seed=5,
                 storage=sys.argv[1], warm_start=[sys.argv[2]], warm_start_retrain=1)
""")


def test_a_warm_started_search_killed_and_resumed_ends_alike(tmp_path, first) -> None:
    full = nas.optimize(_loss, _space(), "bohb", "60u", min_budget=1, max_budget=9, seed=5,
                        storage=tmp_path / "full.db", warm_start=[first], warm_start_retrain=1)
    cut = tmp_path / "cut.db"
    proc = kill_after(_SCRIPT, [str(cut), str(first)], cut, 6)
    assert proc.returncode == -signal.SIGKILL
    assert len(JournalView.load(cut).finished()) < len(full.trials)
    resumed = nas.resume(cut, objective=_loss, progress=False)
    assert [r.trial.asked() for r in resumed.trials] == [r.trial.asked() for r in full.trials]
    assert [r.result.loss for r in resumed.trials] == [r.result.loss for r in full.trials]
    assert resumed.trials[0].trial.info["origin"] == "retrained"


def test_nas_show_marks_the_imports(tmp_path, first, capsys) -> None:
    nas.optimize(_loss, _space(high=0.0), "tpe", "4trials", seed=1, storage=tmp_path / "s.db",
                 warm_start=[first])
    assert main(["show", str(tmp_path / "s.db"), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "earlier trials imported from first.db" in out
    assert "outside the new space" in out
    assert out.count("(imported)") == 2 and "first.db#" in out


def test_the_report_lists_the_imports_and_marks_the_retrained(tmp_path, first) -> None:
    from nas.reporting.html import write_report

    db = tmp_path / "r.db"
    nas.optimize(_loss, _space(), "tpe", "5trials", seed=1, storage=db, warm_start=[first],
                 warm_start_retrain=1)
    page = write_report(db, tmp_path / "report").read_text()
    assert "warm start</th><td>warm start: 40 earlier trials imported from first.db" in page
    assert page.count("(imported)</td>") == 10 and "0 (retrained)" in page
