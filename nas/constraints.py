"""Limits a returned model must meet: parameters, FLOPs per sample, inference latency.

A configuration whose model breaks the parameter or FLOP limit is turned away before it trains
(both are counted on the meta device: nothing is allocated), charged nothing; a trained model
slower than the latency limit is recorded as infeasible. Infeasible trials stay in the journal
with their loss and footprint but never become the search's best, and the searcher is told them
as failures, so it moves away from them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.errors import UserError
from nas.footprint import Footprint

_COUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgb]?)\s*$", re.IGNORECASE)
_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9}
_TIME = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(us|µs|ms|s)\s*$", re.IGNORECASE)
_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}


def parse_count(text: str | float | int, what: str) -> float:
    """``50k``, ``1.5M``, ``2e6``, ``3G`` as a positive number (k = 10^3, M = 10^6, G = 10^9)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _COUNT.match(str(text))
        if not match:
            raise UserError(f"cannot read {what} {text!r}: write a number with an optional k, M "
                            "or G, e.g. 50k or 10M")
        value = float(match.group(1)) * _SCALE[match.group(2).lower()]
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"{what} must be a positive number, got {text!r}")
    return value


def parse_milliseconds(text: str | float | int, what: str = "--max-latency") -> float:
    """``2ms``, ``500us``, ``0.1s`` (a bare number: milliseconds) in milliseconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _TIME.match(str(text))
        if match:
            value = float(match.group(1)) * _MS[match.group(2).lower()]
        else:
            try:
                value = float(str(text))
            except ValueError:
                raise UserError(f"cannot read {what} {text!r}: write a time, e.g. 2ms, 500us "
                                "or 0.1s") from None
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"{what} must be a positive time, got {text!r}")
    return value


@dataclass(frozen=True)
class Constraints:
    """Upper limits on a model's parameters, forward FLOPs per sample and latency (ms for one
    batch of the training batch size on the trial's device, `Footprint.latency_ms`); None: no
    limit."""

    max_params: float | None = None
    max_flops: float | None = None
    max_latency_ms: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_params", "max_flops", "max_latency_ms"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise UserError(f"{name} must be a positive number, got {value!r}")

    @classmethod
    def parse(cls, *, max_params: str | float | None = None, max_flops: str | float | None = None,
              max_latency: str | float | None = None) -> Constraints:
        """Limits as a user writes them: ``max_params="100k"``, ``max_flops="10M"``,
        ``max_latency="2ms"``."""
        return cls(
            max_params=None if max_params is None else parse_count(max_params, "--max-params"),
            max_flops=None if max_flops is None else parse_count(max_flops, "--max-flops"),
            max_latency_ms=None if max_latency is None else parse_milliseconds(max_latency))

    @classmethod
    def of(cls, value: Constraints | Mapping[str, Any] | None) -> Constraints:
        """`value` itself, or the limits a dict of `parse`'s keywords sets (None: none)."""
        if isinstance(value, Constraints):
            return value
        unknown = set(value or {}) - {"max_params", "max_flops", "max_latency"}
        if unknown:
            raise UserError(f"unknown constraint {sorted(unknown)[0]!r}: use max_params, "
                            "max_flops or max_latency")
        return cls.parse(**dict(value or {}))

    @property
    def active(self) -> bool:
        """True when any limit is set."""
        return any(v is not None for v in (self.max_params, self.max_flops, self.max_latency_ms))

    def before_training(self, params: int, flops: float) -> str | None:
        """Why a model of `params` parameters and `flops` FLOPs per sample is infeasible, or
        None when both limits are met (latency needs the trained model)."""
        if self.max_params is not None and params > self.max_params:
            return (f"{format_count(params)} parameters, more than the limit of "
                    f"{format_count(self.max_params)}")
        if self.max_flops is not None and flops > self.max_flops:
            return (f"{format_count(flops)} FLOPs per sample, more than the limit of "
                    f"{format_count(self.max_flops)}")
        return None

    def after_training(self, footprint: Footprint | None) -> str | None:
        """Why a trained model is infeasible, or None: its size again (a model built otherwise
        than the pre-check assumed) and its measured latency."""
        if footprint is None:
            return None
        why = self.before_training(footprint.params, footprint.flops_per_sample)
        latency = footprint.latency_ms
        if why is None and self.max_latency_ms is not None and latency is not None \
                and latency > self.max_latency_ms:
            why = (f"{latency:.3g} ms per batch of {footprint.latency_batch}, more than the "
                   f"limit of {self.max_latency_ms:g} ms")
        return why

    def to_dict(self) -> dict[str, float]:
        """The limits that are set, for the journal."""
        return {k: v for k, v in (("max_params", self.max_params), ("max_flops", self.max_flops),
                                  ("max_latency_ms", self.max_latency_ms)) if v is not None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Constraints:
        """Inverse of `to_dict` (None: no limits)."""
        d = d or {}
        return cls(**{k: float(d[k]) for k in ("max_params", "max_flops", "max_latency_ms")
                      if d.get(k) is not None})

    def __str__(self) -> str:
        parts = []
        if self.max_params is not None:
            parts.append(f"params <= {format_count(self.max_params)}")
        if self.max_flops is not None:
            parts.append(f"FLOPs <= {format_count(self.max_flops)}")
        if self.max_latency_ms is not None:
            parts.append(f"latency <= {self.max_latency_ms:g} ms")
        return ", ".join(parts) or "none"


def format_count(n: float) -> str:
    """A count as `parse_count` reads it back, three significant digits: 1.2k, 446k, 3.23M."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:.3g}"
