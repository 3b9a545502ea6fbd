"""The user's own data from a path: a `.npz` file of arrays, a `.csv` table, a folder of images.

`nas.data.load` hands any name that is not a registered dataset but names a path to
`load_path` (registered at the end); the readers (`read_npz` here, `read_csv` in
`nas.data.tables`, `read_images` in `nas.data.images`) return the arrays with the class names
behind the labels 0..K-1. Every mistake in a file is one `UserError` line naming it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nas.data.arrays import _as_labels, from_arrays
from nas.data.dataset import DATASETS, Dataset, _one_line, register_path_loader
from nas.data.images import IMAGE_SUFFIXES, _image_files, read_images
from nas.data.tables import MAX_LEVELS, MISSING, Table, _existing, read_csv
from nas.errors import UserError

# The readers and their constants stay importable from here, the data files' one entry point.
__all__ = ["IMAGE_SUFFIXES", "MAX_LEVELS", "MISSING", "SUFFIXES", "Table", "is_path",
           "load_path", "read_csv", "read_images", "read_npz", "source"]

SUFFIXES = (".npz", ".csv")
"""File suffixes read as data; any other path must be a folder of images."""
#: The options each kind of file takes (besides `fingerprint`), as `load` checks them.
_OPTIONS = {"npz": (), "csv": ("target",), "images": ("image_size",)}
_KIND_NAMES = {"npz": ".npz file", "csv": "CSV file", "images": "image folder"}


def is_path(name: str | os.PathLike[str]) -> bool:
    """Whether `name` means a file or folder rather than a registered dataset name.

    Registered names win; anything else that exists, holds a path separator or ends in
    ``.npz``/``.csv`` is a path (so a missing file is reported as missing, not as unknown)."""
    if not isinstance(name, str):
        return isinstance(name, os.PathLike)
    if name in DATASETS:
        return False
    separators = [s for s in (os.sep, os.altsep, "/") if s]
    return (any(s in name for s in separators) or name.lower().endswith(SUFFIXES)
            or os.path.exists(os.path.expanduser(name)))


def load_path(name: str | os.PathLike[str], *, seed: int = 0, fingerprint: str | None = None,
              **options: Any) -> Dataset:
    """A Dataset from the .npz file, .csv file or image folder at `name`, split by `seed`.

    `fingerprint` (what `source` stored in a journal) must match the contents, so a resumed
    search never trains on changed data; `options` are `target` (CSV), `image_size` (images)."""
    path = _existing(name, named=True)
    kind = _kind(path)
    unknown = sorted(set(options) - set(_OPTIONS[kind]))
    if unknown:
        accepted = ", ".join(_OPTIONS[kind]) or "none"
        raise UserError(f"unknown option(s) for the {_KIND_NAMES[kind]} {path}: "
                        f"{', '.join(unknown)}; accepted: {accepted}")
    if fingerprint is not None and fingerprint != _fingerprint(path, kind):
        raise UserError(f"{path} has changed since the search started (its contents differ "
                        "from those the journal recorded)")
    if kind == "npz":
        table = read_npz(path)
    elif kind == "csv":
        table = read_csv(path, options.get("target"))
    else:
        table = read_images(path, options.get("image_size"))
    try:
        data = from_arrays(table.x, table.y, x_test=table.x_test, y_test=table.y_test,
                           seed=seed, name=_short_name(path), num_classes=len(table.classes))
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    return dataclasses.replace(data, class_names=tuple(str(c) for c in table.classes))


def source(name: str | os.PathLike[str], options: Mapping[str, Any] | None) -> \
        tuple[str, dict[str, Any]] | None:
    """How a journal names data given as a path: its absolute path, and `options` with a
    fingerprint of the contents for `load_path` to check on resume; None for a registered name.
    """
    if not is_path(name):
        return None
    path = _existing(name)
    return str(path), {**dict(options or {}), "fingerprint": _fingerprint(path, _kind(path))}


# ---------------------------------------------------------------- .npz


def read_npz(path: str | os.PathLike[str]) -> Table:
    """Arrays `x`, `y` and optional `x_test`, `y_test` of a file written by `numpy.savez`.

    x keeps its shape after N, as with `from_arrays`: (N, F) features, (N, C, L) signals,
    (N, C, H, W) images. Integer labels stay as they are; text labels become 0..K-1."""
    path = _existing(path)
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty")
    how = "save it with np.savez(path, x=..., y=...)"
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path} is not a .npz file written by numpy ({_one_line(exc)}); "
                        f"{how}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UserError(f"{path} holds one .npy array, not named arrays x and y; {how}")
    with archive:
        names = list(archive.files)
        missing = [key for key in ("x", "y") if key not in names]
        if missing:
            raise UserError(f"{path} holds no array {' or '.join(map(repr, missing))} "
                            f"(it holds: {', '.join(names) or 'nothing'}); {how}")
        if ("x_test" in names) != ("y_test" in names):
            raise UserError(f"{path} holds {'x_test' if 'x_test' in names else 'y_test'} "
                            "without its partner: give both x_test and y_test, or neither")
        arrays = {key: _npz_array(archive, key, path) for key in ("x", "y", "x_test", "y_test")
                  if key in names}
    y, y_test = arrays["y"], arrays.get("y_test")
    if y.dtype.kind not in "USO" and (y_test is None or y_test.dtype.kind not in "USO"):
        # Numbers are labels already, as `from_arrays` takes them.
        try:
            labels = _as_labels(y, "y")
            test = None if y_test is None else _as_labels(y_test, "y_test")
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        top = max(int(labels.max()), -1 if test is None else int(test.max()))
        return Table(arrays["x"], labels, tuple(map(str, range(top + 1))),
                     x_test=arrays.get("x_test"), y_test=test)
    text = _text_labels(y, "y", path)
    names_, codes = np.unique(text, return_inverse=True)
    test_codes = None
    if y_test is not None:
        test_text = _text_labels(y_test, "y_test", path)
        unseen = np.setdiff1d(test_text, names_)
        if len(unseen):
            raise UserError(f"{path}: y_test holds label {unseen[0]!r}, which y does not")
        test_codes = np.searchsorted(names_, test_text)
    return Table(arrays["x"], codes.astype(np.int64), tuple(names_.tolist()),
                 x_test=arrays.get("x_test"), y_test=test_codes)


def _text_labels(labels: np.ndarray, what: str, path: Path) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise UserError(f"{path}: {what} must be one class label per sample, got shape "
                        f"{labels.shape}")
    return labels.astype(str)


def _npz_array(archive: Any, key: str, path: Path) -> np.ndarray:
    try:
        return np.asarray(archive[key])
    except ValueError as exc:  # an object array: numpy refuses to unpickle it, rightly
        raise UserError(f"{path}: array {key!r} cannot be read ({_one_line(exc)}); save plain "
                        "numeric (or, for labels, text) arrays") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: array {key!r} is damaged ({_one_line(exc)})") from None


# ---------------------------------------------------------------- paths and fingerprints


def _kind(path: Path) -> str:
    if path.is_dir():
        return "images"
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"{path}: cannot read {suffix or 'extensionless'} files as data; give "
                        "a .npz or .csv file, or a folder with one sub-folder of images per class")
    return suffix[1:]


def _short_name(path: Path) -> str:
    """The data's name in run names: the file or folder name, safe in a file name."""
    stem = path.stem if path.is_file() else path.name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "data"


def _fingerprint(path: Path, kind: str) -> str:
    """SHA-256 of the contents: the file, or a folder's image files with their class paths."""
    digest = hashlib.sha256()
    files = _image_files(path)[0] if kind == "images" else [path]
    for file in files:
        if kind == "images":  # names and sizes too: moving an image changes its class
            size = file.stat().st_size
            digest.update(f"{file.relative_to(path).as_posix()}\0{size}\0".encode())
        with file.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


register_path_loader(is_path, load_path)
