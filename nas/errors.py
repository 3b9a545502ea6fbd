"""The one error type for a user's mistake, and the interruption of a search."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A mistake the user can fix; the CLI prints its one-line message and exits 2."""


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a search; its journal is consistent and `nas resume` continues it."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path
