"""What a trial can take from earlier ones: an identical result (dedup) or a checkpoint to
continue (a promoted trial), and how long a model's lineage took to train."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import spaces
from nas.journal import TrialRecord
from nas.storage import Storage
from nas.types import Result, Trial, TrialKind


@dataclass(frozen=True)
class Plan:
    """How a trial will run, decided once before it starts."""

    original: int | None  # an earlier trial of the same architecture and budget, to reuse
    parent: tuple[Path, float] | None  # the checkpoint to continue and its budget


class Reuse:
    """The search's memory of trained architectures, shared results and parents."""

    def __init__(self, store: Storage, *, dedup: bool, continue_trials: bool,
                 budget_of: Callable[[Trial], float]) -> None:
        self.store = store
        self.dedup = dedup
        self.continue_trials = continue_trials
        self._budget_of = budget_of
        # (architecture hash, budget) -> the trial that trained it.
        self._trained: dict[tuple[str, float], int] = {}
        # A reused trial's id -> the trial whose result and checkpoint it shares.
        self._alias: dict[int, int] = {}
        self._lineage: dict[int, float] = {}

    def plan(self, trial: Trial) -> Plan:
        """How `trial` will run: reusing an earlier result, continuing a parent, or afresh."""
        if trial.kind is TrialKind.REPLICA:
            return Plan(original=None, parent=None)  # a new seed, trained from scratch
        original = self._trained.get(self._key(trial)) if self.dedup else None
        return Plan(original=original, parent=self._parent(trial))

    def resolve(self, trial_id: int) -> int:
        """The trial whose result and checkpoint `trial_id` stands for (itself unless reused)."""
        return self._alias.get(trial_id, trial_id)

    def learn(self, trial: Trial, result: Result) -> None:
        """Remember a finished searcher trial (live or replayed)."""
        if result.reused_from is not None:
            self._alias[trial.id] = self.resolve(result.reused_from)
        elif result.ok and self.dedup:
            self._trained[self._key(trial)] = trial.id

    def reused(self, original: TrialRecord) -> Result:
        """The result of an identical architecture trained before, marked and free of charge."""
        assert original.result is not None
        return dataclasses.replace(original.result, epochs=0.0, seconds=0.0, cost=0.0,
                                   reused_from=original.id)

    def lineage_seconds(self, trial_id: int) -> float:
        """Seconds the trial's model took to train, its parents' training included."""
        if trial_id in self._lineage:
            return self._lineage[trial_id]
        record = self.store.trial(trial_id)
        own = record.result.seconds if record.result is not None else 0.0
        parent = record.trial.parent
        seconds = own + (self.lineage_seconds(self.resolve(parent)) if parent is not None
                         else 0.0)
        if record.result is not None:
            # Kept once its result is in: a trial asked about before its journal row has one
            # would keep only its parents' seconds, and a replica of it would be planned as
            # that cheap (one ran 2.6 times past what was left of a 600 s budget).
            self._lineage[trial_id] = seconds
        return seconds

    def _key(self, trial: Trial) -> tuple[str, float]:
        return spaces.architecture_hash(trial.config), self._budget_of(trial)

    def _parent(self, trial: Trial) -> tuple[Path, float] | None:
        """The checkpoint `trial` continues and the budget it was trained to, if usable."""
        if not self.continue_trials or trial.parent is None:
            return None
        source = self.resolve(trial.parent)
        path = self.store.checkpoints().get(source)
        if path is None or not path.is_file():
            return None
        budget = self._budget_of(self.store.trial(source).trial)
        return (path, budget) if budget < self._budget_of(trial) else None
