"""The `Dataset` type, the catalogue of named loaders, and building a Dataset from splits.

Loaders register in `DATASETS` (see `nas.data.builtin`, `nas.data.vision`); `load` finds one
by name and checks the options it is given.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nas.errors import UserError
from nas.registry import Registry, loose_name

# A std below this marks a constant feature or channel; dividing by it would blow up to inf/NaN.
_STD_FLOOR = 1e-6
# Arguments every loader receives from `load`; anything else a loader declares is an option.
_COMMON_ARGS = frozenset({"root", "download", "seed"})
#: Loader options that say where the data lives and whether to fetch it, not what it is: never
#: journaled, so a journal cannot choose a folder to create or download into.
LOCATION_OPTIONS = frozenset({"root", "download"})


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/validation/test tensors of one classification task, features already standardised.

    `mean`/`std` come from the train split only, in the source's raw units (pixel values 0..255,
    digits 0..16, the user's units): `(raw - mean) / std` is what the model was trained on.
    With ``has_test_split=False`` the test tensors hold no held-out data (the validation split
    stands in), and no test accuracy is reported.
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
    has_test_split: bool = True
    #: What each class index stands for (a CSV's or a folder's labels), when known.
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        # A broken split would otherwise fail every trial of a search, after its journal exists.
        classes = self.num_classes
        if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) \
                or classes < 2:
            raise UserError(f"num_classes must be an integer of at least 2, got {classes!r}")
        if not isinstance(self.has_test_split, bool):
            raise UserError(f"has_test_split must be True or False, got {self.has_test_split!r}")
        if self.class_names is not None and len(self.class_names) != classes:
            raise UserError(f"{len(self.class_names)} class names for {classes} classes")
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            _check_split(f"{self.name}: the {split} split", x, y, tuple(self.input_shape),
                         int(classes))

    @property
    def sizes(self) -> dict[str, int]:
        """Number of samples per split: {"train": n, "val": n, "test": n}."""
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

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


DATASETS: Registry[Callable[..., Dataset]] = Registry("dataset", key=loose_name, sort=False)
"""Loaders by name, in registration order; each takes keyword-only `root`, `download`, `seed`
and its own options, and returns a `Dataset`."""


# (is this a path?, its loader) pairs `load` tries before the names; `nas.data.files`, which
# builds on this module, adds its own on import.
_PATH_LOADERS: list[tuple[Callable[[Any], bool], Callable[..., Dataset]]] = []


def register_path_loader(matches: Callable[[Any], bool], loader: Callable[..., Dataset]) -> None:
    """Have `load` hand a name that `matches` accepts to ``loader(name, seed=, **options)``."""
    _PATH_LOADERS.append((matches, loader))


def available() -> list[str]:
    """Names of the built-in datasets, in registration order."""
    return DATASETS.available()


def describe() -> dict[str, str]:
    """Built-in dataset name -> one-line description."""
    return DATASETS.describe()


def load(
    name: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    seed: int = 0,
    **options: Any,
) -> Dataset:
    """Load built-in dataset `name`, or the .npz/.csv file or image folder at path `name`;
    `seed` fixes its splits; `options` go to the loader (see `nas.data.files` for paths).

    `root` (default `~/.cache/nas/data`) and `download` matter for torchvision datasets only."""
    for matches, read in _PATH_LOADERS:
        if matches(name):
            return read(name, seed=_check_seed(seed), **options)
    name = str(name)
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; available: {', '.join(available())}; "
                        "or a path: a .npz or .csv file, or a folder of images")
    loader = DATASETS.get(name)
    accepted = _options(loader)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise UserError(
            f"unknown option(s) for dataset {loose_name(name)!r}: {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted) if accepted else 'none'}"
        )
    return loader(root=root, download=bool(download), seed=_check_seed(seed), **options)


def _options(loader: Callable[..., Dataset]) -> tuple[str, ...]:
    """The options `loader` declares besides the arguments every loader receives."""
    return tuple(p for p in inspect.signature(loader).parameters if p not in _COMMON_ARGS)


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


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
