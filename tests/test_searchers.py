from __future__ import annotations

import math

import pytest
from ConfigSpace import Configuration

import searchers
import spaces
from nas.errors import UserError
from nas.types import Result, TrialStatus


def test_registry() -> None:
    assert "random" in searchers.available()
    s = searchers.get("random", spaces.residual_mlp(), seed=0)
    assert isinstance(s, searchers.RandomSearch) and s.name == "random"
    with pytest.raises(UserError, match=r"available: .*random"):
        searchers.get("nope", spaces.residual_mlp())
    with pytest.raises(UserError, match="bad options"):
        searchers.get("random", spaces.residual_mlp(), colour="red")


def test_register_refuses_a_second_class_under_one_name() -> None:
    with pytest.raises(ValueError):
        @searchers.register("random")
        class Other(searchers.RandomSearch):
            pass


def _asks(seed: int, n: int = 8) -> list[dict]:
    s = searchers.get("random", spaces.residual_mlp(), seed=seed)
    out = []
    for _ in range(n):
        trial = s.ask()
        out.append(dict(trial.config))
        s.tell(trial, Result(loss=0.5))
    return out


def test_random_is_deterministic_by_seed() -> None:
    assert _asks(3) == _asks(3)
    assert _asks(3) != _asks(4)


def test_random_configs_are_valid_and_plain() -> None:
    space = spaces.residual_mlp()
    s = searchers.get("random", space, seed=0)
    trials = [s.ask() for _ in range(20)]
    assert trials[0].info["origin"] == "default"
    assert dict(trials[0].config) == dict(space.get_default_configuration())
    assert [t.id for t in trials] == list(range(20))
    assert len(s.pending) == 20
    for t in trials:
        Configuration(space, values=dict(t.config)).check_valid_configuration()
        assert all(type(v) in (int, float, str, bool) for v in t.config.values())
        assert t.budget is None


def test_tell_failure_clears_pending() -> None:
    s = searchers.get("random", spaces.residual_mlp(), seed=0, include_default=False)
    t = s.ask()
    assert t.info["origin"] == "random"
    s.tell(t, Result.failure(TrialStatus.DIVERGED, "nan"))
    assert not s.pending and math.isinf(s.history[0][1].loss)
