"""torchvision's MNIST, Fashion-MNIST and CIFAR-10, read from `root` or downloaded.

torchvision is imported only when one of them is loaded.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.data.arrays import _split_train
from nas.data.dataset import DATASETS, Dataset, _one_line
from nas.errors import UserError

DEFAULT_ROOT = Path("~/.cache/nas/data")
"""Where the torchvision datasets live when `load` gets no `root` (expanded per call)."""


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


@DATASETS.register(
    "mnist", doc="MNIST digits: 70,000 28x28 grey images (1x28x28), 10 classes; torchvision"
)
def _load_mnist(*, root: str | os.PathLike[str] | None, download: bool, seed: int) -> Dataset:
    return _load_torchvision(_MNIST, root, download, seed)


@DATASETS.register(
    "fashion-mnist",
    doc="Fashion-MNIST clothing: 70,000 28x28 grey images (1x28x28), 10 classes; torchvision",
)
def _load_fashion_mnist(
    *, root: str | os.PathLike[str] | None, download: bool, seed: int
) -> Dataset:
    return _load_torchvision(_FASHION, root, download, seed)


@DATASETS.register(
    "cifar10",
    doc="CIFAR-10 objects: 60,000 32x32 colour images (3x32x32), 10 classes; torchvision",
)
def _load_cifar10(*, root: str | os.PathLike[str] | None, download: bool, seed: int) -> Dataset:
    return _load_torchvision(_CIFAR10, root, download, seed)
