"""Checks of what a search builds on: enqueued configurations (`Searcher.enqueue`: asked first,
in order, each exactly once and at its budget; an invalid one refused) and imported results
(`Searcher.observe`: never asked or pending; they steer a model-based searcher)."""

from __future__ import annotations

import copy

from ConfigSpace import ConfigurationSpace, Float

from nas.testing.driver import MAX_BUDGET, MIN_BUDGET, _label, _result, make_searcher, run
from nas.testing.problems import continuous_problem, mixed_problem
from nas.testing.validity import assert_valid_config
from nas.testing.watchdog import guarded
from nas.types import Trial
from searchers.base import Searcher


@guarded
def check_enqueue(cls: type[Searcher]) -> None:
    """Two enqueued configurations (the second at a third of the full budget on a multi-fidelity
    searcher) are the first two trials, then 10 of the searcher's own, none enqueued again."""
    problem = mixed_problem()
    searcher = make_searcher(cls, problem.space, seed=3)
    other = problem.space
    other.seed(12345)
    budgets = (None, MAX_BUDGET / 3 if cls.multi_fidelity else None)
    for budget in budgets:
        searcher.enqueue(dict(other.sample_configuration()), budget=budget)
    queued = list(searcher.enqueued)
    try:
        searcher.enqueue({"no such hyperparameter": 1})
    except ValueError as exc:
        assert "no such hyperparameter" in str(exc), (
            f"{_label(cls)}: refusing an unknown name, the error does not name it: {exc}")
    else:
        raise AssertionError(f"{_label(cls)} queued a configuration the space does not hold")
    pairs = run(searcher, problem, 12)
    label = _label(cls)
    assert len(pairs) == 12, f"{label} ran {len(pairs)} of 12 trials"
    for k, (config, budget, _) in enumerate(queued):
        trial = pairs[k][0]
        assert dict(trial.config) == config and trial.budget == budget, (
            f"{label}'s trial #{k} is {dict(trial.config)} at {trial.budget}, not the enqueued "
            f"{config} at {budget}")
        assert trial.info.get("origin") == "enqueued", f"{label}: trial #{k} not marked enqueued"
    again = [t.id for t, _ in pairs[len(queued):] if t.info.get("origin") == "enqueued"]
    assert not again and not searcher.enqueued, (
        f"{label} asked an enqueued configuration twice (trials {again})")


#: Results a warm start tells in `check_imports`.
N_IMPORTS = 30


@guarded
def check_imports(cls: type[Searcher]) -> None:
    """30 imported results (random configurations, at the full budget and, on a multi-fidelity
    searcher, a third at the lowest) are never asked again, pending or numbered; a
    `learns_imports` model-based searcher proposes differently with them than without."""
    problem = continuous_problem()
    label = _label(cls)
    cold = make_searcher(cls, problem.space, seed=3)
    warm = make_searcher(cls, problem.space, seed=3)
    other = copy.deepcopy(problem.space)
    other.seed(2024)
    for k in range(N_IMPORTS):
        config = dict(other.sample_configuration())
        budget = MIN_BUDGET if cls.multi_fidelity and k % 3 == 0 else None
        trial = Trial(id=-1, config=config, budget=budget)
        warm.observe(config, _result(warm, trial, problem(trial), 1.0), budget=budget)
    assert not warm.pending and warm.next_id == 0, (
        f"{label}: imported results became its own trials (pending {sorted(warm.pending)}, "
        f"next id {warm.next_id})")
    assert len(warm.imported) == N_IMPORTS, f"{label} kept {len(warm.imported)} imports"
    n = 8
    warm_pairs, cold_pairs = run(warm, problem, n), run(cold, problem, n)
    assert len(warm_pairs) == n, f"{label} ran {len(warm_pairs)} of {n} trials after imports"
    assert [t.id for t, _ in warm_pairs] == list(range(n)), (
        f"{label}: after imports its trials are numbered {[t.id for t, _ in warm_pairs]}")
    if cls.learns_imports and cls.model_based:
        assert [t.config for t, _ in warm_pairs] != [t.config for t, _ in cold_pairs], (
            f"{label} learns from imports (learns_imports) but proposed the same {n} trials "
            "with and without them")


@guarded
def check_space_change(cls: type[Searcher]) -> None:
    """A searcher rebuilt on a widened space after 16 trials (as `nas resume --space-update`
    does: numbered on from 16, shown the 16 results with `observe`) asks valid trials of the
    new space; a `learns_imports` model-based one proposes differently from a fresh one."""
    problem = continuous_problem()
    label = _label(cls)
    before = run(make_searcher(cls, problem.space, seed=3), problem, 16)
    wider = ConfigurationSpace(name="conformance-continuous-wider")
    wider.add([Float("x", (-5.0, 10.0)), copy.deepcopy(problem.space["y"])])
    rebuilt = make_searcher(cls, wider, seed=4)
    fresh = make_searcher(cls, wider, seed=4)
    rebuilt.start_at(16)
    for trial, result in before:
        rebuilt.observe(trial.config, result, budget=trial.budget)
    n = 6
    after, cold = run(rebuilt, problem, n), run(fresh, problem, n)
    assert [t.id for t, _ in after] == list(range(16, 16 + n)), (
        f"{label} rebuilt after a space change numbers its trials {[t.id for t, _ in after]}")
    for trial, _ in after:
        assert_valid_config(wider, trial.config)
    if cls.learns_imports and cls.model_based:
        assert [t.config for t, _ in after] != [t.config for t, _ in cold], (
            f"{label} rebuilt on a changed space proposed as if it had seen nothing (its model "
            "of the earlier trials was lost)")
