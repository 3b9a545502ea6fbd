"""Hyperparameter specs that can be narrowed, widened or fixed before becoming a ConfigSpace.

Overrides follow Auto-PyTorch's search-space updates: a ``(low, high)`` tuple sets a numeric or
ordinal range, a list sets the choices of a categorical or ordinal parameter, a single value fixes
the parameter.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ConfigSpace import (
    Categorical,
    Constant,
    Float,
    Integer,
    OrdinalHyperparameter,
)
from ConfigSpace.hyperparameters import Hyperparameter

from nas.errors import UserError


@dataclass(frozen=True)
class Param:
    """One searchable setting: ``kind`` is int, float, categorical or ordinal.

    ``allowed`` lists the only values a categorical may take (what the model code can build).
    """

    name: str
    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    allowed: tuple[Any, ...] = ()
    doc: str = ""

    def with_override(self, value: Any) -> Param:
        """This parameter narrowed, widened or fixed by `value` (see module docstring)."""
        if isinstance(value, (tuple, list)) and self.kind in ("int", "float") and len(value) == 2:
            low, high = (self._number(v) for v in value)
            if low > high:
                raise UserError(f"{self.name}: low {low} is above high {high}")
            if self.log and low <= 0:
                raise UserError(f"{self.name} is log-scaled: its range must be positive")
            if low == high:
                return dataclasses.replace(self, low=low, high=high, default=low, choices=())
            default = min(max(self.default, low), high)
            if self.log and not low <= self.default <= high:
                default = math.sqrt(low * high)  # a log range's natural centre
            if self.kind == "int":
                default = round(default)
            return dataclasses.replace(self, low=low, high=high, default=default)
        if isinstance(value, tuple) and self.kind == "ordinal" and len(value) == 2:
            low, high = (self._choice(v) for v in value)
            pool = self.allowed or self.choices
            return self.with_override([c for c in pool if low <= c <= high])
        if isinstance(value, (tuple, list)) and self.kind in ("categorical", "ordinal"):
            choices = tuple(self._choice(v) for v in value)
            if not choices:
                raise UserError(f"{self.name}: give at least one value")
            if len(set(choices)) != len(choices):
                raise UserError(f"{self.name}: repeated values in {list(value)}")
            if self.kind == "ordinal":
                choices = tuple(sorted(choices))
            default = self.default if self.default in choices else choices[0]
            return dataclasses.replace(self, choices=choices, default=default)
        if isinstance(value, (tuple, list)):
            raise UserError(
                f"{self.name}: give (low, high) for a numeric range or a single value to fix it"
            )
        fixed = self._number(value) if self.kind in ("int", "float") else self._choice(value)
        if self.kind in ("int", "float"):
            return dataclasses.replace(self, low=fixed, high=fixed, default=fixed)
        return dataclasses.replace(self, choices=(fixed,), default=fixed)

    @property
    def fixed(self) -> bool:
        """True when only one value is left."""
        if self.kind in ("int", "float"):
            return self.low == self.high
        return len(self.choices) == 1

    def to_hyperparameter(self) -> Hyperparameter:
        """The ConfigSpace hyperparameter for this spec."""
        if self.fixed:
            return Constant(self.name, self.default if self.kind not in ("int", "float")
                            else (int(self.default) if self.kind == "int" else self.default))
        if self.kind == "int":
            return Integer(self.name, (int(self.low), int(self.high)), default=int(self.default),
                           log=self.log)
        if self.kind == "float":
            return Float(self.name, (float(self.low), float(self.high)),
                         default=float(self.default), log=self.log)
        if self.kind == "categorical":
            return Categorical(self.name, list(self.choices), default=self.default)
        return OrdinalHyperparameter(self.name, list(self.choices), default_value=self.default)

    def _number(self, v: Any) -> float | int:
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise UserError(f"{self.name} takes numbers, got {v!r}") from None
        if self.kind == "int":
            if x != int(x):
                raise UserError(f"{self.name} takes whole numbers, got {v!r}")
            return int(x)
        return x

    def _choice(self, v: Any) -> Any:
        pool = self.allowed or self.choices
        for c in pool:
            if c == v or str(c) == str(v):
                return c
        raise UserError(
            f"{self.name} cannot be {v!r}; possible values: {', '.join(str(c) for c in pool)}"
        )


def apply_overrides(params: Sequence[Param], overrides: Mapping[str, Any],
                    *, hidden: Iterable[str] = ()) -> list[Param]:
    """`params` with `overrides` applied; an unknown name is a UserError listing the known ones."""
    by_name = {p.name: p for p in params}
    known = [n for n in by_name if n not in set(hidden)]
    for name, value in overrides.items():
        if name not in by_name:
            raise UserError(
                f"the space has no hyperparameter {name!r}; known: {', '.join(known)}"
            )
        by_name[name] = by_name[name].with_override(value)
    return [by_name[p.name] for p in params]


def parse_assignment(text: str) -> tuple[str, Any]:
    """Read a CLI override: ``width=32:256`` (range), ``optimizer=adam,adamw`` (choices),
    ``n_blocks=2`` (fixed)."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not name or not raw:
        raise UserError(f"cannot read {text!r}: write NAME=VALUE, NAME=LOW:HIGH or NAME=A,B,C")
    if ":" in raw:
        low, _, high = raw.partition(":")
        return name, (_scalar(low), _scalar(high))
    if "," in raw:
        return name, [_scalar(v) for v in raw.split(",") if v.strip()]
    return name, _scalar(raw)


def _scalar(text: str) -> Any:
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
