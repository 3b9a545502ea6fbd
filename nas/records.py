"""What a journal stores, as its readers get it back: `TrialRecord` (a trial, where it stands and
its result), and the keys and states of its meta table."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from nas.types import Result, Trial, TrialKind, TrialStatus


class MetaKey(str, Enum):
    """Keys of the journal's meta table."""

    SCHEMA_VERSION = "schema_version"
    SETTINGS = "settings"
    #: A digest of each setting as created: a resume refuses settings edited since.
    SETTINGS_DIGEST = "settings_digest"
    CREATED_AT = "created_at"
    STATE = "state"
    SPENT = "spent"
    SUMMARY = "summary"
    #: Why the searcher's phase ended, once replicas were due (a resume among them says it too).
    SEARCHER_DONE = "searcher_done"
    EXECUTOR = "executor"
    #: The time plan's cost model (`nas.engine.costs.CostPlan`), and its revisions so far.
    COST_PLAN = "cost_plan"
    REPLANS = "replans"
    #: The searcher's random states after its last two journaled asks (`Storage.add_trial`).
    SEARCHER_STATES = "searcher_states"
    #: The plain baselines fitted on the search's split (`nas.baselines`).
    BASELINES = "baselines"
    #: Changes of the search's space mid-search (`nas.spacechange.SpaceChange.to_dict`).
    SPACE_CHANGES = "space_changes"
    #: Total budgets given on resume (``{"budget", "spent", "at"}``), oldest first.
    BUDGET_CHANGES = "budget_changes"


class SearchState(str, Enum):
    """Where a search stands."""

    RUNNING = "running"
    INTERRUPTED = "interrupted"
    FINISHED = "finished"


@dataclass(frozen=True)
class TrialRecord:
    """A trial as stored: what was asked, where it stands, and its result once finished."""

    trial: Trial
    status: TrialStatus
    result: Result | None
    asked_at: float
    started_at: float | None
    finished_at: float | None
    device: str | None
    #: Positions of the trial's ask and tell in the search's sequence of events (None when
    #: unknown: a version-1 journal, or a trial not yet told).
    ask_seq: int | None = None
    tell_seq: int | None = None
    #: ``host:pid`` of the process that ran the trial.
    worker: str | None = None

    @property
    def id(self) -> int:
        """The trial's id."""
        return self.trial.id

    @property
    def ask_order(self) -> int:
        """Position of the ask among the search's events (a version-1 journal: 2 id)."""
        return 2 * self.id if self.ask_seq is None else self.ask_seq

    @property
    def tell_order(self) -> int:
        """Position of the tell (a version-1 journal, sequential: right after its ask)."""
        return 2 * self.id + 1 if self.tell_seq is None else self.tell_seq

    @property
    def val_accuracy(self) -> float | None:
        """Validation accuracy, when the trial reported one."""
        if self.result is None:
            return None
        value = self.result.metrics.get("val_accuracy")
        return None if value is None else float(value)

    @property
    def told(self) -> bool:
        """Whether its result was told (to the searcher, if it is the searcher's): a finished
        result; a trial interrupted or still running is run again on resume instead."""
        return self.result is not None and self.status.finished \
            and self.status is not TrialStatus.INTERRUPTED

    @property
    def kind(self) -> TrialKind:
        """Whose trial it is: the searcher's or a replica."""
        return self.trial.kind

    def rank_key(self) -> tuple[float, float]:
        """Sort key of `nas show`: the result's loss, then its tie-break (no result: last)."""
        if self.result is None:
            return (math.inf, math.inf)
        return self.result.rank_key()
