"""The plain data that crosses every boundary: `Trial`, `Result`, `TrialStatus`, `TrialKind`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from nas.footprint import Footprint


class TrialStatus(str, Enum):
    """Where a trial stands; only `OK` and `TRUNCATED` results carry a trustworthy loss."""

    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    TRUNCATED = "truncated"  # stopped early because the search's budget ran out
    DIVERGED = "diverged"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    #: Turned away before training: its full trial would not fit the time budget's share.
    SKIPPED = "skipped"
    #: Breaks a limit on the model (`nas.constraints`): turned away before training (size) or
    #: trained and found too slow (latency). Never the search's best.
    INFEASIBLE = "infeasible"

    @property
    def finished(self) -> bool:
        """True once the trial has a result (successful or not)."""
        return self not in (TrialStatus.PENDING, TrialStatus.RUNNING)


class TrialKind(str, Enum):
    """Who a trial is for: the searcher (told its result) or the replica phase (never told)."""

    SEARCH = "search"
    REPLICA = "replica"


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
    `kind` and `seed` are the engine's: a searcher asks search trials and leaves the seed None.
    """

    id: int
    config: Mapping[str, Any]
    budget: float | None = None
    parent: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    kind: TrialKind = TrialKind.SEARCH
    #: The seed its model was trained with, once the engine has chosen it.
    seed: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", TrialKind(self.kind))

    def budget_or(self, full: float) -> float:
        """The trial's budget, or `full` when it is None: the one rule of "budget None"."""
        return float(full) if self.budget is None else float(self.budget)

    def asked(self) -> dict[str, Any]:
        """What the searcher decided (id, config, budget, parent, info), JSON-serialisable."""
        return {
            "id": self.id,
            "config": plain(self.config),
            "budget": self.budget,
            "parent": self.parent,
            "info": plain(self.info),
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view; `kind` and `seed` only when the engine set them."""
        out = self.asked()
        if self.kind is not TrialKind.SEARCH:
            out["kind"] = self.kind.value
        if self.seed is not None:
            out["seed"] = self.seed
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Trial:
        """Inverse of `to_dict`."""
        return cls(
            id=int(d["id"]),
            config=dict(d["config"]),
            budget=d.get("budget"),
            parent=d.get("parent"),
            info=dict(d.get("info") or {}),
            kind=TrialKind(d.get("kind", TrialKind.SEARCH.value)),
            seed=d.get("seed"),
        )


@dataclass(frozen=True)
class Result:
    """What evaluating a trial gave: lower `loss` is better; `epochs`, `seconds`: what it spent.

    `cost` is what it spent in the objective's own budget unit, when that is not epochs.
    `tiebreak_loss` orders results of equal `loss` (the trainer's validation cross-entropy
    breaks ties between equal accuracies). `reused_from` names the trial whose result this one
    shares (an identical architecture trained before): it cost nothing.
    """

    loss: float
    status: TrialStatus = TrialStatus.OK
    epochs: float = 0.0
    seconds: float = 0.0
    metrics: Mapping[str, Any] = field(default_factory=dict)
    curve: tuple[Mapping[str, float], ...] = ()
    error: str | None = None
    cost: float | None = None
    tiebreak_loss: float | None = None
    reused_from: int | None = None
    #: The trained model's size, FLOPs, latency and memory (`nas.footprint`), when the
    #: objective trained a model (the project's trainer); None for plain functions.
    footprint: Footprint | None = None
    #: A multi-objective search's values, one per objective in the search's order, each
    #: minimised (`loss` is among them); None in a single-objective search and for failures.
    objectives: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.objectives is not None:
            object.__setattr__(self, "objectives", tuple(float(v) for v in self.objectives))

    def objective_values(self) -> tuple[float, ...] | None:
        """The objective values a multi-objective searcher ranks by: `objectives`, or
        ``(loss,)`` when there are none; None for an unusable result (it ranks last)."""
        if not self.ok:
            return None
        values = self.objectives if self.objectives is not None else (self.loss,)
        return values if all(math.isfinite(v) for v in values) else None

    @property
    def ok(self) -> bool:
        """True when the loss can be compared with other trials' losses."""
        return self.status in (TrialStatus.OK, TrialStatus.TRUNCATED) and math.isfinite(self.loss)

    def rank_key(self) -> tuple[float, float]:
        """Sort key of results, best first: loss, then the tie-break (unusable results last)."""
        if not self.ok:
            return (math.inf, math.inf)
        tiebreak = self.tiebreak_loss
        return (self.loss, math.inf if tiebreak is None else float(tiebreak))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view (infinite losses become None)."""
        out = {
            "loss": self.loss if math.isfinite(self.loss) else None,
            "status": self.status.value,
            "epochs": self.epochs,
            "seconds": self.seconds,
            "metrics": plain(self.metrics),
            "curve": plain(list(self.curve)),
            "error": self.error,
            "cost": self.cost,
        }
        if self.tiebreak_loss is not None:
            out["tiebreak_loss"] = self.tiebreak_loss
        if self.reused_from is not None:
            out["reused_from"] = self.reused_from
        if self.footprint is not None:
            out["footprint"] = self.footprint.to_dict()
        if self.objectives is not None:
            out["objectives"] = [v if math.isfinite(v) else None for v in self.objectives]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Result:
        """Inverse of `to_dict`."""
        loss = d.get("loss")
        tiebreak, reused = d.get("tiebreak_loss"), d.get("reused_from")
        footprint, objectives = d.get("footprint"), d.get("objectives")
        return cls(
            loss=math.inf if loss is None else float(loss),
            status=TrialStatus(d.get("status", "ok")),
            epochs=float(d.get("epochs", 0.0)),
            seconds=float(d.get("seconds", 0.0)),
            metrics=dict(d.get("metrics") or {}),
            curve=tuple(d.get("curve") or ()),
            error=d.get("error"),
            cost=d.get("cost"),
            tiebreak_loss=None if tiebreak is None else float(tiebreak),
            reused_from=None if reused is None else int(reused),
            footprint=None if footprint is None else Footprint.from_dict(footprint),
            objectives=None if objectives is None else tuple(
                math.inf if v is None else float(v) for v in objectives),
        )

    @classmethod
    def failure(cls, status: TrialStatus, error: str, *, epochs: float = 0.0,
                seconds: float = 0.0, cost: float | None = None) -> Result:
        """A worst-case result for a trial that did not produce a usable loss."""
        return cls(loss=math.inf, status=status, epochs=epochs, seconds=seconds, error=error,
                   cost=cost)
