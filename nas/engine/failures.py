"""Why a run of failed trials stopped a search, with the likely cause and what to do."""

from __future__ import annotations

from collections.abc import Sequence

from nas.types import Result, TrialStatus


def likely_cause(failures: Sequence[Result]) -> str:
    """The stop line for `failures` in a row: what they share points at the cause."""
    head = f"{len(failures)} trials in a row failed"
    errors = [(r.error or r.status.value).splitlines()[0] for r in failures]
    if all(r.status is TrialStatus.DIVERGED for r in failures):
        return (f"{head}: every one diverged (loss became NaN/inf); the learning rates are "
                "likely too high: narrow them, e.g. --set lr=0.0001:0.01")
    if all(e == "out of memory" for e in errors):
        return (f"{head}: every one ran out of memory; narrow the model sizes or batch_size "
                "(--set ...) or use a device with more memory")
    if len(set(errors)) == 1:
        return (f"{head}, each with the same error, likely a bug in the objective or the "
                f"data rather than in the candidates: {errors[-1]}")
    return f"{head}; the last error: {errors[-1]}"
