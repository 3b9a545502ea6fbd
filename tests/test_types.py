from __future__ import annotations

import json
import math

import numpy as np

from nas.types import Result, Trial, TrialStatus, plain


def test_trial_round_trips_through_json_with_numpy_values() -> None:
    trial = Trial(id=3, config={"width": np.int64(64), "flag": np.bool_(True), "lr": 0.1},
                  budget=9.0, parent=1, info={"bracket": np.int64(2)})
    back = Trial.from_dict(json.loads(json.dumps(trial.to_dict())))
    assert back == Trial(id=3, config={"width": 64, "flag": True, "lr": 0.1}, budget=9.0,
                         parent=1, info={"bracket": 2})
    assert type(back.config["flag"]) is bool


def test_result_round_trips_and_infinite_loss() -> None:
    r = Result(loss=0.25, epochs=3, seconds=1.5, metrics={"val_accuracy": 0.75},
               curve=({"epoch": 1.0, "val_loss": 0.5},))
    assert Result.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    f = Result.failure(TrialStatus.FAILED, "boom", seconds=2)
    back = Result.from_dict(json.loads(json.dumps(f.to_dict())))
    assert math.isinf(back.loss) and back.status is TrialStatus.FAILED and not back.ok
    assert r.ok


def test_status_finished() -> None:
    assert not TrialStatus.RUNNING.finished and TrialStatus.DIVERGED.finished


def test_plain_nested() -> None:
    assert plain({"a": [np.float32(0.5), (np.int8(1),)]}) == {"a": [0.5, [1]]}
