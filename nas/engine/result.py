"""`SearchResult`: what a finished search leaves, read from its journal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.budget import Budget
from nas.errors import UserError
from nas.journal import JournalView, TrialRecord, ranked
from nas.pareto import FrontPoint, front_of
from nas.storage import Storage

if TYPE_CHECKING:
    import torch


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
    #: The greedy ensemble of the best trials (weights by trial id, val/test accuracy), if any.
    ensemble: Mapping[str, Any] | None = None
    #: The plain baselines fitted on the same split (name, val/test accuracy, seconds).
    baselines: tuple[Mapping[str, Any], ...] = ()
    #: The baseline that beat the search's model on validation, and so is the result; or None.
    baseline_won: Mapping[str, Any] | None = None
    #: A multi-objective search's objectives (`nas.objectives`), in its order; None: one.
    objectives: tuple[str, ...] | None = None

    @classmethod
    def of(cls, view: JournalView) -> SearchResult:
        """The result of a finished journal."""
        summary = view.summary
        limit = view.limit
        if limit is None:
            raise UserError(f"{view.path} records no budget: it is not a search journal")
        return cls(path=view.path, trials=view.records, best=view.best(),
                   test_accuracy=None if summary is None else summary.test_accuracy,
                   spent=float(view.spent or 0.0), limit=limit,
                   stopped="" if summary is None else summary.stopped,
                   ensemble=None if summary is None else summary.ensemble,
                   baselines=view.baselines,
                   baseline_won=None if summary is None else summary.baseline_won,
                   objectives=view.settings.objectives)

    def pareto_front(self, objectives: Sequence[str] | None = None) -> list[FrontPoint]:
        """The trained trials no other beats in every one of `objectives` (``val_error``,
        ``params``, ``flops``, ``latency``; all minimised), best first in the first; by
        default the search's own objectives, else validation error and parameters."""
        return front_of(self.trials, self.objectives, objectives)[1]

    @property
    def final_test_accuracy(self) -> float | None:
        """Test accuracy of what the search returns: the winning baseline, else the ensemble,
        else the best trial."""
        if self.baseline_won is not None:
            return self.baseline_won.get("test_accuracy")
        if self.ensemble is not None:
            return self.ensemble.get("test_accuracy")
        return self.test_accuracy

    def load_final_model(self, data: Any = None) -> torch.nn.Module:
        """What the search returns, as a model of raw inputs in eval mode on the CPU: the
        winning baseline (fitted again, exactly, on `data`, by default the journal's), else the
        ensemble, else the best trial's model."""
        if self.baseline_won is None:
            return self.load_ensemble() if self.ensemble else self.load_best_model()
        from nas.baselines import BaselineModel, fit_baselines

        view = JournalView.load(self.path)
        if data is None:
            from nas.data import load

            spec = view.settings.data
            if spec is None:
                raise UserError(f"{self.path} names no data: pass it, load_final_model(data)")
            data = load(spec.name, **dict(spec.options))
        name = str(self.baseline_won["name"])
        journaled = next(b for b in self.baselines if b["name"] == name)
        tried = (journaled.get("params") or {}).get("val_accuracy_by_C") or {}
        (fitted,) = fit_baselines(data, seconds=float(journaled.get("cap", 0.0)),
                                  seed=view.settings.seed, only=name,
                                  train_size=journaled.get("train_size") or None,
                                  settings=1 if len(tried) == 1 else None)
        return BaselineModel(fitted, data.mean, data.std).eval()

    @property
    def best_config(self) -> dict[str, Any] | None:
        """The best trial's configuration."""
        return None if self.best is None else dict(self.best.trial.config)

    @property
    def best_loss(self) -> float | None:
        """The best trial's loss."""
        return None if self.best is None or self.best.result is None else self.best.result.loss

    def top(self, k: int = 5) -> list[TrialRecord]:
        """The k best trials with a usable result."""
        return ranked(self.trials)[:k]

    def load_best_model(self) -> torch.nn.Module:
        """The best trial's trained model (standardisation included), in eval mode, on the CPU."""
        import spaces

        with Storage.open(self.path) as store:
            paths = store.checkpoints()
        if self.best is None or self.best.id not in paths:
            raise UserError(f"{self.path} holds no checkpoint of a best trial")
        return spaces.load_model(paths[self.best.id])

    def load_ensemble(self) -> torch.nn.Module:
        """The ensemble of the best trials (`nas.ensemble.Ensemble`), in eval mode, on the CPU."""
        from nas.ensemble import load_ensemble

        if not self.ensemble:
            raise UserError(f"{self.path} holds no ensemble (fewer than two usable trials, or "
                            "ensemble=0)")
        with Storage.open(self.path) as store:
            paths = store.checkpoints()
        return load_ensemble(self.ensemble["weights"], paths)
