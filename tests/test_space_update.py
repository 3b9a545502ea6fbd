"""A search's space changed on resume (`nas resume DB --space-update ...`): the searcher is
rebuilt on the new space, keeps its model, and every later resume (after kill -9 too) is exact."""

from __future__ import annotations

import shutil
import signal
import textwrap
from pathlib import Path
from typing import Any

import pytest
from ConfigSpace import Categorical, ConfigurationSpace, Float

import nas
import spaces
from nas.cli import main
from nas.engine.callbacks import Callback
from nas.errors import SearchInterrupted, UserError
from nas.journal import JournalView
from spaces.updates import update_space
from tests.helpers import kill_after


def _space() -> ConfigurationSpace:
    space = ConfigurationSpace(seed=0)
    space.add([Float("x", (-5.0, 5.0), default=0.0), Float("y", (-5.0, 5.0), default=2.0),
               Categorical("kind", ["a", "b"], default="a")])
    return space


def _loss(config: dict[str, Any], budget: float) -> float:
    # The optimum (x = 8) lies outside the first space: only a widened range reaches it.
    return (config["x"] - 8) ** 2 + config["y"] ** 2 + (config["kind"] == "b") + 1 / budget


class _StopAfter(Callback):
    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def on_trial_end(self, trial, result, best, ledger) -> None:  # type: ignore[override]
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt


def _stopped(db: Path, searcher: str, n: int, **options: Any) -> None:
    with pytest.raises(SearchInterrupted):
        nas.optimize(_loss, _space(), searcher, "40trials", seed=0, storage=db,
                     searcher_options=options or None, callbacks=[_StopAfter(n)],
                     **({"min_budget": 1, "max_budget": 9} if searcher == "bohb" else {}))


@pytest.mark.parametrize(("searcher", "options"), [
    ("tpe", {}), ("bohb", {"random_fraction": 0.0, "min_points_in_model": 3})])
def test_after_a_space_update_the_model_proposes_in_the_new_range(tmp_path, searcher,
                                                                    options) -> None:
    db = tmp_path / "s.db"
    _stopped(db, searcher, 15, **options)
    result = nas.resume(db, objective=_loss, progress=False, space_update=["x=-5:20"])
    view = JournalView.load(db)
    [change] = view.space_changes
    assert change["at_trial"] == 15 and change["updates"] == ["x=-5:20"]
    assert spaces.space_from_json(view.space)["x"].upper == 20
    after = [r for r in result.trials if r.id >= 15]
    assert after and [r.id for r in after] == list(range(15, 15 + len(after)))
    # The rebuilt searcher was shown the 15 trials: it proposes from its model at once.
    fresh = [r for r in after if r.trial.info.get("origin") in ("model", "random")]
    assert fresh[0].trial.info["origin"] == "model"
    assert max(r.trial.config["x"] for r in after) > 5.0  # the widened range is searched
    assert result.best is not None and result.best.trial.config["x"] > 5.0


_SCRIPT = textwrap.dedent("""
    import sys, time
    import nas
    from tests.test_space_update import _loss

    def slow(config, budget):
        time.sleep(0.05)
        return _loss(config, budget)

    nas.resume(sys.argv[1], objective=slow, progress=False, space_update=["x=-5:20"])
""")


def test_killed_in_the_first_trials_after_a_space_update_resumes_exactly(tmp_path) -> None:
    first = tmp_path / "first.db"
    _stopped(first, "tpe", 12)
    whole, cut = tmp_path / "whole.db", tmp_path / "cut.db"
    shutil.copy(first, whole)
    shutil.copy(first, cut)
    expected = nas.resume(whole, objective=_loss, progress=False, space_update=["x=-5:20"])
    proc = kill_after(_SCRIPT, [str(cut)], cut, 15)
    assert proc.returncode == -signal.SIGKILL
    assert len(JournalView.load(cut).space_changes) == 1
    assert len(JournalView.load(cut).finished()) < len(expected.trials)
    got = nas.resume(cut, objective=_loss, progress=False)  # no update: the journal has it
    assert [r.trial.asked() for r in got.trials] == [r.trial.asked() for r in expected.trials]
    assert [r.result.loss for r in got.trials] == [r.result.loss for r in expected.trials]
    assert len(JournalView.load(cut).space_changes) == 1


def test_updates_read_like_overrides_and_refuse_mistakes() -> None:
    conv = spaces.get("residual-conv")
    new = update_space(conv, ["channels=8:128", "ops+=sep_conv5x5", "optimizer-=sgd"])
    assert new["channels"].upper == 128 and "sep_conv5x5" in new["edge_0_1"].choices
    assert "sep_conv5x5" in new["edge_3_4"].choices and "sgd" not in new["optimizer"].choices
    assert "sep_conv5x5" not in conv["edge_0_1"].choices  # the given space is left alone
    assert new.conditions and len(new.conditions) == len(conv.conditions)
    for bad, said in [("widht=8:16", "no hyperparameter 'widht'"),
                      ("ops+=conv9x9", "cannot be searched"),
                      ("optimizer-=rmsprop", "no choice 'rmsprop'"),
                      ("channels+=3", "numeric"), ("lr=1:0.1", "LOW <= HIGH"),
                      ("channels", "cannot read")]:
        with pytest.raises(UserError, match=said):
            update_space(conv, [bad])


def test_cli_mistakes_are_one_line_and_change_nothing(tmp_path, capsys) -> None:
    db = tmp_path / "s.db"
    _stopped(db, "random", 3)
    code = main(["resume", str(db), "--space-update", "nope=1", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "no hyperparameter 'nope'" in err[0]
    assert JournalView.load(db).space_changes == ()
    done = tmp_path / "done.db"
    nas.optimize(_loss, _space(), "random", "3trials", storage=done)
    code = main(["resume", str(done), "--space-update", "x=-5:20", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "finished" in err[0]


def test_a_conv_search_goes_on_with_a_wider_channel_range_and_a_new_op(tmp_path) -> None:
    db = tmp_path / "c.db"
    with pytest.raises(SearchInterrupted):
        nas.search("residual-conv", "digits", "random", "12trials", trial_budget="1ep",
                   space_overrides={"channels": (8, 12), "n_stages": 1, "n_cells": 1,
                                    "ops": ["none", "skip", "conv3x3"]},
                   storage=db, progress=False, baselines=False, ensemble=0, seed=1,
                   callbacks=[_StopAfter(3)])
    assert main(["resume", str(db), "--space-update", "channels=24:32", "--space-update",
                 "ops+=sep_conv5x5", "--no-progress"]) == 0
    view = JournalView.load(db)
    after = [r for r in view.records if r.id >= view.space_changes[0]["at_trial"]]
    assert len(after) >= 8 and all(24 <= r.trial.config["channels"] <= 32 for r in after)
    used = {v for r in after for k, v in r.trial.config.items() if k.startswith("edge_")}
    assert "sep_conv5x5" in used
    assert all(r.status.value == "ok" for r in after)


def test_the_report_draws_and_lists_the_space_change(tmp_path) -> None:
    from nas.reporting.html import write_report
    from nas.reporting.plots import space_change_points

    db = tmp_path / "s.db"
    _stopped(db, "tpe", 15)
    nas.resume(db, objective=_loss, progress=False, space_update=["x=-5:20"])
    assert space_change_points(JournalView.load(db)) == [(15.0, "x=-5:20")]
    page = write_report(db, tmp_path / "report").read_text()
    assert "space change</th><td>before trial 15: x=-5:20" in page
