"""A resume rebuilds a searcher without proposing every journaled ask again (issue 21, item 15):
the searcher's random state after its last asks is journaled, the asks before are taken from
the journal, and the last is asked for real, so the result stays identical."""

from __future__ import annotations

from pathlib import Path

import pytest
from ConfigSpace import ConfigurationSpace, Float

import nas
from nas.errors import SearchInterrupted
from searchers.proposers import KDEProposer

STOP_AT = 25


def _space() -> ConfigurationSpace:
    return ConfigurationSpace(space={"x": Float("x", (-2.0, 2.0)),
                                     "y": Float("y", (-2.0, 2.0))})


def objective(config: dict, budget: float) -> float:
    return (config["x"] - 0.3) ** 2 + (config["y"] + 0.5) ** 2


@pytest.mark.parametrize("searcher", ["tpe", "bohb", "random"])
def test_a_resume_replays_without_proposing_and_ends_identical(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, searcher: str) -> None:
    options = {"min_budget": 1, "max_budget": 9} if searcher == "bohb" else {}
    full = nas.optimize(objective, _space(), searcher, "40trials", seed=3,
                        storage=tmp_path / "full.db", **options)
    calls = {"n": 0}

    def stop_after(config: dict, budget: float) -> float:
        calls["n"] += 1
        if calls["n"] > STOP_AT:
            raise KeyboardInterrupt
        return objective(config, budget)

    with pytest.raises(SearchInterrupted):
        nas.optimize(stop_after, _space(), searcher, "40trials", seed=3,
                     storage=tmp_path / "cut.db", **options)
    proposed = {"n": 0}
    original = KDEProposer.propose

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        proposed["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(KDEProposer, "propose", counting)
    resumed = nas.resume(tmp_path / "cut.db", objective=objective, progress=False)
    assert [(r.trial.config, r.result.loss) for r in resumed.trials] == \
        [(r.trial.config, r.result.loss) for r in full.trials]
    if searcher == "tpe":
        # New asks after the 26th, plus the one replayed ask asked for real.
        assert proposed["n"] <= 40 - STOP_AT + 1
