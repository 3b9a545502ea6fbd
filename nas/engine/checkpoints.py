"""A search's checkpoints on disk: written atomically, journaled, and dropped once unused.

The file format itself (what a model file holds, its version, the one `torch.load`) belongs to
`spaces.checkpoint`, so an exported model loads with torch and `spaces` alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nas.errors import DiskFull, UserError, is_disk_full
from nas.storage import Storage


def save_atomic(payload: Mapping[str, Any], path: Path) -> None:
    """Write a torch file so a reader never sees half of it (write aside, then rename).

    The side file is created new, never opened through a symlink planted in its place (whose
    target would be overwritten); the rename replaces a link at `path`, not its target.
    """
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a link is removed, not followed
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                 0o644)
    with os.fdopen(fd, "wb") as f:
        torch.save(dict(payload), f)
    os.replace(tmp, path)


class Checkpoints:
    """The checkpoint folder beside a journal; the journal's rows say which file is whose."""

    def __init__(self, store: Storage) -> None:
        self.store = store

    def paths(self) -> dict[int, Path]:
        """Trial id -> its checkpoint file."""
        return self.store.checkpoints()

    def write(self, trial_id: int, payload: Mapping[str, Any]) -> Path:
        """Write a trial's checkpoint file (its row goes in with the trial's result)."""
        folder = self.store.checkpoint_dir
        if folder.is_symlink():
            raise UserError(f"{folder} is a symbolic link; a journal's checkpoint folder must "
                            "be a plain folder: remove the link")
        path = folder / f"trial-{trial_id}.pt"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            save_atomic(payload, path)
        except (OSError, RuntimeError) as exc:
            if not is_disk_full(exc):
                raise
            path.with_name(path.name + ".tmp").unlink(missing_ok=True)  # free what it took
            raise DiskFull(self.store.path) from None
        return path

    def drop_unused(self, keep: set[int]) -> None:
        """Delete checkpoints nothing can use any more, so disk stays bounded."""
        for trial_id, path in self.paths().items():
            if trial_id not in keep:
                self.store.remove_checkpoint(trial_id)  # journal first: never a dangling row
                path.unlink(missing_ok=True)

    def remove_orphans(self) -> None:
        """Delete files a kill left between writing and journaling: they belong to nothing."""
        known = {p.name for p in self.paths().values()}
        for orphan in self.store.checkpoint_dir.glob("*.pt*"):
            if orphan.name not in known:
                orphan.unlink(missing_ok=True)
