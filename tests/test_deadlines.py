"""A time budget stops a function objective (issue 21, item 9): worker processes stop it at the
deadline; in this process, where a call cannot be stopped, the summary says how far it ran over."""

from __future__ import annotations

import time

import pytest
from ConfigSpace import ConfigurationSpace, Float

import nas
from nas.types import TrialStatus
from tests.helpers import slow_quadratic


def _space() -> ConfigurationSpace:
    return ConfigurationSpace(space={"x": Float("x", (-2.0, 2.0))}, seed=0)


def sleepy(config: dict, budget: float) -> float:
    time.sleep(6.0)
    return config["x"] ** 2


def test_worker_processes_stop_a_function_at_the_deadline() -> None:
    start = time.monotonic()
    result = nas.optimize(sleepy, _space(), "random", "2s", storage=":memory:",
                          executor="local", workers=1)
    wall = time.monotonic() - start
    assert wall < 6.0  # not the 6 s the call takes (worker start-up included)
    stopped = [r for r in result.trials if r.status is TrialStatus.FAILED]
    assert stopped and "deadline" in stopped[0].result.error


def test_in_process_the_summary_says_how_far_it_ran_over() -> None:
    result = nas.optimize(sleepy, _space(), "random", "1s", storage=":memory:")
    assert "past the budget" in result.stopped and 'executor="local"' in result.stopped


@pytest.mark.parametrize("executor", ["inprocess", "local"])
def test_objectives_that_finish_in_time_are_untouched(executor: str) -> None:
    result = nas.optimize(slow_quadratic, _space(), "random", "3trials", storage=":memory:",
                          executor=executor, workers=1 if executor == "local" else None)
    assert all(r.status is TrialStatus.OK for r in result.trials)


def test_a_time_budget_ended_well_past_its_limit_is_stated() -> None:
    from nas.budget import Budget, Unit
    from nas.engine.finish import past_budget_note
    from nas.engine.ledger import Ledger

    def ledger(spent: float, unit: Unit = Unit.SECONDS) -> Ledger:
        out = Ledger.for_budget(Budget(600.0, unit))
        out.charge(spent)
        return out

    note = past_budget_note(ledger(686.0), "the rest of the budget is kept for replicas")
    assert note.startswith("ended 86 s (14%) past the budget") and "replica" in note
    assert past_budget_note(ledger(650.0), "") == ""  # within 10 %
    assert past_budget_note(ledger(700.0, Unit.EPOCHS), "") == ""
    assert past_budget_note(ledger(686.0), "the last trial ran 86 s past the budget") == ""
