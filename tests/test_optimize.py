from __future__ import annotations

import math

import pytest
from ConfigSpace import ConfigurationSpace, Float

import nas
import spaces
from nas.errors import UserError
from nas.problems import get as get_problem
from nas.storage import Storage
from nas.types import TrialStatus
from tests.helpers import blobs


def _space() -> ConfigurationSpace:
    s = ConfigurationSpace(name="quad")
    s.add([Float("x", (-2, 2)), Float("y", (-2, 2))])
    return s


def quad(config: dict, budget: float) -> float:
    return (config["x"] - 1) ** 2 + (config["y"] + 0.5) ** 2


def test_plain_function_with_a_trials_budget(tmp_path) -> None:
    result = nas.optimize(quad, _space(), "tpe", "25trials", storage=tmp_path / "q.db")
    losses = [r.result.loss for r in result.trials]
    assert len(losses) == 25 and result.best_loss == min(losses)
    assert result.best_config == dict(result.best.trial.config)
    assert result.test_accuracy is None and result.spent == 25
    with Storage.open(tmp_path / "q.db") as store:
        s = store.settings
        assert s["kind"] == "optimize" and s["objective"].endswith("quad")
        assert s["searcher"]["name"] == "tpe" and store.meta("summary")["best_trial"] == \
            result.best.id
    assert not (tmp_path / "q.ckpt").exists()  # no models, no checkpoints


def test_dict_results_seed_and_cost(tmp_path) -> None:
    seen: list[int] = []

    def objective(config: dict, budget: float, seed: int) -> dict:
        seen.append(seed)
        return {"loss": config["x"] ** 2, "cost": budget / 2, "note": "half price"}

    result = nas.optimize(objective, _space(), "random", 10, max_budget=4,
                          storage=":memory:")
    # Each trial is planned at its budget (4) but charged its reported cost (2): after 8 units
    # a trial that might cost 4 no longer fits.
    assert len(result.trials) == 4 and result.spent == 8
    assert result.stopped == "too little budget left for the next trial"
    assert len(set(seen)) == 4  # every trial has its own seed
    assert result.trials[0].result.metrics == {"note": "half price"}
    assert str(result.limit) == "10u"


def test_multi_fidelity_budget_units_are_never_overspent() -> None:
    calls: list[float] = []

    def objective(config: dict, budget: float) -> float:
        calls.append(budget)
        return quad(config, budget) + 1 / budget

    result = nas.optimize(objective, _space(), "hyperband", "100u", min_budget=1, max_budget=9,
                          storage=":memory:")
    assert sum(calls) == result.spent <= 100
    assert set(calls) <= {1.0, 3.0, 9.0} and 9.0 in calls
    assert result.stopped in ("budget spent", "too little budget left for the next trial")
    promoted = [r for r in result.trials if r.trial.parent is not None]
    assert promoted and all(r.trial.budget > 1 for r in promoted)


def test_failures_and_non_finite_losses_are_recorded() -> None:
    def objective(config: dict, budget: float) -> float:
        if config["x"] > 1:
            raise RuntimeError("boom")
        return math.nan if config["x"] < -1 else config["x"] ** 2

    result = nas.optimize(objective, _space(), "random", "30trials", storage=":memory:")
    statuses = {r.status for r in result.trials}
    assert statuses == {TrialStatus.OK, TrialStatus.FAILED, TrialStatus.DIVERGED}
    failed = next(r for r in result.trials if r.status is TrialStatus.FAILED)
    assert "RuntimeError: boom" in failed.result.error
    assert result.best.status is TrialStatus.OK


@pytest.mark.parametrize(("bad", "message"), [
    ({"cost": math.nan}, "cost must be a finite number"),
    ({"cost": -5.0}, "cost must be a finite number"),
    ({"cost": math.inf}, "cost must be a finite number"),
    ({"loss": "0.25"}, "loss must be a number"),
    ({"loss": True}, "loss must be a number"),
    ({"extra": object()}, "metric 'extra' is a object"),
])
def test_a_bad_value_fails_its_trial_not_the_run(bad: dict, message: str) -> None:
    # Every third trial returns something no ledger can charge or no journal can hold.
    def objective(config: dict, budget: float) -> dict:
        value: dict = {"loss": config["x"] ** 2, "note": "ok", "n": 3}
        return {**value, **bad} if config["x"] > 1 else value

    result = nas.optimize(objective, _space(), "random", "20trials", storage=":memory:")
    failed = [r for r in result.trials if r.status is TrialStatus.FAILED]
    assert len(result.trials) == 20 and failed and result.best is not None
    assert all(message in r.result.error for r in failed)
    assert result.best.result.metrics == {"note": "ok", "n": 3}


def test_optimize_on_a_benchmark_problem() -> None:
    problem = get_problem("counting-ones")
    result = nas.optimize(problem.evaluate, problem.space, "bohb", 10 * problem.max_budget,
                          min_budget=problem.min_budget, max_budget=problem.max_budget,
                          seed=1, storage=":memory:")
    assert result.spent <= 10 * problem.max_budget
    assert problem.regret(result.best_config) < 8  # 16 at worst


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [({"min_budget": 5, "max_budget": 1}, "min_budget"),
     ({"budget": "10parsecs"}, "cannot read budget"),
     ({"searcher": "nope"}, "unknown searcher")],
)
def test_optimize_user_errors(kwargs, pattern) -> None:
    args = {"budget": "5trials", "storage": ":memory:", **kwargs}
    with pytest.raises(UserError, match=pattern):
        nas.optimize(quad, _space(), **args)


def test_search_with_hyperband_trains_at_rung_budgets(tmp_path) -> None:
    result = nas.search(spaces.residual_mlp(width=(16, 32), n_blocks=1), blobs(), "hyperband",
                        "40ep", trial_budget="9ep", storage=tmp_path / "h.db", progress=False)
    budgets = [r.trial.budget for r in result.trials]
    assert set(budgets) <= {1.0, 3.0, 9.0} and budgets[0] == 1.0
    by_id = {r.id: r for r in result.trials}
    for r in result.trials:  # promoted trials continue their parent: only the increment
        below = 0.0 if r.trial.parent is None else by_id[r.trial.parent].trial.budget
        assert r.result.epochs == r.trial.budget - below
    assert result.spent == sum(r.result.epochs for r in result.trials) <= 40
    with Storage.open(tmp_path / "h.db") as store:
        s = store.settings["searcher"]
    assert s["options"] == {"min_budget": 1.0, "max_budget": 9.0, "eta": 3.0,
                            "include_default": False}


def test_made_up_names_of_the_same_second_get_their_own_journals(tmp_path,
                                                                monkeypatch) -> None:
    import nas.engine.api as api

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(api, "_stamp", lambda: "20260101-000000")
    first = nas.optimize(quad, _space(), "random", "3trials")
    second = nas.optimize(quad, _space(), "random", "3trials")
    assert first.path != second.path and second.path.name == first.path.stem + "-2.db"
    with Storage.open(second.path) as store:
        assert store.settings["name"] == first.path.stem + "-2"
    assert len(first.trials) == len(second.trials) == 3
    # A name the user gave is never changed: the second search with it is refused.
    nas.optimize(quad, _space(), "random", "3trials", name="mine")
    with pytest.raises(UserError, match="already exists"):
        nas.optimize(quad, _space(), "random", "3trials", name="mine")
