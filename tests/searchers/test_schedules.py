"""Schedules alone: the layout, the typed actions of tiny Hyperband and ASHA schedules, and the
promotion rule they share. No proposer and no searcher is involved."""

from __future__ import annotations

import math

import pytest
from ConfigSpace import ConfigurationSpace, Float

from nas.types import Result
from searchers import ScheduledSearcher, hyperband_layout
from searchers.proposers import Proposer, RandomProposer
from searchers.rankings import RungRanking
from searchers.schedules import (
    ASHASchedule,
    Done,
    FullBudget,
    HyperbandSchedule,
    Promote,
    Sample,
    Schedule,
    Wait,
)

INF = math.inf


def _cfg(tid: int) -> dict:
    return {"x": tid / 10}


def test_layout_matches_the_hyperband_paper() -> None:
    layout = hyperband_layout(1, 81, 3)
    table = [[(r.budget, r.n_configs) for r in b.rungs] for b in layout]
    assert table == [
        [(1, 81), (3, 27), (9, 9), (27, 3), (81, 1)],
        [(3, 34), (9, 11), (27, 3), (81, 1)],
        [(9, 15), (27, 5), (81, 1)],
        [(27, 8), (81, 2)],
        [(81, 5)],
    ]
    assert [b.index for b in layout] == [4, 3, 2, 1, 0]
    assert layout[0].cost == 405


def test_layout_with_a_range_that_is_not_a_power_of_eta() -> None:
    layout = hyperband_layout(2, 100, 3)  # s_max = 3: budgets 100/27 .. 100
    assert len(layout) == 4
    assert layout[0].rungs[0].budget == pytest.approx(100 / 27)
    assert all(r.budget >= 2 for b in layout for r in b.rungs)
    assert hyperband_layout(5, 5, 3)[0].rungs[0].n_configs == 1


@pytest.mark.parametrize("args", [(0, 10, 3), (10, 5, 3), (1, 10, 1)])
def test_layout_rejects_bad_arguments(args) -> None:
    with pytest.raises(ValueError):
        hyperband_layout(*args)


# -- the promotion rule ---------------------------------------------------------------------------


def test_rung_ranking_breaks_ties_by_id_never_promotes_failures_and_promotes_once() -> None:
    rung = RungRanking()
    for tid, loss in ((4, 0.3), (1, INF), (2, 0.3), (3, 0.1), (0, -INF)):
        rung.add(tid, loss, _cfg(tid))
    assert len(rung) == 5
    assert list(rung.candidates(5)) == [3, 2, 4]  # equal losses: the earlier id first
    assert list(rung.candidates(2)) == [3, 2]
    assert rung.promote(3) == _cfg(3)
    assert list(rung.candidates(2)) == [2]  # 3 moved up already and still takes its place
    with pytest.raises(KeyError):
        rung.promote(1)  # a failure keeps no configuration: it can never move up


def test_full_budget_samples_at_the_run_budget_forever() -> None:
    schedule = FullBudget()
    assert [schedule.next(i) for i in range(3)] == [Sample(None)] * 3
    schedule.record(0, _cfg(0), 0.5)
    assert schedule.continuable() == set()


# -- synchronous Hyperband ------------------------------------------------------------------------


def test_tiny_hyperband_schedule_samples_waits_promotes_and_is_done() -> None:
    layout = hyperband_layout(1, 3, 3)  # s = 1: 3 at budget 1, 1 at 3; s = 0: 2 at budget 3
    schedule = HyperbandSchedule(layout, max_brackets=2)
    b1 = {"bracket": 1, "rung": 0}
    assert [schedule.next(i) for i in range(3)] == [Sample(1, b1)] * 3
    # The first bracket waits for its rung: the second one starts meanwhile.
    assert [schedule.next(i) for i in (3, 4)] == [Sample(3, {"bracket": 0, "rung": 0})] * 2
    assert schedule.next(5) == Wait()  # both brackets wait and no third may start
    assert schedule.continuable() == {0, 1, 2}  # rung 0 of s = 1 has a rung after it
    for tid, loss in ((2, 0.2), (0, 0.5), (1, INF)):
        schedule.record(tid, _cfg(tid), loss)
    assert schedule.next(5) == Promote(2, _cfg(2), 3, {"bracket": 1, "rung": 1})
    assert schedule.continuable() == set()  # the promoted rung is the bracket's last
    assert schedule.next(6) == Wait()
    for tid in (3, 4, 5):
        schedule.record(tid, _cfg(tid), 1.0)
    assert schedule.next(6) == Done()
    assert schedule.next(6) == Done()


def test_hyperband_schedule_ignores_results_it_did_not_start() -> None:
    schedule = HyperbandSchedule(hyperband_layout(1, 3, 3))
    first = [schedule.next(i) for i in range(3)]
    schedule.record(99, _cfg(99), 0.0)  # unknown: ignored
    for tid in range(3):
        schedule.record(tid, _cfg(tid), float(3 - tid))
        schedule.record(tid, _cfg(tid), 0.0)  # told twice: the first result stands
    assert all(isinstance(a, Sample) for a in first)
    assert schedule.next(3) == Promote(2, _cfg(2), 3, {"bracket": 1, "rung": 1})


def test_a_bracket_whose_rung_all_failed_ends() -> None:
    schedule = HyperbandSchedule(hyperband_layout(1, 3, 3), max_brackets=1)
    for tid in range(3):
        schedule.next(tid)
    for tid in range(3):
        schedule.record(tid, _cfg(tid), INF)
    assert schedule.next(3) == Done()


# -- ASHA -----------------------------------------------------------------------------------------


def test_tiny_asha_schedule_promotes_the_top_third_without_waiting() -> None:
    schedule = ASHASchedule((1, 3, 9), eta=3)
    new = Sample(1, {"rung": 0})
    assert [schedule.next(i) for i in range(3)] == [new] * 3
    schedule.record(0, _cfg(0), 0.5)
    schedule.record(1, _cfg(1), 0.2)
    assert schedule.next(3) == new  # floor(2 / 3) = 0: nothing is due, and nothing waits
    schedule.record(2, _cfg(2), INF)
    assert schedule.continuable() == {1, 0}  # the window ceil(2 * 3 / 3) + 1 = 3, failures out
    assert schedule.next(4) == Promote(1, _cfg(1), 3, {"rung": 1})
    assert schedule.continuable() == {0}
    assert schedule.next(5) == new  # the one place of the top third is taken
    schedule.record(4, _cfg(4), 0.1)  # rung 1 (of 3): another rung follows, so it is kept
    assert schedule.continuable() == {0, 4}
    for tid in (5, 3):
        schedule.record(tid, _cfg(tid), 0.3)
    assert schedule.next(6) == new  # five results at rung 0: still one place
    schedule.record(6, _cfg(6), 0.9)
    # Six results, top two: 0.2 (promoted already) and 0.3 (trial 3, the earlier of two).
    assert schedule.next(7) == Promote(3, _cfg(3), 3, {"rung": 1})


def test_asha_schedule_promotes_from_the_highest_rung_first_and_keeps_no_top_rung() -> None:
    schedule = ASHASchedule((1, 3), eta=3)
    for tid in range(3):
        schedule.next(tid)
        schedule.record(tid, _cfg(tid), float(tid))
    assert schedule.next(3) == Promote(0, _cfg(0), 3, {"rung": 1})
    schedule.record(3, _cfg(0), 0.0)
    assert schedule.continuable() == {1, 2}  # the top rung's trial 3 is never continued
    assert schedule.next(4) == Sample(1, {"rung": 0})


# -- a searcher acting on the actions -------------------------------------------------------------


class _OneBracket(ScheduledSearcher):
    """Hyperband limited to its first bracket: asks None while it waits and once it is done."""

    name = "one-bracket"
    multi_fidelity = True

    def _make_schedule(self) -> Schedule:
        return HyperbandSchedule(hyperband_layout(1, 3, 3), max_brackets=1)

    def _make_proposer(self) -> Proposer:
        return RandomProposer(self.space)


def test_a_scheduled_searcher_asks_none_on_wait_and_done() -> None:
    space = ConfigurationSpace()
    space.add(Float("x", (0, 1)))
    s = _OneBracket(space, seed=0, include_default=True)
    first = [s.ask() for _ in range(3)]
    assert [t.info for t in first] == [{"bracket": 1, "rung": 0, "origin": "default"}] + \
        [{"bracket": 1, "rung": 0, "origin": "random"}] * 2
    assert s.ask() is None  # waiting: the rung is out
    for t in first:
        s.tell(t, Result(loss=t.config["x"]))
    best = min(first, key=lambda t: (t.config["x"], t.id))
    up = s.ask()
    assert (up.budget, up.parent, up.config, up.info["origin"]) == (3, best.id, best.config,
                                                                      "promoted")
    s.tell(up, Result(loss=0.0))
    assert s.ask() is None and s.ask() is None  # done
    assert s.continuable() == set() and not s.pending
