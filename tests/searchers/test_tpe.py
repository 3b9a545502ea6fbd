from __future__ import annotations

import itertools

import numpy as np
import pytest
from ConfigSpace import ConfigurationSpace, Float

import nas.testing as conformance
from nas.types import Result, Trial
from searchers import TPE


def _space() -> ConfigurationSpace:
    s = ConfigurationSpace()
    s.add([Float("x", (0, 1)), Float("y", (0, 1))])
    return s


def _bowl(config: dict) -> float:
    return (config["x"] - 0.3) ** 2 + (config["y"] - 0.4) ** 2


def _bowl_objective(trial: Trial) -> float:
    return _bowl(trial.config)


def _spread_of_parallel_asks(seed: int, constant_liar: bool, **options: float) -> float:
    """Mean pairwise distance, in the model's unit square, of 4 asks after 20 tells."""
    tpe = TPE(_space(), seed=seed, constant_liar=constant_liar, **options)
    for _ in range(20):
        t = tpe.ask()
        tpe.tell(t, Result(loss=_bowl(t.config)))
    asked = [tpe.ask() for _ in range(4)]  # none told: all four run at once
    assert tpe.proposer.observations[None].n == 20  # the liars were for those asks only
    vectors = [tpe.proposer.coder.encode(t.config) for t in asked]
    return float(np.mean([np.linalg.norm(a - b) for a, b in itertools.combinations(vectors, 2)]))


# The default's tighter kernels draw every candidate nearer the good trials, so the liar has
# less room to spread them: 1.2x the plain spread against 1.9x with the rule's own widths.
@pytest.mark.parametrize(("options", "ratio"), [({}, 1.15), ({"bandwidth_scale": 1.0}, 1.5)])
def test_constant_liar_spreads_parallel_asks(options: dict[str, float], ratio: float) -> None:
    seeds = range(10)
    liar = np.array([_spread_of_parallel_asks(s, True, **options) for s in seeds])
    plain = np.array([_spread_of_parallel_asks(s, False, **options) for s in seeds])
    # Without the liar all four come from the same model and crowd the incumbent.
    assert (liar > plain).sum() >= 8, (liar.round(3), plain.round(3))
    assert liar.mean() > ratio * plain.mean(), (liar.round(3), plain.round(3))


@pytest.mark.parametrize("seed", [0, 1])
def test_constant_liar_leaves_sequential_asks_unchanged(seed: int) -> None:
    problem = conformance.mixed_problem()
    runs = []
    for constant_liar in (True, False):
        tpe = TPE(problem.space, seed=seed, constant_liar=constant_liar)
        assert tpe.options["constant_liar"] is constant_liar
        pairs = conformance.run(tpe, problem, 40, fail_every=6)
        runs.append([t.to_dict() for t, _ in pairs])
    assert runs[0] == runs[1]


def test_constant_liar_is_on_by_default_and_told_trials_leave_no_trace() -> None:
    tpe = TPE(_space(), seed=0, n_startup=5)
    assert tpe.constant_liar and tpe.options["constant_liar"] is True
    pairs = conformance.run(tpe, _bowl_objective, 30, in_flight=4, tell_order_seed=0)
    assert len(pairs) == 30 and not tpe.pending
    assert tpe.proposer.observations[None].n == 30
    assert "model" in {t.info["origin"] for t, _ in pairs}


def test_a_journal_older_than_bandwidth_scale_resumes_with_the_rules_widths() -> None:
    from nas.engine.options import rebuild_searcher
    from searchers.tpe import BANDWIDTH_SCALE

    written = TPE(_space(), seed=3).options
    assert written["bandwidth_scale"] == BANDWIDTH_SCALE < 1
    assert rebuild_searcher("tpe", _space(), 3, written).bandwidth_scale == BANDWIDTH_SCALE
    older = {k: v for k, v in written.items() if k != "bandwidth_scale"}
    rebuilt = rebuild_searcher("tpe", _space(), 3, older)
    assert rebuilt.bandwidth_scale == 1.0
    then = TPE(_space(), seed=3, bandwidth_scale=1.0)
    for searcher in (rebuilt, then):
        for _ in range(15):
            t = searcher.ask()
            searcher.tell(t, Result(loss=_bowl(t.config)))
    assert [t.config for t, _ in rebuilt.history] == [t.config for t, _ in then.history]


def test_a_journal_older_than_categoricals_resumes_with_one_joint_kernel() -> None:
    from nas.engine.options import rebuild_searcher

    problem = conformance.mixed_problem()
    written = TPE(problem.space, seed=3).options
    assert written["categoricals"] == "independent"
    older = {k: v for k, v in written.items() if k != "categoricals"}
    rebuilt = rebuild_searcher("tpe", problem.space, 3, older)
    assert rebuilt.categoricals == "joint"
    runs = [[t.config for t, _ in conformance.run(searcher, problem, 25)] for searcher in (
        rebuilt, TPE(problem.space, seed=3, categoricals="joint"),
        TPE(problem.space, seed=3))]
    assert runs[0] == runs[1] != runs[2]  # the old kernel's asks, not today's
    with pytest.raises(ValueError, match="categoricals must be one of"):
        TPE(problem.space, categoricals="grouped")
