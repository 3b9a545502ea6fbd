from __future__ import annotations

import pytest
import torch

import nas
from nas.cli import main
from nas.errors import UserError
from nas.footprint import Footprint
from nas.journal import TrialRecord
from nas.pareto import Front, check_objectives, hypervolume_2d, non_dominated, pareto_front
from nas.types import Result, Trial, TrialStatus


def test_non_dominated_points_all_minimised() -> None:
    points = [(1, 5), (2, 4), (3, 3), (2, 5), (1, 5), (4, 4)]
    # (2, 5) and (4, 4) are dominated; the second (1, 5) equals the first.
    assert non_dominated(points) == [0, 1, 2]
    assert non_dominated([(1, 1, 1), (0, 2, 2), (2, 0, 2), (2, 2, 0), (2, 2, 2)]) == [0, 1, 2, 3]
    assert non_dominated([]) == []


def _record(i: int, loss: float, params: int | None, status=TrialStatus.OK) -> TrialRecord:
    footprint = None if params is None else Footprint(params, 10.0 * params, latency_ms=1.0,
                                                      latency_batch=8)
    result = Result(loss=loss, status=status, epochs=1.0, footprint=footprint)
    return TrialRecord(Trial(id=i, config={"x": i}), status, result, 0.0, None, None, None)


def test_the_front_keeps_usable_trials_with_a_footprint_best_first() -> None:
    records = [_record(0, 0.10, 5000), _record(1, 0.20, 1000), _record(2, 0.15, 6000),
               _record(3, 0.05, 9000), _record(4, 0.01, None),
               _record(5, 0.01, 100, TrialStatus.INFEASIBLE)]
    front = pareto_front(records, ["val_error", "params"])
    assert [p.record.id for p in front] == [3, 0, 1]  # 2 is dominated by 0
    assert front[0].values == (0.05, 9000.0)
    assert [p.record.id for p in pareto_front(records, ["params", "val_error"])] == [1, 0, 3]


def test_objectives_are_checked() -> None:
    assert check_objectives(["val_error", " latency"]) == ("val_error", "latency")
    with pytest.raises(UserError, match="unknown objective 'size'"):
        check_objectives(["val_error", "size"])
    with pytest.raises(UserError, match="two or more distinct"):
        check_objectives(["params", "params"])


def test_show_prints_the_front_and_export_takes_a_kept_trial(tmp_path, capsys) -> None:
    db = tmp_path / "front.db"
    result = nas.search("residual-mlp", "synthetic", "random", "6trials", trial_budget="2ep",
                        space_overrides={"width": (16, 128), "n_blocks": (1, 3)},
                        storage=db, progress=False, replicas=0, ensemble=2,
                        # Under a size limit the search keeps its front's checkpoints.
                        constraints={"max_params": "1M"})
    front = result.pareto_front(["val_error", "params"])
    assert front and all(p.record.status is TrialStatus.OK for p in front)
    errors = [p.values[0] for p in front]
    sizes = [p.values[1] for p in front]
    assert errors == sorted(errors) and sizes == sorted(sizes, reverse=True)
    assert main(["show", str(db), "--pareto"]) == 0
    out = capsys.readouterr().out
    assert f"pareto   {len(front)} trials on the front of val_error, params" in out
    assert main(["show", str(db), "--pareto", "val_error,size"]) == 2
    assert "unknown objective 'size'" in capsys.readouterr().err
    best = result.best
    assert best is not None
    assert main(["export", str(db), "--trial", str(best.id), "-o",
                 str(tmp_path / "t.pt")]) == 0
    # Every point of the front stays exportable after the search (its checkpoint is kept).
    for k, point in enumerate(front):
        assert main(["export", str(db), "--pareto-index", str(k), "-o",
                     str(tmp_path / f"p{k}.pt")]) == 0
        assert torch.load(tmp_path / f"p{k}.pt", weights_only=False)["config"] \
            == dict(point.record.trial.config)
    assert main(["export", str(db), "--pareto-index", str(len(front))]) == 2
    assert "--pareto-index must be 0 to" in capsys.readouterr().err
    kept = {best.id, *map(int, (result.ensemble or {}).get("weights", {})),
            *(p.record.id for p in front)}
    dropped = next((r.id for r in result.trials if r.status is TrialStatus.OK
                    and r.id not in kept), None)
    if dropped is None:
        return
    capsys.readouterr()
    assert main(["export", str(db), "--trial", str(dropped), "-o", str(tmp_path / "d.pt")]) == 2
    assert "was not kept" in capsys.readouterr().err


def test_without_limits_only_the_best_checkpoints_stay(tmp_path, capsys) -> None:
    db = tmp_path / "plain.db"
    result = nas.search("residual-mlp", "synthetic", "random", "5trials", trial_budget="1ep",
                        space_overrides={"width": (16, 128), "n_blocks": (1, 3)},
                        storage=db, progress=False, replicas=0, ensemble=0)
    front = result.pareto_front()
    assert result.best is not None and front[0].record.id == result.best.id
    assert main(["export", str(db), "--pareto-index", "0", "-o", str(tmp_path / "b.pt")]) == 0
    if len(front) > 1:
        assert main(["export", str(db), "--pareto-index", "1", "-o", str(tmp_path / "c.pt")]) == 2
        assert "was not kept" in capsys.readouterr().err


def test_hypervolume_of_a_two_objective_front() -> None:
    # Strips left to right: 1 x 1, 1 x 2, 1 x 3.
    assert hypervolume_2d([(1, 3), (2, 2), (3, 1)], (4, 4)) == 6.0
    assert hypervolume_2d([(1, 3), (2, 2), (3, 1), (3, 3)], (4, 4)) == 6.0  # dominated: no area
    assert hypervolume_2d([(5, 1), (1, 5)], (4, 4)) == 0.0  # beyond the reference
    assert hypervolume_2d([], (1, 1)) == 0.0
    front = Front()
    for i, point in enumerate([(3, 3), (1, 3), (2, 2), (2, 2), (3, 1), (2.5, 2.5)]):
        front.add(i, point)
    assert front.ids() == {1, 2, 3, 4}  # equal points both stay
    assert hypervolume_2d(front.points.values(), (4, 4)) == 6.0
