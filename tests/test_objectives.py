"""Searches of several objectives: naming them, measuring them, journaling and showing them."""

from __future__ import annotations

from typing import Any

import pytest
from ConfigSpace import ConfigurationSpace, Float

import nas
from nas.cli import main
from nas.errors import UserError
from nas.footprint import Footprint
from nas.journal import JournalView
from nas.objectives import Objectives, parse_objectives
from nas.types import Result, TrialStatus
from searchers.random import RandomSearch


class TwoObjectiveRandom(RandomSearch):
    """Random search that declares itself multi-objective: the engine's side alone is tested."""

    multi_objective = True

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0,
                 n_objectives: int = 2) -> None:
        super().__init__(space, seed=seed)
        self.n_objectives = n_objectives


def _space() -> ConfigurationSpace:
    space = ConfigurationSpace(seed=0)
    space.add([Float("x", (0.0, 1.0)), Float("y", (0.0, 1.0))])
    return space


def _two(config: dict[str, Any], budget: float) -> tuple[float, float]:
    return config["x"], (1 + config["y"]) * (1 - config["x"] ** 0.5)


def test_objectives_are_named_as_a_user_writes_them() -> None:
    assert parse_objectives("val_error, params") == ("val_error", "params")
    assert parse_objectives(["latency", "val_error", "flops"]) == ("latency", "val_error",
                                                                    "flops")
    assert parse_objectives(None) is None and parse_objectives("val_error") is None
    with pytest.raises(UserError, match="unknown objective 'size'"):
        parse_objectives("val_error,size")
    with pytest.raises(UserError, match="must include val_error"):
        parse_objectives("params,latency")
    with pytest.raises(UserError, match="distinct"):
        parse_objectives("val_error,val_error")
    # A function's search names its own.
    assert parse_objectives(["error", "cost"], measured=False) == ("error", "cost")


def test_measured_objectives_come_from_the_footprint_in_the_users_order() -> None:
    footprint = Footprint(params=1234, flops_per_sample=5e4, latency_ms=None)
    result = Result(loss=0.25, footprint=footprint)
    measured = Objectives(("params", "val_error", "flops"), measured=True).measure(result)
    assert measured.objectives == (1234.0, 0.25, 5e4)
    # What was not measured ranks last; a failure carries nothing.
    latency = Objectives(("val_error", "latency")).measure(result)
    assert latency.objectives == (0.25, float("inf")) and latency.objective_values() is None
    failed = Result.failure(TrialStatus.FAILED, "boom")
    assert Objectives(("val_error", "params")).measure(failed).objectives is None


def test_a_function_of_several_objectives_is_searched_and_its_front_shown(tmp_path,
                                                                          capsys) -> None:
    db = tmp_path / "two.db"
    result = nas.optimize(_two, _space(), TwoObjectiveRandom(_space(), seed=3), "30trials",
                          storage=db, objectives=["error", "cost"])
    view = JournalView.load(db)
    assert view.settings.objectives == ("error", "cost")
    values = [r.result.objectives for r in view.records if r.result is not None]
    assert len(values) == 30 and all(v is not None and len(v) == 2 for v in values)
    front = result.pareto_front()
    assert 1 <= len(front) < 30
    on_front = {p.record.id for p in front}
    for record in view.records:
        assert record.result is not None and record.result.objectives is not None
        if record.id in on_front:
            continue
        mine = record.result.objectives
        # Everything left off is dominated by (or equal to) a point on the front.
        assert any(all(a <= b for a, b in zip(p.values, mine, strict=True)) for p in front)
    assert [p.values[0] for p in front] == sorted(p.values[0] for p in front)
    assert main(["show", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"{len(front)} trials on the front of error, cost" in out


def test_a_single_objective_searcher_is_refused_for_several_objectives(tmp_path) -> None:
    with pytest.raises(UserError, match="minimises one objective"):
        nas.optimize(_two, _space(), "tpe", "5trials", storage=tmp_path / "a.db",
                     objectives=["error", "cost"])


def test_values_that_do_not_match_the_objectives_fail_the_trial_saying_why(tmp_path) -> None:
    result = nas.optimize(_two, _space(), "random", "3trials", storage=tmp_path / "b.db",
                          catch=True)
    assert all(r.status is TrialStatus.FAILED for r in result.trials)
    assert "name them" in (result.trials[0].result.error or "")
    three = nas.optimize(_two, _space(), TwoObjectiveRandom(_space()), "3trials",
                         storage=tmp_path / "c.db", objectives=["a", "b", "c"], catch=True)
    assert "returned 2 value(s) for the search's 3 objectives" in (
        three.trials[0].result.error or "")


def test_a_training_search_of_error_and_size_journals_both(tmp_path) -> None:
    db = tmp_path / "mo.db"
    result = nas.search("residual-mlp", "synthetic", TwoObjectiveRandom(_space_mlp(), seed=1),
                        "5trials", trial_budget="1ep", storage=db, progress=False,
                        space_overrides={"width": (16, 128), "n_blocks": (1, 2)},
                        objectives="val_error,params")
    assert result.objectives == ("val_error", "params")
    assert result.ensemble is None and not result.baselines  # the front's models, not a blend
    for record in result.trials:
        assert record.result is not None and record.result.footprint is not None
        assert record.result.objectives == (record.result.loss,
                                            float(record.result.footprint.params))
    assert result.pareto_front()[0].record.id == result.best.id  # most accurate first


def _space_mlp() -> ConfigurationSpace:
    import spaces

    return spaces.get("residual-mlp", width=(16, 128), n_blocks=(1, 2))
