"""The `Table` every reader returns, the path check they share, and the CSV reader `read_csv`.

Kept apart from `nas.data.files` so that both it and `nas.data.images` import them without a circle.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.data.dataset import _one_line
from nas.errors import UserError

log = logging.getLogger("nas.data")

#: Cells read as a missing value (compared lower case, stripped), as spreadsheets write them.
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "<na>", "#n/a", "?"})
#: A text column with more levels than this is no category but an identifier or free text:
#: one-hot encoding it would make a column per row.
MAX_LEVELS = 100


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
