"""A trial handed to a worker, and what came back: its evaluation, or a lost worker's retry."""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future
from dataclasses import dataclass

from nas.engine.reuse import Plan
from nas.errors import UserError
from nas.executors import WorkerLost
from nas.objective import Evaluation
from nas.types import Result, Trial, TrialStatus

#: Times a trial whose worker died is run again before it is marked failed.
MAX_WORKER_RETRIES = 2


@dataclass
class Running:
    """A journaled trial that a worker is (or is about to be) running."""

    trial: Trial
    plan: Plan
    cost: float  # planned, in the ledger's unit
    attempts: int = 0
    future: Future[Evaluation] | None = None

    def outcome(self) -> Evaluation | None:
        """The finished evaluation (a failure when the executor failed it); None when its
        worker was lost and it may run again."""
        assert self.future is not None
        try:
            evaluation = self.future.result()
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
