"""`nas export`: the best model (or any kept trial's) of a search as one self-describing file."""

from __future__ import annotations

import os
from pathlib import Path

from nas.engine.checkpoints import save_atomic
from nas.errors import UserError
from nas.journal import JournalView
from nas.storage import Storage
from spaces import checkpoint


def export(db: str | os.PathLike[str], output: str | os.PathLike[str], *,
           trial: int | None = None, pareto_index: int | None = None) -> Path:
    """Write the search's final model to `output`: its ensemble when it chose one (the result
    `nas search` reports), else its best trial; or `trial`'s, or a front point's.

    The file loads with ``spaces.load_model(output)`` in a fresh process (torch + spaces only).
    A search keeps the checkpoints of its best trials, of its Pareto front under size limits
    or several objectives (`pareto_index` K: the K-th point of `nas show`'s front, 0 the most
    accurate), and of those a later trial may continue: another trial's
    is gone, and asking for it is one clear error naming those kept.
    """
    out = Path(output)
    with Storage.open(db) as store:
        view = JournalView.of(store)
        checkpoints = store.checkpoints()
    if pareto_index is not None:
        from nas.pareto import front_of

        names, front = front_of(view.records, view.settings.objectives)
        if not 0 <= pareto_index < len(front):
            raise UserError(f"{db}: --pareto-index must be 0 to {len(front) - 1} (the front of "
                            f"{', '.join(names)} has {len(front)} points)")
        trial = front[pareto_index].record.id
    ensemble = view.summary.ensemble if view.summary is not None else None
    if trial is None and ensemble and len(ensemble["weights"]) > 1:
        return _export_ensemble(db, out, view, checkpoints, ensemble)
    if trial is None:
        best = view.best()
        if best is None:
            raise UserError(f"{db} has no finished trial to export yet")
    else:
        best = next((r for r in view.records if r.id == trial), None)
        if best is None or best.result is None or not best.result.ok:
            raise UserError(f"{db} has no trained trial {trial}")
    kept = sorted(i for i, path in checkpoints.items() if path.is_file())
    if best.id not in kept:
        raise UserError(f"{db}: the checkpoint of trial {best.id} was not kept (kept: "
                        f"{', '.join(map(str, kept)) or 'none'})")
    try:
        payload = checkpoint.read(checkpoints[best.id])
    except ValueError as exc:
        raise UserError(f"{db}: cannot export trial {best.id}: {exc}") from None
    settings, summary = view.settings, view.summary
    payload["space"] = dict(view.space) or None
    payload["space_name"] = settings.space_name
    payload["data"] = None if settings.data is None else settings.data.name
    payload["classes"] = _classes(view)
    payload["val_accuracy"] = best.val_accuracy
    payload["test_accuracy"] = (summary.test_accuracy if summary is not None
                                and summary.best_trial == best.id else None)
    _write(payload, out)
    return out


def _export_ensemble(db: str | os.PathLike[str], out: Path, view: JournalView,
                     checkpoints: dict[int, Path], ensemble: dict) -> Path:
    """The search's greedy ensemble as one model file (its members' files and weights)."""
    weights = {int(k): float(v) for k, v in ensemble["weights"].items()}
    missing = [i for i in weights if i not in checkpoints or not checkpoints[i].is_file()]
    if missing:
        raise UserError(f"{db}: the checkpoints of the ensemble's trials {missing} were not "
                        "kept; export one trial with --trial N")
    try:
        members = [checkpoint.read(checkpoints[i]) for i in weights]
    except ValueError as exc:
        raise UserError(f"{db}: cannot export the ensemble: {exc}") from None
    for member in members:
        member.pop("train_state", None)  # what continuing a trial needs, not a model's user
    settings = view.settings
    payload = checkpoint.ensemble_payload(
        members, list(weights.values()), trial_ids=list(weights), space=dict(view.space) or None,
        space_name=settings.space_name,
        data=None if settings.data is None else settings.data.name,
        val_accuracy=ensemble.get("val_accuracy"), test_accuracy=ensemble.get("test_accuracy"),
        classes=_classes(view))
    _write(payload, out)
    return out


def _write(payload: dict, out: Path) -> None:
    if out.parent and not out.parent.exists():
        raise UserError(f"cannot write {out}: folder {out.parent} does not exist")
    try:
        save_atomic(payload, out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc}") from None


def _classes(view: JournalView) -> list[str] | None:
    """The class names the data gave (a CSV's labels, a folder's sub-folders), if any."""
    data = view.settings.data
    return None if data is None or not data.classes else list(data.classes)
