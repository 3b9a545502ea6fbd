"""The training objective: a trial's configuration -> model -> trainer -> result."""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from nas.budget import Budget, Unit
from nas.data import Dataset
from nas.errors import UserError
from nas.trainer import TrainerOptions, TrainOutcome, TrainSettings, train
from nas.types import Result, Trial, TrialStatus


@dataclass(frozen=True)
class TrainingObjective:
    """Trains a trial's model on `data` for the trial's budget (epochs or seconds)."""

    data: Dataset
    trial_budget: Budget
    options: TrainerOptions = dataclasses.field(default_factory=TrainerOptions)

    def __post_init__(self) -> None:
        if self.trial_budget.unit is Unit.TRIALS:
            raise UserError("a trial's budget is epochs or seconds, e.g. 20ep or 30s")

    def __call__(self, trial: Trial, *, seed: int, deadline: float | None = None,
                 on_epoch: Callable[[Mapping[str, float]], None] | None = None) -> TrainOutcome:
        """Build and train the trial's model; errors become a failed result, never an exception."""
        from spaces import build_model  # spaces imports torch models; keep it off import paths

        amount = self.trial_budget.amount if trial.budget is None else float(trial.budget)
        by_epochs = self.trial_budget.unit is Unit.EPOCHS
        start = time.monotonic()
        try:
            settings = TrainSettings.from_config(trial.config)
            # Model initialisation and dropout draw from torch's global generator: fork it so
            # each trial is seeded by its own seed and the caller's state is left untouched.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = build_model(trial.config, self.data.input_shape, self.data.num_classes)
                outcome = train(
                    model, self.data, settings,
                    epochs=amount if by_epochs else None,
                    seconds=None if by_epochs else amount,
                    deadline=deadline, options=self.options, seed=seed, on_epoch=on_epoch,
                )
        except UserError:
            raise
        except Exception as exc:  # a broken candidate must not end the search
            return TrainOutcome(Result.failure(
                TrialStatus.FAILED, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}",
                seconds=time.monotonic() - start,
            ))
        # Charge the whole evaluation (building the model included), not only the training loop.
        result = dataclasses.replace(outcome.result, seconds=time.monotonic() - start)
        return TrainOutcome(result, outcome.model)
