"""Hyperparameter importance from a journal: permutation importance of a random forest fitted
on configuration -> loss, measured out of fold."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.journal import JournalView

#: Fewest successful trials at one budget before hyperparameter importance is estimated.
MIN_IMPORTANCE_TRIALS = 10
#: At most this many trials train the importance forest (a seeded sample of more): its cost
#: grows with the trials, its estimate barely.
MAX_IMPORTANCE_TRIALS = 1000
#: Trees of each fold's forest: half of 64's time for the same ranking (docs/decisions.md,
#: "The report at 10,000 trials").
IMPORTANCE_TREES = 32
IMPORTANCE_METHOD = (
    f"permutation importance of a random forest ({IMPORTANCE_TREES} trees) fitted on "
    "configuration → loss, "
    "measured out of fold: the drop in cross-validated R² when one hyperparameter's values "
    "are shuffled across trials (mean and spread over 10 shuffles)"
)


@dataclass(frozen=True)
class Importance:
    """Hyperparameter importance, or why there is none (`reason`)."""

    method: str
    n_trials: int
    budget: float | None = None
    r2: float | None = None
    names: tuple[str, ...] = ()
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    constant: tuple[str, ...] = ()
    reason: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def importance(journal: JournalView, *, seed: int = 0, repeats: int = 10) -> Importance:
    """Permutation importance of each hyperparameter for the loss at one budget.

    Uses the successful trials of the highest budget that has at least `MIN_IMPORTANCE_TRIALS`
    of them. Numbers are used as they are, categoricals by index, and an inactive (conditional)
    hyperparameter as a value below all its others.
    """
    ok = [r for r in journal.finished() if r.result is not None and r.result.ok]
    by_budget = Counter(journal.budget_of(r) for r in ok)
    usable = [b for b, n in by_budget.items() if n >= MIN_IMPORTANCE_TRIALS]
    if not usable:
        most = max(by_budget.values(), default=0)
        return Importance(IMPORTANCE_METHOD, most, reason=(
            f"not enough trials: {most} successful at any one budget, need at least "
            f"{MIN_IMPORTANCE_TRIALS} to tell importance from noise"))
    budget = max(usable)
    rows = [r for r in ok if journal.budget_of(r) == budget]
    if len(rows) > MAX_IMPORTANCE_TRIALS:
        # A seeded sample: the forest's cost grows with the trials, its estimate barely.
        keep = np.random.default_rng(seed).choice(len(rows), MAX_IMPORTANCE_TRIALS,
                                                  replace=False)
        rows = [rows[i] for i in sorted(keep)]
    columns = _columns(journal.space)
    if columns is None:  # a journal without a readable space: no importance, the rest stands
        return Importance(IMPORTANCE_METHOD, len(rows), budget,
                          reason="the journal's search space could not be rebuilt")
    names = [name for name, _ in columns]
    vectors, losses = [], []
    for record in rows:
        assert record.result is not None
        vector = _encode(columns, record.trial.config)
        if vector is None:  # a configuration the stored space rejects says nothing about it
            continue
        vectors.append(vector)
        losses.append(record.result.loss)
    if len(vectors) < MIN_IMPORTANCE_TRIALS or not names:
        return Importance(IMPORTANCE_METHOD, len(vectors), budget, reason=(
            f"not enough trials: {len(vectors)} configurations readable in the stored space"))
    x = _inactive_below(np.array(vectors, dtype=np.float64))
    y = np.array(losses, dtype=np.float64)
    varies = np.array([np.unique(x[:, j]).size > 1 for j in range(x.shape[1])])
    constant = tuple(n for n, v in zip(names, varies, strict=True) if not v)
    names = [n for n, v in zip(names, varies, strict=True) if v]
    x = x[:, varies]
    if np.ptp(y) == 0 or not names:
        return Importance(IMPORTANCE_METHOD, len(y), budget, constant=constant,
                          reason="every trial had the same loss, or no hyperparameter varied")
    r2, drops = _permutation_importance(x, y, np.random.default_rng(seed), repeats)
    if r2 <= 0:
        return Importance(IMPORTANCE_METHOD, len(y), budget, r2=r2, constant=constant, reason=(
            f"the forest does not predict held-out losses better than their mean "
            f"(cross-validated R² = {r2:.2f} on {len(y)} trials): importances would be noise"))
    order = np.argsort(-drops.mean(axis=1))
    return Importance(
        IMPORTANCE_METHOD, len(y), budget, r2=r2, names=tuple(names[i] for i in order),
        mean=tuple(float(drops[i].mean()) for i in order),
        std=tuple(float(drops[i].std()) for i in order), constant=constant)


# (name, choices): choices is None for a number, else the values a column's index counts.
_Column = tuple[str, "tuple[Any, ...] | None"]
_NUMBERS = {"uniform_float", "normal_float", "beta_float", "uniform_int", "normal_int",
            "beta_int"}


def _columns(space: Mapping[str, Any]) -> list[_Column] | None:
    """The stored space's varying hyperparameters, read from its JSON; None if unreadable.

    Read directly, not through ConfigSpace: a forest's splits do not change under monotone
    transforms, so raw values serve, and a report then never imports ConfigSpace (about 1 s).
    """
    hps = space.get("hyperparameters") if isinstance(space, Mapping) else None
    if not isinstance(hps, list):
        return None
    columns: list[_Column] = []
    for hp in hps:
        if not isinstance(hp, Mapping) or not isinstance(hp.get("name"), str):
            return None
        kind = hp.get("type")
        if kind in _NUMBERS:
            columns.append((hp["name"], None))
        elif kind in ("categorical", "ordinal"):
            values = hp.get("choices" if kind == "categorical" else "sequence")
            if not isinstance(values, list):
                return None
            columns.append((hp["name"], tuple(values)))
        # A constant (or a type this reader does not know) cannot explain the loss.
    return columns


def _encode(columns: list[_Column], config: Mapping[str, Any]) -> list[float] | None:
    """A configuration as numbers (NaN where inactive); None if it is not of this space."""
    vector = []
    for name, choices in columns:
        value = config.get(name)
        if value is None:
            vector.append(math.nan)
        elif choices is None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            vector.append(float(value))
        elif value in choices:
            vector.append(float(choices.index(value)))
        else:
            return None
    return vector


def _inactive_below(x: np.ndarray) -> np.ndarray:
    """NaN (inactive) replaced per column by a value below every active one."""
    x = x.copy()
    for j in range(x.shape[1]):
        missing = np.isnan(x[:, j])
        if missing.any():
            active = x[~missing, j]
            low = float(active.min()) - max(float(np.ptp(active)), 1.0) if active.size else 0.0
            x[missing, j] = low
    return x


def _permutation_importance(x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                            repeats: int) -> tuple[float, np.ndarray]:
    """Out-of-fold R² of a random forest, and per column and shuffle the R² lost.

    Every trial is predicted by a forest that never saw it; a shuffle permutes one column over
    all trials, so even a small fold sees values from the whole sample.
    """
    from sklearn.ensemble import RandomForestRegressor

    n, d = x.shape
    k = min(5, n)
    folds = np.array_split(rng.permutation(n), k)
    shuffles = [rng.permutation(n) for _ in range(repeats)]
    base = np.empty(n)
    shuffled = np.empty((d, repeats, n))
    for i, test in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != i])
        forest = RandomForestRegressor(n_estimators=IMPORTANCE_TREES,
                                       random_state=int(rng.integers(2**31)), n_jobs=1)
        forest.fit(x[train], y[train])
        base[test] = forest.predict(x[test])
        # One predict call for every (column, shuffle) variant of this fold: far faster.
        variants = np.repeat(x[test][None, None], d, axis=0).repeat(repeats, axis=1)
        for j in range(d):
            for r, perm in enumerate(shuffles):
                variants[j, r, :, j] = x[perm[test], j]
        pred = forest.predict(variants.reshape(-1, d)).reshape(d, repeats, len(test))
        shuffled[:, :, test] = pred
    r2 = _r2(y, base)
    drops = np.array([[r2 - _r2(y, shuffled[j, r]) for r in range(repeats)] for j in range(d)])
    return r2, drops


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    total = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / total if total > 0 else 0.0
