"""Proposers alone: the default first, and the one KDE proposer under TPE's and BOHB's settings
(which results it models, how it splits them, which random draws it makes)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace, Float

from searchers import BOHB, TPE, AsyncBOHB, Proposal
from searchers.encoding import SpaceCoder
from searchers.proposers import (
    DefaultFirst,
    GammaSplit,
    KDEProposer,
    LargestBudget,
    RandomProposer,
    SingleModel,
    TopPercentSplit,
)


def _space(seed: int = 0) -> ConfigurationSpace:
    s = ConfigurationSpace(seed=seed)
    s.add([Float("x", (0, 1), default=0.5), Float("y", (0, 1), default=0.5)])
    return s


def _bowl(config: Mapping[str, Any]) -> float:
    return (config["x"] - 0.3) ** 2 + (config["y"] - 0.4) ** 2


def _tpe_like(rng: np.random.Generator, *, constant_liar: bool = True) -> KDEProposer:
    return KDEProposer(SpaceCoder(_space()), rng, models=SingleModel(5), split=GammaSplit(0.15),
                       n_candidates=24, constant_liar=constant_liar, prior_weight=1.0,
                       magic_clip=True)


def _bohb_like(rng: np.random.Generator, random_fraction: float | None) -> KDEProposer:
    return KDEProposer(SpaceCoder(_space()), rng, models=LargestBudget(2),
                       split=TopPercentSplit(15, 2), n_candidates=64, bandwidth_factor=3,
                       random_fraction=random_fraction)


def _state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def propose(self, budget: float | None, pending: Sequence[Mapping[str, Any]] = ()
                ) -> Proposal:
        self.calls.append(("propose", budget, list(pending)))
        return Proposal({"x": 0.1, "y": 0.2}, "model")

    def observe(self, config: Mapping[str, Any], budget: float | None, loss: float) -> None:
        self.calls.append(("observe", dict(config), budget, loss))


def test_default_first_proposes_the_default_once_then_passes_everything_on() -> None:
    inner = _Recorder()
    proposer = DefaultFirst(inner, _space())
    assert proposer.propose(1.0) == Proposal({"x": 0.5, "y": 0.5}, "default")
    assert inner.calls == []
    assert proposer.propose(3.0, [{"x": 0.9, "y": 0.9}]) == Proposal({"x": 0.1, "y": 0.2},
                                                                      "model")
    proposer.observe({"x": 0.5, "y": 0.5}, 1.0, 0.25)
    assert inner.calls == [("propose", 3.0, [{"x": 0.9, "y": 0.9}]),
                           ("observe", {"x": 0.5, "y": 0.5}, 1.0, 0.25)]


def test_random_proposer_samples_the_space() -> None:
    proposals = [RandomProposer(_space(seed=3)).propose(None) for _ in range(2)]
    assert proposals[0] == proposals[1]  # the space's own generator, seeded alike
    assert proposals[0].origin == "random"
    assert proposals[0].config == dict(_space(seed=3).sample_configuration())


def test_tpe_and_bohb_and_async_bohb_share_the_kde_proposer() -> None:
    tpe = TPE(_space(), n_startup=7, gamma=0.2)
    assert isinstance(tpe.proposer, KDEProposer)
    assert (tpe.proposer.models, tpe.proposer.split) == (SingleModel(7), GammaSplit(0.2))
    assert tpe.proposer.random_fraction is None and tpe.proposer.constant_liar
    for cls in (BOHB, AsyncBOHB):
        bohb = cls(_space(), min_budget=1, max_budget=9, top_n_percent=20)
        assert isinstance(bohb.proposer, KDEProposer)
        # Two modelled dims: at least d + 1 = 3 points in each density.
        assert (bohb.proposer.models, bohb.proposer.split) == (LargestBudget(3),
                                                               TopPercentSplit(20, 3))
        assert bohb.proposer.random_fraction == 1 / 3 and not bohb.proposer.constant_liar


def test_splits() -> None:
    assert GammaSplit(0.15).sizes(10) == (2, None)  # ceil(1.5); the bad ones: all the rest
    assert GammaSplit(0.15).sizes(1) == (1, None)
    assert TopPercentSplit(15, 4).sizes(40) == (6, 34)  # floor(6.0), floor(34.0)
    assert TopPercentSplit(15, 4).sizes(6) == (4, 5)  # at least min_points each: they overlap


def test_tpe_settings_one_model_random_and_drawing_nothing_during_start_up() -> None:
    rng = np.random.default_rng(0)
    proposer = _tpe_like(rng)
    before = _state(rng)
    for i in range(5):
        proposal = proposer.propose(None, [{"x": 0.5, "y": 0.5}])
        assert proposal.origin == "random" and _state(rng) == before  # the space samples it
        proposer.observe(proposal.config, (None, 1.0, 3.0)[i % 3], _bowl(proposal.config))
    assert list(proposer.observations) == [None] and proposer.observations[None].n == 5
    assert proposer.propose(None).origin == "model"
    assert _state(rng) != before


def test_constant_liar_moves_a_proposal_away_from_running_trials() -> None:
    proposers = {liar: _tpe_like(np.random.default_rng(1), constant_liar=liar)
                 for liar in (True, False)}
    for proposer in proposers.values():
        for _ in range(20):
            config = proposer.propose(None).config
            proposer.observe(config, None, _bowl(config))
    for liar, proposer in proposers.items():
        alone = copy.deepcopy(proposer).propose(None)
        crowded = copy.deepcopy(proposer).propose(None, [alone.config] * 3)
        assert (alone != crowded) is liar
        assert proposer.observations[None].n == 20  # the liars were for that proposal only


def test_bohb_settings_draw_once_for_the_random_fraction_even_at_zero() -> None:
    for fraction, draws in ((0.0, 1), (None, 0)):
        rng, twin = np.random.default_rng(2), np.random.default_rng(2)
        proposer = _bohb_like(rng, fraction)
        assert proposer.propose(1.0).origin == "random"  # no model has 2 + 2 points yet
        for _ in range(draws):
            twin.random()
        assert _state(rng) == _state(twin), fraction
    always = _bohb_like(np.random.default_rng(2), 1.0)
    for _ in range(8):
        always.observe({"x": 0.3, "y": 0.4}, 1.0, 0.0)
    assert always.propose(1.0).origin == "random"


def test_bohb_settings_model_the_largest_budget_with_enough_points() -> None:
    proposer = _bohb_like(np.random.default_rng(3), 0.0)
    rule = proposer.models
    points = np.random.default_rng(4).random((8, 2))
    for x, y in points[:4]:
        proposer.observe({"x": x, "y": y}, 1.0, _bowl({"x": x, "y": y}))
    for x, y in points[4:7]:
        proposer.observe({"x": x, "y": y}, 3.0, _bowl({"x": x, "y": y}))
    assert rule.choose(proposer.observations) is proposer.observations[1.0]  # 3 < 2 + 2 at 3
    x, y = points[7]
    proposer.observe({"x": x, "y": y}, 3.0, _bowl({"x": x, "y": y}))
    assert rule.choose(proposer.observations) is proposer.observations[3.0]
    assert proposer.propose(9.0).origin == "model"
