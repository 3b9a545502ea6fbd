from __future__ import annotations

import torch

import nas
import searchers
import spaces
from nas.engine.callbacks import Callback
from nas.storage import Storage
from nas.types import Trial, TrialStatus
from tests.helpers import blobs

SPACE = {"width": (16, 32), "n_blocks": 1}


def _hyperband(tmp_path, name: str, **kwargs):
    return nas.search(spaces.residual_mlp(**SPACE), blobs(), "hyperband", "120ep",
                      trial_budget="9ep", storage=tmp_path / f"{name}.db", progress=False,
                      seed=1, **kwargs)


def test_promoted_trials_continue_and_are_charged_only_the_increment(tmp_path) -> None:
    result = _hyperband(tmp_path, "cont")
    by_id = {r.id: r for r in result.trials}
    promoted = [r for r in result.trials if r.trial.parent is not None]
    assert promoted
    for r in promoted:
        parent_budget = by_id[r.trial.parent].trial.budget
        assert r.result.epochs == r.trial.budget - parent_budget
        # The learning curve goes on from where the parent stopped.
        assert r.result.curve[0]["epoch"] == parent_budget + 1
    assert result.spent == sum(r.result.epochs for r in result.trials) <= 120

    scratch = _hyperband(tmp_path, "scratch", continue_trials=False)
    assert all(r.result.epochs == r.trial.budget for r in scratch.trials)
    # Same seed, same searcher: the same first rung (9 at 1 epoch) and the same 3 promotions to
    # 3 epochs (later promotions may differ: a continued run and a fresh one draw differently).
    first = [r.trial.config for r in result.trials[:12]]
    assert first == [r.trial.config for r in scratch.trials[:12]]
    assert [r.trial.budget for r in result.trials[:12]] == [1.0] * 9 + [3.0] * 3
    assert sum(r.result.epochs for r in result.trials[:12]) == 9 + 3 * 2
    assert sum(r.result.epochs for r in scratch.trials[:12]) == 9 + 3 * 3


def test_checkpoints_are_dropped_once_no_rung_can_promote_them(tmp_path) -> None:
    counts: list[int] = []
    folder = tmp_path / "disk.ckpt"

    class Count(Callback):
        def on_trial_end(self, trial, result, best, ledger):
            counts.append(len(list(folder.glob("*.pt"))) if folder.exists() else 0)

    # No ensemble candidates (tests/test_ensemble.py covers them): only what rungs need.
    result = _hyperband(tmp_path, "disk", callbacks=[Count()], ensemble=0)
    # Never more than a rung's trials (9 at budget 1) plus the best one.
    assert max(counts) <= 10 and len(counts) == len(result.trials)
    assert counts[8] >= 8  # the first rung's trials wait for their promotion
    with Storage.open(tmp_path / "disk.db") as store:
        kept = store.checkpoints()
    files = {p.name for p in folder.glob("*.pt")}
    assert files == {p.name for p in kept.values()}  # journal and disk agree
    assert result.best.id in kept and len(kept) <= 10
    assert not list(folder.glob("*.tmp"))  # atomic writes leave nothing half-written


class _Twice(searchers.RandomSearch):
    """Asks every configuration twice in a row."""

    def ask(self) -> Trial:
        if self._next_id % 2:
            last = self.history[-1][0] if self.history else None
            if last is not None:
                return self._new_trial(dict(last.config), origin="again")
        return super().ask()


def test_duplicate_architectures_reuse_the_result_for_free(tmp_path) -> None:
    space = spaces.residual_mlp(**SPACE)
    result = nas.search(space, blobs(), _Twice(space, seed=0), "6trials", trial_budget="2ep",
                        storage=tmp_path / "d.db", progress=False)
    trials = result.trials
    for first, again in zip(trials[::2], trials[1::2], strict=False):
        assert again.result.reused_from == first.id
        assert again.result.loss == first.result.loss and again.result.epochs == 0
    # Reused trials are charged nothing, so "6trials" buys 6 trained and 5 reused ones.
    assert result.spent == 6 and len(trials) == 11

    plain = nas.search(space, blobs(), _Twice(space, seed=0), "6trials", trial_budget="2ep",
                       storage=tmp_path / "n.db", progress=False, dedup=False)
    assert all(r.result.reused_from is None for r in plain.trials)
    assert len(plain.trials) == 6


def test_out_of_memory_fails_the_trial_and_the_search_goes_on(tmp_path, monkeypatch) -> None:
    from spaces.mlp import ResidualMLP

    original = ResidualMLP.forward
    calls = {"n": 0}

    def forward(self, x):
        if self.stem[1].out_features > 24:  # "too big for the device"
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        calls["n"] += 1
        return original(self, x)

    monkeypatch.setattr(ResidualMLP, "forward", forward)
    result = nas.search(spaces.residual_mlp(**SPACE), blobs(), "random", "8trials",
                        trial_budget="1ep", storage=tmp_path / "oom.db", progress=False)
    statuses = [r.status for r in result.trials]
    assert TrialStatus.FAILED in statuses and TrialStatus.OK in statuses
    oom = [r for r in result.trials if r.status is TrialStatus.FAILED]
    assert all(r.result.error == "out of memory" for r in oom)
    assert len(result.trials) == 8 and calls["n"] > 0
