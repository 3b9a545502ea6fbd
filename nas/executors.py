"""Where trials run. Today: in this process; the runner only sees `submit` and `Future`s."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class InProcessExecutor:
    """Runs each submitted call at once, in this process (the sequential default)."""

    name = "inprocess"
    workers = 1

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run `fn` now and return a finished future holding its value or exception."""
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt and SystemExit stop the search, not just the trial
            future.set_exception(exc)
        return future
