from __future__ import annotations

import sqlite3

import pytest

from nas.errors import UserError
from nas.journal import ranked
from nas.storage import SCHEMA_VERSION, Storage
from nas.types import Result, Trial, TrialStatus


def _store(tmp_path):
    return Storage.create(tmp_path / "runs" / "s.db", {"name": "s", "budget": "2m"})


def test_create_stores_settings_and_schema_version(tmp_path) -> None:
    with _store(tmp_path) as store:
        assert store.settings == {"name": "s", "budget": "2m"}
    with Storage.open(tmp_path / "runs" / "s.db") as store:
        assert store.meta("schema_version") == SCHEMA_VERSION
        assert store.meta("state") == "running"


def test_trial_lifecycle_is_committed_at_each_step(tmp_path) -> None:
    store = _store(tmp_path)
    trial = Trial(id=0, config={"width": 64}, budget=3.0, info={"origin": "random"})
    store.add_trial(trial)
    # A second connection sees each step at once: nothing waits for a later commit.
    with Storage.open(store.path) as reader:
        assert reader.trials()[0].status is TrialStatus.PENDING
        store.start_trial(0, device="cpu")
        assert reader.trials()[0].status is TrialStatus.RUNNING
        store.finish_trial(0, Result(loss=0.1, epochs=3, metrics={"val_accuracy": 0.9,
                                                                    "val_loss": 0.3}), spent=3.0)
        rec = reader.trial(0)
        assert rec == reader.trials()[0]
        assert rec.status is TrialStatus.OK and rec.trial == trial and rec.device == "cpu"
        assert rec.val_accuracy == 0.9 and reader.meta("spent") == 3.0
    store.close()


def test_ranked_orders_by_loss_then_the_typed_tiebreak_and_skips_failures(tmp_path) -> None:
    store = _store(tmp_path)
    results = [
        Result(loss=0.2, tiebreak_loss=0.5),
        Result(loss=0.1, tiebreak_loss=0.9),
        Result(loss=0.1, tiebreak_loss=0.4),
        Result.failure(TrialStatus.FAILED, "boom"),
        # A metric is only reported: its name means nothing to the ranking.
        Result(loss=0.1, metrics={"val_loss": 0.0}),
    ]
    for i, r in enumerate(results):
        store.add_trial(Trial(id=i, config={}))
        store.finish_trial(i, r)
    assert [r.id for r in ranked(store.trials())] == [2, 1, 4, 0]
    assert store.trials()[3].result.error == "boom"
    store.close()


def test_checkpoint_rows_hold_the_file_name_only(tmp_path) -> None:
    store = _store(tmp_path)
    store.add_trial(Trial(id=0, config={}))
    ckpt = store.checkpoint_dir / "trial-0.pt"
    store.add_checkpoint(0, ckpt)
    assert store.checkpoints() == {0: ckpt}
    raw = sqlite3.connect(store.path).execute("SELECT path FROM checkpoints").fetchone()[0]
    assert raw == "trial-0.pt"  # the folder comes from the journal: it may be renamed
    store.remove_checkpoint(0)
    assert store.checkpoints() == {}
    store.close()


def test_refuses_to_overwrite(tmp_path) -> None:
    _store(tmp_path).close()
    with pytest.raises(UserError, match="already exists"):
        _store(tmp_path)


def test_open_errors_are_one_line(tmp_path) -> None:
    not_db = tmp_path / "notes.txt"
    not_db.write_text("hello " * 100)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (a)")
    for path, pattern in [(tmp_path / "missing.db", "no search database"),
                          (not_db, "not a search database"), (other, "not a search database")]:
        with pytest.raises(UserError, match=pattern) as err:
            Storage.open(path)
        assert "\n" not in str(err.value)


def test_newer_schema_is_refused(tmp_path) -> None:
    store = _store(tmp_path)
    store.set_meta("schema_version", SCHEMA_VERSION + 1)
    store.close()
    with pytest.raises(UserError, match="newer version"):
        Storage.open(tmp_path / "runs" / "s.db")
