from __future__ import annotations

import math

import pytest

import searchers
from nas import problems
from nas.types import Result
from searchers.fidelity import FidelityCheck, kendall_tau
from searchers.schedules import HyperbandSchedule, Sample, hyperband_layout


def test_kendall_tau_counts_agreeing_and_disagreeing_orders() -> None:
    assert kendall_tau([(1, 10), (2, 20), (3, 30)]) == 1.0
    assert kendall_tau([(1, 30), (2, 20), (3, 10)]) == -1.0
    # Ties count neither way: of three pairs of pairs, one discordant, two tied.
    assert kendall_tau([(1, 5), (1, 6), (2, 5)]) == pytest.approx(-1 / 3)
    assert kendall_tau([(1, 1)]) == 0.0


def test_a_check_keeps_each_steps_tau_as_pairs_arrive() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    check, points = FidelityCheck(), []
    for low, high in rng.normal(size=(40, 2)).round(1):  # rounded: ties too
        check.add(3.0, float(low), 9.0, float(low + high))
        points.append((float(low), float(low + high)))
        assert check.tau(3.0, 9.0) == pytest.approx(kendall_tau(points))


def _pairs(check: FidelityCheck, low: float, high: float, agree: bool, n: int = 6) -> None:
    for i in range(n):
        check.add(low, float(i), high, float(i if agree else -i))


def test_a_budget_is_trusted_only_as_far_as_the_steps_above_it_keep_its_order() -> None:
    check = FidelityCheck(min_pairs=6, min_trust=0.3)
    _pairs(check, 1, 3, agree=True)
    _pairs(check, 3, 9, agree=True)
    _pairs(check, 9, 27, agree=False)  # the ranking turns over between 9 and 27
    _pairs(check, 27, 81, agree=True)
    assert check.trust(27) == 1.0 and check.trust(9) == 0.0 and check.trust(1) == 0.0
    assert check.misleading() == [1, 3, 9]
    assert check.lowest_trusted([1, 3, 9, 27, 81]) == 27
    check.add(1, math.inf, 3, 0.0)  # a failure says nothing about the order
    assert len(check.pairs[1, 3]) == 6


def test_too_few_pairs_are_no_evidence() -> None:
    check = FidelityCheck(min_pairs=6)
    _pairs(check, 9, 27, agree=False, n=5)
    assert check.misleading() == [] and check.lowest_trusted([1, 9, 27]) == 1


def test_a_hyperband_schedule_starts_no_bracket_at_a_misleading_budget() -> None:
    check = FidelityCheck()
    _pairs(check, 3, 9, agree=False)
    layout = hyperband_layout(1, 81, 3)
    schedule = HyperbandSchedule(layout, check=check)
    action = schedule.next(0)
    assert isinstance(action, Sample) and action.budget is not None and action.budget >= 9
    assert HyperbandSchedule(layout).next(0) == Sample(1.0, {"bracket": 4, "rung": 0})


def _run(name: str, problem: problems.Problem, factor: float = 30, **options: object
         ) -> tuple[list[tuple[dict, float | None]], searchers.Searcher]:
    searcher = searchers.get(name, problem.space, seed=0, min_budget=problem.min_budget,
                             max_budget=problem.max_budget, **options)
    asked, spent = [], 0.0
    while spent < factor * problem.max_budget:
        trial = searcher.ask()
        assert trial is not None and trial.budget is not None
        asked.append((dict(trial.config), trial.budget))
        spent += trial.budget
        searcher.tell(trial, Result(loss=problem.evaluate(trial.config, trial.budget)))
    return asked, searcher


@pytest.mark.parametrize("name", ["bohb", "hyperband", "asha"])
def test_the_check_finds_misleading_low_budgets_and_moves_up(name: str) -> None:
    problem = problems.get("mixed-10d")
    asked, searcher = _run(name, problem, check_fidelity=True)
    assert searcher.options["check_fidelity"] is True
    fidelity = searcher.fidelity
    assert fidelity is not None and fidelity.misleading()
    floor = fidelity.lowest_trusted(r.budget for r in searcher.layout[0].rungs)
    assert floor > problem.min_budget
    plain, _ = _run(name, problem)
    # With the check, fewer trials start at the lowest budget than without it.
    assert sum(b == problem.min_budget for _, b in asked) \
        < sum(b == problem.min_budget for _, b in plain)


def test_where_budgets_agree_the_check_changes_nothing() -> None:
    problem = problems.get("mf-branin")
    checked, searcher = _run("bohb", problem, check_fidelity=True)
    plain, _ = _run("bohb", problem)
    assert searcher.fidelity is not None and searcher.fidelity.pairs  # it measured
    assert searcher.fidelity.misleading() == [] and checked == plain


def test_direct_pairs_replace_the_product_once_there_are_enough() -> None:
    check = FidelityCheck(min_direct=3)
    # Every step keeps its order (the product says: trust 1), but the top reverses budget 1's.
    for step in ((1, 3), (3, 9), (9, 27), (27, 81)):
        _pairs(check, *step, agree=True)
    assert check.trust(1) == 1.0
    check.add_lineage([(1, 0.0), (9, 0.0)], 81, 3.0)
    check.add_lineage([(1, 1.0), (9, 1.0)], 81, 2.0)
    assert check.trust(1) == 1.0  # two direct pairs are no evidence yet
    check.add_lineage([(1, 2.0), (9, 2.0)], 81, 1.0)
    check.add_lineage([(1, 3.0), (9, math.nan)], 81, math.inf)  # a failure: no pair
    assert check.trust(1) == 0.0 and check.trust(9) == 0.0 and check.trust(3) == 1.0
    assert check.lowest_trusted([1, 3, 9, 27, 81]) == 27


def test_settled_when_the_direct_pairs_agree_or_the_lowest_is_no_better_than_chance() -> None:
    budgets = (1.0, 3.0, 9.0)
    agree, reverse, mixed = FidelityCheck(), FidelityCheck(), FidelityCheck()
    for i in range(3):
        agree.add_lineage([(1.0, i), (3.0, i)], 9.0, float(i))
        reverse.add_lineage([(1.0, i), (3.0, i)], 9.0, float(-i))
        mixed.add_lineage([(1.0, i), (3.0, [0, 2, 1][i])], 9.0, float(i))
    assert agree.settled(budgets) and reverse.settled(budgets)
    assert not mixed.settled(budgets)  # budget 3 half agrees: more ladders needed
    assert not FidelityCheck().settled(budgets)


def test_hyperband_adds_the_lineage_of_every_trial_that_reaches_the_top() -> None:
    problem = problems.get("mf-branin")
    _, searcher = _run("hyperband", problem, check_fidelity=True)
    check = searcher.fidelity
    assert check is not None
    top = problem.max_budget
    # Budget 1's trials reach the top only from bracket 4, after 3 promotions in between.
    assert set(check.direct) == {(b, top) for b in (1.0, 3.0, 9.0, 27.0)}
    assert len(check.direct[1.0, top]) < len(check.direct[27.0, top])


def _ladder_run(losses: dict[int, list[float]], count: int = 6) -> tuple[list, FidelityCheck]:
    """Drive `Ladders` over budgets 1, 3, 9 with a made-up loss per (ladder, rung)."""
    from searchers.ladders import Ladders
    from searchers.schedules import Promote

    check = FidelityCheck()
    layout = hyperband_layout(1, 9, 3)
    schedule = Ladders(HyperbandSchedule(layout, check=check), (1.0, 3.0, 9.0), count, check)
    actions, of = [], {}
    for tid in range(40):
        action = schedule.next(tid)
        actions.append(action)
        info = getattr(action, "info", {})
        if "ladder" in info:
            of[tid] = info["ladder"]
            loss = losses[info["ladder"]][info["rung"]]
        else:
            loss = float(tid)
        config = {"x": of.get(tid, tid)} if not isinstance(action, Promote) else action.config
        schedule.record(tid, config, loss)
    return actions, check


def test_ladders_climb_every_rung_whatever_their_rank_then_the_schedule_runs() -> None:
    from searchers.schedules import Promote

    agree = {i: [float(i), float(i), float(i)] for i in range(6)}
    agree[0] = [9.0, 9.0, 9.0]  # the worst at every rung still climbs
    actions, check = _ladder_run(agree)
    ladder = [a for a in actions if "ladder" in getattr(a, "info", {})]
    # Three ladders (their ranks agree: settled), each sampled at 1 and promoted to 3 and 9.
    assert len(ladder) == 9
    assert [a.budget for a in ladder if isinstance(a, Sample)] == [1.0, 1.0, 1.0]
    assert sorted(a.budget for a in ladder if isinstance(a, Promote)) == [3, 3, 3, 9, 9, 9]
    # Each ladder gave a direct pair per budget (Hyperband's own promotions add more later).
    assert check.direct[1.0, 9.0][:3] == [(9.0, 9.0), (1.0, 1.0), (2.0, 2.0)]
    # Then Hyperband's own first bracket starts at budget 1.
    assert actions[9] == Sample(1.0, {"bracket": 2, "rung": 0})


def test_ladders_go_on_while_the_evidence_is_mixed() -> None:
    mixed = {i: [float(i), float([0, 2, 1, 3, 4, 5][i]), float(i)] for i in range(6)}
    actions, check = _ladder_run(mixed, count=5)
    assert sum(isinstance(a, Sample) and "ladder" in a.info for a in actions) == 5
    assert len(check.direct[3.0, 9.0]) >= 5


def test_checked_bohb_proposes_from_the_top_budget_once_a_low_one_misleads() -> None:
    problem = problems.get("mixed-10d")
    asked, searcher = _run("bohb-checked", problem)
    check = searcher.fidelity
    assert check is not None and check.lowest_trusted([1, 3, 9, 27, 81]) > 1
    # Only the ladders' pools (three to six ladders) ever trained at budget 1: no bracket
    # started there.
    at_min = sum(b == problem.min_budget for _, b in asked)
    assert 3 * searcher.ladder_pool <= at_min <= searcher.ladders * searcher.ladder_pool
    proposer = searcher.proposer
    assert proposer.top.observations[None].n >= proposer.top.models.n_startup
    # Where budgets agree it stays BOHB: brackets from the lowest budget, its own models.
    branin, checked = _run("bohb-checked", problems.get("mf-branin"))
    assert checked.fidelity is not None and checked.fidelity.misleading() == []
    assert sum(b == 1.0 for _, b in branin) > 20


def test_ladders_from_a_pool_climb_its_best_middle_and_worst() -> None:
    from searchers.ladders import Ladders
    from searchers.schedules import Promote

    check = FidelityCheck()
    schedule = Ladders(HyperbandSchedule(hyperband_layout(1, 9, 3), check=check),
                       (1.0, 3.0, 9.0), 3, check, pool=3)
    low = [5.0, 1.0, 7.0, 3.0, 9.0, 2.0, 8.0, 4.0, 6.0]  # pool trial i's loss at budget 1
    for tid, loss in enumerate(low):
        action = schedule.next(tid)
        assert action == Sample(1.0, {"ladder pool": tid, "rung": 0})
        schedule.record(tid, {"x": tid}, loss)
        # Told pool trials may still climb: their checkpoints must stay.
        assert set(range(tid + 1)) <= schedule.continuable()
    climbed = []
    for tid in range(9, 15):
        action = schedule.next(tid)
        assert isinstance(action, Promote) and "ladder" in action.info
        climbed.append(action.config["x"])
        # The top reverses budget 1's order: the check must see it.
        schedule.record(tid, action.config, -low[action.config["x"]])
    # Trials 1, 0 and 4 (losses 1, 5 and 9 at budget 1) climb, the best first.
    assert climbed == [1, 1, 0, 0, 4, 4]
    assert sorted(check.direct[1.0, 9.0]) == [(1.0, -1.0), (5.0, -5.0), (9.0, -9.0)]
    assert check.lowest_trusted((1.0, 3.0, 9.0)) > 1.0
    # Budget 3 ranks as the top does (the same losses): brackets now start there.
    assert schedule.next(15) == Sample(3.0, {"bracket": 1, "rung": 0})


def test_a_pool_whose_trials_all_fail_ends_its_round() -> None:
    from searchers.ladders import Ladders

    check = FidelityCheck()
    schedule = Ladders(HyperbandSchedule(hyperband_layout(1, 9, 3), check=check),
                       (1.0, 3.0, 9.0), 1, check, first=1, pool=2)
    for tid in range(2):
        assert "ladder pool" in schedule.next(tid).info
        schedule.record(tid, {"x": tid}, None)
    assert schedule.next(2) == Sample(1.0, {"bracket": 2, "rung": 0})


def test_a_checked_bohb_journal_from_before_the_pool_resumes_without_it() -> None:
    from nas.engine.options import rebuild_searcher

    problem = problems.get("mixed-10d")
    budgets = {"min_budget": problem.min_budget, "max_budget": problem.max_budget}
    new = searchers.get("bohb-checked", problem.space, seed=0, **budgets)
    # Budgets 1-81: the first bracket samples 81 at budget 1, so three ladders 27 each.
    assert new.ladder_pool == 27 and new.options["ladder_pool"] == 27
    old_options = {k: v for k, v in new.options.items() if k not in ("ladder_pool", "min_trust")}
    old = rebuild_searcher("bohb-checked", problem.space, 0, old_options)
    assert old.ladder_pool == 1 and old.min_trust == new.min_trust
    assert rebuild_searcher("bohb-checked", problem.space, 0, new.options).ladder_pool == 27
    # A journal of a pool of 3 (the default before it followed the layout) keeps its 3.
    three = rebuild_searcher("bohb-checked", problem.space, 0, {**new.options, "ladder_pool": 3})
    assert three.ladder_pool == 3


def test_the_ladders_pool_follows_the_first_bracket_s_first_rung() -> None:
    from searchers.ladders import layout_pool

    space = problems.get("mixed-10d").space
    for low, high, pool in ((1, 81, 27), (1, 27, 9), (1, 9, 3), (1, 3, 1)):
        assert layout_pool(hyperband_layout(low, high, 3), 3) == pool
        checked = searchers.get("bohb-checked", space, seed=0, min_budget=low, max_budget=high)
        assert checked.ladder_pool == pool
    assert layout_pool(hyperband_layout(1, 81, 3), 1) == 81  # one ladder: the whole rung


def test_the_top_model_proposes_after_five_top_results_and_old_journals_wait_for_ten() -> None:
    from nas.engine.options import rebuild_searcher

    problem = problems.get("mixed-10d")
    budgets = {"min_budget": problem.min_budget, "max_budget": problem.max_budget}
    new = searchers.get("bohb-checked", problem.space, seed=0, **budgets)
    old_options = {k: v for k, v in new.options.items() if k != "top_startup"}
    old = rebuild_searcher("bohb-checked", problem.space, 0, old_options)
    assert (new.top_startup, old.top_startup) == (5, 10)
    configs = [dict(c) for c in problem.space.sample_configuration(5)]
    origins = []
    for searcher in (new, old):
        top = searcher.proposer.top
        for k, config in enumerate(configs):
            top.observe(config, None, float(k))
        origins.append(top.propose(None).origin)
    assert origins == ["model", "random"]


def test_a_checked_bohb_models_categoricals_alone_and_old_journals_keep_one_kernel() -> None:
    from nas.engine.options import rebuild_searcher

    problem = problems.get("mixed-10d")
    budgets = {"min_budget": problem.min_budget, "max_budget": problem.max_budget}
    new = searchers.get("bohb-checked", problem.space, seed=0, **budgets)
    assert new.options["categoricals"] == "independent"
    assert new.proposer.proposer.categoricals == new.proposer.top.categoricals == "independent"
    old_options = {k: v for k, v in new.options.items() if k != "categoricals"}
    old = rebuild_searcher("bohb-checked", problem.space, 0, old_options)
    assert old.proposer.proposer.categoricals == old.proposer.top.categoricals == "joint"
    # Plain BOHB keeps one product kernel: there it measured level.
    assert searchers.get("bohb", problem.space, seed=0, **budgets).categoricals == "joint"
