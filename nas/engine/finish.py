"""The end of a search: the time its scoring is held, and the summary it concludes with."""

from __future__ import annotations

import time
from collections.abc import Callable

from nas.budget import Unit
from nas.engine.checkpoints import Checkpoints
from nas.engine.ensemble import winning_baseline
from nas.engine.ledger import Ledger
from nas.engine.memory import Memory
from nas.engine.replicas import OVERRUN, PAST_BUDGET, ReplicaPhase
from nas.journal import MetaKey, Summary, best
from nas.objective import Objective, TrainingObjective
from nas.storage import Storage
from nas.types import TrialStatus

#: How many times its measured validation passes the end's scoring may take: it also loads
#: each checkpoint and scores the test split, and the machine may slow down.
FINISH_MARGIN = 2.0


def scoring_seconds(objective: Objective, memory: Memory) -> float:
    """Seconds the end's scoring of the ensemble's candidates needs: as long as their validation
    passes took, scaled to the splits the end scores, with a margin."""
    if not isinstance(objective, TrainingObjective):
        return 0.0
    return FINISH_MARGIN * objective.scoring_scale \
        * memory.candidates.scoring_seconds(memory.best)


def overrun_note(ledger: Ledger, objective: Objective, stopped_at_deadline: bool) -> str:
    """What the summary adds when a function objective ran past a time budget in a process
    that could not stop it mid-call (worker processes stop it at the deadline)."""
    over = ledger.spent - ledger.limit.amount
    if ledger.unit is not Unit.SECONDS or getattr(objective, "stops_itself", True) \
            or stopped_at_deadline or over <= 1.0:
        return ""
    return (f"the last trial ran {over:.1f} s past the budget: a function objective is not "
            "stopped mid-call in this process (executor=\"local\" stops it at the deadline)")


#: A time budget overrun by more than this share of it is stated in the summary.
NOTED_OVERRUN = 0.1


def past_budget_note(ledger: Ledger, stopped: str) -> str:
    """What the summary says when a time budget ended over NOTED_OVERRUN past its limit
    (nothing if `stopped` says so already)."""
    limit = ledger.limit.amount
    over = ledger.spent - limit
    if ledger.unit is not Unit.SECONDS or over <= NOTED_OVERRUN * limit or "past the budget" \
            in stopped:
        return ""
    return (f"ended {over:.0f} s ({over / limit:.0%}) past the budget: a trial that started "
            f"ran on to its allowance (a replica up to {OVERRUN:g} times its estimate, at most "
            f"{PAST_BUDGET:.0%} of the budget past it), then the end scored the models")


def conclude(store: Storage, objective: Objective, memory: Memory, checkpoints: Checkpoints,
             resolve: Callable[[int], int], replicas: ReplicaPhase, stopped: str,
             ledger: Ledger) -> Summary:
    """Score the best trial and select the ensemble on the journal's checkpoints; the summary.

    The ledger is charged for the scoring (a time budget counts the end too).
    """
    stopped = replicas.last_word(stopped)
    records = store.trials()
    top = best(records)
    # A replica handed out but never started has no journal row: it is not OK.
    statuses = {r.id: r.status for r in records}
    test_accuracy = ensemble = None
    if isinstance(objective, TrainingObjective):
        paths = checkpoints.paths()
        test_accuracy, ensemble = memory.candidates.conclude(
            objective, paths, top, None if top is None else paths.get(resolve(top.id)),
            replicas.group(lambda i: statuses.get(i, TrialStatus.PENDING)))
        # Once the search is over nothing is promoted any more: keep only the checkpoints its
        # result may load (the best, the ensemble's members and candidates) and, under size
        # limits, its error-size front's (`nas export --pareto-index`).
        needed = memory.candidates.ids() | {int(k) for k in (ensemble or {}).get("weights", {})}
        needed |= memory.front_ids()
        needed |= set() if top is None else {top.id}
        checkpoints.drop_unused(needed | {resolve(i) for i in needed})
    ledger.tick()
    stopped = "; ".join(filter(None, [stopped, past_budget_note(ledger, stopped)]))
    return Summary(stopped=stopped, best_trial=None if top is None else top.id,
                   test_accuracy=test_accuracy, ensemble=ensemble, replicas=replicas.summary(),
                   spent=ledger.spent, finished_at=time.time(), baseline_won=winning_baseline(
                       store.meta(MetaKey.BASELINES, []), ensemble, top))
