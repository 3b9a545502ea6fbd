"""The plain data that crosses every boundary: `Trial`, `Result` and `TrialStatus`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class TrialStatus(str, Enum):
    """Where a trial stands; only `OK` and `TRUNCATED` results carry a trustworthy loss."""

    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    TRUNCATED = "truncated"  # stopped early because the search's budget ran out
    DIVERGED = "diverged"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        """True once the trial has a result (successful or not)."""
        return self not in (TrialStatus.PENDING, TrialStatus.RUNNING)


def plain(value: Any) -> Any:
    """Turn numpy scalars and containers of them into plain JSON-serialisable Python values."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


@dataclass(frozen=True)
class Trial:
    """One configuration to evaluate at one budget.

    `budget` is the trial's fidelity in the search's trial unit (epochs or seconds); None means
    the search's full per-trial budget. `parent` names the trial this one continues, if any.
    """

    id: int
    config: Mapping[str, Any]
    budget: float | None = None
    parent: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view."""
        return {
            "id": self.id,
            "config": plain(self.config),
            "budget": self.budget,
            "parent": self.parent,
            "info": plain(self.info),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Trial:
        """Inverse of `to_dict`."""
        return cls(
            id=int(d["id"]),
            config=dict(d["config"]),
            budget=d.get("budget"),
            parent=d.get("parent"),
            info=dict(d.get("info") or {}),
        )


@dataclass(frozen=True)
class Result:
    """What evaluating a trial gave: lower `loss` is better; `epochs`, `seconds`: what it spent.

    `cost` is what it spent in the objective's own budget unit, when that is not epochs.
    """

    loss: float
    status: TrialStatus = TrialStatus.OK
    epochs: float = 0.0
    seconds: float = 0.0
    metrics: Mapping[str, Any] = field(default_factory=dict)
    curve: tuple[Mapping[str, float], ...] = ()
    error: str | None = None
    cost: float | None = None

    @property
    def ok(self) -> bool:
        """True when the loss can be compared with other trials' losses."""
        return self.status in (TrialStatus.OK, TrialStatus.TRUNCATED) and math.isfinite(self.loss)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view (infinite losses become None)."""
        return {
            "loss": self.loss if math.isfinite(self.loss) else None,
            "status": self.status.value,
            "epochs": self.epochs,
            "seconds": self.seconds,
            "metrics": plain(self.metrics),
            "curve": plain(list(self.curve)),
            "error": self.error,
            "cost": self.cost,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Result:
        """Inverse of `to_dict`."""
        loss = d.get("loss")
        return cls(
            loss=math.inf if loss is None else float(loss),
            status=TrialStatus(d.get("status", "ok")),
            epochs=float(d.get("epochs", 0.0)),
            seconds=float(d.get("seconds", 0.0)),
            metrics=dict(d.get("metrics") or {}),
            curve=tuple(d.get("curve") or ()),
            error=d.get("error"),
            cost=d.get("cost"),
        )

    @classmethod
    def failure(cls, status: TrialStatus, error: str, *, epochs: float = 0.0,
                seconds: float = 0.0, cost: float | None = None) -> Result:
        """A worst-case result for a trial that did not produce a usable loss."""
        return cls(loss=math.inf, status=status, epochs=epochs, seconds=seconds, error=error,
                   cost=cost)
