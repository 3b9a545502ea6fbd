"""Broken candidates never end a search: 200 trials, a fifth of them failing or diverging.

Which candidates break is a pure function of their configuration (the dropout drawn), so the run
is deterministic: building or training raises, runs out of memory, or produces NaN logits.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

import pytest
import torch

import nas
import spaces
from nas.data import load
from nas.storage import Storage
from nas.types import TrialStatus
from spaces.mlp import ResidualMLP

# dropout is drawn uniformly from [0, 0.5]: each band below takes its share of the candidates.
BUILD_ERROR = (0.0, 0.025)  # 5 %: the model cannot be built
TRAIN_ERROR = (0.025, 0.04)  # 3 %: training raises
OUT_OF_MEMORY = (0.04, 0.05)  # 2 %: training runs out of memory
DIVERGE = (0.25, 0.30)  # 10 %: the logits become NaN
BANDS = {"build error": BUILD_ERROR, "training error": TRAIN_ERROR,
         "out of memory": OUT_OF_MEMORY, "diverge": DIVERGE}


def _in(band: tuple[float, float], dropout: float) -> bool:
    return band[0] <= dropout < band[1]


def _break_some_candidates(monkeypatch: pytest.MonkeyPatch,
                           diverge: tuple[float, float] = DIVERGE) -> None:
    init, forward = ResidualMLP.__init__, ResidualMLP.forward

    def broken_init(self: ResidualMLP, *args: Any, dropout: float, **kw: Any) -> None:
        if _in(BUILD_ERROR, dropout):
            raise ValueError(f"injected build failure (dropout {dropout:.3f})")
        init(self, *args, dropout=dropout, **kw)
        self.injected_dropout = dropout

    def broken_forward(self: ResidualMLP, x: torch.Tensor) -> torch.Tensor:
        out = forward(self, x)
        dropout = self.injected_dropout
        if _in(TRAIN_ERROR, dropout) and self.training:
            raise RuntimeError(f"injected training failure (dropout {dropout:.3f})")
        if _in(OUT_OF_MEMORY, dropout) and self.training:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if _in(diverge, dropout):
            return out * math.nan
        return out

    monkeypatch.setattr(ResidualMLP, "__init__", broken_init)
    monkeypatch.setattr(ResidualMLP, "forward", broken_forward)


def _longest_failure_run(records: Any) -> int:
    longest = run = 0
    for r in records:
        run = 0 if r.status is TrialStatus.OK else run + 1
        longest = max(longest, run)
    return longest


def test_200_trials_with_a_fifth_broken_all_get_recorded(tmp_path, monkeypatch) -> None:
    _break_some_candidates(monkeypatch)
    data = load("synthetic", n_samples=300, n_features=8, n_classes=3)
    start = time.monotonic()
    result = nas.search(spaces.residual_mlp(width=(16, 32), n_blocks=1), data, "random",
                        "200trials", trial_budget="1ep", storage=tmp_path / "chaos.db",
                        progress=False, dedup=False)
    seconds = time.monotonic() - start

    assert len(result.trials) == 200 and result.stopped == "budget spent"
    with Storage.open(result.path) as store:
        journal = store.trials()
    assert [r.status for r in journal] == [r.status for r in result.trials]
    counts = Counter(r.status for r in result.trials)
    kinds = Counter(next((k for k, band in BANDS.items() if _in(band, r.trial.config["dropout"])),
                         "ok") for r in result.trials)
    print(f"\n200 trials in {seconds:.1f}s: "
          + ", ".join(f"{s.value} {n}" for s, n in sorted(counts.items()))
          + " (" + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + ")")
    assert set(counts) == {TrialStatus.OK, TrialStatus.FAILED, TrialStatus.DIVERGED}
    broken = counts[TrialStatus.FAILED] + counts[TrialStatus.DIVERGED]
    assert 20 <= broken <= 60  # 10 % .. 30 %
    assert _longest_failure_run(result.trials) < 10

    for r in result.trials:
        dropout = r.trial.config["dropout"]
        assert r.result is not None
        if r.status is TrialStatus.FAILED:
            if _in(OUT_OF_MEMORY, dropout):
                assert r.result.error == "out of memory"
            else:
                assert "Traceback" in r.result.error and "injected" in r.result.error
                kind = "build" if _in(BUILD_ERROR, dropout) else "training"
                assert f"injected {kind} failure" in r.result.error
        elif r.status is TrialStatus.DIVERGED:
            assert _in(DIVERGE, dropout)
            assert math.isinf(r.result.loss) and "training loss became nan" in r.result.error
        else:
            assert math.isfinite(r.result.loss)

    best = result.best
    assert best is not None and best.status is TrialStatus.OK
    assert best.result.loss == min(r.result.loss for r in result.trials if r.result.ok)
    assert result.test_accuracy is not None and result.load_best_model() is not None


def test_a_search_where_every_candidate_diverges_stops_after_10(tmp_path, monkeypatch) -> None:
    # tests/test_runner.py covers every candidate raising; here the real trainer sees NaN.
    _break_some_candidates(monkeypatch, diverge=(0.0, 1.0))
    result = nas.search(spaces.residual_mlp(width=16, n_blocks=1, dropout=(0.1, 0.2)),
                        load("synthetic", n_samples=300, n_features=8), "random", "30trials",
                        trial_budget="1ep", storage=tmp_path / "nan.db", progress=False)
    assert len(result.trials) == 10
    assert all(r.status is TrialStatus.DIVERGED for r in result.trials)
    assert result.stopped.startswith("10 trials in a row failed: every one diverged")
    assert "--set lr=" in result.stopped
    assert result.best is None and result.test_accuracy is None
