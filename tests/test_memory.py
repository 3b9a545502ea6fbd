from __future__ import annotations

import gc
import os

import torch

import nas
import spaces
from nas.engine.callbacks import Callback
from tests.helpers import blobs


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _live_tensors() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


def test_memory_does_not_grow_over_100_trials(tmp_path) -> None:
    samples: dict[int, tuple[int, float]] = {}

    class Probe(Callback):
        def on_trial_end(self, trial, result, best, ledger):
            if trial.id in (19, 99):
                samples[trial.id] = (_live_tensors(), _rss_mb())

    result = nas.search(spaces.residual_mlp(width=(16, 64), n_blocks=(1, 2)), blobs(n=200),
                        "random", "100trials", trial_budget="1ep", storage=tmp_path / "m.db",
                        progress=False, dedup=False, callbacks=[Probe()])
    assert len(result.trials) == 100
    (tensors_20, rss_20), (tensors_100, rss_100) = samples[19], samples[99]
    # Trials hold nothing once they end: the live tensors are the data set's and the best
    # model's, whatever the number of trials.
    assert tensors_100 <= tensors_20 + 40, (tensors_20, tensors_100)
    assert rss_100 - rss_20 < 40, (rss_20, rss_100)
