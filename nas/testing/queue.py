"""Checks of enqueued configurations (`Searcher.enqueue`): asked first, in order, each exactly
once and at its budget, before the searcher's own proposals; an invalid one is refused."""

from __future__ import annotations

from nas.testing.driver import MAX_BUDGET, _label, make_searcher, run
from nas.testing.problems import mixed_problem
from nas.testing.watchdog import guarded
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
    for k, (config, budget) in enumerate(queued):
        trial = pairs[k][0]
        assert dict(trial.config) == config and trial.budget == budget, (
            f"{label}'s trial #{k} is {dict(trial.config)} at {trial.budget}, not the enqueued "
            f"{config} at {budget}")
        assert trial.info.get("origin") == "enqueued", f"{label}: trial #{k} not marked enqueued"
    again = [t.id for t, _ in pairs[len(queued):] if t.info.get("origin") == "enqueued"]
    assert not again and not searcher.enqueued, (
        f"{label} asked an enqueued configuration twice (trials {again})")
