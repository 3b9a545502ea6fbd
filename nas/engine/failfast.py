"""Fail fast: a search whose first trials all raise the same exception stops and raises it
(as Optuna raises an objective's exception unless told to `catch` it), rather than running
a budget of failing trials and returning nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas.engine.callbacks import Callback
from nas.errors import ObjectiveError
from nas.types import Result, Trial, TrialStatus

#: First trials that, failing alike, end the search with `ObjectiveError`.
FAIL_FAST_TRIALS = 3

#: What `catch` may be: True (never raise), or exception classes (or their names) to record.
Catch = bool | Sequence[type[BaseException] | str]


class FailFast(Callback):
    """Raises `ObjectiveError` once the first `FAIL_FAST_TRIALS` told trials failed with the
    same exception, unless its type is caught."""

    def __init__(self, catch: Catch = ()) -> None:
        if not isinstance(catch, bool) and not all(
                isinstance(c, str) or (isinstance(c, type) and issubclass(c, BaseException))
                for c in catch):
            raise TypeError("catch is True or a sequence of exception classes")
        self.catch = catch
        self.seen: list[Result] = []
        self.path: Path | None = None

    def on_search_start(self, path: Path, settings: Any, ledger: Any) -> None:
        """Note the journal (named in the error) and start counting (a resume counts anew:
        its earlier trials were seen by the run before)."""
        self.path = path

    def on_trial_end(self, trial: Trial, result: Result, best: Any, ledger: Any) -> None:
        """Count the first trials; raise when they failed alike."""
        if len(self.seen) >= FAIL_FAST_TRIALS or self.catch is True:
            return
        self.seen.append(result)
        if len(self.seen) < FAIL_FAST_TRIALS:
            return
        if not all(r.status is TrialStatus.FAILED and r.error for r in self.seen):
            return
        firsts = {(r.error or "").splitlines()[0] for r in self.seen}
        if len(firsts) != 1:
            return
        first = firsts.pop()
        kind = first.split(":", 1)[0].strip()
        if any(kind == (c if isinstance(c, str) else c.__name__) for c in self.catch or ()):
            return
        raise ObjectiveError(
            f"the objective raised {first!r} in each of the first {FAIL_FAST_TRIALS} trials "
            f"(journal {self.path}); fix it, or pass catch=({kind},) to record such failures "
            "and go on. The first one's traceback:\n" + (self.seen[0].error or ""),
            error=self.seen[0].error or "", path=self.path)
