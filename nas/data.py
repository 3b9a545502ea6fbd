"""Classification datasets as standardised in-memory tensors: built-ins and the user's arrays.

Built-ins: `digits`, `mnist1d`, `synthetic` work offline; `mnist`, `fashion-mnist` and `cifar10`
read torchvision's files from `root` (default `~/.cache/nas/data`) or download them.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import pickle
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.errors import UserError

__all__ = ["DEFAULT_ROOT", "Dataset", "available", "describe", "from_arrays", "load"]

DEFAULT_ROOT = Path("~/.cache/nas/data")
"""Where the torchvision datasets live when `load` gets no `root` (expanded per call)."""

# A std below this marks a constant feature or channel; dividing by it would blow up to inf/NaN.
_STD_FLOOR = 1e-6
# Arguments every loader receives from `load`; anything else a loader declares is an option.
_COMMON_ARGS = frozenset({"root", "download", "seed"})


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/validation/test tensors of one classification task, features already standardised.

    `mean`/`std` come from the train split only, in the source's raw units (pixel values 0..255,
    digits 0..16, the user's units): `(raw - mean) / std` is what the model was trained on.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    input_shape: tuple[int, ...]
    num_classes: int
    mean: torch.Tensor
    std: torch.Tensor

    def __post_init__(self) -> None:
        # A broken split would otherwise fail every trial of a search, after its journal exists.
        classes = self.num_classes
        if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) \
                or classes < 2:
            raise UserError(f"num_classes must be an integer of at least 2, got {classes!r}")
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            _check_split(f"{self.name}: the {split} split", x, y, tuple(self.input_shape),
                         int(classes))

    @property
    def sizes(self) -> dict[str, int]:
        """Number of samples per split: {"train": n, "val": n, "test": n}."""
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    @property
    def has_test_split(self) -> bool:
        """False when the test split is the validation split itself (no held-out test data)."""
        return self.x_test is not self.x_val

    def standardise(self, raw: torch.Tensor) -> torch.Tensor:
        """Apply this dataset's train statistics to raw inputs of shape (N, *input_shape)."""
        mean = self.mean.to(raw.device)
        std = self.std.to(raw.device)
        return (raw.to(torch.float32) - mean) / std

    def __repr__(self) -> str:
        """Short summary without tensor contents."""
        s = self.sizes
        return (
            f"Dataset({self.name!r}, train={s['train']}, val={s['val']}, test={s['test']}, "
            f"input_shape={self.input_shape}, num_classes={self.num_classes})"
        )


@dataclass(frozen=True)
class _Entry:
    fn: Callable[..., Dataset]
    description: str
    options: tuple[str, ...]


_LOADERS: dict[str, _Entry] = {}


def _loader(
    name: str, description: str
) -> Callable[[Callable[..., Dataset]], Callable[..., Dataset]]:
    def register(fn: Callable[..., Dataset]) -> Callable[..., Dataset]:
        params = inspect.signature(fn).parameters
        options = tuple(p for p in params if p not in _COMMON_ARGS)
        _LOADERS[name] = _Entry(fn, description, options)
        return fn

    return register


def available() -> list[str]:
    """Names of the built-in datasets, in registration order."""
    return list(_LOADERS)


def describe() -> dict[str, str]:
    """Built-in dataset name -> one-line description."""
    return {name: entry.description for name, entry in _LOADERS.items()}


def load(
    name: str,
    *,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    seed: int = 0,
    **options: Any,
) -> Dataset:
    """Load built-in dataset `name`; `seed` fixes its splits; `options` go to the loader.

    `root` (default `~/.cache/nas/data`) and `download` matter for torchvision datasets only."""
    key = str(name).strip().lower().replace("_", "-")
    entry = _LOADERS.get(key)
    if entry is None:
        raise UserError(f"unknown dataset {name!r}; available: {', '.join(_LOADERS)}")
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        accepted = ", ".join(entry.options) if entry.options else "none"
        raise UserError(
            f"unknown option(s) for dataset {key!r}: {', '.join(unknown)}; accepted: {accepted}"
        )
    return entry.fn(root=root, download=bool(download), seed=_check_seed(seed), **options)


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


# ---------------------------------------------------------------- shared helpers


def _check_split(what: str, x: Any, y: Any, input_shape: tuple[int, ...],
                 num_classes: int) -> None:
    """Raise a UserError unless `x`, `y` are a non-empty, finite split with labels in range."""
    x, y = torch.as_tensor(x), torch.as_tensor(y)  # no copy; tolerates numpy arrays
    if y.is_floating_point() or y.is_complex() or y.ndim != 1:
        raise UserError(
            f"{what} needs one integer label per sample, got {y.dtype} of shape {tuple(y.shape)}"
        )
    if len(x) != len(y):
        raise UserError(f"{what} has {len(x)} samples but {len(y)} labels")
    if len(y) == 0:
        raise UserError(f"{what} is empty; every split needs at least one sample")
    if tuple(x.shape[1:]) != input_shape:
        raise UserError(
            f"{what} has samples shaped {tuple(x.shape[1:])}, not input_shape {input_shape}"
        )
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise UserError(
            f"{what} holds label {bad}, outside 0..{num_classes - 1} (num_classes={num_classes})"
        )
    # One sum first: a precise element-wise check on CIFAR-sized data costs a second.
    if x.is_floating_point() and not (bool(torch.isfinite(x.sum()))
                                      or bool(torch.isfinite(x).all())):
        raise UserError(f"{what} contains NaN or infinite features")


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


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


def _statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (ndim >= 3) or per-feature (ndim 2) mean and floored std of `x`."""
    dims = (0,) if x.ndim == 2 else (0, *range(2, x.ndim))
    std, mean = torch.std_mean(x, dim=dims, correction=0, keepdim=True)
    std = torch.where(std < _STD_FLOOR, torch.ones_like(std), std)
    return mean[0], std[0]


def _standardise(
    train: torch.Tensor, *others: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Statistics from `train` alone, applied in place to `train` and every other split."""
    mean, std = _statistics(train)
    # In place: a fresh 600 MB result for CIFAR-10 costs more in page faults than the arithmetic.
    scaled = [part.sub_(mean).div_(std) for part in (train, *others)]
    return mean, std, scaled


def _assemble(
    name: str,
    train: tuple[torch.Tensor, np.ndarray | torch.Tensor],
    val: tuple[torch.Tensor, np.ndarray | torch.Tensor],
    test: tuple[torch.Tensor, np.ndarray | torch.Tensor],
    num_classes: int,
) -> Dataset:
    """Standardise the three splits with train statistics and wrap them in a Dataset.

    The x tensors are overwritten: pass float32 tensors this module owns, never the caller's."""
    mean, std, (x_train, x_val, x_test) = _standardise(train[0], val[0], test[0])
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=torch.as_tensor(train[1], dtype=torch.int64),
        x_val=x_val,
        y_val=torch.as_tensor(val[1], dtype=torch.int64),
        x_test=x_test,
        y_test=torch.as_tensor(test[1], dtype=torch.int64),
        input_shape=tuple(int(d) for d in x_train.shape[1:]),
        num_classes=num_classes,
        mean=mean,
        std=std,
    )


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


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


# ---------------------------------------------------------------- offline built-ins


@_loader("digits", "scikit-learn digits: 1,797 8x8 grey images (1x8x8), 10 classes; offline")
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
    """The standard MNIST-1D arrays x, y, x_test, y_test, generated once per process."""
    # Imported here: mnist1d pulls in matplotlib and requests.
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset reseeds Python's and NumPy's global generators; put them back so loading
    # has no side effect on the caller's randomness.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    arrays = {key: np.array(raw[key]) for key in ("x", "y", "x_test", "y_test")}
    for array in arrays.values():
        # Every later call shares these arrays, so nobody may change them.
        array.flags.writeable = False
    return arrays


@_loader("mnist1d", "MNIST-1D (Greydanus 2020): 5,000 signals (1x40), 10 classes; generated")
def _load_mnist1d(*, root: Any, download: bool, seed: int) -> Dataset:
    raw = _mnist1d_arrays()
    x = torch.tensor(raw["x"], dtype=torch.float32).unsqueeze(1)
    y = raw["y"].astype(np.int64)
    x_test = torch.tensor(raw["x_test"], dtype=torch.float32).unsqueeze(1)
    y_test = raw["y_test"].astype(np.int64)
    rng = np.random.default_rng(seed)
    return _split_train("mnist1d", x, y, (x_test, y_test), 0.1, rng, 10)


@_loader(
    "synthetic",
    "seeded gaussian clusters in a random subspace; options n_samples, n_features, n_classes, "
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


# ---------------------------------------------------------------- torchvision built-ins


@dataclass(frozen=True)
class _VisionSpec:
    name: str
    tv_class: str
    folder: str  # relative to root, where torchvision looks for the files
    files: tuple[str, ...]
    archive_hint: str


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_MNIST = _VisionSpec(
    "mnist", "MNIST", "MNIST/raw", _MNIST_FILES, "the uncompressed idx files"
)
_FASHION = _VisionSpec(
    "fashion-mnist", "FashionMNIST", "FashionMNIST/raw", _MNIST_FILES, "the uncompressed idx files"
)
_CIFAR10 = _VisionSpec(
    "cifar10",
    "CIFAR10",
    "cifar-10-batches-py",
    (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
    "the files of the extracted cifar-10-python.tar.gz",
)


def _resolve_root(root: str | os.PathLike[str] | None) -> Path:
    path = Path(DEFAULT_ROOT if root is None else root).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"data root {path} is not a folder")
    return path


def _load_torchvision(
    spec: _VisionSpec, root: str | os.PathLike[str] | None, download: bool, seed: int
) -> Dataset:
    base = _resolve_root(root)
    folder = base / spec.folder
    try:
        import torchvision.datasets as tvd
    except ImportError as exc:
        raise UserError(f"{spec.name} needs torchvision: pip install torchvision") from exc
    cls = getattr(tvd, spec.tv_class)
    try:
        train_set = cls(str(base), train=True, download=download)
        test_set = cls(str(base), train=False, download=download)
    # torchvision signals missing/corrupt files with RuntimeError, failed downloads with
    # URLError/OSError, and unreadable files with whatever the parser trips over.
    except (
        RuntimeError, OSError, ValueError, TypeError, KeyError, AssertionError, EOFError,
        pickle.UnpicklingError,
    ) as exc:
        raise UserError(_vision_error(spec, folder, download, exc)) from exc
    x_train, y_train = _vision_tensors(train_set)
    x_test, y_test = _vision_tensors(test_set)
    classes = len(train_set.classes)
    rng = np.random.default_rng(seed)
    return _split_train(spec.name, x_train, y_train, (x_test, y_test), 0.1, rng, classes)


def _vision_error(spec: _VisionSpec, folder: Path, download: bool, exc: BaseException) -> str:
    where = f"{folder}{os.sep}"
    internet = "download=True (--download) on a machine with internet"
    if download:
        # torchvision's MNIST stacks one line per mirror tried; the last names the cause.
        lines = [line for line in str(exc).splitlines() if line.strip()]
        reason = _one_line(RuntimeError(lines[-1])) if lines else type(exc).__name__
        return (
            f"{spec.name}: download failed ({reason}); without internet put "
            f"{spec.archive_hint} ({', '.join(spec.files)}) in {where}, or use {internet}"
        )
    missing = [f for f in spec.files if not (folder / f).is_file()]
    if missing:
        return (
            f"{spec.name}: files not found, {where} lacks {', '.join(missing)}; put "
            f"{spec.archive_hint} there, or pass {internet}"
        )
    return (
        f"{spec.name}: files in {where} are unreadable or corrupted ({_one_line(exc)}); "
        f"replace them, or delete them and pass {internet}"
    )


def _vision_tensors(dataset: Any) -> tuple[torch.Tensor, np.ndarray]:
    """(N, C, H, W) float32 images in raw pixel units and int64 labels, straight from `.data`."""
    images = torch.as_tensor(dataset.data)
    # MNIST keeps (N, H, W) grey images, CIFAR (N, H, W, C) colour ones.
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    x = images.to(torch.float32, memory_format=torch.contiguous_format)
    y = np.asarray(dataset.targets, dtype=np.int64)
    return x, y


@_loader("mnist", "MNIST digits: 70,000 28x28 grey images (1x28x28), 10 classes; torchvision")
def _load_mnist(*, root: str | os.PathLike[str] | None, download: bool, seed: int) -> Dataset:
    return _load_torchvision(_MNIST, root, download, seed)


@_loader(
    "fashion-mnist",
    "Fashion-MNIST clothing: 70,000 28x28 grey images (1x28x28), 10 classes; torchvision",
)
def _load_fashion_mnist(
    *, root: str | os.PathLike[str] | None, download: bool, seed: int
) -> Dataset:
    return _load_torchvision(_FASHION, root, download, seed)


@_loader(
    "cifar10", "CIFAR-10 objects: 60,000 32x32 colour images (3x32x32), 10 classes; torchvision"
)
def _load_cifar10(*, root: str | os.PathLike[str] | None, download: bool, seed: int) -> Dataset:
    return _load_torchvision(_CIFAR10, root, download, seed)
