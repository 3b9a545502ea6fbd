"""The wall-clock guard of the checks: an endless loop in ask or tell fails instead of hanging.

`guarded` wraps a check so that it ends within `CHECK_TIMEOUT_S` and fails only with an
AssertionError; `_within` limits any call.
"""

from __future__ import annotations

import functools
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from nas.testing.driver import _label
from searchers.base import Searcher

#: Wall-clock limit of one check; only an endless loop should come near it.
CHECK_TIMEOUT_S = 30.0
#: A searcher with `costly_asks` gets this many times CHECK_TIMEOUT_S.
COSTLY_FACTOR = 50.0
#: Once the limit is passed, the alarm fires again this often until the check has stopped.
REPEAT_S = 0.05

Check = Callable[[type[Searcher]], None]
T = TypeVar("T")


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so a searcher's `except Exception` cannot eat it."""


def _within(seconds: float, what: str, fn: Callable[[], T]) -> T:
    """`fn()`, failing with AssertionError if it runs longer than `seconds` (an endless loop)."""
    message = f"{what} did not finish within {seconds:g} s: an endless loop in ask or tell?"
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
        if outer_delay and outer_delay <= seconds:
            return fn()  # an enclosing limit (pytest-timeout, an outer check) fires first anyway

        armed = [True]

        def on_alarm(signum: int, frame: Any) -> None:
            if armed[0]:
                raise _Timeout

        start = time.monotonic()
        previous = signal.signal(signal.SIGALRM, on_alarm)
        # The alarm repeats: C code that clears every pending error (numpy's array coercion
        # does) can swallow one _Timeout, and a one-shot alarm then never fires again.
        signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT_S)
        try:
            try:
                return fn()
            finally:
                # First, before any call: the interpreter runs a signal handler only at calls
                # and loop jumps, so no _Timeout can land between here and the store.
                armed[0] = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                if outer_delay:
                    left = max(outer_delay - (time.monotonic() - start), 1e-3)
                    signal.setitimer(signal.ITIMER_REAL, left, outer_interval)
        except _Timeout:
            raise AssertionError(message) from None
    # No SIGALRM here (Windows, a worker thread): run it in a daemon thread and stop waiting.
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True, name=f"check: {what}")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise AssertionError(message)
    if "error" in box:
        raise box["error"]
    return box["value"]


def guarded(fn: Check) -> Check:
    """`fn` behind the watchdog, every failure an AssertionError naming the check and the class."""

    @functools.wraps(fn)
    def check(cls: type[Searcher]) -> None:
        what = f"{fn.__name__}({_label(cls)})"
        try:
            # CHECK_TIMEOUT_S is read at call time so a test can shorten it.
            limit = CHECK_TIMEOUT_S * (COSTLY_FACTOR if cls.costly_asks else 1.0)
            _within(limit, what, lambda: fn(cls))
        except AssertionError:
            raise
        except Exception as exc:
            # One failure type for every check; the chained traceback shows where it broke.
            raise AssertionError(f"{what} raised {type(exc).__name__}: {exc}") from exc

    return check
