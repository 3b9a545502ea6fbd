"""Damaged or edited journals (issue 21, item 11): one line that says what is wrong, never a
traceback; `nas resume --repair` drops what cannot be trusted and the search goes on."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import nas
from nas.cli import main
from nas.errors import UserError
from nas.records import MetaKey
from nas.storage import Storage
from tests.helpers import one_line_error
from tests.test_journal_safety import _unfinished


def _sql(db: Path, statement: str, *args: object) -> None:
    with sqlite3.connect(db) as con:
        con.execute(statement, args)
    con.close()



def test_edited_settings_are_named_and_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    db = _unfinished(tmp_path, monkeypatch)
    with Storage.open(db) as store:
        settings = {**store.settings, "trial_budget": "20ep"}
        store.set_meta(MetaKey.SETTINGS, settings)
    err = one_line_error(capsys, ["resume", str(db)])
    assert "settings were changed" in err and "trial_budget" in err


def test_other_data_on_resume_is_refused(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    db = _unfinished(tmp_path, monkeypatch)
    other = nas.load_dataset("synthetic", n_samples=500, seed=0)
    with pytest.raises(UserError, match="data no longer matches"):
        nas.resume(db, data=other, progress=False)


@pytest.mark.parametrize(("damage", "message"), [
    ("UPDATE meta SET value = '\"abc\"' WHERE key = 'schema_version'", "schema version"),
    ("DROP TABLE trials", "no trials table"),
    ("UPDATE meta SET value = '{not json' WHERE key = 'settings'", "'settings' entry"),
])
def test_a_damaged_journal_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str], damage: str,
                                       message: str) -> None:
    db = _unfinished(tmp_path, monkeypatch)
    _sql(db, damage)
    for command in (["resume", str(db)], ["show", str(db)]):
        err = one_line_error(capsys, command)
        assert "damaged" in err and message in err


@pytest.mark.parametrize("damage", ["UPDATE trials SET config = '{bad' WHERE id = 1",
                                    "UPDATE trials SET status = 'zombie' WHERE id = 1"])
def test_repair_drops_an_unreadable_row_and_the_search_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        damage: str) -> None:
    db = _unfinished(tmp_path, monkeypatch)
    _sql(db, damage)
    err = one_line_error(capsys, ["resume", str(db)])
    assert "trial row 1 cannot be read" in err and "--repair" in err
    assert main(["resume", str(db), "--repair", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "repair   trial row 1 could not be read" in out
    with Storage.open(db) as store:
        assert store.meta("state") == "finished"
        assert [r.id for r in store.trials()] == [0, 1, 2]  # run again from trial 1


def test_a_damaged_checkpoint_neither_crashes_the_end_nor_survives_a_repair(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    db = _unfinished(tmp_path, monkeypatch)
    with Storage.open(db) as store:
        kept = store.checkpoints()
    victim = sorted(kept)[0]
    kept[victim].write_bytes(b"not a checkpoint")
    assert main(["resume", str(db), "--repair", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"the checkpoint of trial {victim} cannot be loaded" in out
    with Storage.open(db) as store:
        assert victim not in store.checkpoints()
        summary = store.meta("summary")
    assert summary is not None and json.dumps(summary)
