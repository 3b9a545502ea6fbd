"""`nas export`: the best model of a search as one self-describing file."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from nas.errors import UserError
from nas.storage import Storage


def export(db: str | os.PathLike[str], output: str | os.PathLike[str]) -> Path:
    """Write the best trial's weights, config, space and scores to `output`.

    The file loads with ``spaces.load_model(output)`` in a fresh process (torch + spaces only).
    """
    from nas.runner import save_atomic

    out = Path(output)
    with Storage.open(db) as store:
        ranked = store.ranked()
        checkpoints = store.checkpoints()
        settings = store.settings
        summary = store.meta("summary") or {}
    if not ranked:
        raise UserError(f"{db} has no finished trial to export yet")
    best = ranked[0]
    if best.id not in checkpoints or not checkpoints[best.id].is_file():
        raise UserError(f"{db}: the checkpoint of best trial {best.id} is missing")
    payload = torch.load(checkpoints[best.id], map_location="cpu", weights_only=True)
    payload["space"] = settings.get("space")
    payload["space_name"] = settings.get("space_name")
    payload["data"] = settings.get("data", {}).get("name")
    payload["val_accuracy"] = best.val_accuracy
    payload["test_accuracy"] = (summary.get("test_accuracy")
                                if summary.get("best_trial") == best.id else None)
    if out.parent and not out.parent.exists():
        raise UserError(f"cannot write {out}: folder {out.parent} does not exist")
    try:
        save_atomic(payload, out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc}") from None
    return out
