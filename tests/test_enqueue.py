"""Enqueued configurations: asked first, journaled, asked again by a resume's replay, and a bad
one refused in one line."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ConfigSpace import Categorical, ConfigurationSpace, Float

import nas
from nas.cli import main
from nas.engine.callbacks import Callback
from nas.errors import SearchInterrupted, UserError
from nas.journal import JournalView
from nas.types import TrialStatus


def _space() -> ConfigurationSpace:
    space = ConfigurationSpace(seed=0)
    space.add([Float("x", (-5.0, 5.0), default=1.0), Float("y", (-5.0, 5.0), default=2.0),
               Categorical("kind", ["a", "b"], default="a")])
    return space


def _loss(config: dict[str, Any], budget: float) -> float:
    return (config["x"] - 1.5) ** 2 + config["y"] ** 2 + (config["kind"] == "b") + 1 / budget


QUEUE = [{"x": 1.5, "y": 0.0}, {"config": {"x": -2.0, "kind": "b"}, "budget": 3}]


@pytest.mark.parametrize("searcher", ["tpe", "bohb"])
def test_enqueued_configurations_come_first_and_are_journaled(tmp_path, searcher) -> None:
    db = tmp_path / "q.db"
    result = nas.optimize(_loss, _space(), searcher, "20trials", min_budget=1, max_budget=9,
                          storage=db, enqueue=QUEUE)
    first, second = result.trials[0].trial, result.trials[1].trial
    # Left-out hyperparameters take the space's defaults.
    assert dict(first.config) == {"x": 1.5, "y": 0.0, "kind": "a"} and first.budget is None
    assert dict(second.config) == {"x": -2.0, "y": 2.0, "kind": "b"} and second.budget == 3
    assert {first.info["origin"], second.info["origin"]} == {"enqueued"}
    assert sum(r.trial.info.get("origin") == "enqueued" for r in result.trials) == 2
    assert result.best is not None and result.best.id == 0  # the enqueued optimum
    assert JournalView.load(db).settings.enqueued == (
        {"config": {"x": 1.5, "y": 0.0, "kind": "a"}, "budget": None},
        {"config": {"x": -2.0, "y": 2.0, "kind": "b"}, "budget": 3.0})


class _StopAfter(Callback):
    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def on_trial_end(self, trial, result, best, ledger) -> None:  # type: ignore[override]
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt


@pytest.mark.parametrize("stop_after", [1, 5])
def test_a_resume_replays_the_enqueued_trials_and_ends_alike(tmp_path, stop_after) -> None:
    kwargs: dict[str, Any] = dict(min_budget=1, max_budget=9, seed=4, enqueue=QUEUE)
    full = nas.optimize(_loss, _space(), "bohb", "30trials", storage=tmp_path / "full.db",
                        **kwargs)
    with pytest.raises(SearchInterrupted):
        nas.optimize(_loss, _space(), "bohb", "30trials", storage=tmp_path / "cut.db",
                     callbacks=[_StopAfter(stop_after)], **kwargs)
    resumed = nas.resume(tmp_path / "cut.db", objective=_loss, progress=False)
    assert [r.trial.asked() for r in resumed.trials] == [r.trial.asked() for r in full.trials]
    assert [r.result.loss for r in resumed.trials if r.result] == [
        r.result.loss for r in full.trials if r.result]


def test_a_bad_enqueued_configuration_is_one_line(tmp_path, capsys) -> None:
    with pytest.raises(UserError, match=r"enqueued configuration 1: .*'z'"):
        nas.optimize(_loss, _space(), "random", "3trials", storage=tmp_path / "a.db",
                     enqueue=[{"x": 0.0}, {"z": 1.0}])
    with pytest.raises(UserError, match=r"enqueued configuration 0: .*99"):
        nas.optimize(_loss, _space(), "random", "3trials", storage=tmp_path / "b.db",
                     enqueue=[{"x": 99.0}])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"x": 1}))
    assert main(["search", "--data", "synthetic", "--budget", "1trials", "--no-progress",
                 "--enqueue", str(bad)]) == 2
    assert "must hold a JSON list" in capsys.readouterr().err


def test_nas_search_trains_the_enqueued_architecture_first(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.json").write_text(json.dumps([{"width": 24, "n_blocks": 1}]))
    assert main(["search", "--space", "residual-mlp", "--searcher", "random", "--data",
                 "synthetic", "--budget", "2trials", "--trial-budget", "1ep", "--name", "q",
                 "--no-progress", "--enqueue", "q.json"]) == 0
    first = JournalView.load(tmp_path / "runs" / "q.db").records[0]
    assert first.trial.config["width"] == 24 and first.trial.config["n_blocks"] == 1
    assert first.trial.info["origin"] == "enqueued" and first.status is TrialStatus.OK
    from nas.reporting.console import top_table

    assert "0 (enqueued)" in top_table(JournalView.load(tmp_path / "runs" / "q.db").records)
