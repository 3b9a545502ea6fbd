"""A `Dataset` from the user's arrays: ingestion, checks and stratified splits.

`from_arrays` takes numpy arrays or torch tensors; the loaders in `nas.data.builtin` and
`nas.data.vision` split their data with the same stratified helpers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from nas.data.dataset import Dataset, _assemble, _check_seed, _one_line
from nas.errors import UserError


def from_arrays(
    x: Any,
    y: Any,
    *,
    x_test: Any = None,
    y_test: Any = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    name: str = "arrays",
    num_classes: int | None = None,
) -> Dataset:
    """Build a Dataset from numpy arrays or torch tensors x (N, ...) and integer labels y (N,).

    Without test arrays, `test_fraction` is split off first; `val_fraction` of the remaining
    training data becomes validation. Splits are stratified and fixed by `seed`.
    """
    xs = _as_features(x, "x")
    ys = _as_labels(y, "y")
    if len(xs) != len(ys):
        raise UserError(f"x has {len(xs)} samples but y has {len(ys)} labels")
    if (x_test is None) != (y_test is None):
        raise UserError("give both x_test and y_test, or neither")
    val_fraction = _check_fraction(val_fraction, "val_fraction")
    n_distinct = len(np.unique(ys))
    if n_distinct < 2:
        raise UserError(f"y holds {n_distinct} distinct class label; need at least 2")
    rng = np.random.default_rng(_check_seed(seed))

    if x_test is None:
        test_fraction = _check_fraction(test_fraction, "test_fraction")
        rest, test = _stratified_split(ys, test_fraction, rng, "test")
        xt, yt = xs[torch.from_numpy(test)], ys[test]
        xs, ys = xs[torch.from_numpy(rest)], ys[rest]
    else:
        # Standardisation works in place, and x_test may still share the caller's memory.
        xt = _as_features(x_test, "x_test").clone()
        yt = _as_labels(y_test, "y_test")
        if len(xt) != len(yt):
            raise UserError(f"x_test has {len(xt)} samples but y_test has {len(yt)} labels")
        if xt.shape[1:] != xs.shape[1:]:
            raise UserError(
                f"x_test samples have shape {tuple(xt.shape[1:])} but x samples have "
                f"{tuple(xs.shape[1:])}"
            )
    classes = _num_classes(num_classes, max(int(ys.max()), int(yt.max())))

    train, val = _stratified_split(ys, val_fraction, rng, "validation")
    n_train_classes = len(np.unique(ys[train]))
    if n_train_classes < 2:
        raise UserError(f"the training split holds {n_train_classes} class; need at least 2")
    return _assemble(
        str(name),
        (xs[torch.from_numpy(train)], ys[train]),
        (xs[torch.from_numpy(val)], ys[val]),
        (xt, yt),
        classes,
    )


# ---------------------------------------------------------------- checks and ingestion


def _check_fraction(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise UserError(f"{what} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def _num_classes(given: Any, max_label: int) -> int:
    if given is None:
        return max_label + 1
    if isinstance(given, bool) or not isinstance(given, (int, np.integer)) or given < 2:
        raise UserError(f"num_classes must be an integer of at least 2, got {given!r}")
    if max_label >= given:
        raise UserError(
            f"label {max_label} does not fit num_classes={given} (labels 0..{given - 1})"
        )
    return int(given)


def _to_numpy(value: Any, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        # numpy has no bfloat16; float32 holds every narrower float exactly.
        if value.is_floating_point() and value.dtype not in (torch.float32, torch.float64):
            value = value.float()
        return value.numpy()
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{what} is not a rectangular numeric array: {_one_line(exc)}") from exc


def _as_features(value: Any, what: str) -> torch.Tensor:
    arr = _to_numpy(value, what)
    if arr.dtype.kind not in "biuf":
        raise UserError(f"{what} must be numeric, got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise UserError(
            f"{what} must have shape (samples, features...), got {arr.shape}; "
            "for one feature use x.reshape(-1, 1)"
        )
    if len(arr) == 0:
        raise UserError(f"{what} holds no samples")
    if math.prod(arr.shape[1:]) == 0:
        raise UserError(f"{what} samples hold no features: shape {arr.shape}")
    x = torch.as_tensor(arr).to(torch.float32)
    if not bool(torch.isfinite(x).all()):
        if arr.dtype.kind == "f" and np.isfinite(arr).all():
            raise UserError(f"{what} holds values beyond float32's range (about 3.4e38)")
        raise UserError(f"{what} contains NaN or infinite values")
    return x


def _as_labels(value: Any, what: str) -> np.ndarray:
    arr = _to_numpy(value, what)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise UserError(
            f"{what} must be one integer class label per sample, got shape {arr.shape} "
            "(one-hot labels? pass y.argmax(1))"
        )
    if len(arr) == 0:
        raise UserError(f"{what} holds no labels")
    if arr.dtype.kind == "f":
        whole = np.isfinite(arr) & (arr == np.round(arr))
        if not whole.all():
            raise UserError(
                f"{what} must hold integer class labels, found {arr[~whole][0].item()!r}"
            )
    elif arr.dtype.kind not in "biu":
        raise UserError(f"{what} must hold integer class labels, got dtype {arr.dtype}")
    labels = arr.astype(np.int64)
    if labels.min() < 0:
        raise UserError(f"{what} must hold class labels 0, 1, 2, ...; found {labels.min()}")
    return labels


# ---------------------------------------------------------------- splits


def _stratified_split(
    y: np.ndarray, fraction: float, rng: np.random.Generator, part: str
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out), each sorted; `fraction` of every class is held out."""
    n = len(y)
    n_held = math.floor(fraction * n + 0.5)
    if n_held < 1 or n_held >= n:
        raise UserError(
            f"too few samples for the {part} split: {fraction:g} of {n} samples leaves "
            f"{n_held} for {part} and {n - n_held} for training"
        )
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    quotas = counts * (n_held / n)
    take = np.floor(quotas).astype(np.int64)
    short = n_held - int(take.sum())
    if short > 0:
        # Largest remainders get the leftover places so the total is exact; random tie-breaks
        # keep the same classes from always being favoured.
        order = np.lexsort((rng.random(len(counts)), -(quotas - take)))
        take[order[:short]] += 1
    by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    held = np.concatenate(
        [rng.permutation(members)[:k] for members, k in zip(by_class, take, strict=True)]
    )
    mask = np.ones(n, dtype=bool)
    mask[held] = False
    return np.flatnonzero(mask), np.sort(held)


def _split_train(
    name: str,
    x: torch.Tensor,
    y: np.ndarray,
    test: tuple[torch.Tensor, np.ndarray],
    val_fraction: float,
    rng: np.random.Generator,
    num_classes: int,
) -> Dataset:
    """Hold out a stratified `val_fraction` of (x, y) and assemble with the test split."""
    train_idx, val_idx = _stratified_split(y, val_fraction, rng, "validation")
    return _assemble(
        name,
        (x[torch.from_numpy(train_idx)], y[train_idx]),
        (x[torch.from_numpy(val_idx)], y[val_idx]),
        test,
        num_classes,
    )
