"""What a trial evaluates: a model trained by the shared trainer, or any Python function.

Both turn a `Trial` into a `TrainOutcome` and never raise for a broken candidate: an exception
becomes a failed result with its traceback, so one bad trial never ends a search.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import socket
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

import spaces
from nas.budget import Budget, Unit
from nas.data import Dataset
from nas.ensemble import ROUNDS_PER_CANDIDATE, EnsembleSummary, greedy_selection
from nas.errors import UserError
from nas.optim import preload
from nas.trainer import (
    TrainerOptions,
    TrainOutcome,
    TrainState,
    evaluate,
    resolve_device,
    train_config,
)
from nas.types import Result, Trial, TrialStatus

EpochHook = Callable[[Mapping[str, float]], None]


class Objective(Protocol):
    """What the loop evaluates: a trial in, a `TrainOutcome` out, never an exception."""

    @property
    def max_budget(self) -> float:
        """Budget of a full-budget trial."""

    @property
    def device(self) -> str:
        """Where trials run."""

    def __call__(self, trial: Trial, *, seed: int, deadline: float | None = None,
                 on_epoch: EpochHook | None = None) -> TrainOutcome:
        """Evaluate one trial."""


def release_memory() -> None:
    """Free what finished trials left behind: Python garbage and CUDA's cached blocks."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _failed(exc: Exception, start: float) -> TrainOutcome:
    return TrainOutcome(Result.failure(
        TrialStatus.FAILED, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}",
        seconds=time.monotonic() - start,
    ))


@dataclass(frozen=True)
class TrainingObjective:
    """Trains a trial's model on `data` for the trial's budget (epochs or seconds)."""

    data: Dataset
    trial_budget: Budget
    options: TrainerOptions = dataclasses.field(default_factory=TrainerOptions)
    #: Epochs the lr schedule spans (a multi-fidelity searcher's max budget), so that a run
    #: continued from a lower rung matches one trained straight. Default: the trial's budget.
    horizon: float | None = None

    def __post_init__(self) -> None:
        if self.trial_budget.unit not in (Unit.EPOCHS, Unit.SECONDS):
            raise UserError("a trial's budget is epochs or seconds, e.g. 20ep or 30s")

    @property
    def has_test_split(self) -> bool:
        """Whether the data has a test split to report on."""
        return self.data.has_test_split

    @property
    def scoring_scale(self) -> float:
        """What scoring a model at the end costs, in validation passes: validation, and test
        when there is a test split."""
        data = self.data
        return 1.0 + (len(data.x_test) / max(1, len(data.x_val)) if data.has_test_split else 0.0)

    @property
    def can_continue(self) -> bool:
        """Whether a promoted trial can resume its parent (epoch budgets only)."""
        return self.trial_budget.unit is Unit.EPOCHS

    @property
    def max_budget(self) -> float:
        """The budget of a full-budget trial, in the trial unit."""
        return self.trial_budget.amount

    @property
    def device(self) -> str:
        """Where trials run."""
        return str(resolve_device(self.options.device))

    def size_of(self, config: Mapping[str, Any], *, flops: bool = True) -> tuple[int, float]:
        """Parameters and forward FLOPs per sample (NaN unless `flops`) of `config`'s model,
        without training it."""
        return spaces.model_size(config, self.data.input_shape, self.data.num_classes,
                                 flops=flops)

    def __call__(self, trial: Trial, *, seed: int, deadline: float | None = None,
                 on_epoch: EpochHook | None = None,
                 parent_checkpoint: Path | bytes | None = None) -> TrainOutcome:
        """Build and train the trial's model, continuing `parent_checkpoint` when given.

        The parent comes as a path (shared storage) or as the file's bytes (a remote worker).
        """
        from spaces import checkpoint  # models only once a trial trains

        amount = trial.budget_or(self.max_budget)
        by_epochs = self.trial_budget.unit is Unit.EPOCHS
        # A trial of a re-planned bracket names its own span (`horizon` in its info).
        horizon = trial.info.get("horizon", self.horizon)
        preload()
        start = time.monotonic()
        try:
            parent = checkpoint.read(parent_checkpoint) \
                if parent_checkpoint is not None and by_epochs else None
            outcome = train_config(
                trial.config, self.data, seed=seed,
                epochs=amount if by_epochs else None,
                seconds=None if by_epochs else amount,
                deadline=deadline, options=self.options, on_epoch=on_epoch,
                horizon=max(horizon or amount, amount) if by_epochs else None,
                parent=parent,
            )
        except UserError:
            raise
        except torch.OutOfMemoryError:
            # Let go of everything the trial held before the next one starts.
            parent = None
            release_memory()
            return TrainOutcome(Result.failure(TrialStatus.FAILED, "out of memory",
                                               seconds=time.monotonic() - start))
        except Exception as exc:  # a broken candidate must not end the search
            return _failed(exc, start)
        # Charge the whole evaluation (building the model included), not only the training loop.
        result = dataclasses.replace(outcome.result, seconds=time.monotonic() - start)
        return TrainOutcome(result, outcome.model, outcome.state)

    def checkpoint(self, trial: Trial, model: torch.nn.Module,
                   state: TrainState | None = None) -> dict[str, Any]:
        """What `spaces.load_model` needs to rebuild the trained model in a fresh process,
        and, with `state`, what a promoted trial needs to continue training it."""
        from spaces import checkpoint

        data = self.data
        extra = {} if state is None else {"train_state": state.to_dict()}
        return checkpoint.payload(trial.config, data.input_shape, data.num_classes, data.mean,
                                  data.std, model, trial_id=trial.id, **extra)

    def _load(self, path: Path, device: torch.device) -> torch.nn.Module:
        """The network stored in a trial's checkpoint at `path`, on `device`, in eval mode."""
        from spaces import checkpoint

        return checkpoint.network(checkpoint.read(path)).to(device).eval()

    def test_accuracy(self, path: Path) -> float:
        """Accuracy on the test split of the model stored in the checkpoint at `path`."""
        device = resolve_device(self.options.device)
        model = self._load(path, device)
        _, acc = evaluate(model, self.data.x_test.to(device), self.data.y_test.to(device),
                          batch_size=self.options.eval_batch(device))
        return acc

    def ensemble(self, checkpoints: Mapping[int, Path], *,
                 initial: Sequence[int] = ()) -> EnsembleSummary | None:
        """Greedy ensemble selection over `checkpoints` (best first) on the validation split,
        starting from the `initial` trials; None when there are fewer than two candidates.
        Test accuracy only once it is chosen."""
        if len(checkpoints) < 2:
            return None
        device = resolve_device(self.options.device)
        splits = {"val": (self.data.x_val, self.data.y_val)}
        if self.data.has_test_split:
            splits["test"] = (self.data.x_test, self.data.y_test)
        probs: dict[str, list[torch.Tensor]] = {name: [] for name in splits}
        chunk = self.options.eval_batch(device)
        readable: dict[int, Path] = {}
        for trial_id, path in checkpoints.items():
            try:
                model = self._load(path, device)
            except Exception:  # a damaged file is left out, not the end of the search
                continue
            readable[trial_id] = path
            with torch.no_grad():
                for name, (x, _) in splits.items():
                    out = [torch.softmax(model(x[i:i + chunk].to(device)).float(), 1).cpu()
                           for i in range(0, len(x), chunk)]
                    probs[name].append(torch.cat(out))
        ids = list(readable)
        if len(ids) < 2:
            return None
        y_val = self.data.y_val.cpu()
        counts = greedy_selection(probs["val"], y_val, ROUNDS_PER_CANDIDATE * len(ids),
                                  initial=[ids.index(i) for i in initial if i in ids])
        total = sum(counts)
        weights = {ids[i]: c / total for i, c in enumerate(counts) if c}

        def mixed(name: str) -> torch.Tensor:
            return sum(w * probs[name][ids.index(i)] for i, w in weights.items())  # type: ignore[return-value]

        val = mixed("val")
        rows = torch.arange(len(y_val))
        test_accuracy = None
        if "test" in splits:
            test_accuracy = float((mixed("test").argmax(1) == self.data.y_test.cpu())
                                  .float().mean())
        return EnsembleSummary(
            weights=weights,
            val_accuracy=float((val.argmax(1) == y_val).float().mean()),
            val_loss=float(-val[rows, y_val].clamp_min(1e-12).log().mean()),
            test_accuracy=test_accuracy,
        )


@dataclass(frozen=True)
class FunctionObjective:
    """Any Python ``objective(config, budget) -> float | dict`` (lower loss is better).

    A dict holds ``loss`` and optionally ``cost`` (budget spent, default the trial's budget);
    other keys are kept as metrics. An objective with a ``seed`` parameter gets the trial's seed.
    """

    function: Callable[..., float | Mapping[str, Any]]
    max_budget: float = 1.0
    device: str = "cpu"
    #: A function cannot be asked to stop at a deadline: an executor that can stop a running
    #: task (worker processes) stops it there.
    stops_itself = False

    @property
    def takes_seed(self) -> bool:
        """Whether the function accepts a ``seed`` keyword."""
        try:
            params = inspect.signature(self.function).parameters
        except (TypeError, ValueError):
            return False
        return "seed" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())

    def __call__(self, trial: Trial, *, seed: int, deadline: float | None = None,
                 on_epoch: EpochHook | None = None) -> TrainOutcome:
        """Call the function on the trial's configuration and budget."""
        budget = trial.budget_or(self.max_budget)
        kwargs = {"seed": seed} if self.takes_seed else {}
        start = time.monotonic()
        try:
            value = self.function(dict(trial.config), budget, **kwargs)
            result = _as_result(value, budget, time.monotonic() - start)
        except UserError:
            raise
        except Exception as exc:
            outcome = _failed(exc, start)
            return TrainOutcome(dataclasses.replace(outcome.result, cost=budget))
        return TrainOutcome(result)


def _as_result(value: float | Sequence[float] | Mapping[str, Any], budget: float,
               seconds: float) -> Result:
    """An objective's return value as a Result; a value no journal could hold or no ledger
    could charge raises ValueError, which fails that trial (not the run).

    A sequence of numbers (or a dict whose ``loss`` is one) is a multi-objective result: its
    values are the result's `objectives` and the first is its `loss`.
    """
    tiebreak = None
    if isinstance(value, Mapping):
        if "loss" not in value:
            raise ValueError("an objective's dict must hold 'loss'")
        metrics = {str(k): _metric(k, v) for k, v in value.items() if k not in _RESERVED}
        loss, objectives = _losses(value["loss"])
        cost = budget if value.get("cost") is None else _number(value["cost"], "cost")
        if not (math.isfinite(cost) and cost >= 0):
            raise ValueError(f"the objective's cost must be a finite number >= 0, got {cost}")
        if value.get("tiebreak_loss") is not None:
            tiebreak = _number(value["tiebreak_loss"], "tiebreak_loss")
    else:
        metrics, cost = {}, budget
        loss, objectives = _losses(value)
    if not all(math.isfinite(v) for v in objectives or (loss,)):
        return Result.failure(TrialStatus.DIVERGED, f"the objective returned {value}",
                              seconds=seconds, cost=cost)
    return Result(loss=loss, seconds=seconds, metrics=metrics, cost=cost,
                  tiebreak_loss=tiebreak, objectives=objectives)


def _losses(value: Any) -> tuple[float, tuple[float, ...] | None]:
    """A returned loss: one number, or a sequence of them (the objectives, the first the
    loss)."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__"):
        return _number(value, "loss"), None
    if getattr(value, "ndim", 1) == 0:  # a 0-d array or tensor is one number
        return _number(value, "loss"), None
    values = tuple(_number(v, "loss") for v in value)
    if not values:
        raise ValueError("the objective returned no values")
    return values[0], values if len(values) > 1 else None


def _number(value: Any, what: str) -> float:
    """`value` as a float: a number (numpy's and 0-d tensors included), not text or a bool."""
    if isinstance(value, (str, bytes, bool)) or value is None:
        raise ValueError(f"the objective's {what} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"the objective's {what} must be a number, got a "
                         f"{type(value).__name__}") from None


def _metric(name: Any, value: Any) -> Any:
    """A metric as the journal stores it (JSON): text, numbers, bools, None and lists or dicts
    of them as they are, other numbers (numpy's, 0-d tensors) as floats; anything else fails
    the trial, naming it."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_metric(name, v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _metric(name, v) for k, v in value.items()}
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"the objective's metric {name!r} is a {type(value).__name__}, which "
                         "a journal cannot hold: return numbers, text or lists of them"
                         ) from None


#: Keys of an objective's dict that are part of the result, not metrics.
_RESERVED = ("loss", "cost", "tiebreak_loss")


@dataclass(frozen=True)
class Evaluation:
    """What evaluating a trial sends back to the runner, from this process or a worker.

    `checkpoint` is the trained model's checkpoint payload (CPU tensors), so the runner, the
    journal's only writer, decides whether to keep it; `worker` names the process that ran it.
    """

    result: Result
    checkpoint: dict[str, Any] | None = None
    worker: str = ""


def evaluate_trial(objective: TrainingObjective | FunctionObjective, trial: Trial, *, seed: int,
                   deadline_at: float | None = None, parent: Path | bytes | None = None,
                   with_state: bool = False, on_epoch: EpochHook | None = None) -> Evaluation:
    """Evaluate one trial wherever this runs; the runner submits this to its executor.

    `deadline_at` is wall-clock (``time.time()``) so it means the same on another machine;
    `with_state` keeps what a promoted trial needs to continue training in the checkpoint.
    """
    deadline = None if deadline_at is None else time.monotonic() + (deadline_at - time.time())
    extra = {} if parent is None else {"parent_checkpoint": parent}
    outcome = objective(trial, seed=seed, deadline=deadline, on_epoch=on_epoch, **extra)
    payload = None
    if outcome.model is not None and isinstance(objective, TrainingObjective):
        payload = objective.checkpoint(trial, outcome.model,
                                       outcome.state if with_state else None)
    result = outcome.result
    del outcome  # the trained model: nothing holds it past this point
    if objective.device.startswith("cuda"):
        release_memory()  # hand cached blocks back so the next trial starts clean
    return Evaluation(result, payload, worker=f"{socket.gethostname()}:{os.getpid()}")
