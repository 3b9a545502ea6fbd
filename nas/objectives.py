"""A search's objectives: which measured values of a trial it minimises, and how to read them.

A training search names them (``val_error``, ``params``, ``flops``, ``latency``): the trainer
measures all of them for every trial (`nas.footprint`), and the loop writes the chosen ones,
in the user's order, into `Result.objectives`. A function's search (`nas.optimize`) names its
own: the function returns that many values, and they are taken as they come.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

from nas.errors import UserError
from nas.types import Result, TrialStatus

#: The accuracy objective every training search keeps: the result's loss.
VAL_ERROR = "val_error"


def _loss(result: Result) -> float | None:
    return result.loss if result.ok else None


def _footprint(field: str) -> Callable[[Result], float | None]:
    def value(result: Result) -> float | None:
        out = None if result.footprint is None else getattr(result.footprint, field)
        return None if out is None else float(out)
    return value


#: What a training search can minimise -> how to read it off a result (None: not measured).
MEASURED: dict[str, Callable[[Result], float | None]] = {
    VAL_ERROR: _loss,
    "params": _footprint("params"),
    "flops": _footprint("flops_per_sample"),
    "latency": _footprint("latency_ms"),
}


def parse_objectives(value: str | Sequence[str] | None, *, measured: bool = True
                     ) -> tuple[str, ...] | None:
    """``"val_error,params"`` (or a list) as checked names; None or one name: a plain search.

    With `measured` (a training search) each name must be one the trainer measures and
    ``val_error`` must be among them (a search of size alone would return the smallest, not a
    good, model).
    """
    if value is None:
        return None
    names = tuple(n.strip() for n in (value.split(",") if isinstance(value, str) else value))
    names = tuple(n for n in names if n)
    if len(set(names)) != len(names):
        raise UserError(f"objectives must be distinct, got {', '.join(names)}")
    if measured:
        unknown = [n for n in names if n not in MEASURED]
        if unknown:
            raise UserError(f"unknown objective {unknown[0]!r}: choose from "
                            f"{', '.join(MEASURED)}")
        if names and VAL_ERROR not in names:
            raise UserError(f"objectives must include {VAL_ERROR} (the model's accuracy), "
                            f"got {', '.join(names)}")
    if len(names) <= 1:
        return None
    return names


@dataclasses.dataclass(frozen=True)
class Objectives:
    """The search's objectives (None: one, the loss); `measured`: read off the trainer's
    results, else the function returns them itself."""

    names: tuple[str, ...] | None = None
    measured: bool = True

    @property
    def count(self) -> int:
        """How many values each result ranks by."""
        return 1 if self.names is None else len(self.names)

    def measure(self, result: Result) -> Result:
        """`result` with the search's objective values (inf where one was not measured, so it
        ranks last); a function's values of the wrong count fail the trial, saying so."""
        if not result.ok:
            return result
        if self.names is None:
            if self.measured or result.objectives is None:
                return result
            return Result.failure(
                TrialStatus.FAILED, f"the objective returned {len(result.objectives)} values: "
                "name them (nas.optimize(..., objectives=[...])) to search them all",
                epochs=result.epochs, seconds=result.seconds, cost=result.cost)
        if not self.measured:
            got = 1 if result.objectives is None else len(result.objectives)
            if got == self.count:
                return result
            why = (f"the objective returned {got} value(s) for the search's {self.count} "
                   f"objectives ({', '.join(self.names)})")
            return Result.failure(TrialStatus.FAILED, why, epochs=result.epochs,
                                  seconds=result.seconds, cost=result.cost)
        values = [MEASURED[name](result) for name in self.names]
        return dataclasses.replace(result, objectives=tuple(
            math.inf if v is None else float(v) for v in values))
