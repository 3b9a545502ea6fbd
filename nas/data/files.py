"""The user's own data from a path: a `.npz` file of arrays, a `.csv` table, a folder of images.

`nas.data.load` hands any name that is not a registered dataset but names a path to
`load_path` (registered at the end); the readers (`read_npz`, `read_csv`, `read_images`) return
the arrays with the class names behind the labels 0..K-1. Every mistake in a file is one
`UserError` line naming it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import os
import re
import statistics
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.data.arrays import _as_labels, from_arrays
from nas.data.dataset import DATASETS, Dataset, _one_line, register_path_loader
from nas.errors import UserError

log = logging.getLogger("nas.data")

SUFFIXES = (".npz", ".csv")
"""File suffixes read as data; any other path must be a folder of images."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""Image files an image folder's class folders may hold (other files are ignored)."""
#: Cells read as a missing value (compared lower case, stripped), as spreadsheets write them.
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "<na>", "#n/a", "?"})
#: A text column with more levels than this is no category but an identifier or free text:
#: one-hot encoding it would make a column per row.
MAX_LEVELS = 100
#: The options each kind of file takes (besides `fingerprint`), as `load` checks them.
_OPTIONS = {"npz": (), "csv": ("target",), "images": ("image_size",)}
_KIND_NAMES = {"npz": ".npz file", "csv": "CSV file", "images": "image folder"}
# PIL modes with one grey channel (alpha, if any, is dropped on conversion).
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


@dataclass(frozen=True)
class Table:
    """Arrays read from one file: features `x`, labels `y` in 0..K-1, and the class names.

    `classes[k]` names label k; `features` names the columns of a CSV's `x` (one-hot
    columns as ``column=value``); `x_test`/`y_test` are set only by a `.npz` that holds them.
    """

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    features: tuple[str, ...] = ()
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


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
        return from_arrays(table.x, table.y, x_test=table.x_test, y_test=table.y_test,
                           seed=seed, name=_short_name(path), num_classes=len(table.classes))
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


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


# ---------------------------------------------------------------- .csv


def read_csv(path: str | os.PathLike[str], target: str | None) -> Table:
    """Features and labels of a CSV file with a header row; `target` names the label column.

    Numeric columns are features as they are, text columns are one-hot encoded; missing cells
    get the column's median (numeric) or most frequent value (text), said in one log line;
    rows without a target are dropped. Labels (text or integers) become 0..K-1, sorted."""
    path = _existing(path)
    header, rows, lines = _csv_rows(path)
    if target is None:
        raise UserError(f"{path}: a CSV file needs the column of class labels, --target COLUMN "
                        f"(the target option); columns: {', '.join(header)}")
    target = str(target)
    if target not in header:
        raise UserError(f"{path} has no column {target!r}; columns: {', '.join(header)}")
    t = header.index(target)
    labelled = [i for i, row in enumerate(rows) if not _missing(row[t])]
    dropped = len(rows) - len(labelled)
    if not labelled:
        raise UserError(f"{path}: the target column {target!r} holds no values")
    rows, lines = [rows[i] for i in labelled], [lines[i] for i in labelled]
    y, classes = _labels([row[t] for row in rows], lines, path, target)
    if len(classes) < 2:
        raise UserError(f"{path}: the target column {target!r} holds {len(classes)} class "
                        f"({classes[0]!r}); need at least 2")
    if len(header) == 1:
        raise UserError(f"{path} has no feature columns besides the target {target!r}")
    blocks: list[np.ndarray] = []
    features: list[str] = []
    imputed: list[tuple[int, str]] = []
    for c, column in enumerate(header):
        if c == t:
            continue
        block, names, filled = _feature(column, [row[c] for row in rows], lines, path)
        blocks.append(block)
        features += names
        if filled[0]:
            imputed.append(filled)
    notes = []
    if imputed:
        total = sum(n for n, _ in imputed)
        notes.append(f"imputed {total} missing value{'s' * (total != 1)}: "
                     + ", ".join(note for _, note in imputed))
    if dropped:
        notes.append(f"dropped {dropped} row{'s' * (dropped != 1)} without a {target!r} value")
    if notes:
        log.warning("nas: %s: %s", path, "; ".join(notes))
    return Table(np.concatenate(blocks, axis=1), y, classes, tuple(features))


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows (cells stripped) and each row's line number; blank rows skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({_one_line(exc)})") from None
    if not text.strip():
        raise UserError(f"{path} is empty")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:65536], delimiters=",;\t")
    except csv.Error:  # one column, or too little text to tell: commas
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for raw in reader:
            cells = [cell.strip() for cell in raw]
            if not any(cells):
                continue
            if header is None:
                header = cells
                continue
            rows.append(cells)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise UserError(f"{path}, line {reader.line_num}: {_one_line(exc)}") from None
    assert header is not None  # the text is not blank, so some row has a cell
    # A trailing delimiter on every line makes an unnamed, empty last column: not data.
    while len(header) > 1 and not header[-1] and all(
            not r[len(header) - 1] for r in rows if len(r) >= len(header)):
        width = len(header)
        header.pop()
        rows = [r[:-1] if len(r) == width else r for r in rows]
    header = [name or f"column {i + 1}" for i, name in enumerate(header)]
    twice = [name for name, n in Counter(header).items() if n > 1]
    if twice:
        raise UserError(f"{path}: column {twice[0]!r} appears more than once in the header")
    if not rows:
        raise UserError(f"{path} has a header but no data rows")
    for cells, line in zip(rows, lines, strict=True):
        if len(cells) != len(header):
            raise UserError(f"{path}, line {line}: {len(cells)} fields, but the header has "
                            f"{len(header)}")
    return header, rows, lines


def _missing(cell: str) -> bool:
    return cell.lower() in MISSING


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _labels(cells: list[str], lines: list[int], path: Path,
            target: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes 0..K-1 of the target's cells and the K class names (integers sorted as numbers)."""
    numbers = [_number(cell) for cell in cells]
    if all(n is not None for n in numbers):
        for n, cell, line in zip(numbers, cells, lines, strict=True):
            if not (n is not None and math.isfinite(n) and n == int(n)):
                raise UserError(f"{path}: the target column {target!r} holds {cell!r} on line "
                                f"{line}; class labels are integers or text (nas classifies, "
                                "it does not regress)")
        values = np.array([int(n) for n in numbers if n is not None], dtype=np.int64)
        levels, codes = np.unique(values, return_inverse=True)
        return codes.astype(np.int64), tuple(str(v) for v in levels.tolist())
    levels, codes = np.unique(np.array(cells, dtype=str), return_inverse=True)
    return codes.astype(np.int64), tuple(levels.tolist())


def _feature(column: str, cells: list[str], lines: list[int],
             path: Path) -> tuple[np.ndarray, list[str], tuple[int, str]]:
    """One column as feature columns (1 numeric, or one-hot), their names, and how many cells
    were imputed with a note ``"2 in age (median)"``."""
    present = [(cell, line) for cell, line in zip(cells, lines, strict=True)
               if not _missing(cell)]
    gaps = len(cells) - len(present)
    if not present:
        raise UserError(f"{path}: column {column!r} holds no values; delete it")
    numbers = [_number(cell) for cell, _ in present]
    text = [(cell, line) for (cell, line), n in zip(present, numbers, strict=True) if n is None]
    if not text:
        values = [n for n in numbers if n is not None]
        bad = next(((cell, line) for (cell, line), n in zip(present, values, strict=True)
                    if not math.isfinite(n)), None)
        if bad is not None:
            raise UserError(f"{path}: column {column!r} holds {bad[0]!r} on line {bad[1]}; "
                            "features must be finite")
        fill = statistics.median(values)
        out = np.array([fill if _missing(cell) else float(cell) for cell in cells])
        return out[:, None], [column], (gaps, f"{gaps} in {column} (median)")
    if len(text) < len(present) / 2:
        cell, line = text[0]
        raise UserError(f"{path}: column {column!r} is numeric but holds {cell!r} on line "
                        f"{line}; fix that value, or leave it empty to have it imputed")
    counts = Counter(cell for cell, _ in present)
    if len(counts) > MAX_LEVELS or (len(counts) == len(present) > 10):
        why = (f"{len(counts)} distinct values (more than {MAX_LEVELS})"
               if len(counts) > MAX_LEVELS else "a different value in every row")
        raise UserError(f"{path}: column {column!r} is neither numeric nor a category: it "
                        f"holds {why}, like an identifier or free text; delete it or encode "
                        "it as numbers")
    levels = sorted(counts)
    # The most frequent level; a tie goes to the first in sorted order, the same every time.
    fill_level = max(levels, key=lambda level: (counts[level], -levels.index(level)))
    index = {level: k for k, level in enumerate(levels)}
    codes = np.array([index[fill_level if _missing(cell) else cell] for cell in cells])
    one_hot = np.zeros((len(cells), len(levels)))
    one_hot[np.arange(len(cells)), codes] = 1.0
    note = f"{gaps} in {column} (most frequent, {fill_level!r})"
    return one_hot, [f"{column}={level}" for level in levels], (gaps, note)


# ---------------------------------------------------------------- image folders


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


# ---------------------------------------------------------------- paths and fingerprints


def _existing(name: str | os.PathLike[str], *, named: bool = False) -> Path:
    """The absolute path (symlinks kept, as the user named it) of a readable file or folder;
    `named`: the user gave it as --data, which might have been meant as a dataset name."""
    path = Path(os.path.abspath(os.path.expanduser(os.fspath(name))))
    if not path.exists():
        hint = (f" (nor is {os.fspath(name)!r} a dataset name; see `nas datasets`)"
                if named else "")
        raise UserError(f"data file {path} not found{hint}")
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise UserError(f"cannot read {path}: permission denied")
    return path


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
