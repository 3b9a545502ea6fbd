"""The one ask/tell loop: ask the searcher, charge the ledger, run the trial, journal, tell."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ConfigSpace import ConfigurationSpace

import searchers as searcher_registry
import spaces
from nas.budget import Budget, Ledger, Unit
from nas.data import Dataset
from nas.data import load as load_dataset
from nas.errors import UserError
from nas.executors import InProcessExecutor
from nas.objective import TrainingObjective
from nas.report import Callback, default_reporter
from nas.storage import Storage, TrialRecord
from nas.trainer import TrainerOptions, evaluate, resolve_device
from nas.types import Result, Trial, TrialStatus
from searchers import Searcher

MAX_CONSECUTIVE_FAILURES = 10
CHECKPOINT_FORMAT = "nas-model/1"


@dataclass(frozen=True)
class SearchResult:
    """What a finished search leaves: its journal, its trials and its best trial."""

    path: Path
    trials: tuple[TrialRecord, ...]
    best: TrialRecord | None
    test_accuracy: float | None
    spent: float
    limit: Budget
    stopped: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def best_config(self) -> dict[str, Any] | None:
        """The best trial's configuration."""
        return None if self.best is None else dict(self.best.trial.config)

    def top(self, k: int = 5) -> list[TrialRecord]:
        """The k best trials with a usable result."""
        ok = [r for r in self.trials if r.result is not None and r.result.ok]
        return sorted(ok, key=TrialRecord.rank_key)[:k]

    def load_best_model(self) -> torch.nn.Module:
        """The best trial's trained model (standardisation included), in eval mode, on the CPU."""
        with Storage.open(self.path) as store:
            paths = store.checkpoints()
        if self.best is None or self.best.id not in paths:
            raise UserError(f"{self.path} holds no checkpoint of a best trial")
        return spaces.load_model(paths[self.best.id])


def search(
    space: ConfigurationSpace | str,
    data: Dataset | str,
    searcher: Searcher | str = "random",
    budget: Budget | str = "10m",
    *,
    trial_budget: Budget | str = "20ep",
    seed: int = 0,
    storage: str | os.PathLike[str] | None = None,
    name: str | None = None,
    searcher_options: Mapping[str, Any] | None = None,
    trainer_options: TrainerOptions | Mapping[str, Any] | None = None,
    data_options: Mapping[str, Any] | None = None,
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
) -> SearchResult:
    """Search `space` for the best model on `data` within `budget`; everything lands in SQLite.

    `space`, `data` and `searcher` are objects or registered names; `budget` is the total
    (``"10m"``, ``"300ep"``, ``"50trials"``), `trial_budget` what one candidate trains for.
    """
    limit = Budget.parse(budget)
    per_trial = Budget.parse(trial_budget)
    if per_trial.unit is Unit.TRIALS:
        raise UserError("--trial-budget is epochs or seconds per trial, e.g. 20ep or 30s")
    if limit.unit is Unit.EPOCHS and per_trial.unit is not Unit.EPOCHS:
        raise UserError("a total budget in epochs needs a trial budget in epochs, e.g. 20ep")
    options = _trainer_options(trainer_options)
    resolve_device(options.device)  # a wrong device is the user's mistake: say so before starting

    space_name = space if isinstance(space, str) else (space.name or "custom")
    space_obj = spaces.get(space) if isinstance(space, str) else space
    dataset = load_dataset(data, seed=0, **dict(data_options or {})) if isinstance(data, str) \
        else data
    searcher_seq, trial_seq = np.random.SeedSequence(seed).spawn(2)
    if isinstance(searcher, str):
        searcher_obj = searcher_registry.get(
            searcher, space_obj, seed=int(searcher_seq.generate_state(1)[0]),
            **dict(searcher_options or {}),
        )
    else:
        if searcher_options:
            raise UserError("searcher_options apply only when the searcher is given by name")
        searcher_obj = searcher

    run_name = name or f"{space_name}-{dataset.name}-{searcher_obj.name}-" \
        f"{datetime.now():%Y%m%d-%H%M%S}"
    path = Path(storage) if storage is not None else Path("runs") / f"{run_name}.db"
    settings = {
        "name": run_name,
        "space_name": space_name,
        "space": spaces.space_to_json(space_obj),
        "searcher": {"name": searcher_obj.name, "options": searcher_obj.options,
                     "seed": searcher_obj.seed},
        "seed": seed,
        "budget": str(limit),
        "trial_budget": str(per_trial),
        "data": {"name": dataset.name, "options": dict(data_options or {}),
                 "sizes": [len(dataset.y_train), len(dataset.y_val), len(dataset.y_test)]},
        "trainer": options.to_dict(),
    }
    reporters = list(callbacks) + ([default_reporter()] if progress else [])
    store = Storage.create(path, settings)
    try:
        loop = _Loop(store, searcher_obj, TrainingObjective(dataset, per_trial, options),
                     Ledger(limit), trial_seq, reporters)
        return loop.run()
    finally:
        store.close()


def _trainer_options(value: TrainerOptions | Mapping[str, Any] | None) -> TrainerOptions:
    if value is None:
        return TrainerOptions()
    if isinstance(value, TrainerOptions):
        return value
    try:
        return TrainerOptions(**value)
    except TypeError as exc:
        raise UserError(f"bad trainer option: {exc}") from None


class _Loop:
    """State of one running search; `run` is the ask/tell loop."""

    def __init__(self, store: Storage, searcher: Searcher, objective: TrainingObjective,
                 ledger: Ledger, trial_seq: np.random.SeedSequence,
                 callbacks: Sequence[Callback]) -> None:
        self.store = store
        self.searcher = searcher
        self.objective = objective
        self.ledger = ledger
        self.trial_seq = trial_seq
        self.callbacks = callbacks
        self.executor = InProcessExecutor()
        self.best: TrialRecord | None = None
        self.durations: list[float] = []

    def run(self) -> SearchResult:
        for cb in self.callbacks:
            cb.on_search_start(self.store.path, self.store.settings, self.ledger)
        stopped = "budget spent"
        failures = 0
        current: Trial | None = None
        try:
            while True:
                reason = self._cannot_start()
                if reason:
                    stopped = reason
                    break
                current = self.searcher.ask()
                if current is None:
                    stopped = "the searcher has nothing more to propose"
                    break
                result = self._run_trial(current)
                current = None
                failures = 0 if result.ok else failures + 1
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    stopped = (f"{failures} trials in a row failed; the last error: "
                               f"{(result.error or result.status.value).splitlines()[0]}")
                    break
        except KeyboardInterrupt:
            if current is not None:
                self.store.finish_trial(current.id, Result.failure(
                    TrialStatus.INTERRUPTED, "interrupted by the user"), spent=self.ledger.spent)
            self.store.set_meta("state", "interrupted")
            for cb in self.callbacks:
                cb.on_search_end(None)
            raise
        return self._finish(stopped)

    def _cannot_start(self) -> str | None:
        """Why no further trial may start, or None."""
        ledger = self.ledger
        if ledger.exhausted:
            return "budget spent"
        if ledger.unit is Unit.TRIALS:
            return None if ledger.can_afford(1) else "budget spent"
        if ledger.unit is Unit.EPOCHS:
            cost = self.objective.trial_budget.amount
            return None if ledger.can_afford(cost) else "too little budget left for another trial"
        # A time budget: every trial stops at the search's deadline anyway, so this only avoids
        # starting one that would almost surely be cut short.
        if self.durations and ledger.remaining < 0.5 * statistics.median(self.durations):
            return "too little time left for another trial"
        return None

    def _run_trial(self, trial: Trial) -> Result:
        store, ledger = self.store, self.ledger
        store.add_trial(trial)
        device = str(resolve_device(self.objective.options.device))
        store.start_trial(trial.id, device=device)
        for cb in self.callbacks:
            cb.on_trial_start(trial)
        deadline = time.monotonic() + ledger.remaining if ledger.unit is Unit.SECONDS else None
        seed = int(np.random.SeedSequence(
            self.trial_seq.entropy, spawn_key=(*self.trial_seq.spawn_key, trial.id),
        ).generate_state(1)[0])

        def on_epoch(point: Mapping[str, float]) -> None:
            for cb in self.callbacks:
                cb.on_epoch(trial, point)

        outcome = self.executor.submit(
            self.objective, trial, seed=seed, deadline=deadline, on_epoch=on_epoch,
        ).result()
        result = outcome.result
        ledger.charge(self._cost(result))
        store.finish_trial(trial.id, result, spent=ledger.spent)
        self.durations.append(result.seconds)
        record = store.trial(trial.id)
        if result.ok and outcome.model is not None and (
                self.best is None or record.rank_key() < self.best.rank_key()):
            self._save_best(record, outcome.model)
        self.searcher.tell(trial, result)
        for cb in self.callbacks:
            cb.on_trial_end(trial, result, self.best, ledger)
        return result

    def _cost(self, result: Result) -> float:
        unit = self.ledger.unit
        if unit is Unit.TRIALS:
            return 1.0
        return result.epochs if unit is Unit.EPOCHS else result.seconds

    def _save_best(self, record: TrialRecord, model: torch.nn.Module) -> None:
        """Checkpoint the new best trial and drop the previous best's file (disk stays bounded)."""
        data = self.objective.data
        payload = {
            "format": CHECKPOINT_FORMAT,
            "trial_id": record.id,
            "config": dict(record.trial.config),
            "input_shape": list(data.input_shape),
            "num_classes": data.num_classes,
            "mean": data.mean.detach().cpu(),
            "std": data.std.detach().cpu(),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        }
        folder = self.store.checkpoint_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"trial-{record.id}.pt"
        save_atomic(payload, path)
        self.store.add_checkpoint(record.id, path)
        if self.best is not None:
            old = self.store.checkpoints().get(self.best.id)
            self.store.remove_checkpoint(self.best.id)
            if old is not None:
                old.unlink(missing_ok=True)
        self.best = record

    def _finish(self, stopped: str) -> SearchResult:
        test_accuracy = None
        ranked = self.store.ranked()
        best = ranked[0] if ranked else None
        if best is not None:
            path = self.store.checkpoints().get(best.id)
            if path is not None:
                test_accuracy = checkpoint_test_accuracy(path, self.objective.data,
                                                 self.objective.options)
        summary = {
            "stopped": stopped,
            "best_trial": None if best is None else best.id,
            "test_accuracy": test_accuracy,
            "spent": self.ledger.spent,
            "finished_at": time.time(),
        }
        self.store.set_meta("summary", summary)
        self.store.set_meta("state", "finished")
        result = SearchResult(
            path=self.store.path,
            trials=tuple(self.store.trials()),
            best=best,
            test_accuracy=test_accuracy,
            spent=self.ledger.spent,
            limit=self.ledger.limit,
            stopped=stopped,
        )
        for cb in self.callbacks:
            cb.on_search_end(result)
        return result


def save_atomic(payload: Mapping[str, Any], path: Path) -> None:
    """Write a torch file so a reader never sees half of it (write aside, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(dict(payload), tmp)
    os.replace(tmp, path)


def checkpoint_test_accuracy(checkpoint: Path, data: Dataset, options: TrainerOptions) -> float:
    """Accuracy on the test split of the model stored in `checkpoint` (inputs standardised)."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = spaces.build_model(ckpt["config"], data.input_shape, data.num_classes)
    model.load_state_dict(ckpt["state_dict"])
    device = resolve_device(options.device)
    model.to(device)
    _, acc = evaluate(model, data.x_test.to(device), data.y_test.to(device),
                      batch_size=options.eval_batch_size)
    return acc

