"""The one error type for a user's mistake, and the interruption of a search."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A mistake the user can fix; the CLI prints its one-line message and exits 2."""


class DiskFull(UserError):
    """No space left where a journal or its checkpoints are written. What was committed stays
    consistent: free some space and `nas resume` continues (the unfinished trial runs again)."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(f"no space left on the device holding {path}: free some space, then "
                         f"`nas resume {path}` continues the search (finished trials are kept)")
        self.path = path


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` says the disk (or a quota) is full: an OSError's errno, SQLite's message,
    or torch's writer failing mid-file."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return "disk is full" in text or "no space left" in text or (
        isinstance(exc, RuntimeError) and ("unexpected pos" in text or "file write failed"
                                           in text))


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a search; its journal is consistent and `nas resume` continues it."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


class ObjectiveError(RuntimeError):
    """The objective raised the same exception in each of a search's first trials (`catch`
    lets a search record such failures and go on); `error` holds the first one's traceback."""

    def __init__(self, message: str, *, error: str, path: Path | str | None) -> None:
        super().__init__(message)
        self.error = error
        self.path = path
