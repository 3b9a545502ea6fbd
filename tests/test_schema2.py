"""Journals written by the schema-2 code (tests/fixtures/schema2, made by its make.py before the
engine was split into packages) open, show, report, export and resume to the same result."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from nas.cli import main
from nas.storage import Storage

FIXTURES = Path(__file__).parent / "fixtures" / "schema2"
sys.path.insert(0, str(FIXTURES))
import make  # noqa: E402

EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


def test_the_fixtures_are_still_schema2() -> None:
    # Opening a journal upgrades it: a test that opened a fixture in place would turn it into
    # a schema-3 journal and every test here would stop testing old journals.
    import sqlite3

    for db in sorted(FIXTURES.glob("*.db")):
        con = sqlite3.connect(f"file:{db}?immutable=1", uri=True)  # writes nothing
        try:
            version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        finally:
            con.close()
        assert json.loads(version[0]) == 2, db.name


def _as_schema2(got: object, want: object) -> object:
    """`got` with only the keys schema 2 had (those in `want`): the fields schema 3 added
    (a trial's kind and seed, a result's tie-break and reuse) are checked on their own."""
    if isinstance(got, dict) and isinstance(want, dict):
        return {k: _as_schema2(v, want[k]) for k, v in got.items() if k in want}
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        return [_as_schema2(g, w) for g, w in zip(got, want, strict=True)]
    return got


def _same(db: Path, name: str) -> None:
    got = make.outcome(db)
    differs = make.close(_as_schema2(got, EXPECTED[name]), EXPECTED[name])
    assert differs is None, differs
    for row in got["trials"]:
        result, trial = row["result"], row["trial"]
        if result is not None and result["metrics"].get("val_loss") is not None:
            assert result["tiebreak_loss"] == result["metrics"]["val_loss"]
        assert (trial.get("kind") == "replica") == ("replica_of" in trial["info"])


def _copy(name: str, to: Path) -> Path:
    db = FIXTURES / f"{name}.db"
    shutil.copy(db, to / db.name)
    if db.with_suffix(".ckpt").exists():
        shutil.copytree(db.with_suffix(".ckpt"), to / db.with_suffix(".ckpt").name)
    return to / db.name


@pytest.mark.parametrize("name", ["search-cut", "replica-cut"])
def test_a_killed_schema2_search_resumes_to_the_uninterrupted_result(tmp_path, name) -> None:
    db = _copy(name, tmp_path)
    assert main(["resume", str(db), "--no-progress"]) == 0
    _same(db, name)
    assert make.close(EXPECTED[name], EXPECTED["search-full"]) is None
    with Storage.open(db) as store:
        seeds = [r.trial.seed for r in store.trials()]
    assert seeds[-1] is not None  # the trials it ran again record their seeds


def test_a_killed_schema2_optimize_run_resumes_to_the_uninterrupted_result(tmp_path) -> None:
    import nas
    from nas.problems import get

    db = _copy("optimize-cut", tmp_path)
    nas.resume(db, objective=get("mf-branin").evaluate, progress=False)
    _same(db, "optimize-cut")


def test_a_finished_schema2_search_shows_reports_and_exports(tmp_path, capsys,
                                                             monkeypatch) -> None:
    import spaces

    _copy("search-full", tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["show", "search-full.db", "--top", "8"]) == 0
    assert capsys.readouterr().out == (FIXTURES / "show.txt").read_text()
    assert main(["resume", "search-full.db"]) == 0
    assert "finished already" in capsys.readouterr().out
    assert main(["report", "search-full.db", "-o", "report"]) == 0
    page = (tmp_path / "report" / "report.html").read_text()
    assert "trial 15" in page or ">15<" in page
    assert main(["export", "search-full.db", "-o", "best.pt"]) == 0
    model = spaces.load_model(tmp_path / "best.pt")
    assert sum(p.numel() for p in model.parameters()) > 0
    _same(tmp_path / "search-full.db", "search-full")
