from __future__ import annotations

import time

import pytest

from nas.budget import Budget
from nas.engine.ledger import Ledger, TimeLedger, TrialLedger
from nas.types import Result, TrialStatus


def _ledger(text: str, spent: float = 0.0) -> Ledger:
    return Ledger.for_budget(Budget.parse(text), spent=spent)


def test_each_unit_gets_its_strategy() -> None:
    assert type(_ledger("10ep")) is Ledger and type(_ledger("2000u")) is Ledger
    assert isinstance(_ledger("5trials"), TrialLedger)
    assert isinstance(_ledger("1m"), TimeLedger)


def test_what_a_trial_costs_before_it_runs() -> None:
    # Epochs: a continued trial pays its increment; trials: one each; time: bounded by the
    # deadline instead, nothing up front.
    assert _ledger("90ep").planned_cost(9.0, 3.0) == 6.0
    assert _ledger("5trials").planned_cost(9.0, 3.0) == 1.0
    assert _ledger("1m").planned_cost(9.0, 3.0) == 0.0
    assert _ledger("90ep").retrain_cost(12.5, 9.0) == 9.0
    assert _ledger("5trials").retrain_cost(12.5, 9.0) == 1.0
    assert _ledger("1m").retrain_cost(12.5, 9.0) == 12.5


def test_settling_charges_the_result_or_the_clock() -> None:
    result = Result(loss=0.1, epochs=3.0, seconds=100.0)
    amounts = _ledger("90ep")
    amounts.settle(result)
    assert amounts.spent == 3.0
    trials = _ledger("5trials")
    trials.settle(result)
    assert trials.spent == 1.0
    reused = Result(loss=0.1, epochs=0.0, reused_from=0)
    trials.settle(reused)
    assert trials.spent == 1.0  # a reused result costs nothing
    timed = _ledger("1m", spent=5.0)
    timed.start_clock()
    time.sleep(0.05)
    timed.settle(Result.failure(TrialStatus.FAILED, "x", seconds=1000.0))
    assert 5.04 <= timed.spent < 6.0  # the wall clock, not the trial's own seconds


def test_only_a_time_budget_has_a_deadline_and_cuts_trials_short() -> None:
    timed, amounts = _ledger("60s", spent=50.0), _ledger("90ep", spent=85.0)
    before = time.time()
    assert before + 3.0 <= timed.deadline(3.0) <= time.time() + 3.0
    assert amounts.deadline(3.0) is None
    assert timed.cuts_short(11.0) and not timed.cuts_short(9.0)
    assert not amounts.cuts_short(100.0)  # can_afford decides for amounts
    assert timed.too_little_left(30.0) and not timed.too_little_left(10.0)
    assert not timed.too_little_left(None) and not amounts.too_little_left(1000.0)
    assert timed.share_spent(4.0, 10.0) and not timed.share_spent(6.0, 10.0)
    assert amounts.share_spent(0.0, None) and not amounts.share_spent(0.5, None)
    assert timed.padded(10.0, 1.1) == pytest.approx(11.0) and amounts.padded(10.0, 1.1) == 10.0


def test_a_view_reads_but_never_charges() -> None:
    ledger = _ledger("10ep", spent=4.0)
    view = ledger.view()
    assert view.remaining == 6.0 and view.limit == ledger.limit
    assert not hasattr(view, "charge") and not hasattr(view, "settle")
