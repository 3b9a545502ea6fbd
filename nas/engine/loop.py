"""The one ask/tell loop: next trial -> plan -> submit -> collect -> complete.

It owns time and money and is the journal's only writer; the phases decide which trial comes
next (`nas.engine.phases`), the reuse rules how it runs (`nas.engine.reuse`), the ledger its cost.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.engine.callbacks import Callback
from nas.engine.checkpoints import Checkpoints
from nas.engine.costs import CostModel
from nas.engine.ensemble import Candidates
from nas.engine.failures import likely_cause
from nas.engine.feasibility import Feasibility
from nas.engine.finish import conclude, overrun_note, scoring_seconds
from nas.engine.ledger import Ledger
from nas.engine.memory import Memory
from nas.engine.phases import NO_TIME, Decision, Phases
from nas.engine.replicas import ReplicaPhase
from nas.engine.result import SearchResult
from nas.engine.reuse import Plan, Reuse
from nas.engine.running import Running, first_done, stopper
from nas.engine.seeds import trial_seed
from nas.errors import SearchInterrupted
from nas.executors import Executor, describe
from nas.executors.packing import memory_hint
from nas.journal import JournalView, MetaKey, SearchSettings, SearchState, TrialRecord
from nas.objective import Evaluation, Objective, TrainingObjective, evaluate_trial
from nas.objectives import Objectives
from nas.storage import Storage
from nas.types import Result, Trial, TrialKind, TrialStatus
from searchers import Searcher


class Loop:
    """One running search over `store`; `run` is the loop, `replay` rebuilds it from a journal."""

    def __init__(self, store: Storage, searcher: Searcher, objective: Objective, ledger: Ledger,
                 trial_seq: np.random.SeedSequence, callbacks: Sequence[Callback],
                 executor: Executor, *, owns_executor: bool = True, settings: SearchSettings,
                 costs: CostModel | None = None, closed: str = "") -> None:
        """`settings` decide how trials are treated (continued, deduplicated, kept for the
        ensemble, replicated): a resume reads them back, so it treats them alike. `costs`
        turns away new candidates too slow for a time budget, and re-plans as trials end.
        `closed`: why no trial may start at all (the plan left no time for one), or ""."""
        self.store = store
        self.costs = costs
        self.closed = closed
        self.objective = objective
        self.ledger = ledger
        self.trial_seq = trial_seq
        self.callbacks = callbacks
        self.executor = executor
        self.owns_executor = owns_executor
        self.max_failures = settings.max_failures
        self.running: dict[int, Running] = {}
        training = isinstance(objective, TrainingObjective)
        self.continue_trials = settings.continue_trials and training and objective.can_continue
        self.checkpoints = Checkpoints(store)
        self.reuse = Reuse(store, dedup=settings.dedup and training,
                           continue_trials=self.continue_trials, budget_of=self.budget_of)
        ensemble = settings.ensemble if training else 0
        candidates = Candidates(ensemble, self.budget_of)
        replicas = ReplicaPhase(
            settings.replicas if ensemble >= 2 else 0, ledger.view(),
            candidates=lambda: candidates.top, lineage_seconds=self.reuse.lineage_seconds,
            budget_of=self.budget_of, source=store.trial,
            full=lambda r: self.budget_of(r.trial) >= objective.max_budget)
        feasibility = self.feasibility = Feasibility.of(settings.constraints, objective)
        self.objectives = Objectives(settings.objectives, measured=training)
        self.phases = Phases(searcher, replicas, on_searcher_done=lambda why: store.set_meta(
            MetaKey.SEARCHER_DONE, why), admissible=feasibility.admissible)
        self.memory = Memory(self.phases, self.reuse, candidates,
                             keep_front=feasibility.active or bool(settings.objectives))

    def budget_of(self, trial: Trial) -> float:
        """A trial's budget in the trial unit (None: the search's full budget)."""
        return trial.budget_or(self.objective.max_budget)

    def run(self, rerun: Sequence[Trial] = ()) -> SearchResult:
        """Run trials until the budget or the searcher is spent; `rerun` go first.

        Up to `executor.workers` trials run at once: the searcher is asked whenever a worker is
        free and told in the order trials finish. With one worker every tell comes before the
        next ask, as in a plain sequential loop.
        """
        for cb in self.callbacks:
            cb.on_search_start(self.store.path, self.store.settings, self.ledger)
        self.store.set_meta(MetaKey.STATE, SearchState.RUNNING.value)
        queue, failures, stopped = deque(rerun), [], ""
        self.ledger.start_clock()
        try:
            self.executor.start()
            self.store.set_meta(MetaKey.EXECUTOR, describe(self.executor))
            shared = self.executor.share(self.objective)
            while True:
                self.ledger.tick()
                stopped = stopped or self._fill(queue, shared)
                if not self.running:
                    break
                waiting = {r.future: r for r in self.running.values() if r.future is not None}
                done = first_done(waiting, stopper(self.objective, self.executor))
                for future in sorted(done, key=lambda f: waiting[f].trial.id):
                    result = self._collect(shared, waiting[future])
                    if result is None:
                        continue  # its worker was lost: running again
                    feasible = result.ok or result.status is TrialStatus.INFEASIBLE
                    failures = [] if feasible else [*failures, result]
                    if len(failures) >= self.max_failures and not stopped:
                        stopped = likely_cause(failures)
        except KeyboardInterrupt:
            self._interrupted()
        except BaseException:
            self._close_executor()
            raise
        self._close_executor()
        return self._finish(stopped)

    def _fill(self, queue: deque[Trial], shared: Any) -> str:
        """Start trials while a worker is free; why no further trial may start, or ""."""
        phases = self.phases
        while len(self.running) < self.executor.workers:
            why = self._cannot_start()
            if why:
                return phases.replicas.told(why)
            fresh = not queue  # a trial run again was admitted before
            trial = queue.popleft() if queue else phases.next_trial(
                self._committed(), self.memory.typical(), running=bool(self.running),
                searcher_running=any(r.trial.kind is TrialKind.SEARCH
                                     for r in self.running.values()))
            if trial is None:
                return "" if self.running else phases.replicas.told(phases.done)
            refused = self._refused(trial) if fresh else None
            if refused is not None:  # journaled as asked, charged nothing
                running = self._start(trial, Plan(original=None, parent=None), 0.0)
                self._complete(running.trial, Evaluation(refused))
                continue
            plan = self.reuse.plan(trial)
            cost = 0.0 if plan.original is not None else self.ledger.planned_cost(
                self.budget_of(trial), 0.0 if plan.parent is None else plan.parent[1])
            if not self.ledger.can_afford(cost + self._committed() + self._held()):
                decision, why = phases.unaffordable(bool(self.running), self._committed())
                if decision is Decision.STOP:
                    phases.replicas.forget(trial)
                    return why
                if decision is not Decision.DROP:
                    queue.appendleft(trial)
                if decision is Decision.WAIT:
                    return ""
                continue
            running = self._start(trial, plan, cost)
            if plan.original is not None:
                self._complete(running.trial, Evaluation(self.reuse.reused(
                    self.store.trial(plan.original))))
                continue
            self._submit(shared, running)
        return ""

    def _refused(self, trial: Trial) -> Result | None:
        """A new trial's result without training: over a size limit, or too slow to fit."""
        why = None if self.costs is None else self.costs.refusal(trial)
        return self.feasibility.refusal(trial) or (why and Result.failure(TrialStatus.SKIPPED, why))

    def _cannot_start(self) -> str | None:
        """Why no further trial may start, whatever it is, or None."""
        if self.ledger.exhausted or self.closed or (stuck := self.feasibility.stuck()):
            return self.closed or ("budget spent" if self.ledger.exhausted else stuck)
        # A time budget: every trial stops at the deadline anyway, so this only avoids starting
        # one that would almost surely be cut short.
        return NO_TIME if self.phases.out_of_time(self.memory.typical()) else None

    def _committed(self) -> float:
        """Planned cost of the trials running now (already promised to them)."""
        return sum(r.cost for r in self.running.values())

    def _held(self) -> float:
        """What no trial may use: the replicas' reserve and the end's scoring."""
        return self.phases.replicas.reserve() + self.ledger.finish_cost(
            scoring_seconds(self.objective, self.memory))

    def _start(self, trial: Trial, plan: Plan, cost: float) -> Running:
        """Journal `trial` as running, with its seed, and tell the callbacks."""
        trial = dataclasses.replace(trial, seed=trial_seed(self.trial_seq, trial.id))
        # Listed as running before it is journaled: a Ctrl-C in between still marks it.
        running = self.running[trial.id] = Running(trial, plan, cost)
        self.store.add_trial(trial, seq=self.phases.take_seq(trial.id),
                             random_state=self.phases.take_state(trial.id))
        self.store.start_trial(trial.id, device=self.objective.device)
        for cb in self.callbacks:
            cb.on_trial_start(trial)
        return running

    def _submit(self, shared: Any, running: Running) -> None:
        """Hand a journaled trial to the executor."""
        trial, parent = running.trial, running.plan.parent
        # A searcher's trial stops where the replicas' reserve starts; a replica gets more.
        self.ledger.tick()
        deadline = self.ledger.deadline(self.phases.replicas.room(
            trial, self.ledger.remaining - self._held()))
        source: Path | bytes | None = None
        if parent is not None:
            # Without a shared disk the checkpoint travels with the task.
            source = parent[0] if self.executor.shared_filesystem else parent[0].read_bytes()
        hook = None
        if self.executor.in_process and self.callbacks:
            def hook(point: Mapping[str, float]) -> None:
                for cb in self.callbacks:
                    cb.on_epoch(trial, point)
        running.attempts += 1
        running.deadline_at = deadline
        assert trial.seed is not None
        running.future = self.executor.submit(
            evaluate_trial, shared, trial, seed=trial.seed, deadline_at=deadline, parent=source,
            with_state=self.continue_trials, on_epoch=hook,
            **memory_hint(self.executor, self.objective, trial))  # a packing executor's

    def _collect(self, shared: Any, running: Running) -> Result | None:
        """Finish a trial whose future is done; None when it runs again on another worker."""
        evaluation = running.outcome()
        if evaluation is None:  # its worker was lost: run it again
            self.store.start_trial(running.trial.id, device=self.objective.device)
            self._submit(shared, running)
            return None
        return self._complete(running.trial, evaluation)

    def _complete(self, trial: Trial, evaluation: Evaluation) -> Result:
        """Charge, tell the searcher, keep the checkpoint if needed, journal: one finished trial."""
        result = self.feasibility.judge(self.objectives.measure(evaluation.result))
        self.ledger.settle(result)
        self.memory.learn(trial, result)
        replan = None if self.costs is None else self.costs.learn(
            trial, result, self.ledger.spent, rebudget=self.phases.rebudget,
            retune=getattr(self.executor, "retune", None))
        if replan is not None:
            self.store.set_meta(MetaKey.REPLANS, [r.to_dict() for r in self.costs.replans])
            for cb in self.callbacks:
                cb.on_replan(replan)
        seq = self.phases.next_seq()
        # The checkpoint file is written before the result is journaled, and its row goes in
        # the same transaction: a kill never leaves a finished trial without its checkpoint
        # (only, at worst, an orphan file, which a resume removes).
        keep = self.memory.keep(self.continue_trials, [
            r.trial.parent for r in self.running.values() if r.trial.parent is not None])
        path = None
        if evaluation.checkpoint is not None and trial.id in keep:
            path = self.checkpoints.write(trial.id, evaluation.checkpoint)
        self.store.finish_trial(trial.id, result, spent=self.ledger.spent, checkpoint=path,
                                seq=seq, worker=evaluation.worker or None)
        self.running.pop(trial.id, None)  # only now: until journaled, a Ctrl-C marks it
        best = self.memory.best
        if best is not None and best.id == trial.id:
            best = self.memory.best = self.store.trial(trial.id)
        self.checkpoints.drop_unused(keep)
        for cb in self.callbacks:
            cb.on_trial_end(trial, result, best, self.ledger)
        return result

    def replay(self, records: Sequence[TrialRecord], *, cut: int = 0) -> list[Trial]:
        """Rebuild the loop from the journal (the searcher from `cut`): the trials to rerun."""
        rerun = self.memory.replay(records, self.store, cut=cut)
        best = self.memory.best
        self.memory.best = None if best is None else self.store.trial(best.id)
        self.checkpoints.remove_orphans()
        return rerun

    def _interrupted(self) -> None:
        for trial_id in list(self.running):
            self.store.interrupt_trial(trial_id, spent=self.ledger.spent)
        self.running.clear()
        self.store.set_meta(MetaKey.STATE, SearchState.INTERRUPTED.value)
        self._close_executor()
        for cb in self.callbacks:
            cb.on_search_end(None)
        raise SearchInterrupted(self.store.path) from None

    def _close_executor(self) -> None:
        if self.owns_executor:
            self.executor.close()

    def _finish(self, stopped: str) -> SearchResult:
        self.ledger.tick()
        stopped = "; ".join(filter(None, [stopped, overrun_note(
            self.ledger, self.objective, stopper(self.objective, self.executor) is not None)]))
        summary = conclude(self.store, self.objective, self.memory, self.checkpoints,
                           self.reuse.resolve, self.phases.replicas, stopped, self.ledger)
        self.store.finish_search(summary.to_dict(), spent=self.ledger.spent)
        result = SearchResult.of(JournalView.of(self.store))
        for cb in self.callbacks:
            cb.on_search_end(result)
        return result
