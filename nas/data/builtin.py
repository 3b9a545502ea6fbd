"""Built-in datasets that need no download: `digits`, `mnist1d` and `synthetic`."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import random
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.data.arrays import _split_train, _stratified_split
from nas.data.dataset import DATASETS, Dataset, _assemble
from nas.errors import UserError


def _int_option(value: Any, what: str, minimum: int) -> int:
    try:
        number = int(value) if isinstance(value, str) else value
    except ValueError:
        number = None
    if isinstance(number, bool) or not isinstance(number, (int, np.integer)) or number < minimum:
        raise UserError(f"{what} must be an integer of at least {minimum}, got {value!r}")
    return int(number)


def _shape_option(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    parts: Sequence[Any] = (
        value.lower().replace("x", ",").split(",") if isinstance(value, str) else value
    )
    try:
        return tuple(_int_option(p, "shape entry", 1) for p in parts)
    except (UserError, TypeError):
        raise UserError(
            f"shape must be positive integers such as (1, 8, 8) or '1x8x8', got {value!r}"
        ) from None


@DATASETS.register(
    "digits", doc="scikit-learn digits: 1,797 8x8 grey images (1x8x8), 10 classes; offline"
)
def _load_digits(*, root: Any, download: bool, seed: int) -> Dataset:
    from sklearn.datasets import load_digits

    x_all, y_all = load_digits(return_X_y=True)
    x = torch.as_tensor(x_all, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = np.asarray(y_all, dtype=np.int64)
    rng = np.random.default_rng(seed)
    rest, test = _stratified_split(y, 0.25, rng, "test")
    test_split = (x[torch.from_numpy(test)], y[test])
    return _split_train("digits", x[torch.from_numpy(rest)], y[rest], test_split, 0.15, rng, 10)


@functools.cache
def _mnist1d_arrays() -> dict[str, np.ndarray]:
    """The standard MNIST-1D arrays x, y, x_test, y_test, generated once per machine."""

    def args() -> Any:
        # Imported here: mnist1d pulls in matplotlib and requests.
        from mnist1d.data import get_dataset_args

        return get_dataset_args()

    return mnist1d_generated(args, key={"set": "mnist1d"})


#: The arrays a generated MNIST-1D set consists of.
_MNIST1D_KEYS = ("x", "y", "x_test", "y_test")


def generated_cache() -> Path | None:
    """Where generated datasets are kept between runs: ``$NAS_CACHE_DIR/generated`` (an empty
    ``NAS_CACHE_DIR`` keeps none), else ``~/.cache/nas/generated``."""
    root = os.environ.get("NAS_CACHE_DIR")
    if root == "":
        return None
    return (Path(root) if root else Path("~/.cache/nas").expanduser()) / "generated"


def mnist1d_generated(args: Callable[[], Any], *, key: Mapping[str, Any]
                      ) -> dict[str, np.ndarray]:
    """MNIST-1D's arrays x, y, x_test, y_test made by its generator from `args()`, read-only,
    without touching the caller's global random state.

    Generating takes seconds (most of a short search's budget on a slow machine), so the arrays
    are kept in `generated_cache()` under `key` (with mnist1d's version) and read from there
    next time: a file that does not read back as such arrays is made again.
    """
    from importlib.metadata import version

    digest = hashlib.sha256(json.dumps({**key, "mnist1d": version("mnist1d")},
                                       sort_keys=True).encode()).hexdigest()[:16]
    folder = generated_cache()
    path = None if folder is None else folder / f"mnist1d-{digest}.npz"
    arrays = _read_arrays(path) if path is not None else None
    if arrays is None:
        arrays = _make_mnist1d(args())
        if path is not None:
            _write_arrays(path, arrays)
    for array in arrays.values():
        # Callers cache and share these arrays, so nobody may change them.
        array.flags.writeable = False
    return arrays


def _read_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays at `path`, or None when it is missing or not what was written."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.array(data[k]) for k in _MNIST1D_KEYS}
    except Exception:  # missing, damaged or foreign: generated again
        return None
    if len(arrays["x"]) != len(arrays["y"]) or len(arrays["x_test"]) != len(arrays["y_test"]):
        return None
    return arrays


def _write_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write `arrays` to `path` atomically; a cache that cannot be written is no cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError:
        pass


def _make_mnist1d(args: Any) -> dict[str, np.ndarray]:
    from mnist1d.data import make_dataset

    # make_dataset reseeds Python's and NumPy's global generators; put them back so loading
    # has no side effect on the caller's randomness.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {key: np.array(raw[key]) for key in _MNIST1D_KEYS}


@DATASETS.register(
    "mnist1d", doc="MNIST-1D (Greydanus 2020): 5,000 signals (1x40), 10 classes; generated"
)
def _load_mnist1d(*, root: Any, download: bool, seed: int) -> Dataset:
    raw = _mnist1d_arrays()
    x = torch.tensor(raw["x"], dtype=torch.float32).unsqueeze(1)
    y = raw["y"].astype(np.int64)
    x_test = torch.tensor(raw["x_test"], dtype=torch.float32).unsqueeze(1)
    y_test = raw["y_test"].astype(np.int64)
    rng = np.random.default_rng(seed)
    return _split_train("mnist1d", x, y, (x_test, y_test), 0.1, rng, 10)


@DATASETS.register(
    "synthetic",
    doc="seeded gaussian clusters in a random subspace; options n_samples, n_features, n_classes, "
    "shape",
)
def _load_synthetic(
    *,
    root: Any,
    download: bool,
    seed: int,
    n_samples: int = 1000,
    n_features: int = 20,
    n_classes: int = 3,
    shape: Sequence[int] | str | None = None,
) -> Dataset:
    n_samples = _int_option(n_samples, "n_samples", 1)
    n_features = _int_option(n_features, "n_features", 1)
    n_classes = _int_option(n_classes, "n_classes", 2)
    dims = _shape_option(shape)
    if dims is not None and math.prod(dims) != n_features:
        raise UserError(
            f"shape {dims} holds {math.prod(dims)} values but n_features is {n_features}"
        )
    if n_samples < n_classes:
        raise UserError(f"n_samples ({n_samples}) must be at least n_classes ({n_classes})")

    rng = np.random.default_rng([seed, 0])
    # Three clusters per class make the classes not linearly separable; with unit noise,
    # separation 2.5 in 5 dimensions a small MLP reaches ~90 % (3 classes), logistic ~80 %.
    latent, per_class, separation = min(n_features, 5), 3, 2.5
    centres = rng.normal(size=(n_classes * per_class, latent)) * separation
    y = rng.permutation(np.arange(n_samples) % n_classes)
    cluster = y * per_class + rng.integers(0, per_class, size=n_samples)
    z = centres[cluster] + rng.normal(size=(n_samples, latent))
    basis, _ = np.linalg.qr(rng.normal(size=(n_features, latent)))
    x = z @ basis.T + 0.5 * rng.normal(size=(n_samples, n_features))
    # Uneven feature scales and offsets, so standardisation has real work to do.
    x = x * np.exp(rng.uniform(-1, 1, size=n_features)) + 3 * rng.normal(size=n_features)
    if dims is not None:
        x = x.reshape(n_samples, *dims)

    split_rng = np.random.default_rng([seed, 1])
    rest, test = _stratified_split(y, 0.2, split_rng, "test")
    train, val = _stratified_split(y[rest], 0.2, split_rng, "validation")
    train, val = rest[train], rest[val]
    xt = torch.as_tensor(x, dtype=torch.float32)
    return _assemble(
        "synthetic",
        (xt[torch.from_numpy(train)], y[train]),
        (xt[torch.from_numpy(val)], y[val]),
        (xt[torch.from_numpy(test)], y[test]),
        n_classes,
    )
