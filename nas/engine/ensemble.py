"""The final ensemble's candidates: the best trials of the highest budget, kept as they finish,
and the greedy selection over them once the search ends (`nas.ensemble`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from nas.journal import TrialRecord
from nas.types import Trial


class Selects(Protocol):
    """An objective that scores and ensembles trained models (`TrainingObjective`)."""

    @property
    def has_test_split(self) -> bool:
        """Whether its data has a test split."""

    def test_accuracy(self, path: Path) -> float:
        """Accuracy on the test split of the model stored at `path`."""

    def ensemble(self, checkpoints: Mapping[int, Path], *,
                 initial: Sequence[int] = ()) -> Any:
        """Greedy ensemble selection, or None with fewer than two candidates."""


class Candidates:
    """The `size` best trials, highest budget first: their checkpoints are kept for the end."""

    def __init__(self, size: int, budget_of: Callable[[Trial], float]) -> None:
        self.size = size
        self._budget_of = budget_of
        self.top: list[TrialRecord] = []

    def key(self, record: TrialRecord) -> tuple[float, float, float]:
        """The highest budget first, then the best loss. Low-budget models are undertrained,
        yet their flat probabilities can win a cross-entropy vote."""
        return (-self._budget_of(record.trial), *record.rank_key())

    def consider(self, record: TrialRecord) -> None:
        """A finished, successful, not reused trial may become a candidate."""
        if self.size:
            self.top = sorted([*self.top, record], key=self.key)[:self.size]

    def ids(self) -> set[int]:
        """The candidates' trial ids."""
        return {r.id for r in self.top}

    def scoring_seconds(self, best: TrialRecord | None) -> float:
        """Seconds one validation pass of every model the end scores takes, as the trials
        measured it (`eval_seconds`): the top-budget candidates and the best trial."""
        chosen = {r.id: r for r in self._finalists(best)}
        return sum(float((r.result.metrics if r.result else {}).get("eval_seconds", 0.0))
                   for r in chosen.values())

    def _finalists(self, best: TrialRecord | None) -> list[TrialRecord]:
        """The candidates trained as long as the longest-trained ones, and the best trial."""
        top_budget = self.key(self.top[0])[0] if self.top else 0.0
        chosen = [r for r in self.top if self.key(r)[0] == top_budget]
        # The best trial always competes, so the ensemble is never worse on validation.
        if best is not None and all(r.id != best.id for r in chosen):
            chosen.insert(0, best)
        return chosen

    def conclude(self, objective: Selects, paths: Mapping[int, Path], best: TrialRecord | None,
                 best_path: Path | None, group: Sequence[int]
                 ) -> tuple[float | None, Mapping[str, Any] | None]:
        """The best model's test accuracy (its checkpoint at `best_path`) and the ensemble's
        journal form, when the data and the candidates allow them."""
        test_accuracy = None
        if best_path is not None and objective.has_test_split:
            try:
                test_accuracy = objective.test_accuracy(best_path)
            except Exception:  # a damaged file: no test accuracy, not a crashed search
                test_accuracy = None
        return test_accuracy, self.select(objective, paths, best, group)

    def select(self, objective: Selects, paths: Mapping[int, Path], best: TrialRecord | None,
               group: Sequence[int]) -> Mapping[str, Any] | None:
        """Choose the ensemble among the top-budget candidates, the best trial and the replica
        `group` (which starts it); its journal form, or None."""
        if self.size < 2:
            return None
        chosen = self._finalists(best)
        candidates = {r.id: paths[r.id] for r in chosen if r.id in paths}
        # Seeds of one configuration are interchangeable, so their plain average is not fitted
        # to the validation split.
        candidates.update({i: paths[i] for i in group if i in paths})
        summary = objective.ensemble(candidates, initial=group)
        return None if summary is None else summary.to_dict()


#: Accuracies closer than this are a tie: a model's comes from torch in float32 (69 of 72 is
#: 0.95833331), a baseline's from numpy in float64 (0.95833333), and a tie goes to the search.
ACCURACY_TIE = 1e-6


def winning_baseline(baselines: Sequence[Mapping[str, Any]], ensemble: Mapping[str, Any] | None,
                     best: TrialRecord | None) -> Mapping[str, Any] | None:
    """The plain baseline that beats the search's model (its ensemble, else its best trial) on
    validation, in the summary's form; None when the search's model is at least as good."""
    fitted = [b for b in baselines if b.get("val_accuracy") is not None]
    if not fitted:
        return None
    top = max(fitted, key=lambda b: (float(b["val_accuracy"]), -float(b.get("seconds", 0.0))))
    if ensemble is not None:
        searched: float | None = float(ensemble["val_accuracy"])
    elif best is not None and best.result is not None:
        searched = best.result.metrics.get("val_accuracy")
    else:
        searched = None
    if searched is not None and float(searched) + ACCURACY_TIE >= float(top["val_accuracy"]):
        return None
    return {"name": top["name"], "val_accuracy": top["val_accuracy"],
            "test_accuracy": top.get("test_accuracy"), "search_val_accuracy": searched}
