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
    """Write the best trial's (or `trial`'s) weights, config, space and scores to `output`.

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
    payload["val_accuracy"] = best.val_accuracy
    payload["test_accuracy"] = (summary.test_accuracy if summary is not None
                                and summary.best_trial == best.id else None)
    if out.parent and not out.parent.exists():
        raise UserError(f"cannot write {out}: folder {out.parent} does not exist")
    try:
        save_atomic(payload, out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc}") from None
    return out
