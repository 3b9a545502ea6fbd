"""Hyperparameter specs that can be narrowed, widened or fixed before becoming a ConfigSpace.

Overrides follow Auto-PyTorch's search-space updates: a ``(low, high)`` tuple sets a numeric or
ordinal range, a list sets the choices of a categorical or ordinal parameter, a single value fixes
the parameter; `Default` moves only the default, `Range` sets a range and its default.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ConfigSpace import (
    Categorical,
    ConfigurationSpace,
    Constant,
    Float,
    Integer,
    OrdinalHyperparameter,
)
from ConfigSpace.hyperparameters import Hyperparameter

from nas.errors import UserError

# Draws that must land inside an overridden numeric range before it is accepted.
_RANGE_CHECK_SAMPLES = 16


@dataclass(frozen=True)
class Default:
    """An override that keeps a parameter's range or choices and moves only its default (the
    configuration a search may train first)."""

    value: Any


@dataclass(frozen=True)
class Range:
    """An override that sets a numeric parameter's range and its default together (a plain
    ``(low, high)`` keeps the old default where it still fits, else takes the range's centre)."""

    low: float
    high: float
    default: float

    def __str__(self) -> str:
        return f"({self.low:g}, {self.high:g}), default {self.default:g}"


@dataclass(frozen=True)
class Param:
    """One searchable setting: ``kind`` is int, float, categorical or ordinal.

    ``allowed`` lists the only values a categorical may take (what the model code can build).
    An ``optional`` parameter is left out of a space unless an override names it; left out, the
    trainer uses its `default` (which must mean "off").
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
    optional: bool = False

    def with_override(self, value: Any) -> Param:
        """This parameter narrowed, widened or fixed by `value` (see module docstring); a
        `Default` moves only its default, which must lie within its range or choices."""
        if isinstance(value, Default):
            default = self._value(value.value)
            inside = self.low <= default <= self.high if self.kind in ("int", "float") \
                else default in self.choices
            if not inside:
                raise UserError(f"{self.name}: the default {default!r} lies outside the space")
            return dataclasses.replace(self, default=default)
        if isinstance(value, Range):
            return self.with_override((value.low, value.high)).with_override(
                Default(value.default))
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
                # A log range's natural centre, computed in logs so that it cannot overflow.
                centre = math.exp((math.log(low) + math.log(high)) / 2)
                default = min(max(centre, low), high)
            if self.kind == "int":
                default = round(default)
            return dataclasses.replace(self, low=low, high=high, default=default)._sampleable()
        if isinstance(value, tuple) and self.kind == "ordinal" and len(value) == 2:
            low, high = (self._choice(v) for v in value)
            if low > high:
                raise UserError(f"{self.name}: low {low} is above high {high}")
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
        fixed = self._value(value)
        # A log-scaled whole number is a size (width, channels); a log-scaled float may be
        # fixed at 0 to turn its setting off (weight_decay=0).
        if self.kind == "int" and self.log and fixed <= 0:
            raise UserError(f"{self.name} is log-scaled: it must be positive, got {fixed}")
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

    def _sampleable(self) -> Param:
        """This range, once ConfigSpace is seen to sample it finitely and within its bounds.

        ConfigSpace rounds bounds to 13 decimals and overflows near the float limits, so it
        refuses or mis-samples some ranges; say so now, not when a search samples them.
        """
        low, high = float(self.low), float(self.high)  # type: ignore[arg-type]
        slack = 1e-9 * (abs(low) + abs(high))
        # numpy warns of overflows on the way; the message below says it better.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                space = ConfigurationSpace(seed=0)
                space.add(self.to_hyperparameter())
                draws = space.sample_configuration(_RANGE_CHECK_SAMPLES)
                values = [c[self.name] for c in draws]
                fine = all(math.isfinite(v) and low - slack <= v <= high + slack
                           for v in values)
            except Exception:  # whatever ConfigSpace raises for a range it cannot represent
                fine = False
        if not fine:
            raise UserError(
                f"{self.name}: ConfigSpace cannot sample the range [{low:g}, {high:g}] (it keeps "
                "13 decimals and needs float-sized spans); pick bounds of ordinary size"
            )
        return self

    def _number(self, v: Any) -> float | int:
        if self.kind == "int" and isinstance(v, int) and not isinstance(v, bool):
            return v  # exact: float() would round integers above 2**53
        try:
            x = float(v)
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"{self.name} takes numbers, got {v!r}") from None
        if not math.isfinite(x):
            raise UserError(f"{self.name} takes finite numbers, got {v!r}")
        if self.kind == "int":
            if x != int(x):
                raise UserError(f"{self.name} takes whole numbers, got {v!r}")
            return int(x)
        return x

    def _value(self, v: Any) -> Any:
        # One value of this parameter, as its kind reads it.
        return self._number(v) if self.kind in ("int", "float") else self._choice(v)

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
    return [by_name[p.name] for p in params if not p.optional or p.name in overrides]


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
