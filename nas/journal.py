"""The typed journal model: what a search records (`SearchSettings`, `Summary`, `MetaKey`) and
the one read model every reader goes through (`JournalView`: ranked, best, spend, budget_of).

Storage keeps JSON; this module gives it types. Settings are versioned: a journal of schema 2
holds version-1 settings (no ``version`` key), read here with the same defaults its code used.
The rules "which trial is best", "what a trial was charged" and "what budget None means" are
written here once. `TrialRecord`, `MetaKey` and `SearchState` (what storage reads back) live in
`nas.records` and are exported here too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from nas.budget import Budget, Unit, charge
from nas.errors import UserError
from nas.records import MetaKey, SearchState, TrialRecord
from nas.storage import Storage

#: Version of the settings written by this code (1: the untyped settings of schema-2 journals).
SETTINGS_VERSION = 2
__all__ = [
    "MAX_CONSECUTIVE_FAILURES",
    "SETTINGS_VERSION",
    "DataSpec",
    "JournalView",
    "MetaKey",
    "RunKind",
    "SearchSettings",
    "SearchState",
    "SearcherSpec",
    "Summary",
    "TrialRecord",
    "best",
    "events",
    "incumbent_key",
    "ranked",
    "telling_order",
]
#: Consecutive failed trials that stop a search by default.
MAX_CONSECUTIVE_FAILURES = 10


class RunKind(str, Enum):
    """A search over trained models, or `nas.optimize` over a Python function."""

    SEARCH = "search"
    OPTIMIZE = "optimize"


@dataclass(frozen=True)
class SearcherSpec:
    """How to rebuild the searcher: its registered name, options and seed."""

    name: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None


@dataclass(frozen=True)
class DataSpec:
    """How to load the data again: a registered name and its options (sizes for reports)."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    sizes: Mapping[str, int] = field(default_factory=dict)
    #: What each class index stands for, when the data said (`Dataset.class_names`).
    classes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SearchSettings:
    """Everything a search was started with; enough to resume it from the journal alone."""

    name: str = ""
    kind: RunKind = RunKind.SEARCH
    space_name: str | None = None
    space: Mapping[str, Any] = field(default_factory=dict)
    searcher: SearcherSpec = field(default_factory=SearcherSpec)
    seed: int = 0
    budget: str = ""
    #: A search's full per-trial budget (``9ep``, ``30s``); None for `nas.optimize`.
    trial_budget: str | None = None
    data: DataSpec | None = None
    trainer: Mapping[str, Any] | None = None
    continue_trials: bool = False
    dedup: bool = False
    max_failures: int = MAX_CONSECUTIVE_FAILURES
    ensemble: int = 0
    replicas: int = 0
    #: What the default plan chose and why, one line per choice (None: nothing was automatic).
    auto: tuple[str, ...] | None = None
    #: Limits on the models (`nas.constraints.Constraints.to_dict`); None: no limit.
    constraints: Mapping[str, float] | None = None
    #: The names of a multi-objective search's objectives (`nas.objectives`); None: one.
    objectives: tuple[str, ...] | None = None
    #: Configurations asked before the searcher's own (``{"config", "budget"}``), in order.
    enqueued: tuple[Mapping[str, Any], ...] | None = None
    #: A warm start (`nas.warmstart.WarmStart.to_dict`): the earlier searches' trials told to
    #: the searcher before its first ask, and what was left out; None: a cold start.
    warm_start: Mapping[str, Any] | None = None
    #: `nas.optimize`: the objective's import path and its budget range.
    objective: str | None = None
    min_budget: float | None = None
    max_budget: float | None = None
    version: int = SETTINGS_VERSION

    @property
    def limit(self) -> Budget | None:
        """The search's total budget (None when the settings do not say)."""
        try:
            return Budget.parse(self.budget)
        except UserError:
            return None

    @property
    def full_budget(self) -> float:
        """Budget of a full-budget trial, what a trial's budget None means, in the trial unit."""
        if self.max_budget is not None:
            return float(self.max_budget)
        try:
            return Budget.parse(self.trial_budget or "").amount
        except UserError:
            return 1.0

    @property
    def trial_unit(self) -> Unit:
        """Unit of a trial's budget: epochs or seconds for a search, units for optimize."""
        try:
            return Budget.parse(self.trial_budget or "").unit
        except UserError:
            return Unit.UNITS

    def to_dict(self) -> dict[str, Any]:
        """The JSON the journal stores (the keys schema-2 readers know, plus ``version``)."""
        out: dict[str, Any] = {
            "version": self.version, "name": self.name, "kind": self.kind.value,
            "space_name": self.space_name, "space": dict(self.space),
            "searcher": {"name": self.searcher.name, "options": dict(self.searcher.options),
                         "seed": self.searcher.seed},
            "seed": self.seed, "budget": self.budget,
        }
        if self.objectives:
            out["objectives"] = list(self.objectives)
        if self.enqueued:
            out["enqueued"] = [dict(e) for e in self.enqueued]
        if self.warm_start:
            out["warm_start"] = dict(self.warm_start)
        if self.kind is RunKind.OPTIMIZE:
            out.update(objective=self.objective, min_budget=self.min_budget,
                       max_budget=self.max_budget)
            return out
        out.update(
            trial_budget=self.trial_budget,
            data=None if self.data is None else {
                "name": self.data.name, "options": dict(self.data.options),
                "sizes": dict(self.data.sizes),
                **({"classes": list(self.data.classes)} if self.data.classes else {})},
            trainer=None if self.trainer is None else dict(self.trainer),
            continue_trials=self.continue_trials, dedup=self.dedup,
            max_failures=self.max_failures, ensemble=self.ensemble, replicas=self.replicas)
        if self.auto is not None:
            out["auto"] = list(self.auto)
        if self.constraints:
            out["constraints"] = dict(self.constraints)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchSettings:
        """Read stored settings of any version; what an old journal lacks takes the default
        its own code used (e.g. no dedup, no ensemble)."""
        version = int(d.get("version", 1))
        if version > SETTINGS_VERSION:
            raise UserError(f"the journal's settings are version {version}, newer than this "
                            f"code's {SETTINGS_VERSION}; upgrade nas to read it")
        s = d.get("searcher") or {}
        data = d.get("data")
        auto, objectives, enqueued = d.get("auto"), d.get("objectives"), d.get("enqueued")

        def number(key: str) -> float | None:
            value = d.get(key)
            return None if value is None else float(value)

        return cls(
            name=str(d.get("name", "")), kind=RunKind(d.get("kind", RunKind.SEARCH.value)),
            space_name=d.get("space_name"), space=dict(d.get("space") or {}),
            searcher=SearcherSpec(str(s.get("name", "")), dict(s.get("options") or {}),
                                  s.get("seed")),
            seed=int(d.get("seed", 0)), budget=str(d.get("budget", "")),
            trial_budget=d.get("trial_budget"),
            data=DataSpec(str(data.get("name")), dict(data.get("options") or {}),
                          dict(data.get("sizes") or {}),
                          tuple(str(c) for c in data["classes"]) if data.get("classes")
                          else None) if isinstance(data, Mapping) else None,
            trainer=dict(d["trainer"]) if isinstance(d.get("trainer"), Mapping) else None,
            continue_trials=bool(d.get("continue_trials")), dedup=bool(d.get("dedup")),
            max_failures=int(d.get("max_failures", MAX_CONSECUTIVE_FAILURES)),
            ensemble=int(d.get("ensemble", 0)), replicas=int(d.get("replicas", 0)),
            auto=tuple(str(x) for x in auto) if isinstance(auto, list) else None,
            constraints=dict(d["constraints"]) if isinstance(d.get("constraints"), Mapping)
            else None,
            objectives=tuple(str(x) for x in objectives) if isinstance(objectives, list)
            else None,
            enqueued=tuple(dict(e) for e in enqueued) if isinstance(enqueued, list) else None,
            warm_start=dict(d["warm_start"]) if isinstance(d.get("warm_start"), Mapping)
            else None,
            objective=d.get("objective"), min_budget=number("min_budget"),
            max_budget=number("max_budget"), version=SETTINGS_VERSION,
        )


@dataclass(frozen=True)
class Summary:
    """What a finished search concluded, stored under `MetaKey.SUMMARY`."""

    stopped: str = ""
    best_trial: int | None = None
    test_accuracy: float | None = None
    #: The greedy ensemble: ``{"weights": {trial id: weight}, "val_accuracy", "val_loss",
    #: "test_accuracy"}`` (trial ids as strings, JSON's keys), or None.
    ensemble: Mapping[str, Any] | None = None
    #: Replicas trained (``{"of": id, "trials": [ids]}``) or why none was (``{"dropped": why}``).
    replicas: Mapping[str, Any] | None = None
    spent: float = 0.0
    finished_at: float | None = None
    #: A plain baseline that beat the search's model on validation, and so is the result
    #: (``{"name", "val_accuracy", "test_accuracy", "search_val_accuracy"}``); None: the
    #: search's own model (its ensemble, else its best trial) is.
    baseline_won: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON the journal stores."""
        out = {"stopped": self.stopped, "best_trial": self.best_trial,
               "test_accuracy": self.test_accuracy,
               "ensemble": None if self.ensemble is None else dict(self.ensemble),
               "replicas": None if self.replicas is None else dict(self.replicas),
               "spent": self.spent, "finished_at": self.finished_at}
        if self.baseline_won is not None:
            out["baseline_won"] = dict(self.baseline_won)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Summary | None:
        """Read a stored summary (None: the search has not finished)."""
        if not d:
            return None
        return cls(stopped=str(d.get("stopped", "")), best_trial=d.get("best_trial"),
                   test_accuracy=d.get("test_accuracy"), ensemble=d.get("ensemble"),
                   replicas=d.get("replicas"), spent=float(d.get("spent", 0.0)),
                   finished_at=d.get("finished_at"), baseline_won=d.get("baseline_won"))


# -- the rules every reader shares ---------------------------------------------------------------

def ranked(records: Iterable[TrialRecord]) -> list[TrialRecord]:
    """The records with a usable loss, best first: loss, then the result's tie-break, then id."""
    return sorted((r for r in records if r.result is not None and r.result.ok),
                  key=TrialRecord.rank_key)


def best(records: Iterable[TrialRecord]) -> TrialRecord | None:
    """The best trial of a search (what `nas show`, `SearchResult.best` and export name)."""
    found = ranked(records)
    return found[0] if found else None


def incumbent_key(budget: float, loss: float) -> tuple[float, float]:
    """Order of a multi-fidelity incumbent: the highest budget reached first, then the loss.

    Regret in `nas bench` and the conformance suite scores this one (as HpBandSter does): a
    low-budget loss is not comparable with a full-budget one.
    """
    return (-budget, loss)


def telling_order(records: Iterable[TrialRecord]) -> list[TrialRecord]:
    """Trials whose result was told to the searcher (interrupted ones were not), in tell order."""
    return sorted((r for r in records if r.told), key=lambda r: (r.tell_order, r.id))


@dataclass(frozen=True)
class JournalView:
    """A journal as its readers see it: settings, trials, state, spend and summary, typed."""

    path: Path
    settings: SearchSettings
    records: tuple[TrialRecord, ...]
    state: str
    spent: float | None
    summary: Summary | None
    created_at: float = 0.0
    #: The plain baselines fitted on the same split (`nas.baselines.Baseline.to_dict`).
    baselines: tuple[Mapping[str, Any], ...] = ()
    #: Revisions of the time plan while the search ran (`nas.engine.costs.Replan.to_dict`).
    replans: tuple[Mapping[str, Any], ...] = ()
    #: Changes of its space mid-search (`nas.spacechange.SpaceChange.to_dict`), oldest first.
    space_changes: tuple[Mapping[str, Any], ...] = ()
    #: Total budgets given on resume (`nas resume --budget`), oldest first.
    budget_changes: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def of(cls, store: Storage) -> JournalView:
        """What `store` holds now."""
        return cls(path=store.path, settings=SearchSettings.from_dict(store.settings),
                   records=tuple(store.trials()),
                   state=str(store.meta(MetaKey.STATE, "unknown")),
                   spent=store.meta(MetaKey.SPENT),
                   summary=Summary.from_dict(store.meta(MetaKey.SUMMARY)),
                   created_at=float(store.meta(MetaKey.CREATED_AT, 0.0)),
                   baselines=tuple(store.meta(MetaKey.BASELINES, [])),
                   replans=tuple(store.meta(MetaKey.REPLANS, [])),
                   space_changes=tuple(store.meta(MetaKey.SPACE_CHANGES, []) or []),
                   budget_changes=tuple(store.meta(MetaKey.BUDGET_CHANGES, []) or []))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> JournalView:
        """Read the journal at `path`; a file that is not one is the user's mistake."""
        with Storage.open(path) as store:
            return cls.of(store)

    @property
    def finished_search(self) -> bool:
        """True once the search finished (its summary is written)."""
        return self.state == SearchState.FINISHED.value

    @property
    def limit(self) -> Budget | None:
        """The search's total budget: the latest given on resume, else its settings' (None
        when they do not say)."""
        if self.budget_changes:
            return Budget.parse(str(self.budget_changes[-1]["budget"]))
        return self.settings.limit

    @property
    def space(self) -> Mapping[str, Any]:
        """The space it searches now (ConfigSpace's JSON): after its latest change, if any."""
        return self.space_changes[-1]["new"] if self.space_changes else self.settings.space

    @property
    def unit(self) -> Unit:
        """The unit the ledger charged in."""
        limit = self.limit
        return Unit.TRIALS if limit is None else limit.unit

    @property
    def full_budget(self) -> float:
        """Budget of a full-budget trial, in the trial unit."""
        return self.settings.full_budget

    def budget_of(self, record: TrialRecord) -> float:
        """A trial's fidelity in the trial unit (budget None: the full budget)."""
        return record.trial.budget_or(self.full_budget)

    def finished(self) -> list[TrialRecord]:
        """Trials with a result the searcher was told, in tell order."""
        return telling_order(self.records)

    def ranked(self) -> list[TrialRecord]:
        """Successful trials, best first (the order of `nas show`)."""
        return ranked(self.records)

    def best(self) -> TrialRecord | None:
        """The best trial so far."""
        return best(self.records)

    def charged(self, record: TrialRecord) -> float:
        """What the search's ledger charged for a finished trial."""
        assert record.result is not None
        return charge(record.result, self.unit)

    def spend_curve(self) -> list[tuple[TrialRecord, float, float]]:
        """Per told trial, in tell order: (record, budget charged so far, best loss so far)."""
        spent, best_loss = 0.0, math.inf
        out = []
        for record in self.finished():
            assert record.result is not None
            spent += self.charged(record)
            if record.result.ok:
                best_loss = min(best_loss, record.result.loss)
            out.append((record, spent, best_loss))
        return out


def events(records: Sequence[TrialRecord]) -> list[tuple[str, TrialRecord]]:
    """The searcher's asks and tells in the order they happened (``"ask"`` / ``"tell"``).

    An asynchronous search told trials while others ran; a resume replays them in this order.
    A trial that was running or interrupted has its ask but no tell.
    """
    out: list[tuple[int, int, TrialRecord]] = []
    for record in records:
        out.append((record.ask_order, 0, record))
        if record.told:
            out.append((record.tell_order, 1, record))
    out.sort(key=lambda e: (e[0], e[1], e[2].id))
    return [("ask" if kind == 0 else "tell", record) for _, kind, record in out]
