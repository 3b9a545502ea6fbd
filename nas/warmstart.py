"""Warm starts: an earlier search's finished trials, told to a new search's searcher.

`load_warm_start` reads earlier journals and keeps each told trial whose configuration the new
space still holds (`searchers.queue.translate_config`: a value outside a narrowed range drops
the trial; a new hyperparameter takes its default), with its budget in the new search's trial
unit. The new search journals them in its settings (`SearchSettings.warm_start`), tells them to
its searcher (`Searcher.observe`) before its first ask, and tells them again on every resume
before replaying its own trials, so a resume is exact. They are never trained, charged or the
incumbent; `--warm-start-retrain K` enqueues the best K to train at the full budget.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.budget import Budget, Unit
from nas.errors import UserError
from nas.journal import JournalView, SearchSettings
from nas.types import Result, TrialKind, TrialStatus

if TYPE_CHECKING:  # the report reads warm starts without ConfigSpace or the searchers
    from ConfigSpace import ConfigurationSpace

    from searchers import Searcher

#: The origin of an imported configuration trained again in the new search (`Trial.info`).
RETRAINED = "retrained"


@dataclass(frozen=True)
class Imported:
    """One earlier trial as the new search knows it: its configuration in the new space, its
    budget in the new trial unit (None: the new full budget), its result, and where it came
    from (journal path and trial id there)."""

    config: Mapping[str, Any]
    budget: float | None
    result: Result
    source: str
    trial_id: int

    def to_dict(self) -> dict[str, Any]:
        """The JSON the new search's settings keep (the result without its learning curve)."""
        return {"config": dict(self.config), "budget": self.budget,
                "result": self.result.to_dict(), "source": self.source,
                "trial": self.trial_id}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Imported:
        """Read `to_dict`'s form."""
        budget = d.get("budget")
        return cls(config=dict(d["config"]), budget=None if budget is None else float(budget),
                   result=Result.from_dict(d["result"]), source=str(d.get("source", "")),
                   trial_id=int(d.get("trial", -1)))

    def rank_key(self, full: float) -> tuple[float, float, float]:
        """Best first: the highest budget, then the lowest loss (failures last)."""
        loss = self.result.loss if self.result.ok else math.inf
        return (-(full if self.budget is None else self.budget), loss,
                self.result.tiebreak_loss if self.result.tiebreak_loss is not None else 0.0)


@dataclass(frozen=True)
class WarmStart:
    """What a warm start brought in, and how many trials it left out, by reason."""

    imported: tuple[Imported, ...] = ()
    dropped: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON a search's settings keep (`SearchSettings.warm_start`)."""
        return {"imported": [i.to_dict() for i in self.imported], "dropped": dict(self.dropped)}

    @classmethod
    def of(cls, settings: SearchSettings) -> WarmStart:
        """The warm start a search's settings journaled (empty for a cold start)."""
        d = settings.warm_start or {}
        return cls(tuple(Imported.from_dict(i) for i in d.get("imported") or ()),
                   {str(k): int(v) for k, v in (d.get("dropped") or {}).items()})

    def describe(self) -> str:
        """One line for the user: how many were imported and why others were not."""
        sources = sorted({i.source for i in self.imported})
        text = f"warm start: {len(self.imported)} earlier trials imported"
        if sources:
            text += f" from {', '.join(Path(s).name for s in sources)}"
        if self.dropped:
            text += " (left out: " + ", ".join(
                f"{n} {why}" for why, n in sorted(self.dropped.items())) + ")"
        return text

    def best(self, k: int, full: float) -> list[Imported]:
        """The `k` best successful imports, distinct configurations, best first."""
        out: list[Imported] = []
        for item in sorted(self.imported, key=lambda i: i.rank_key(full)):
            if len(out) == k:
                break
            if item.result.ok and all(dict(o.config) != dict(item.config) for o in out):
                out.append(item)
        return out


def load_warm_start(paths: Sequence[str | os.PathLike[str]], space: ConfigurationSpace, *,
                    unit: Unit, full_budget: float,
                    objectives: Sequence[str] | None = None) -> WarmStart:
    """The told trials of the journals at `paths` that fit `space`, for a search whose trials
    run in `unit` up to `full_budget` and rank by `objectives` (None: one loss)."""
    from searchers.queue import translate_config

    imported: list[Imported] = []
    dropped: Counter[str] = Counter()
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise UserError(f"--warm-start {path}: no such journal")
        view = JournalView.load(path)
        scale = _budget_map(view.settings, unit, full_budget)
        for record in view.finished():
            result = record.result
            if record.trial.kind is not TrialKind.SEARCH:
                dropped["replicas"] += 1
                continue
            if result is None or result.status is TrialStatus.SKIPPED \
                    or result.reused_from is not None:
                dropped["not trained"] += 1
                continue
            config, _ = translate_config(space, record.trial.config)
            if config is None:
                dropped["outside the new space"] += 1
                continue
            values = _objectives(result, view.settings.objectives, objectives)
            if values is False:
                dropped["without the new objectives"] += 1
                continue
            imported.append(Imported(
                config=config, budget=scale(view.budget_of(record)),
                result=Result(loss=result.loss, status=result.status, epochs=result.epochs,
                              seconds=result.seconds, metrics=dict(result.metrics),
                              error=result.error, cost=result.cost,
                              tiebreak_loss=result.tiebreak_loss,
                              objectives=values if isinstance(values, tuple) else None),
                source=str(path.resolve()), trial_id=record.id))
    return WarmStart(tuple(imported), dict(dropped))


def tell_imports(searcher: Searcher, imported: Sequence[Imported]) -> None:
    """Show each import to `searcher` (`Searcher.observe`), in journal order."""
    for item in imported:
        try:
            searcher.observe(item.config, item.result, budget=item.budget)
        except ValueError as exc:
            raise UserError(f"imported trial {item.trial_id} of {item.source}: {exc}") from None


def retrain_entries(warm: WarmStart, k: int, full: float) -> list[dict[str, Any]]:
    """`enqueue` entries training the best `k` imports again at the full budget."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise UserError(f"--warm-start-retrain is a number of trials >= 0, got {k!r}")
    return [{"config": dict(item.config), "budget": None, "origin": RETRAINED}
            for item in warm.best(k, full)]


def warm_start_search(searcher: Searcher, paths: Sequence[str | os.PathLike[str]] | None,
                retrain: int, enqueue: Sequence[Mapping[str, Any]] | None,
                space: ConfigurationSpace, per_trial: Budget, names: Sequence[str] | None
                ) -> tuple[dict[str, Any] | None, tuple[dict[str, Any], ...]]:
    """Tell `searcher` the earlier trials of the journals at `paths` (for trials of
    `per_trial`, ranked by `names`), queue the best `retrain` of them and then `enqueue`: the
    journal forms of the warm start (None: none) and of the queue."""
    from nas.engine.options import enqueue_all

    if not paths:
        if retrain:
            raise UserError("--warm-start-retrain needs --warm-start: there is nothing to retrain")
        return None, enqueue_all(searcher, enqueue)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    warm = load_warm_start(paths, space, unit=per_trial.unit, full_budget=per_trial.amount,
                           objectives=names)
    tell_imports(searcher, warm.imported)
    again = retrain_entries(warm, retrain, per_trial.amount)
    return warm.to_dict(), enqueue_all(searcher, [*again, *(enqueue or ())])


def _budget_map(old: SearchSettings, unit: Unit, full: float) -> Any:
    """Old budget -> new one: the same amount in the same unit (at or above the new full
    budget: None), else the same fraction of the full budget."""
    same = old.trial_unit is unit

    def convert(budget: float) -> float | None:
        value = budget if same else budget / old.full_budget * full
        return None if value >= full * (1 - 1e-9) else value

    return convert


def _objectives(result: Result, old: Sequence[str] | None, new: Sequence[str] | None
                ) -> tuple[float, ...] | bool | None:
    """The result's values in the new search's objective order; None for a single-objective
    search (or a failure); False when the earlier search did not measure one of them."""
    if not new:
        return None
    if not result.ok:
        return None
    if result.objectives is None or not old:
        return False  # a single-objective search measured only its loss
    named = dict(zip(old, result.objectives, strict=False))
    if any(name not in named for name in new):
        return False
    return tuple(named[name] for name in new)
