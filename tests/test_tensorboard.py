from __future__ import annotations

from pathlib import Path

import pytest

import nas
import nas.reporting.tensorboard
import spaces
from nas.budget import Budget
from nas.cli import main
from nas.engine.callbacks import Callback
from nas.engine.ledger import Ledger
from nas.errors import UserError
from nas.reporting.tensorboard import TensorBoardLogger
from nas.storage import Storage
from nas.types import Result, Trial
from tests.helpers import blobs

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

SPACE = {"width": (16, 32), "n_blocks": 1}


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)]
            for tag in acc.Tags()["scalars"]}


def test_each_trial_curve_and_the_search_progress_are_logged(tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path / "tb")
    assert not (tmp_path / "tb").exists()  # writers open lazily, not in the constructor
    result = nas.search(spaces.residual_mlp(**SPACE), blobs(), "random", "3trials",
                        trial_budget="2ep", storage=tmp_path / "s.db", progress=False,
                        callbacks=[logger])
    assert logger._search is None  # closed at the search's end
    runs = sorted(p.name for p in (tmp_path / "tb").iterdir())
    assert runs == ["search", "trial-0000", "trial-0001", "trial-0002"]
    for record in result.trials:
        logged = _scalars(tmp_path / "tb" / f"trial-{record.id:04d}")
        assert {"train_loss", "val_loss", "val_accuracy"} <= set(logged)
        for tag in ("train_loss", "val_loss", "val_accuracy"):
            assert [s for s, _ in logged[tag]] == [1, 2]  # one point per epoch
            assert [v for _, v in logged[tag]] == pytest.approx(
                [p[tag] for p in record.result.curve])
    search = _scalars(tmp_path / "tb" / "search")
    told = sorted(result.trials, key=lambda r: r.tell_order)
    assert search["loss"] == [(i, pytest.approx(r.result.loss)) for i, r in enumerate(told)]
    assert [v for _, v in search["best_loss"]] == pytest.approx(
        [min(r.result.loss for r in told[: i + 1]) for i in range(3)])
    assert [v for _, v in search["spent"]] == [1.0, 2.0, 3.0]


def test_a_continued_trial_logs_at_its_own_epochs_and_a_resume_goes_on_counting(
        tmp_path) -> None:
    # A journal that already told two trials, as a resumed search finds it.
    nas.search(spaces.residual_mlp(**SPACE), blobs(), "random", "2trials", trial_budget="1ep",
               storage=tmp_path / "s.db", progress=False)
    logger = TensorBoardLogger(tmp_path / "tb")
    ledger = Ledger(Budget.parse("10trials"), spent=2)
    logger.on_search_start(tmp_path / "s.db", {}, ledger)
    curve = tuple({"epoch": float(e), "train_loss": 1.0 / e, "val_loss": 2.0 / e,
                   "val_accuracy": 0.1 * e, "seconds": 0.5} for e in (4, 5, 6))
    trial = Trial(id=7, config={"width": 16}, budget=6.0, parent=3)
    ledger.charge(1)
    logger.on_trial_end(trial, Result(loss=0.25, epochs=3, curve=curve), None, ledger)
    failed = Result.failure(nas.TrialStatus.FAILED, "boom")
    ledger.charge(1)
    logger.on_trial_end(Trial(id=8, config={"width": 16}), failed, None, ledger)
    logger.on_search_end(None)
    logged = _scalars(tmp_path / "tb" / "trial-0007")
    assert logged["val_accuracy"] == [(4, pytest.approx(0.4)), (5, pytest.approx(0.5)),
                                      (6, pytest.approx(0.6))]
    assert "seconds" not in logged and "epoch" not in logged
    assert not (tmp_path / "tb" / "trial-0008").exists()  # no curve, no run
    search = _scalars(tmp_path / "tb" / "search")
    with Storage.open(tmp_path / "s.db") as store:
        earlier = min(r.result.loss for r in store.trials())
    assert search["loss"] == [(2, 0.25)]  # after the two journaled trials; a failure has none
    assert [s for s, _ in search["spent"]] == [2, 3]
    assert search["best_loss"][-1] == (3, pytest.approx(min(earlier, 0.25)))


class _StopAfterFirst(Callback):
    """Ctrl-C right after the first trial is journaled."""

    def on_trial_end(self, trial: Trial, result: Result, best: object, ledger: Ledger) -> None:
        raise KeyboardInterrupt


def test_cli_search_and_resume_take_tensorboard(tmp_path) -> None:
    db, tb = tmp_path / "s.db", tmp_path / "tb"
    code = main(["search", "--space", "residual-mlp", "--searcher", "random", "--data",
                 "digits", "--budget", "2trials", "--trial-budget", "1ep", "--set",
                 "width=16:32", "--set", "n_blocks=1", "--db", str(db), "--no-progress",
                 "--tensorboard", str(tb)])
    assert code == 0
    assert sorted(p.name for p in tb.iterdir()) == ["search", "trial-0000", "trial-0001"]

    # A search stopped after one of three trials; `nas resume --tensorboard` logs the rest.
    db2, tb2 = tmp_path / "r.db", tmp_path / "tb2"
    with pytest.raises(KeyboardInterrupt):
        nas.search(spaces.residual_mlp(**SPACE), "digits", "random", "3trials",
                   trial_budget="1ep", storage=db2, progress=False,
                   callbacks=[_StopAfterFirst()])
    assert main(["resume", str(db2), "--no-progress", "--tensorboard", str(tb2)]) == 0
    assert sorted(p.name for p in tb2.iterdir()) == ["search", "trial-0001", "trial-0002"]
    assert [s for s, _ in _scalars(tb2 / "search")["loss"]] == [1, 2]


def test_without_tensorboard_the_flag_fails_at_start_in_one_line(tmp_path, monkeypatch,
                                                                  capsys) -> None:
    monkeypatch.setattr(nas.reporting.tensorboard, "tensorboard_available", lambda: False)
    with pytest.raises(UserError, match=r"pip install 'nas-engine\[tensorboard\]'"):
        TensorBoardLogger(tmp_path / "tb")
    for args in (["search", "--data", "digits", "--budget", "2trials", "--db",
                  str(tmp_path / "s.db")], ["resume", str(tmp_path / "s.db")]):
        assert main([*args, "--no-progress", "--tensorboard", str(tmp_path / "tb")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("nas: error:") and "pip install 'nas-engine[tensorboard]'" in err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.db").exists()  # failed before any search started
