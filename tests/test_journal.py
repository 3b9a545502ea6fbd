from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nas.budget import Budget, Unit
from nas.errors import UserError
from nas.journal import (
    SETTINGS_VERSION,
    DataSpec,
    JournalView,
    MetaKey,
    RunKind,
    SearcherSpec,
    SearchSettings,
    Summary,
    TrialRecord,
    events,
    incumbent_key,
    ranked,
)
from nas.storage import SCHEMA_VERSION, Storage
from nas.types import Result, Trial, TrialKind, TrialStatus

SCHEMA2 = Path(__file__).parent / "fixtures" / "schema2"


def _schema2_copy(tmp_path: Path) -> Path:
    """A copy of the finished schema-2 journal: opening one upgrades it, the fixture must stay."""
    db = tmp_path / "search-full.db"
    shutil.copy(SCHEMA2 / "search-full.db", db)
    return db


def _search_settings() -> SearchSettings:
    return SearchSettings(
        name="s", space_name="residual-mlp", space={"name": "x"},
        searcher=SearcherSpec("bohb", {"eta": 3}, 7), seed=1, budget="16trials",
        trial_budget="9ep", data=DataSpec("digits", {"seed": 2}, {"train": 10}),
        trainer={"device": "cpu"}, continue_trials=True, dedup=True, ensemble=4, replicas=2,
        auto=("space   why",))


def test_settings_round_trip_through_json() -> None:
    for settings in (_search_settings(), SearchSettings(
            name="o", kind=RunKind.OPTIMIZE, objective="m.f", space_name="custom",
            searcher=SearcherSpec("tpe", {}, 3), budget="20u", min_budget=1.0,
            max_budget=9.0)):
        stored = json.loads(json.dumps(settings.to_dict()))
        assert stored["version"] == SETTINGS_VERSION
        assert SearchSettings.from_dict(stored) == settings


def test_settings_read_the_untyped_dicts_of_schema2_journals(tmp_path) -> None:
    with Storage.open(_schema2_copy(tmp_path)) as store:
        raw = store.settings
    assert "version" not in raw  # written before settings were typed
    settings = SearchSettings.from_dict(raw)
    assert settings.searcher.name == "bohb" and settings.replicas == 2
    assert settings.limit == Budget(16, Unit.TRIALS) and settings.full_budget == 9.0
    assert settings.trial_unit is Unit.EPOCHS and settings.data.name == "synthetic"
    # What a settings dict lacks takes the default its own code used.
    old = SearchSettings.from_dict({"budget": "3trials", "trial_budget": "1ep"})
    assert (old.dedup, old.ensemble, old.replicas, old.max_failures) == (False, 0, 0, 10)
    with pytest.raises(UserError, match="newer than this code"):
        SearchSettings.from_dict({"version": SETTINGS_VERSION + 1})


def test_summary_round_trip_and_absence() -> None:
    summary = Summary(stopped="budget spent", best_trial=3, test_accuracy=0.9,
                      ensemble={"weights": {"3": 1.0}}, replicas={"of": 3, "trials": [5]},
                      spent=4.0, finished_at=1.0)
    assert Summary.from_dict(json.loads(json.dumps(summary.to_dict()))) == summary
    assert Summary.from_dict(None) is None and Summary.from_dict({}) is None


def test_meta_keys_are_the_strings_schema2_journals_hold(tmp_path) -> None:
    with Storage.open(_schema2_copy(tmp_path)) as store:
        assert store.meta(MetaKey.STATE) == store.meta("state") == "finished"
        assert store.meta(MetaKey.SUMMARY)["best_trial"] == 15
        assert store.meta(MetaKey.SCHEMA_VERSION) == SCHEMA_VERSION  # upgraded on open


def _record(tid: int, loss: float, *, budget: float | None = None, ask: int | None = None,
            tell: int | None = None, status: TrialStatus = TrialStatus.OK,
            tiebreak: float | None = None) -> TrialRecord:
    result = Result(loss=loss, status=status, tiebreak_loss=tiebreak) \
        if status is not TrialStatus.RUNNING else None
    return TrialRecord(Trial(tid, {}, budget), status, result, 0.0, None, None, None,
                       ask_seq=ask, tell_seq=tell)


def test_one_ranking_and_one_multi_fidelity_incumbent() -> None:
    records = [_record(0, 0.3, tiebreak=0.1), _record(1, 0.2, tiebreak=0.9),
               _record(2, 0.2, tiebreak=0.5), _record(3, 0.0, status=TrialStatus.FAILED)]
    assert [r.id for r in ranked(records)] == [2, 1, 0]
    # The highest budget wins over a lower loss at a lower budget, then the loss.
    entries = [(1.0, 0.1), (9.0, 0.5), (9.0, 0.4), (3.0, 0.0)]
    assert min(entries, key=lambda e: incumbent_key(*e)) == (9.0, 0.4)


def test_events_follow_the_journal_order_of_asks_and_tells() -> None:
    # Trial 1 was asked before trial 0 finished; trial 2 is still running (no tell).
    records = [_record(0, 0.5, ask=0, tell=2), _record(1, 0.4, ask=1, tell=3),
               _record(2, 0.0, ask=4, status=TrialStatus.RUNNING)]
    order = [(kind, r.id) for kind, r in events(records)]
    assert order == [("ask", 0), ("ask", 1), ("tell", 0), ("tell", 1), ("ask", 2)]
    # A schema-1 journal (no positions) was sequential: ask k, tell k.
    old = [_record(0, 0.5), _record(1, 0.4)]
    assert [(k, r.id) for k, r in events(old)] == [("ask", 0), ("tell", 0), ("ask", 1),
                                                   ("tell", 1)]


def test_the_view_of_a_schema2_journal(tmp_path) -> None:
    view = JournalView.load(_schema2_copy(tmp_path))
    assert view.finished_search and view.best().id == view.summary.best_trial == 15
    assert [r.kind for r in view.records].count(TrialKind.REPLICA) == 2
    assert all(r.result.tiebreak_loss == r.result.metrics["val_loss"] for r in view.records)
    curve = view.spend_curve()
    assert curve[-1][1] == view.spent == 16  # one per trial, as the ledger charged
    assert view.budget_of(view.records[0]) == 1.0 and view.full_budget == 9.0


def test_a_schema2_journal_that_cannot_be_upgraded_is_read_as_schema3(tmp_path,
                                                                     monkeypatch) -> None:
    import contextlib
    import sqlite3

    db = _schema2_copy(tmp_path)

    @contextlib.contextmanager
    def read_only(self):  # as a file this process may not write would
        raise sqlite3.OperationalError("attempt to write a readonly database")
        yield

    monkeypatch.setattr(Storage, "_transaction", read_only)
    with Storage.open(db) as store:
        assert store.meta("schema_version") == 2  # left as it is
        records = store.trials()
    replicas = [r for r in records if r.kind is TrialKind.REPLICA]
    assert [r.id for r in replicas] == [14, 15]
    assert all(r.trial.info["replica_of"] == 12 for r in replicas)
    assert all(r.result.tiebreak_loss == r.result.metrics["val_loss"] for r in records)
    assert [r.id for r in ranked(records)][:2] == [15, 12]  # tied accuracies, as nas show
