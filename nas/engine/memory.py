"""What a search has learned from its finished trials: the best so far, how long a trial takes,
the ensemble's candidates, the error-size front and the reuse rules; the searcher is told
through it. A resume rebuilds it by replaying the journal."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nas.engine.ensemble import Candidates
from nas.engine.phases import Phases
from nas.engine.reuse import Reuse
from nas.journal import MetaKey, TrialRecord, events, telling_order
from nas.pareto import Front
from nas.storage import Storage
from nas.types import Result, Trial, TrialKind, TrialStatus


class Memory:
    """The search's knowledge of its finished trials, live or replayed."""

    def __init__(self, phases: Phases, reuse: Reuse, candidates: Candidates, *,
                 keep_front: bool = False) -> None:
        """`keep_front`: keep the checkpoints of the Pareto front (of the search's objectives,
        else of validation error and parameters: a search with size limits), so that any of
        its points can be exported."""
        self.phases = phases
        self.reuse = reuse
        self.candidates = candidates
        self.best: TrialRecord | None = None
        self.durations: list[float] = []
        #: `nas export --pareto-index` needs the front's checkpoints (kept with `keep_front`).
        self.front = Front()
        self.keep_front = keep_front

    def typical(self) -> float | None:
        """A searcher trial's typical duration, once one finished."""
        return statistics.median(self.durations) if self.durations else None

    def learn(self, trial: Trial, result: Result, *, tell: bool = True) -> None:
        """Take in a finished trial; a searcher's trial is told to the searcher (unless not
        `tell`: a trial of the searcher before a change of the space)."""
        if trial.kind is TrialKind.SEARCH:
            self.reuse.learn(trial, result)
            if result.reused_from is None and result.status is not TrialStatus.SKIPPED:
                self.durations.append(result.seconds)
        if self.keep_front and result.ok:
            point = result.objectives or (None if result.footprint is None else (
                result.loss, result.footprint.params))
            if point is not None:
                self.front.add(trial.id, point)
        if result.ok:
            record = TrialRecord(trial, result.status, result, 0.0, None, None, None)
            if self.best is None or record.rank_key() < self.best.rank_key():
                self.best = record
            if result.reused_from is None:
                self.candidates.consider(record)
        # A replica is not the searcher's: its time and architecture say nothing of it.
        if trial.kind is TrialKind.SEARCH and tell:
            self.phases.tell(trial, result)

    def keep(self, continue_trials: bool, parents: Iterable[int]) -> set[int]:
        """Trials whose checkpoints are kept: the best, the ensemble's candidates, the
        replicas', and those a later trial may continue (through aliases). `parents`: the
        running trials' parents, which a trial reads when it starts (again, if its worker is
        lost)."""
        ids = set(self.phases.continuable()) | set(parents) if continue_trials else set()
        if self.best is not None:
            ids.add(self.best.id)
        ids |= self.candidates.ids() | self.phases.replicas.keep() | self.front_ids()
        return {self.reuse.resolve(i) for i in ids}

    def front_ids(self) -> set[int]:
        """The trials of the front whose checkpoints are kept (none without
        `keep_front`: the front is then not followed)."""
        return self.front.ids()

    def replay(self, records: Sequence[TrialRecord], store: Storage, *, cut: int = 0
               ) -> list[Trial]:
        """Learn the journal's `records` again; return the trials to run again.

        The journal's asks and tells are replayed in the order they happened: the searcher must
        ask the same thing at each ask and is told each stored result. Replicas come after every
        searcher trial (`searcher_done` says why its phase ended). Trials that were running or
        interrupted are run again. The searcher's trials before `cut` (a change of the space:
        `nas.spacechange`) were asked by the searcher before it: they are learned but neither
        replayed nor run again.
        """
        path, searcher_done = store.path, store.meta(MetaKey.SEARCHER_DONE, "") or ""
        states: Sequence[Mapping[str, Any]] = store.meta(MetaKey.SEARCHER_STATES, []) or []
        # Trial budgets re-planned during the search: from which ask on, how many epochs.
        rebudgets = {int(r["at_trial"]): float(r["trial_epochs"])
                     for r in store.meta(MetaKey.REPLANS, []) or []
                     if r.get("trial_epochs") is not None and r.get("at_trial") is not None}
        searched = [r for r in records if r.kind is TrialKind.SEARCH and r.id >= cut]
        replicas = [r for r in records if r.kind is TrialKind.REPLICA]
        for record in telling_order(r for r in records
                                    if r.kind is TrialKind.SEARCH and r.id < cut):
            assert record.result is not None
            self.learn(record.trial, record.result, tell=False)
        # The re-plans before the change held for the rebuilt searcher's trials too.
        for at in sorted(a for a in rebudgets if a < cut):
            self.phases.searcher.rebudget(rebudgets[at])
        asked: dict[int, Trial] = {}
        # With the searcher's random state after one of the last asks (`states`), the asks up
        # to it are taken from the journal without proposing (a model per ask made a 10,000-
        # trial TPE resume take minutes); the generators are then restored, and the asks after
        # it are asked for real, so the searcher is still checked against the journal.
        ids = {r.id for r in searched}
        restore = next((s for s in states if s.get("after") in ids), None)  # >= cut
        fast_until = int(restore["after"]) if restore is not None else -1
        for kind, record in events(searched):
            if kind == "ask":
                if record.id in rebudgets:
                    self.phases.searcher.rebudget(rebudgets[record.id])
                asked[record.id] = self.phases.replay_ask(record, path,
                                                          fast=record.id <= fast_until)
                if restore is not None and record.id == fast_until:
                    self.phases.searcher.set_random_state(restore["state"])
            else:
                assert record.result is not None
                self.learn(asked.pop(record.id), record.result)
        # A re-plan after the last ask applies to the asks still to come.
        for at in sorted(a for a in rebudgets if a > max((r.id for r in searched), default=-1)):
            self.phases.searcher.rebudget(rebudgets[at])
        for record in replicas:
            self.phases.replicas.restore(record, searcher_done, len(replicas))
            if record.told:
                assert record.result is not None
                self.learn(record.trial, record.result)
            else:
                asked[record.id] = record.trial
        self.phases.resume_at(records)
        return [asked[i] for i in sorted(asked)]
