from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import nas
import searchers
import spaces
from nas.engine.callbacks import Callback
from nas.errors import UserError
from nas.journal import ranked
from nas.storage import Storage
from nas.trainer import evaluate
from nas.types import TrialStatus
from tests.helpers import blobs

SMALL = {"width": (16, 64), "n_blocks": (1, 2)}


def _search(tmp_path: Path, budget: str = "4trials", **kw):
    kw.setdefault("trial_budget", "2ep")
    kw.setdefault("storage", tmp_path / "s.db")
    kw.setdefault("progress", False)
    return nas.search(spaces.residual_mlp(**SMALL), blobs(), "random", budget, **kw)


def test_trials_budget_journals_every_trial_and_keeps_one_checkpoint(tmp_path) -> None:
    result = _search(tmp_path, ensemble=0)  # no ensemble candidates to keep
    assert result.spent == 4 and result.stopped == "budget spent"
    with Storage.open(result.path) as store:
        records = store.trials()
        assert [r.id for r in records] == [0, 1, 2, 3]
        assert all(r.status is TrialStatus.OK and r.result.epochs == 2 for r in records)
        assert store.meta("state") == "finished" and store.meta("spent") == 4
        summary = store.meta("summary")
        assert summary["best_trial"] == result.best.id == ranked(store.trials())[0].id
        assert summary["test_accuracy"] == result.test_accuracy
        checkpoints = store.checkpoints()
    assert list(checkpoints) == [result.best.id]
    assert sorted(p.name for p in (tmp_path / "s.ckpt").iterdir()) == [
        f"trial-{result.best.id}.pt"]
    assert result.top(2)[0] == result.best and len(result.top(10)) == 4


def test_best_model_reproduces_the_reported_test_accuracy(tmp_path) -> None:
    data = blobs()
    result = _search(tmp_path, trial_budget="6ep")
    model = result.load_best_model()
    raw = data.x_test * data.std + data.mean
    with torch.no_grad():
        acc = (model(raw).argmax(1) == data.y_test).float().mean().item()
    assert acc == pytest.approx(result.test_accuracy)
    assert result.test_accuracy > 0.6


def test_epoch_budget_never_starts_a_trial_it_cannot_pay_for(tmp_path) -> None:
    result = _search(tmp_path, budget="5ep")
    assert len(result.trials) == 2 and result.spent == 4
    assert result.stopped == "too little budget left for the next trial"


def test_time_budget_cuts_the_last_trial_at_the_deadline(tmp_path) -> None:
    result = _search(tmp_path, budget="1s", trial_budget="100000ep")
    assert len(result.trials) == 1
    only = result.trials[0]
    assert only.status is TrialStatus.TRUNCATED and only.result.ok
    assert 1.0 <= result.spent < 3.0  # one batch and one evaluation past the deadline
    assert result.best is not None and result.test_accuracy is not None


def test_trial_budget_in_seconds(tmp_path) -> None:
    result = _search(tmp_path, budget="2trials", trial_budget="0.3s")
    for record in result.trials:
        assert record.status is TrialStatus.OK and record.result.seconds >= 0.3
        assert record.result.epochs > 0 and record.result.curve[-1]["seconds"] >= 0.3


def test_same_seed_same_search(tmp_path) -> None:
    a = _search(tmp_path, storage=tmp_path / "a.db", seed=5)
    b = _search(tmp_path, storage=tmp_path / "b.db", seed=5)
    c = _search(tmp_path, storage=tmp_path / "c.db", seed=6)
    configs = [[dict(r.trial.config) for r in x.trials] for x in (a, b, c)]
    assert configs[0] == configs[1] != configs[2]
    assert [r.result.loss for r in a.trials] == [r.result.loss for r in b.trials]


class _Broken(searchers.RandomSearch):
    """Every config asks for a model that cannot be built."""

    def ask(self):
        trial = super().ask()
        return trial.__class__(id=trial.id, config={**trial.config, "activation": "nope"})


def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path) -> None:
    space = spaces.residual_mlp(**SMALL)
    result = nas.search(space, blobs(), _Broken(space, seed=0), "12trials", trial_budget="1ep",
                        storage=tmp_path / "f.db", progress=False, catch=(KeyError,))
    assert len(result.trials) == 10  # stops after 10 consecutive failures
    assert "10 trials in a row failed, each with the same error, likely a bug" in result.stopped
    assert "KeyError" in result.stopped
    assert all(r.status is TrialStatus.FAILED for r in result.trials)
    assert "Traceback" in result.trials[0].result.error
    assert result.best is None and result.test_accuracy is None


def test_callbacks_see_every_event(tmp_path) -> None:
    events: list[str] = []

    class Spy(Callback):
        def on_search_start(self, path, settings, ledger):
            events.append("start")

        def on_trial_start(self, trial):
            events.append(f"trial{trial.id}")

        def on_epoch(self, trial, point):
            events.append("epoch")

        def on_trial_end(self, trial, result, best, ledger):
            events.append(f"end{trial.id}:{ledger.spent:g}")

        def on_search_end(self, result):
            events.append("done")

    _search(tmp_path, budget="2trials", callbacks=[Spy()])
    assert events == ["start", "trial0", "epoch", "epoch", "end0:1", "trial1", "epoch", "epoch",
                      "end1:2", "done"]


def test_settings_are_journaled(tmp_path) -> None:
    result = _search(tmp_path, budget="1trials", seed=3)
    with Storage.open(result.path) as store:
        s = store.settings
    assert s["seed"] == 3 and s["budget"] == "1trials" and s["trial_budget"] == "2ep"
    assert s["searcher"]["name"] == "random" and s["data"]["name"] == "blobs"
    assert spaces.space_from_json(s["space"]) == spaces.residual_mlp(**SMALL)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"trial_budget": "3trials"}, "epochs or seconds"),
        ({"budget": "10ep", "trial_budget": "5s"}, "trial budget in epochs"),
        ({"trainer_options": {"device": "banana"}}, "unknown device"),
        ({"trainer_options": {"colour": 1}}, "bad trainer option"),
    ],
)
def test_bad_settings_are_user_errors(tmp_path, kwargs, pattern) -> None:
    with pytest.raises(UserError, match=pattern):
        _search(tmp_path, **kwargs)
    assert not (tmp_path / "s.db").exists()


def test_names_resolve_through_registries(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = nas.search("residual-mlp", "synthetic", "random", "1trials", trial_budget="1ep",
                        progress=False, name="named")
    assert result.path == Path("runs/named.db") and result.path.exists()
    assert math.isfinite(result.best.result.loss)


def test_evaluate_matches_stored_val_accuracy(tmp_path) -> None:
    data = blobs()
    result = _search(tmp_path, budget="1trials")
    model = result.load_best_model().net  # the network without standardisation
    _, acc = evaluate(model, data.x_val, data.y_val)
    assert acc == pytest.approx(result.best.val_accuracy)


def test_the_stop_message_names_the_likely_cause() -> None:
    from nas.engine.failures import likely_cause
    from nas.types import Result

    diverged = [Result.failure(TrialStatus.DIVERGED, f"training loss became nan ({i})")
                for i in range(3)]
    assert "diverged" in likely_cause(diverged) and "--set lr=" in likely_cause(diverged)
    oom = [Result.failure(TrialStatus.FAILED, "out of memory")] * 3
    assert "ran out of memory" in likely_cause(oom)
    mixed = [Result.failure(TrialStatus.FAILED, f"ValueError: {i}\ntrace") for i in range(3)]
    assert likely_cause(mixed) == "3 trials in a row failed; the last error: ValueError: 2"


def test_max_failures_is_configurable(tmp_path) -> None:
    space = spaces.residual_mlp(**SMALL)
    result = nas.search(space, blobs(), _Broken(space, seed=0), "12trials", trial_budget="1ep",
                        storage=tmp_path / "f.db", progress=False, max_failures=3,
                        catch=(KeyError,))
    assert len(result.trials) == 3 and result.stopped.startswith("3 trials in a row failed")
    with pytest.raises(UserError, match="max_failures"):
        nas.search(space, blobs(), "random", "2trials", storage=tmp_path / "g.db",
                   progress=False, max_failures=0)


def test_the_searcher_is_told_the_trial_it_asked_and_the_journal_keeps_its_seed(tmp_path) -> None:
    told = []

    class Strict(searchers.RandomSearch):
        def tell(self, trial, result):
            # The seed is the engine's: the searcher gets back exactly what it asked.
            told.append(trial == self.pending[trial.id])
            super().tell(trial, result)

    space = spaces.residual_mlp(width=(16, 32), n_blocks=1)
    result = nas.search(space, blobs(), Strict(space, seed=0), "3trials", trial_budget="1ep",
                        storage=tmp_path / "s.db", progress=False)
    assert told == [True, True, True]
    seeds = [r.trial.seed for r in result.trials]
    assert all(isinstance(s, int) for s in seeds) and len(set(seeds)) == 3
