"""Reopening a journal: a larger total budget for a search (`nas resume --budget`), and the
journal a call names when it may continue one (`load_if_exists`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from nas.budget import Budget, display_amount
from nas.errors import UserError
from nas.journal import JournalView, MetaKey, SearchState
from nas.storage import MEMORY, Storage
from nas.types import TrialKind


def extend_budget(store: Storage, view: JournalView, budget: Budget | str) -> None:
    """Give the search `budget` as its new total (journaled, so later resumes keep it); a
    finished search is reopened. Refused: another unit, no more than was spent, or a search
    that trained its final replicas already (their reserve was the end of its budget)."""
    new = budget if isinstance(budget, Budget) else Budget.parse(str(budget))
    old, spent = view.limit, float(view.spent or 0.0)
    if old is None or new.unit is not old.unit:
        unit = old.unit.value if old is not None else "?"
        raise UserError(f"--budget {new}: the search's budget is in {unit}; give the new "
                        "total in the same unit")
    if new.amount <= spent:
        raise UserError(f"--budget {new} is no more than the {display_amount(spent, new.unit)} "
                        "already spent: give a larger total")
    if any(r.kind is TrialKind.REPLICA for r in view.records) or store.meta(
            MetaKey.SEARCHER_DONE):
        raise UserError(f"{store.path}: the search ended its searcher's phase and trained its "
                        "final replicas; start a new search that builds on it instead "
                        f"(nas search --warm-start {store.path})")
    store.set_meta(MetaKey.BUDGET_CHANGES, [*view.budget_changes, {
        "budget": str(new), "spent": spent, "at": time.time()}])
    if view.finished_search:
        store.set_meta(MetaKey.STATE, SearchState.INTERRUPTED.value)



def journal_path(storage: str | os.PathLike[str] | None, name: str) -> Path:
    """Where a call's journal lives: `storage`, else ``runs/<name>.db``."""
    return Path(storage) if storage is not None else Path("runs") / f"{name}.db"


def existing_journal(storage: str | os.PathLike[str] | None, name: str | None) -> Path | None:
    """The journal a call names (`journal_path`), if it exists; None for an in-memory one."""
    if storage is None and name is None:
        return None
    path = journal_path(storage, name or "")
    return path if str(path) != MEMORY and path.exists() else None
