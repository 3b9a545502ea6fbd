"""The image-folder reader `read_images`: one sub-folder of PNG/JPEG files per class."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.data.dataset import _one_line
from nas.data.tables import Table, _existing
from nas.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""Image files an image folder's class folders may hold (other files are ignored)."""
# PIL modes with one grey channel (alpha, if any, is dropped on conversion).
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def read_images(path: str | os.PathLike[str], image_size: Any = None) -> Table:
    """Images (N, C, H, W) uint8 from a folder with one sub-folder of PNG/JPEG files per class.

    Grey (C=1) when every image is grey, else RGB (C=3). `image_size` (N, "N" or "HxW")
    resizes all; without it the images must share one size. Classes are the folder names."""
    path = _existing(path)
    size = _image_size(image_size)
    files, labels, classes = _image_files(path)
    try:
        from PIL import Image
    except ImportError:
        raise UserError("an image folder needs Pillow: pip install pillow") from None
    modes: set[str] = set()
    sizes: dict[tuple[int, int], Path] = {}
    for file in files:  # headers only: opening does not decode the pixels
        with _image(Image, file) as image:
            modes.add(image.mode)
            sizes.setdefault((image.height, image.width), file)
    if size is None:
        if len(sizes) > 1:
            (a, fa), (b, fb) = list(sizes.items())[:2]
            raise UserError(
                f"{path}: images differ in size ({fa.relative_to(path)} is {a[0]}x{a[1]}, "
                f"{fb.relative_to(path)} {b[0]}x{b[1]}); pass --image-size N or HxW "
                "(the image_size option) to resize them all")
        size = next(iter(sizes))
    grey = modes <= _GREY_MODES
    mode, channels = ("L", 1) if grey else ("RGB", 3)
    x = np.empty((len(files), channels, *size), dtype=np.uint8)
    for i, file in enumerate(files):
        with _image(Image, file) as image:
            try:
                image = image.convert(mode)
                if (image.height, image.width) != size:
                    image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                pixels = np.asarray(image, dtype=np.uint8)
            except (OSError, ValueError, SyntaxError, EOFError) as exc:
                raise UserError(f"{file}: not a readable image ({_one_line(exc)})") from None
        x[i] = pixels[None] if grey else pixels.transpose(2, 0, 1)
    return Table(x, np.asarray(labels, dtype=np.int64), classes)


def _image_files(path: Path) -> tuple[list[Path], list[int], tuple[str, ...]]:
    """Every image file (sorted), its class index, and the class folders' names."""
    folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(folders) < 2:
        found = f" ({folders[0].name})" if folders else ""
        raise UserError(f"{path} holds {len(folders)} class folder{found}; an image folder needs "
                        "one sub-folder of images per class, at least 2")
    files: list[Path] = []
    labels: list[int] = []
    for k, folder in enumerate(folders):
        images = sorted(_images_in(folder))
        if not images:
            raise UserError(f"{folder} holds no PNG or JPEG images (every class folder needs "
                            "some)")
        files += images
        labels += [k] * len(images)
    return files, labels, tuple(folder.name for folder in folders)


def _images_in(folder: Path) -> Iterator[Path]:
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES):
                yield Path(root, name)


def _image(image_module: Any, file: Path) -> Any:
    """The opened image (not yet decoded); any failure is one line naming the file."""
    try:
        return image_module.open(file)
    except (OSError, ValueError, SyntaxError, EOFError,
            image_module.DecompressionBombError) as exc:
        raise UserError(f"{file}: not a readable image ({_one_line(exc)})") from None


def _image_size(value: Any) -> tuple[int, int] | None:
    """(H, W) from N, "N", "HxW" or (H, W); None stays None."""
    if value is None:
        return None
    parts: Sequence[Any]
    if isinstance(value, str):
        parts = value.lower().replace(" ", "").split("x")
    elif isinstance(value, Sequence):
        parts = list(value)
    else:
        parts = [value]
    try:
        dims = [int(p) if isinstance(p, str) and re.fullmatch(r"\d+", p) else p for p in parts]
        if len(dims) not in (1, 2) or not all(
                isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1
                for d in dims):
            raise ValueError
    except (TypeError, ValueError):
        raise UserError(f"image size must be N or HxW with positive integers, such as 32 or "
                        f"32x48; got {value!r}") from None
    height, width = (dims[0], dims[0]) if len(dims) == 1 else dims
    return int(height), int(width)
