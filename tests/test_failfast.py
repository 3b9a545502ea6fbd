"""A search whose first trials all raise the same exception stops and raises it (Optuna's
default), unless `catch` says to record such failures and go on."""

from __future__ import annotations

from typing import Any

import pytest
from ConfigSpace import ConfigurationSpace

import nas
from nas.engine.failfast import FAIL_FAST_TRIALS
from nas.errors import ObjectiveError
from nas.journal import JournalView
from nas.types import TrialStatus


def _space() -> ConfigurationSpace:
    return ConfigurationSpace({"x": (0.0, 1.0)}, seed=0)


def _wrong_signature(config: dict[str, Any]) -> float:  # no budget argument
    return config["x"]


def _flaky(config: dict[str, Any], budget: float) -> float:
    if config["x"] < 0.5:
        raise ValueError("x too small")
    return config["x"]


def test_the_same_exception_in_the_first_trials_is_raised(tmp_path) -> None:
    db = tmp_path / "f.db"
    with pytest.raises(ObjectiveError, match="TypeError") as caught:
        nas.optimize(_wrong_signature, _space(), "random", "20trials", storage=db)
    assert "catch=(TypeError,)" in str(caught.value) and "Traceback" in caught.value.error
    records = JournalView.load(db).records
    assert len(records) == FAIL_FAST_TRIALS  # stopped at once, every failure journaled
    assert all(r.status is TrialStatus.FAILED for r in records)


def test_catch_records_them_and_goes_on(tmp_path) -> None:
    for catch in ((TypeError,), ("TypeError",), True):
        result = nas.optimize(_wrong_signature, _space(), "random", "12trials",
                              storage=tmp_path / f"c{len(str(catch))}.db", catch=catch)
        assert len(result.trials) == 10 and "in a row failed" in result.stopped
    with pytest.raises(ObjectiveError):  # another exception type is not caught
        nas.optimize(_wrong_signature, _space(), "random", "12trials",
                     storage=tmp_path / "other.db", catch=(KeyError,))
    with pytest.raises(TypeError, match="catch is True or"):
        nas.optimize(_flaky, _space(), "random", "2trials", storage=tmp_path / "x.db",
                     catch=(3,))  # type: ignore[arg-type]


def test_some_failures_among_successes_do_not_stop_it(tmp_path) -> None:
    result = nas.optimize(_flaky, _space(), "random", "20trials", storage=tmp_path / "f.db")
    statuses = [r.status for r in result.trials]
    assert len(statuses) == 20 and TrialStatus.FAILED in statuses
    assert result.best is not None and result.best.result.loss >= 0.5


def test_the_cli_says_it_in_one_line(tmp_path, capsys, monkeypatch) -> None:
    import nas.objective
    from nas.cli import main

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(nas.objective, "train_config", broken)
    code = main(["search", "--data", "synthetic", "--budget", "6trials", "--trial-budget",
                 "1ep", "--space", "residual-mlp", "--set", "width=16:32", "--no-progress",
                 "--db", str(tmp_path / "s.db"), "--no-baselines"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "mat1 and mat2" in err[0]


def test_load_if_exists_continues_the_journal(tmp_path) -> None:
    from nas.errors import UserError

    db = tmp_path / "s.db"
    space = _space()
    first = nas.optimize(_flaky, space, "random", "6trials", storage=db, seed=0, catch=True)
    with pytest.raises(UserError, match="load_if_exists=True"):
        nas.optimize(_flaky, space, "random", "6trials", storage=db)
    again = nas.optimize(_flaky, space, "random", "6trials", storage=db, load_if_exists=True)
    assert [r.id for r in again.trials] == [r.id for r in first.trials]  # finished: as it was
    cut = tmp_path / "cut.db"

    def stop(config: dict[str, Any], budget: float) -> float:
        if config["x"] > 0.9:
            raise KeyboardInterrupt
        return _flaky(config, budget)

    with pytest.raises(KeyboardInterrupt):
        nas.optimize(stop, space, "random", "30trials", storage=cut, seed=1, catch=True)
    before = len(JournalView.load(cut).finished())
    done = nas.optimize(_flaky, space, "random", "30trials", storage=cut, seed=1,
                        load_if_exists=True, catch=True)
    assert before < 30 and len(done.trials) == 30


def test_a_larger_budget_goes_on_with_a_finished_search(tmp_path, capsys) -> None:
    from nas.cli import main
    from nas.errors import UserError

    db = tmp_path / "b.db"
    nas.optimize(_flaky, _space(), "tpe", "8trials", storage=db, seed=0, catch=True)
    whole = nas.optimize(_flaky, _space(), "tpe", "14trials", storage=tmp_path / "w.db",
                         seed=0, catch=True)
    more = nas.resume(db, objective=_flaky, progress=False, budget="14trials")
    view = JournalView.load(db)
    assert view.finished_search and str(view.limit) == "14trials" and view.spent == 14
    # The same search as one that had the larger budget from the start.
    assert [r.trial.asked() for r in more.trials] == [r.trial.asked() for r in whole.trials]
    for bad, said in [("10trials", "no more than"), ("5m", "same unit")]:
        with pytest.raises(UserError, match=said):
            nas.resume(db, objective=_flaky, progress=False, budget=bad)
    assert main(["resume", str(db), "--budget", "3trials"]) == 2
    assert "no more than" in capsys.readouterr().err


def test_load_if_exists_never_takes_an_in_memory_run_for_a_named_journal(tmp_path,
                                                                          monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    nas.optimize(_flaky, _space(), "random", "3trials", name="x", catch=True)
    fresh = nas.optimize(_flaky, _space(), "random", "5trials", name="x", storage=":memory:",
                         load_if_exists=True, catch=True)
    assert len(fresh.trials) == 5 and str(fresh.path) == ":memory:"
