from __future__ import annotations

import math

import pytest

import nas
from nas.budget import Unit, charge
from nas.constraints import Constraints, parse_count, parse_milliseconds
from nas.engine.feasibility import MAX_REFUSED_IN_A_ROW, Feasibility
from nas.errors import UserError
from nas.footprint import Footprint
from nas.journal import JournalView
from nas.types import Result, Trial, TrialKind, TrialStatus


def test_limits_read_as_a_user_writes_them() -> None:
    assert parse_count("50k", "x") == 50_000 and parse_count("1.5M", "x") == 1.5e6
    assert parse_count("2e6", "x") == 2e6 and parse_count("3G", "x") == 3e9
    assert parse_count(1200, "x") == 1200
    assert parse_milliseconds("2ms") == 2 and parse_milliseconds("500us") == 0.5
    assert parse_milliseconds("0.1s") == 100 and parse_milliseconds("5") == 5
    for bad in ("abc", "5 parsecs", "-3k"):
        with pytest.raises(UserError, match="cannot read --max-params"):
            parse_count(bad, "--max-params")
    with pytest.raises(UserError, match="positive"):
        parse_count("0", "--max-flops")
    with pytest.raises(UserError, match="write a time"):
        parse_milliseconds("fast")
    with pytest.raises(UserError, match="unknown constraint 'max_parms'"):
        Constraints.of({"max_parms": "5k"})
    limits = Constraints.of({"max_params": "5k", "max_latency": "2ms"})
    assert limits == Constraints(max_params=5000, max_latency_ms=2.0) and limits.active
    assert Constraints.from_dict(limits.to_dict()) == limits and not Constraints().active
    assert str(limits) == "params <= 5k, latency <= 2 ms"


def test_size_and_latency_checks_say_which_limit_broke() -> None:
    limits = Constraints(max_params=1000, max_flops=1e6, max_latency_ms=2.0)
    assert limits.before_training(999, 1e6) is None
    assert "1.2k parameters, more than the limit of 1k" in limits.before_training(1200, 10)
    assert "FLOPs per sample" in limits.before_training(10, 2e6)
    fast = Footprint(500, 1e5, latency_ms=1.5, latency_batch=32)
    slow = Footprint(500, 1e5, latency_ms=3.0, latency_batch=32)
    assert limits.after_training(fast) is None and limits.after_training(None) is None
    assert "3 ms per batch of 32" in limits.after_training(slow)


def _trial(i: int = 0, parent: int | None = None) -> Trial:
    return Trial(id=i, config={"x": i}, budget=1.0, parent=parent, kind=TrialKind.SEARCH)


def test_a_trained_model_over_a_limit_keeps_its_loss_but_is_never_ok() -> None:
    feasibility = Feasibility(Constraints(max_latency_ms=2.0), lambda c, flops=True: (10, 10.0))
    slow = Result(loss=0.1, epochs=3, footprint=Footprint(10, 10.0, latency_ms=5.0,
                                                          latency_batch=8))
    judged = feasibility.judge(slow)
    assert judged.status is TrialStatus.INFEASIBLE and judged.loss == 0.1 and not judged.ok
    assert "5 ms per batch of 8" in (judged.error or "")
    assert charge(judged, Unit.EPOCHS) == 3 and charge(judged, Unit.TRIALS) == 1
    # No limits (or nothing to measure): results pass unchanged.
    assert Feasibility(Constraints(), lambda c, flops=True: (10, 1.0)).judge(slow) is slow
    assert Feasibility(Constraints(max_params=1), None).judge(slow) is slow


def test_refusals_cost_nothing_and_too_many_in_a_row_stop_the_search() -> None:
    feasibility = Feasibility(Constraints(max_params=100), lambda config, flops=True: (1000, 1.0))
    refused = feasibility.refusal(_trial())
    assert refused is not None and refused.status is TrialStatus.INFEASIBLE
    assert math.isinf(refused.loss) and charge(refused, Unit.TRIALS) == 0
    assert charge(refused, Unit.EPOCHS) == 0
    assert feasibility.refusal(_trial(1, parent=0)) is None  # a promotion was admitted before
    for i in range(MAX_REFUSED_IN_A_ROW - 1):
        assert not feasibility.stuck()
        feasibility.refusal(_trial(i))
    assert "configurations in a row broke the limits (params <= 100)" in feasibility.stuck()


def test_a_search_under_a_parameter_limit_trains_and_returns_only_small_models(
        tmp_path) -> None:
    db = tmp_path / "limited.db"
    result = nas.search("residual-mlp", "synthetic", "random", "12trials", trial_budget="2ep",
                        space_overrides={"width": (16, 256), "n_blocks": (1, 3)},
                        storage=db, progress=False, seed=1, replicas=0,
                        constraints={"max_params": "8k"})
    view = JournalView.load(db)
    assert view.settings.constraints == {"max_params": 8000.0}
    statuses = [r.status for r in view.records]
    trained = [r for r in view.records if r.status is TrialStatus.OK]
    # The searcher proposed again until a configuration fit: no slot went to a refusal.
    assert statuses == [TrialStatus.OK] * 12
    for r in trained:
        assert r.result is not None and r.result.footprint is not None
        assert r.result.footprint.params <= 8000
    assert result.best is not None and result.best.status is TrialStatus.OK
    assert result.ensemble is None and not result.baselines  # one model, within the limit
    assert view.spent == pytest.approx(12)


def test_limits_that_leave_nothing_stop_the_search_with_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("nas.engine.feasibility.MAX_REFUSED_IN_A_ROW", 20)
    result = nas.search("residual-mlp", "synthetic", "random", "5trials", trial_budget="1ep",
                        storage=tmp_path / "none.db", progress=False, replicas=0,
                        constraints={"max_params": 10})
    assert result.best is None and "broke the limits (params <= 10)" in result.stopped


def test_a_resumed_search_keeps_its_limits(tmp_path) -> None:
    from nas.engine.callbacks import Callback
    from nas.errors import SearchInterrupted

    class StopAfter(Callback):
        def __init__(self) -> None:
            self.trained = 0

        def on_trial_end(self, trial, result, best, ledger) -> None:  # type: ignore[override]
            self.trained += result.status is TrialStatus.OK
            if self.trained == 3:
                raise KeyboardInterrupt

    db = tmp_path / "cut.db"
    kwargs = dict(space_overrides={"width": (16, 256), "n_blocks": (1, 3)}, progress=False,
                  seed=1, replicas=0, constraints={"max_params": "8k"}, trial_budget="2ep")
    with pytest.raises(SearchInterrupted):
        nas.search("residual-mlp", "synthetic", "random", "10trials", storage=db,
                   callbacks=[StopAfter()], **kwargs)
    resumed = nas.resume(db, progress=False)
    trained = [r for r in resumed.trials if r.status is TrialStatus.OK]
    assert len(trained) == 10
    assert all(r.result is not None and r.result.footprint is not None
               and r.result.footprint.params <= 8000 for r in trained)
    assert all(r.status is TrialStatus.OK for r in resumed.trials)


def test_a_filtering_searcher_proposes_again_until_a_configuration_passes() -> None:
    import searchers
    import spaces
    from searchers.base import MAX_PROPOSALS

    space = spaces.residual_mlp(width=(16, 256), n_blocks=(1, 3))
    plain = searchers.get("random", space, seed=4)
    checked = searchers.get("random", space, seed=4)
    tried: list[int] = []

    def narrow(config) -> bool:
        tried.append(config["width"])
        return config["width"] <= 32

    assert type(checked).filters_proposals
    widths = [plain.ask().config["width"] for _ in range(10)]
    asked = [checked.ask(admissible=narrow).config["width"] for _ in range(10)]
    assert max(widths) > 32 and max(asked) <= 32 and len(tried) > 10
    # Nothing passes: after MAX_PROPOSALS tries the last proposal is asked (the engine refuses).
    tried.clear()
    assert checked.ask(admissible=lambda config: tried.append(1) or False) is not None
    assert len(tried) == MAX_PROPOSALS - 1  # the last proposal is not tested again
