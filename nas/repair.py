"""`nas resume --repair`: drop what a damaged or edited journal holds that cannot be trusted,
so that the resume that follows runs those trials again."""

from __future__ import annotations

import os
from pathlib import Path

from nas.budget import Unit, charge
from nas.journal import SearchSettings
from nas.records import MetaKey, TrialRecord
from nas.storage import Storage


def repair(path: str | os.PathLike[str]) -> list[str]:
    """Drop the journal's unreadable trial rows (each with every later trial, which a replay must
    ask again) and its checkpoints that are missing or cannot be loaded (their trials keep their
    results; a promotion from one trains from scratch). One line per thing dropped."""
    from spaces import checkpoint

    notes: list[str] = []
    with Storage.open(Path(path)) as store:
        store.lock()
        bad = store.unreadable_trials()
        if bad:
            first = int(bad[0])
            readable = [r for r in _readable(store, set(bad)) if r.result is not None]
            spent = _spent_after_dropping(store, [r for r in readable if r.id < first],
                                          [r for r in readable if r.id >= first])
            dropped = store.drop_trials_from(first)
            if spent is not None:
                store.set_meta(MetaKey.SPENT, spent)
            notes.append(f"trial row {first} could not be read: it and the {dropped - 1} "
                         "after it are dropped and will run again")
        for trial_id, file in sorted(store.checkpoints().items()):
            try:
                checkpoint.read(file)
            except Exception as exc:  # any way a file fails to load: it cannot be trusted
                store.remove_checkpoint(trial_id)
                file.unlink(missing_ok=True)
                why = "is missing" if isinstance(exc, FileNotFoundError) else \
                    f"cannot be loaded ({type(exc).__name__})"
                notes.append(f"the checkpoint of trial {trial_id} {why}: dropped")
    return notes


def _readable(store: Storage, bad: set[int]) -> list[TrialRecord]:
    """The trial rows that can be read (all but `bad`)."""
    return [store.trial(tid) for tid in store.trial_ids() if tid not in bad]


def _spent_after_dropping(store: Storage, kept: list[TrialRecord],
                          dropped: list[TrialRecord]) -> float | None:
    """The ledger's total once `dropped` are gone: recounted from the kept trials where only
    trials are charged; for a time budget, less the dropped trials' own seconds (what the
    unreadable row took stays charged: it cannot be read)."""
    limit = SearchSettings.from_dict(store.settings).limit
    if limit is None:
        return None
    if limit.unit is not Unit.SECONDS:
        return sum(charge(r.result, limit.unit) for r in kept if r.result is not None)
    spent = float(store.meta(MetaKey.SPENT, 0.0) or 0.0)
    return max(0.0, spent - sum(charge(r.result, limit.unit) for r in dropped
                                if r.result is not None))
