"""Which trial comes next: the searcher's, until its share of the budget is spent or it has
nothing more to propose, then the replicas'. Also numbers the search's asks and tells, the
order a resume replays."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from nas.engine.replicas import KEPT_FOR_REPLICAS, ReplicaPhase
from nas.errors import UserError
from nas.journal import TrialRecord, events
from nas.types import Result, Trial, TrialKind
from searchers import Searcher

#: Why a search stops when the next trial does not fit in what is left.
NO_ROOM = "too little budget left for the next trial"
#: Why a time budget's search stops when its next trial would almost surely be cut short.
NO_TIME = "too little time left for another trial"


class Decision(Enum):
    """What to do with a trial that does not fit in what is left of the budget."""

    WAIT = "wait"  # running trials may cost less than planned: try it again when one ends
    RETRY = "retry"  # the replicas' reserve was given back: try it again now
    DROP = "drop"  # the searcher's phase ended: never run it (a replay asks it again)
    STOP = "stop"  # nothing else will fit: the search stops


class Phases:
    """The searcher's phase, then the replicas' phase; the loop asks `next_trial`.

    `on_searcher_done(why)` records why the searcher's phase ended when replicas follow (so a
    resume among the replicas says it too).
    """

    def __init__(self, searcher: Searcher, replicas: ReplicaPhase, *,
                 on_searcher_done: Callable[[str], None],
                 admissible: Callable[[Mapping[str, Any]], bool] | None = None) -> None:
        """`admissible`: a test new configurations must pass (size limits), given to each ask
        of a searcher that `filters_proposals` (replayed asks too, so a resume is exact)."""
        self.searcher = searcher
        self._admissible = admissible if searcher.filters_proposals else None
        self.replicas = replicas
        self._on_searcher_done = on_searcher_done
        # Position of the latest ask or tell, and of the asks not yet journaled.
        self.seq = -1
        self._ask_seq: dict[int, int] = {}
        self.last_id = -1
        # The searcher's random states right after each ask not yet journaled.
        self._states: dict[int, dict[str, Any] | None] = {}

    @property
    def done(self) -> str:
        """Why the searcher's phase ended ("" while it goes on)."""
        return self.replicas.searcher_done

    def next_seq(self) -> int:
        """The position of the next ask or tell among the search's events."""
        self.seq += 1
        return self.seq

    def take_seq(self, trial_id: int) -> int | None:
        """The position of a trial's ask (None: a trial run again, which keeps its own)."""
        return self._ask_seq.pop(trial_id, None)

    def take_state(self, trial_id: int) -> dict[str, Any] | None:
        """The searcher's random state right after it asked `trial_id` (None: not the
        searcher's fresh ask, or a searcher that cannot say)."""
        return self._states.pop(trial_id, None)

    def rebudget(self, epochs: float) -> int | None:
        """Let the searcher's next trials run up to `epochs`; the id of the first of them, or
        None when it cannot (or its phase is over)."""
        if self.done or not self.searcher.rebudget(epochs):
            return None
        return self.searcher.next_id

    def continuable(self) -> set[int]:
        """Trials a later trial of the searcher may continue."""
        return set(self.searcher.continuable())

    def tell(self, trial: Trial, result: Result) -> None:
        """Tell the searcher, with the trial as it asked it (the seed is the loop's)."""
        self.searcher.tell(dataclasses.replace(trial, seed=None), result)

    def out_of_time(self, typical: float | None) -> bool:
        """Whether the search stops because a searcher trial that typically takes `typical`
        would almost surely be cut short. Not while replicas are due or reserved for: their
        phase decides (a cheap best's reserve may be less than half a searcher trial, and is
        still theirs). Replicas wanted with no reserve are dropped, with why."""
        replicas = self.replicas
        # The clock first: it is read on every pass of the loop, the reserve plans replicas.
        if replicas.active or not replicas.ledger.too_little_left(typical) or replicas.reserve():
            return False
        if replicas.wanted:
            replicas.drop()
        return True

    def next_trial(self, committed: float, typical: float | None, *, running: bool,
                   searcher_running: bool) -> Trial | None:
        """The searcher's next trial, or once its share of the budget is spent, a replica; None
        to wait for running trials (or when nothing is left to run)."""
        replicas = self.replicas
        if not replicas.active:
            if replicas.wanted and replicas.reserve() and replicas.searcher_share_spent(
                    committed, typical):
                self._end_searcher(KEPT_FOR_REPLICAS)
            else:
                trial = self._ask()
                if trial is not None or running:
                    return trial
                self._end_searcher("the searcher has nothing more to propose")
                if not replicas.wanted:
                    return None
        if searcher_running:
            return None  # the best configuration may still change
        if replicas.plan is None and not replicas.fits(committed):
            replicas.drop()
            if not replicas.active:  # the searcher gets the rest of the budget
                return self.next_trial(committed, typical, running=running,
                                       searcher_running=searcher_running)
            return None
        trial = replicas.next(self.last_id + 1)
        if trial is not None:
            self.last_id = trial.id
            self._ask_seq[trial.id] = self.next_seq()
        return trial

    def unaffordable(self, running: bool, committed: float) -> tuple[Decision, str]:
        """What to do with a trial that does not fit, and why the search stops if it does."""
        if running:
            return Decision.WAIT, ""
        replicas = self.replicas
        if replicas.wanted and not replicas.active:
            if replicas.reserve() and not replicas.fits(committed):
                # The reserve was for a cheaper best; the trial may fit without it.
                replicas.drop()
                return Decision.RETRY, ""
            self._end_searcher(KEPT_FOR_REPLICAS if replicas.reserve() else NO_ROOM)
            return Decision.DROP, ""
        return Decision.STOP, replicas.told(NO_ROOM)

    def _ask(self) -> Trial | None:
        """Ask the searcher, noting where the ask falls among the search's events."""
        trial = self._searcher_ask()
        if trial is not None:
            self._ask_seq[trial.id] = self.next_seq()
            self._states[trial.id] = self.searcher.random_state()
            self.last_id = max(self.last_id, trial.id)
        return trial

    def _searcher_ask(self) -> Trial | None:
        if self._admissible is None:
            return self.searcher.ask()
        return self.searcher.ask(admissible=self._admissible)  # type: ignore[call-arg]

    def _end_searcher(self, why: str) -> None:
        if self.replicas.end_searcher(why):
            self._on_searcher_done(why)

    # -- replay --------------------------------------------------------------------------------

    def replay_ask(self, record: TrialRecord, path: Path, *, fast: bool = False) -> Trial:
        """Ask the searcher again; it must ask what the journal holds. `fast`: let it take the
        journal's configuration without proposing (its generators are restored after)."""
        trial = self.searcher.replay_ask(record.trial) if fast else None
        trial = self._searcher_ask() if trial is None and not fast else trial
        if trial is None or not same_ask(trial.asked(), record.trial.asked()):
            raise UserError(f"cannot resume {path}: the searcher no longer asks trial "
                            f"{record.id} as journaled (was the code or a setting changed?)")
        # Within rounding of another CPU's (log-scaled values go through exp and log, whose
        # last bit differs between AVX-512 and other machines): the journal's values go on.
        return trial if trial.config == record.trial.config else dataclasses.replace(
            trial, config=dict(record.trial.config))

    def resume_at(self, records: Sequence[TrialRecord]) -> None:
        """Go on numbering after the journal's last ask, tell and trial id."""
        positions = [record.ask_order if kind == "ask" else record.tell_order
                     for kind, record in events([r for r in records
                                                 if r.kind is TrialKind.SEARCH])]
        positions += [r.tell_order if r.tell_seq is not None else r.ask_order
                      for r in records if r.kind is TrialKind.REPLICA]
        self.seq = max(positions, default=-1)
        self.last_id = max((r.id for r in records), default=-1)


#: Relative difference two journaled floats may show and still be the same decision: a few
#: units in the last place of float64, what another CPU's exp and log give.
SAME_FLOAT = 1e-12


def same_ask(a: Any, b: Any) -> bool:
    """`a` and `b` (JSON-like asks) equal, but for floats within `SAME_FLOAT` of each other."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) <= SAME_FLOAT * max(abs(a), abs(b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_ask(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_ask(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)

