"""A trial handed to a worker, and what came back: its evaluation, or a lost worker's retry."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any

from nas.engine.reuse import Plan
from nas.errors import UserError
from nas.executors import DeadlinePassed, WorkerLost
from nas.objective import Evaluation
from nas.types import Result, Trial, TrialStatus

#: Times a trial whose worker died is run again before it is marked failed.
MAX_WORKER_RETRIES = 2
#: How long past its deadline a task that cannot stop itself runs before it is stopped.
STOP_GRACE = 0.5


@dataclass
class Running:
    """A journaled trial that a worker is (or is about to be) running."""

    trial: Trial
    plan: Plan
    cost: float  # planned, in the ledger's unit
    attempts: int = 0
    future: Future[Evaluation] | None = None
    #: When it must stop (``time.time()``), for a time budget; the executor may enforce it.
    deadline_at: float | None = None

    def outcome(self) -> Evaluation | None:
        """The finished evaluation (a failure when the executor failed it); None when its
        worker was lost and it may run again."""
        assert self.future is not None
        try:
            evaluation = self.future.result()
        except DeadlinePassed as exc:
            evaluation = Evaluation(Result.failure(TrialStatus.FAILED, f"{exc} (the objective "
                                                   "did not return in time)"))
        except WorkerLost as exc:
            if self.attempts <= MAX_WORKER_RETRIES:
                return None
            evaluation = Evaluation(Result.failure(
                TrialStatus.FAILED, f"worker lost ({self.attempts} attempts): {exc}"))
        except UserError:
            raise
        except Exception as exc:  # the executor itself failed on this trial
            evaluation = Evaluation(Result.failure(
                TrialStatus.FAILED, f"{type(exc).__name__}: {exc}"))
        if self.attempts > 1:  # say so in the journal: it ran more than once
            result = evaluation.result
            evaluation = dataclasses.replace(evaluation, result=dataclasses.replace(
                result, metrics={**result.metrics, "attempts": self.attempts}))
        return evaluation


def until_overdue(running: Iterable[Running]) -> float | None:
    """Seconds until the first of `running` is overdue (its deadline plus STOP_GRACE); None
    when none has a deadline."""
    deadlines = [r.deadline_at for r in running if r.deadline_at is not None]
    if not deadlines:
        return None
    return max(0.0, min(deadlines) + STOP_GRACE - time.time())


def stop_overdue(running: Iterable[Running], stop: Callable[[Future[Any]], bool]) -> None:
    """Stop each of `running` that is overdue; its future then raises `DeadlinePassed`."""
    now = time.time()
    for r in running:
        if r.deadline_at is not None and r.future is not None \
                and now >= r.deadline_at + STOP_GRACE:
            stop(r.future)


def stopper(objective: object, executor: object) -> Callable[[Future[Any]], bool] | None:
    """How to stop a task at its deadline: the executor's `stop` when the objective does not
    stop itself (a plain function) and the executor can (worker processes); else None."""
    return None if getattr(objective, "stops_itself", True) else getattr(executor, "stop", None)


def first_done(waiting: Mapping[Future[Any], Running],
               stop: Callable[[Future[Any]], bool] | None) -> set[Future[Any]]:
    """Wait until a task of `waiting` is done; with `stop`, overdue tasks are stopped meanwhile
    (their futures are then done, failed)."""
    while True:
        done, _ = wait(list(waiting), return_when=FIRST_COMPLETED,
                       timeout=None if stop is None else until_overdue(waiting.values()))
        if done or stop is None:
            return done
        stop_overdue(waiting.values(), stop)
