"""A journal as machine-readable tables: `nas show --format json|csv` (Optuna's
``trials_dataframe`` / ``optuna trials -f``), one row per trial with its full configuration."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from nas.journal import JournalView, TrialRecord


def trial_row(view: JournalView, record: TrialRecord) -> dict[str, Any]:
    """One trial as plain values: where it stands, what it ran at, what it scored."""
    result = record.result
    metrics = result.metrics if result is not None else {}
    footprint = None if result is None else result.footprint
    return {
        "id": record.id,
        "status": record.status.value,
        "kind": record.trial.kind.value,
        "origin": record.trial.info.get("origin"),
        "parent": record.trial.parent,
        "budget": view.budget_of(record),
        "epochs": None if result is None else result.epochs,
        "seconds": None if result is None else result.seconds,
        "loss": None if result is None or not math.isfinite(result.loss) else result.loss,
        "val_accuracy": metrics.get("val_accuracy"),
        "val_loss": metrics.get("val_loss"),
        "params": footprint.params if footprint is not None else metrics.get("params"),
        "objectives": None if result is None or result.objectives is None
        else list(result.objectives),
        "error": None if result is None else result.error,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "config": dict(record.trial.config),
    }


def trials_json(view: JournalView) -> str:
    """The search (settings, state, spend, summary) and every trial, as one JSON document."""
    settings = view.settings
    summary = view.summary
    doc = {
        "search": {"name": settings.name, "state": view.state, "space": settings.space_name,
                   "searcher": settings.searcher.name, "seed": settings.seed,
                   "budget": settings.budget, "trial_budget": settings.trial_budget,
                   "spent": view.spent, "objectives": list(settings.objectives or ()),
                   "best_trial": None if summary is None else summary.best_trial,
                   "test_accuracy": None if summary is None else summary.test_accuracy},
        "trials": [trial_row(view, r) for r in view.records],
    }
    return json.dumps(doc, indent=1, default=str) + "\n"


def trials_csv(view: JournalView) -> str:
    """One row per trial; the configuration in ``config.<name>`` columns (empty: inactive)."""
    rows = [trial_row(view, r) for r in view.records]
    names = sorted({name for row in rows for name in row["config"]})
    fields = [k for k in (rows[0] if rows else trial_row_fields()) if k != "config"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*fields, *(f"config.{n}" for n in names)])
    for row in rows:
        cells = [json.dumps(row[k]) if isinstance(row[k], list) else row[k] for k in fields]
        writer.writerow(["" if c is None else c for c in cells]
                        + ["" if row["config"].get(n) is None else row["config"][n]
                           for n in names])
    return out.getvalue()


def trial_row_fields() -> list[str]:
    """The columns of `trial_row`, in order (for a journal without trials)."""
    return ["id", "status", "kind", "origin", "parent", "budget", "epochs", "seconds", "loss",
            "val_accuracy", "val_loss", "params", "objectives", "error", "started_at",
            "finished_at", "config"]
