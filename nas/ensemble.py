"""Ensembles of a search's best models: greedy selection with replacement (Caruana et al. 2004).

Selection sees only the validation split. Members are added one at a time, each time the one
(repeats allowed) whose addition gives the fewest validation errors of the averaged
probabilities (cross-entropy breaks ties); the best prefix of the rounds is kept, and a
member's weight is how often it was picked. Auto-sklearn and Auto-PyTorch
build their final models the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from spaces.checkpoint import Ensemble

__all__ = ["Ensemble", "EnsembleSummary", "greedy_selection", "load_ensemble"]

#: Selection rounds per candidate: weights come in steps of 1 / (ROUNDS_PER_CANDIDATE * k).
ROUNDS_PER_CANDIDATE = 2


def greedy_selection(val_probs: Sequence[torch.Tensor], y_val: torch.Tensor,
                     rounds: int, *, initial: Sequence[int] = ()) -> list[int]:
    """How often each candidate is picked in the best prefix of `rounds` greedy rounds (with
    replacement): the prefix with the fewest validation errors, then lowest cross-entropy.

    `val_probs[i]` is candidate i's (n, classes) probabilities on the validation split; ties go
    to the lower index, so list candidates best first. The `initial` candidates are picked
    once each before the first round (Caruana's initialisation), and stay whatever follows,
    unless a selection started from nothing makes fewer validation errors: seeds of one
    configuration can differ widely (replicas 10 points below their original on shapes28).
    """
    if not val_probs:
        return []
    if any(not 0 <= i < len(val_probs) for i in initial):
        raise ValueError(f"initial members {list(initial)} outside 0-{len(val_probs) - 1}")
    counts, score = _greedy(val_probs, y_val, rounds, initial)
    if initial:
        free, free_score = _greedy(val_probs, y_val, rounds, ())
        if free_score[0] < score[0]:
            return free
    return counts


def _greedy(val_probs: Sequence[torch.Tensor], y_val: torch.Tensor, rounds: int,
            initial: Sequence[int]) -> tuple[list[int], tuple[float, float]]:
    """`greedy_selection` from `initial` alone: the counts and the score of the best prefix."""
    counts = [0] * len(val_probs)
    total = torch.zeros_like(val_probs[0], dtype=torch.float64)
    rows = torch.arange(len(y_val))
    for i in initial:
        counts[i] += 1
        total += val_probs[i].double()
    # Later rounds can only add members; the best prefix of the rounds is what is returned.
    best_counts, best_prefix = list(counts), (math.inf, math.inf)
    if initial:
        best_prefix = _score(total / len(initial), y_val, rows)
    for step in range(len(initial) + 1, len(initial) + rounds + 1):
        best, best_score = 0, (math.inf, math.inf)
        for i, probs in enumerate(val_probs):
            score = _score((total + probs.double()) / step, y_val, rows)
            if score < best_score:
                best, best_score = i, score
        counts[best] += 1
        total += val_probs[best].double()
        if best_score < best_prefix:
            best_counts, best_prefix = list(counts), best_score
    return best_counts, best_prefix


def _score(probs: torch.Tensor, y: torch.Tensor, rows: torch.Tensor) -> tuple[float, float]:
    """(errors, cross-entropy) of averaged probabilities: accuracy first, as the searcher ranks
    trials; cross-entropy (rounded, so float noise breaks no tie) decides among equals."""
    errors = float((probs.argmax(1) != y).sum())
    return errors, round(float(-probs[rows, y].clamp_min(1e-12).log().mean()), 9)


@dataclass(frozen=True)
class EnsembleSummary:
    """Which trials an ensemble holds (trial id -> weight) and how well it does."""

    weights: Mapping[int, float]
    val_accuracy: float
    val_loss: float
    test_accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the journal (trial ids as strings, JSON's keys)."""
        return {"weights": {str(k): v for k, v in self.weights.items()},
                "val_accuracy": self.val_accuracy, "val_loss": self.val_loss,
                "test_accuracy": self.test_accuracy}


def load_ensemble(weights: Mapping[int | str, float], checkpoints: Mapping[int, Path]
                  ) -> Ensemble:
    """The ensemble of the journal's `weights` from the trials' checkpoints, in eval mode."""
    import spaces

    ids = [int(k) for k in weights]
    missing = [i for i in ids if i not in checkpoints]
    if missing:
        from nas.errors import UserError

        raise UserError(f"the ensemble's trials {missing} have no checkpoint any more")
    members = [spaces.load_model(checkpoints[i]) for i in ids]
    return Ensemble(members, [float(weights[k]) for k in weights]).eval()
