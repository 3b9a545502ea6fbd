"""Budgets with a unit (epochs, seconds, trials): one parser, one formatter, and the one rule of
what a finished trial is charged (`charge`); the ledger that sums it is `nas.engine.ledger`."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from nas.errors import UserError

if TYPE_CHECKING:
    from nas.types import Result


class Unit(str, Enum):
    """What a budget counts."""

    EPOCHS = "ep"
    SECONDS = "s"
    TRIALS = "trials"
    #: The objective's own budget unit (`nas.optimize`): the sum of the trials' budgets.
    UNITS = "u"


_SUFFIXES: dict[str, tuple[Unit, float]] = {
    "ep": (Unit.EPOCHS, 1.0),
    "epoch": (Unit.EPOCHS, 1.0),
    "epochs": (Unit.EPOCHS, 1.0),
    "s": (Unit.SECONDS, 1.0),
    "sec": (Unit.SECONDS, 1.0),
    "m": (Unit.SECONDS, 60.0),
    "min": (Unit.SECONDS, 60.0),
    "h": (Unit.SECONDS, 3600.0),
    "trial": (Unit.TRIALS, 1.0),
    "trials": (Unit.TRIALS, 1.0),
    "u": (Unit.UNITS, 1.0),
}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Budget:
    """An amount with a unit, e.g. ``Budget.parse("10m") == Budget(600, Unit.SECONDS)``."""

    amount: float
    unit: Unit

    def __post_init__(self) -> None:
        if not (math.isfinite(self.amount) and self.amount > 0):
            raise UserError(f"a budget must be a positive number, got {self.amount!r}")
        object.__setattr__(self, "unit", Unit(self.unit))

    @classmethod
    def parse(cls, text: str | Budget) -> Budget:
        """Read ``300ep``, ``90s``, ``10m``, ``1.5h``, ``50trials`` or ``2000u``.

        A bare number is in the objective's own budget units (``u``).
        """
        if isinstance(text, Budget):
            return text
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            return cls(float(text), Unit.UNITS)
        match = _PATTERN.match(str(text))
        suffix = match.group(2).lower() if match else ""
        if not match or suffix not in _SUFFIXES:
            raise UserError(
                f"cannot read budget {text!r}: write a number and a unit, "
                "e.g. 300ep, 90s, 10m, 1h, 50trials or 2000u"
            )
        unit, scale = _SUFFIXES[suffix]
        amount = float(match.group(1)) * scale
        if not (math.isfinite(amount) and amount > 0):
            raise UserError(f"a budget must be a positive number, got {text!r}")
        if unit is Unit.TRIALS and amount != int(amount):
            raise UserError(f"a number of trials must be whole, got {text!r}")
        return cls(amount, unit)

    def __str__(self) -> str:
        return format_amount(self.amount, self.unit)


def _exact(x: float) -> str:
    # repr is the shortest text that reads back to the same float.
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def format_amount(amount: float, unit: Unit) -> str:
    """Format an amount so that `Budget.parse` reads back exactly the same amount."""
    unit = Unit(unit)
    if unit is Unit.TRIALS:
        return f"{round(amount)}trials"
    if unit is Unit.EPOCHS:
        return f"{_exact(amount)}ep"
    if unit is Unit.UNITS:
        return f"{_exact(amount)}u"
    if amount >= 3600 and amount % 3600 == 0:
        return f"{_exact(amount / 3600)}h"
    if amount >= 60 and amount % 60 == 0:
        return f"{_exact(amount / 60)}m"
    return f"{_exact(amount)}s"


def display_amount(amount: float, unit: Unit) -> str:
    """An amount for people: seconds to a tenth, other units as `format_amount` writes them."""
    unit = Unit(unit)
    if unit is Unit.SECONDS and amount != int(amount) and amount % 60 != 0:
        return f"{amount:.1f}s"
    if unit in (Unit.EPOCHS, Unit.UNITS) and amount != round(amount, 3):
        return f"{amount:.3f}".rstrip("0") + unit.value
    return format_amount(amount, unit)


def charge(result: Result, unit: Unit) -> float:
    """What a ledger in `unit` charges for a finished trial's `result` (a reused result: 0).

    A time budget's ledger counts wall-clock time, loop overhead included; this is the trial's
    own share of it, its seconds.
    """
    if result.reused_from is not None:
        return 0.0
    if unit is Unit.TRIALS:
        from nas.types import TrialStatus

        # A configuration turned away by a size limit trained nothing: not one of the trials.
        refused = result.status is TrialStatus.INFEASIBLE and not result.epochs
        return 0.0 if refused else 1.0
    if unit is Unit.SECONDS:
        return result.seconds
    return result.cost if result.cost is not None else result.epochs


def process_started_at() -> float:
    """When this process started, as a ``time.monotonic()`` value: a command's time budget
    counts its start-up (importing torch) too. Now, where the system cannot tell."""
    import time

    now = time.monotonic()
    try:
        with open("/proc/self/stat") as stat:
            # Field 22 (after the command name in parentheses): start time in clock ticks
            # since boot; /proc/uptime: seconds since boot, on the same clock as monotonic.
            fields = stat.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as uptime:
            up = float(uptime.read().split()[0])
        age = up - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return now
    return now - age if 0 <= age < 3600 else now
