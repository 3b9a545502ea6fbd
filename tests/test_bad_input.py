"""Every bad input of the robustness issue, as one table: what was wrong, the input, the message.

Each CLI row must exit 2 with exactly one line on stderr, ``nas: error: ...``, never a traceback;
each API row must raise `UserError` with a one-line message. Nothing may be left behind: no
journal, no checkpoint folder, no output file. ``python tests/test_bad_input.py`` prints the
table as markdown, with the message every input gets today.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

if __name__ == "__main__":  # run as a script from anywhere: make `tests.helpers` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nas
import searchers
import spaces
from nas.cli import main
from nas.data import Dataset
from nas.errors import UserError
from nas.storage import SCHEMA_VERSION, Storage
from nas.types import Result, Trial, TrialStatus
from tests.helpers import blobs

# What every `nas search` row adds before its own arguments (argparse keeps the last value):
# a tiny, fast search, so that a check that fails to stop it costs a second, not ten minutes.
SEARCH_DEFAULTS = ("--data", "synthetic", "--budget", "2trials", "--trial-budget", "1ep",
                   "--no-progress", "--db", "run.db")


@dataclass(frozen=True)
class Case:
    """One bad input: a `nas` command line, or a Python call made in the inputs' folder."""

    what: str
    expect: str  # a fragment of the one-line message
    argv: tuple[str, ...] = ()
    call: Callable[[], Any] | None = None
    shown: str = ""  # the Python call as the table shows it
    gap: str = ""  # a known gap (xfail) and whose file must close it

    @property
    def display(self) -> str:
        """The input as a user types it."""
        return self.shown or "nas " + shlex.join(self.argv)


def _argv(case: Case) -> list[str]:
    argv = list(case.argv)
    return ["search", *SEARCH_DEFAULTS, *argv[1:]] if argv[:1] == ["search"] else argv


# ---------------------------------------------------------------- inputs the rows refer to

SPACE = spaces.residual_mlp(width=(16, 32), n_blocks=1)


def _space_json(space: Any) -> str:
    return json.dumps(spaces.space_to_json(space))


def _mlp_json_with(name: str, **changes: Any) -> str:
    data = spaces.space_to_json(spaces.residual_mlp(width=16, n_blocks=1))
    for hp in data["hyperparameters"]:
        if hp["name"] == name:
            hp.update(changes)
    return json.dumps(data)


def make_inputs(folder: Path) -> None:
    """The files the rows name, created fresh in the folder each row runs in."""
    from ConfigSpace import ConfigurationSpace

    text = {
        "good.json": _space_json(spaces.residual_mlp(width=16, n_blocks=1)),
        "not-json.json": "{width: 16..64",
        "not-a-space.json": json.dumps({"layers": [64, 64], "activation": "relu"}),
        "broken-space.json": json.dumps(
            {"hyperparameters": [{"name": "lr", "type": "uniform_float"}]}),
        "no-architecture.json": _space_json(ConfigurationSpace({"lr": (1e-4, 1e-1)})),
        "alien.json": _space_json(
            ConfigurationSpace({"architecture": "transformer", "lr": (1e-4, 1e-1)})),
        "tanh.json": _mlp_json_with("activation", choices=["relu", "tanh"]),
        "notes.txt": "not a folder",
        "not-a-db.db": "hello, I am a text file\n" * 50,
    }
    for name, content in text.items():
        (folder / name).write_text(content)
    with contextlib.closing(sqlite3.connect(folder / "other-app.db")) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.commit()
    with Storage.create(folder / "newer.db", {"name": "newer"}) as store:
        store.set_meta("schema_version", SCHEMA_VERSION + 1)
    Storage.create(folder / "empty.db", {"name": "empty"}).close()
    with Storage.create(folder / "all-failed.db", {"name": "failed"}) as store:
        store.add_trial(Trial(id=0, config={"width": 16}))
        store.finish_trial(0, Result.failure(TrialStatus.FAILED, "KeyError: 'tanh'"))


# ---------------------------------------------------------------- API calls the rows make

_rng = np.random.default_rng(0)
X = _rng.normal(size=(60, 4))
Y = np.arange(60) % 3


def _with(x: np.ndarray, row: int, value: float) -> np.ndarray:
    out = x.copy()
    out[row, 1] = value
    return out


def _labels_with(value: int) -> np.ndarray:
    out = Y.copy()
    out[0] = value
    return out


def _hand_built(**changes: Any) -> Dataset:
    data = blobs(n=30)
    fields = {f: getattr(data, f) for f in data.__dataclass_fields__}
    return Dataset(**{**fields, **changes})


def _optimize(**kw: Any) -> Any:
    return nas.optimize(lambda config, budget: 0.0, SPACE, "hyperband", "5trials",
                        storage="run.db", **kw)


def _search(budget: str = "2trials", **kw: Any) -> Any:
    kw.setdefault("data", "synthetic")
    kw.setdefault("space", SPACE)
    kw.setdefault("trial_budget", "1ep")
    return nas.search(searcher="random", budget=budget, storage="run.db", progress=False, **kw)


# ---------------------------------------------------------------- the table

CASES: list[Case] = [
    # Unknown names list the valid ones.
    Case("unknown space", "unknown space 'transformer'; available: residual-mlp, residual-conv",
         ("search", "--space", "transformer")),
    Case("unknown searcher",
         "unknown searcher 'annealing'; available: asha, async-bohb, bohb, ",
         ("search", "--searcher", "annealing")),
    Case("unknown dataset", "unknown dataset 'imagenet'; available: digits, mnist1d, synthetic",
         ("search", "--data", "imagenet")),
    Case("unknown space to print", "unknown space 'transformer'", ("spaces", "transformer")),
    Case("unknown searcher (API)", "unknown searcher 'annealing'",
         call=lambda: searchers.get("annealing", SPACE),
         shown='searchers.get("annealing", space)'),
    Case("unknown dataset (API)", "unknown dataset 'imagenet'",
         call=lambda: _search(data="imagenet"),
         shown='nas.search(space, "imagenet", ...)'),
    # Budgets.
    Case("budget with an unknown unit", "cannot read budget '10 parsecs'",
         ("search", "--budget", "10 parsecs")),
    Case("negative budget", "cannot read budget '-5m'", ("search", "--budget=-5m")),
    Case("negative budget, space-separated", "cannot read budget '-5m'",
         ("search", "--budget", "-5m")),
    Case("zero budget", "a budget must be a positive number, got '0ep'",
         ("search", "--budget", "0ep")),
    Case("zero trial budget", "a budget must be a positive number",
         ("search", "--trial-budget", "0ep")),
    Case("fractional trials", "a number of trials must be whole",
         ("search", "--budget", "1.5trials")),
    Case("infinite budget", "a budget must be a positive number, got '1e999ep'",
         ("search", "--budget", "1e999ep")),
    Case("overflowing number of trials", "a budget must be a positive number",
         ("search", "--budget", "1e999trials")),
    Case("trial budget in trials", "epochs or seconds", ("search", "--trial-budget", "2trials")),
    Case("malformed budget (API)", "cannot read budget '10 parsecs'",
         call=lambda: _search("10 parsecs"), shown='nas.search(..., budget="10 parsecs")'),
    Case("negative budget (API)", "cannot read budget '-5m'",
         call=lambda: _search("-5m"), shown='nas.search(..., budget="-5m")'),
    Case("zero budget (API)", "a budget must be a positive number",
         call=lambda: _search("0ep"), shown='nas.search(..., budget="0ep")'),
    # Multi-fidelity settings.
    Case("min_budget above max_budget", "need 0 < min_budget <= max_budget",
         ("search", "--searcher", "hyperband", "--option", "min_budget=50",
          "--trial-budget", "20ep")),
    Case("eta below 2 (hyperband)", "eta must be at least 2, got 1.5",
         ("search", "--searcher", "hyperband", "--option", "eta=1.5")),
    Case("eta below 2 (bohb)", "eta must be at least 2, got 1",
         ("search", "--searcher", "bohb", "--option", "eta=1")),
    Case("infinite max_budget", "need 0 < min_budget <= max_budget (finite)",
         ("search", "--searcher", "hyperband", "--option", "max_budget=inf")),
    Case("min_budget above max_budget (API)", "need 0 < min_budget <= max_budget",
         call=lambda: _optimize(min_budget=5, max_budget=1),
         shown='nas.optimize(f, space, "hyperband", min_budget=5, max_budget=1)'),
    Case("eta below 2 (API)", "eta must be at least 2",
         call=lambda: searchers.get("hyperband", SPACE, min_budget=1, max_budget=9, eta=1.5),
         shown='searchers.get("hyperband", space, min_budget=1, max_budget=9, eta=1.5)'),
    Case("negative seed", "seed", ("search", "--seed", "-1")),
    # Space overrides.
    Case("override range upside down", "width: low 64 is above high 16",
         ("search", "--set", "width=64:16")),
    Case("override non-positive on a log scale", "lr is log-scaled",
         ("search", "--set", "lr=0:0.1")),
    Case("override outside the family's bounds", "n_blocks must lie within [1, 8]",
         ("search", "--set", "n_blocks=0:9")),
    Case("override value no model accepts", "dropout probability has to be between 0 and 1",
         ("search", "--set", "dropout=0:2")),
    Case("override value the trainer refuses", "lr and batch_size must be positive",
         ("search", "--set", "lr=0")),
    Case("override a size to zero", "width is log-scaled: it must be positive, got 0",
         ("search", "--set", "width=0")),
    Case("override with an unknown choice", "optimizer cannot be 'rmsprop'; possible values",
         ("search", "--set", "optimizer=adam,rmsprop")),
    Case("override not a number", "lr takes finite numbers", ("search", "--set", "lr=nan:1")),
    Case("override range ConfigSpace cannot sample", "ConfigSpace cannot sample the range",
         call=lambda: spaces.residual_mlp(lr=(1e-300, 1e300)),
         shown="spaces.residual_mlp(lr=(1e-300, 1e300))"),
    # A space given as a JSON file.
    Case("space file missing", "space file missing.json does not exist",
         ("search", "--space", "missing.json")),
    Case("space file not JSON", "space file not-json.json is not JSON",
         ("search", "--space", "not-json.json")),
    Case("space file JSON but not a space", "is JSON but not a ConfigSpace space",
         ("search", "--space", "not-a-space.json")),
    Case("space file with a broken entry", "is not a valid ConfigSpace space",
         ("spaces", "broken-space.json")),
    Case("space file without an architecture", "no 'architecture' constant",
         ("search", "--space", "no-architecture.json")),
    Case("space file of an unknown architecture", "'transformer' is not a known model family",
         ("search", "--space", "alien.json")),
    Case("space file with a value no model builds", "unknown or missing 'tanh'",
         ("search", "--space", "tanh.json")),
    Case("overrides on a space file", "apply to built-in spaces only",
         ("search", "--space", "good.json", "--set", "width=32")),
    Case("space that does not fit the data", "residual-conv needs inputs shaped (C, L)",
         ("search", "--space", "residual-conv")),
    # Data.
    Case("NaN feature", "x contains NaN or infinite values",
         call=lambda: nas.from_arrays(_with(X, 3, np.nan), Y),
         shown="nas.from_arrays(x_with_nan, y)"),
    Case("infinite feature", "x contains NaN or infinite values",
         call=lambda: nas.from_arrays(_with(X, 3, np.inf), Y),
         shown="nas.from_arrays(x_with_inf, y)"),
    Case("feature beyond float32", "beyond float32's range",
         call=lambda: nas.from_arrays(_with(X, 3, 1e300), Y),
         shown="nas.from_arrays(x_with_1e300, y)"),
    Case("NaN feature in the test split", "x_test contains NaN or infinite values",
         call=lambda: nas.from_arrays(X, Y, x_test=_with(X, 0, np.nan), y_test=Y),
         shown="nas.from_arrays(x, y, x_test=x_with_nan, y_test=y)"),
    Case("label above num_classes - 1", "label 5 does not fit num_classes=3 (labels 0..2)",
         call=lambda: nas.from_arrays(X, _labels_with(5), num_classes=3),
         shown="nas.from_arrays(x, y_with_5, num_classes=3)"),
    Case("negative label", "y must hold class labels 0, 1, 2, ...; found -1",
         call=lambda: nas.from_arrays(X, _labels_with(-1)),
         shown="nas.from_arrays(x, y_with_minus_1)"),
    Case("fractional label", "y must hold integer class labels, found 0.5",
         call=lambda: nas.from_arrays(X, np.where(Y == 0, 0.5, Y)),
         shown="nas.from_arrays(x, y_with_0_5)"),
    Case("x and y lengths differ", "x has 60 samples but y has 59 labels",
         call=lambda: nas.from_arrays(X, Y[:-1]), shown="nas.from_arrays(x[:60], y[:59])"),
    Case("no features", "x samples hold no features",
         call=lambda: nas.from_arrays(X[:, :0], Y), shown="nas.from_arrays(x[:, :0], y)"),
    Case("empty split (too few samples)", "too few samples for the validation split",
         call=lambda: nas.from_arrays(X[:3], Y[:3]), shown="nas.from_arrays(x[:3], y[:3])"),
    Case("empty test split", "x_test holds no samples",
         call=lambda: nas.from_arrays(X, Y, x_test=X[:0], y_test=Y[:0]),
         shown="nas.from_arrays(x, y, x_test=x[:0], y_test=y[:0])"),
    Case("empty split (built-in data)", "too few samples for the validation split",
         call=lambda: nas.data.load("synthetic", n_samples=3),
         shown='nas.data.load("synthetic", n_samples=3)'),
    Case("empty split (hand-built Dataset)", "blobs: the val split is empty",
         call=lambda: _hand_built(x_val=torch.zeros(0, 8), y_val=torch.zeros(0).long()),
         shown="Dataset(..., x_val=<0 samples>, ...)"),
    Case("label out of range (hand-built Dataset)", "holds label 7, outside 0..2",
         call=lambda: _hand_built(y_test=torch.full((10,), 7)),
         shown="Dataset(..., y_test=<labels 7>, num_classes=3)"),
    Case("NaN feature (hand-built Dataset)", "the train split contains NaN or infinite",
         call=lambda: _hand_built(x_train=torch.full((30, 8), float("nan"))),
         shown="Dataset(..., x_train=<NaN>, ...)"),
    # Storage.
    Case("journal in a system folder", "cannot create /proc/nas-x.db",
         ("search", "--db", "/proc/nas-x.db")),
    Case("journal under a file", "cannot create notes.txt/x.db",
         ("search", "--db", "notes.txt/x.db")),
    Case("journal path taken by another file", "not-a-db.db already exists",
         ("search", "--db", "not-a-db.db")),
    Case("show a file that is not a DB", "not-a-db.db is not a search database",
         ("show", "not-a-db.db")),
    Case("show another program's SQLite DB", "other-app.db is not a search database",
         ("show", "other-app.db")),
    Case("show a missing DB", "no search database at missing.db", ("show", "missing.db")),
    Case("show a newer schema",
         f"was written by a newer version (schema {SCHEMA_VERSION + 1} > {SCHEMA_VERSION})",
         ("show", "newer.db")),
    Case("export a newer schema", "was written by a newer version", ("export", "newer.db")),
    Case("export a search with no trial", "empty.db has no finished trial to export yet",
         ("export", "empty.db", "-o", "model.pt")),
    Case("export a search whose trials all failed", "no finished trial to export",
         ("export", "all-failed.db", "-o", "model.pt")),
]


def _files(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def run_case(case: Case, folder: Path) -> tuple[int | str, str]:
    """Run one row in `folder` (inputs made fresh): its exit status and its message."""
    make_inputs(folder)
    before = _files(folder)
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        code, message = _invoke(case)
    except Exception as exc:  # a crash: the table shows it, the test fails on it
        code, message = "crash", f"Traceback: {type(exc).__name__}: {exc}"
    finally:
        os.chdir(cwd)
    # Reading an existing journal may add SQLite's -wal/-shm beside it; nothing else may appear.
    left = sorted(str(p) for p in _files(folder) - before
                  if not any(str(p).startswith(f"{q}-") or str(p).startswith(f"{q}.")
                             for q in before))
    if left:
        message += f"\n[left behind: {', '.join(left)}]"
    return code, message


def _invoke(case: Case) -> tuple[int | str, str]:
    if case.call is not None:
        try:
            case.call()
        except UserError as exc:
            return "UserError", str(exc)
        return "no error", ""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(_argv(case))
        except SystemExit as exc:  # argparse's own errors
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue()


def _param(case: Case) -> Any:
    marks = [pytest.mark.xfail(reason=case.gap, strict=True)] if case.gap else []
    return pytest.param(case, id=case.what, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input_gets_one_line_and_leaves_nothing(case: Case, tmp_path: Path) -> None:
    code, message = run_case(case, tmp_path)
    assert "Traceback" not in message
    assert "left behind" not in message, message
    if case.call is not None:
        assert code == "UserError", f"no UserError from {case.display}"
        assert "\n" not in message
    else:
        assert code == 2
        assert message.startswith("nas: error: ") and message.count("\n") == 1, message
    assert case.expect in message


@pytest.mark.parametrize("args", [
    ["search", "--budget", "10 parsecs"],
    ["search", "--space", "not-json.json", "--data", "synthetic"],
    ["search", "--data", "synthetic", "--budget", "1trials", "--db", "notes.txt/x.db"],
])
def test_bad_input_in_a_real_process(args: list[str], tmp_path: Path) -> None:
    make_inputs(tmp_path)
    before = _files(tmp_path)
    run = subprocess.run([sys.executable, "-m", "nas", *args], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.startswith("nas: error: ") and run.stderr.count("\n") == 1, run.stderr
    assert run.stdout == "" and _files(tmp_path) == before


def test_a_space_file_searches_like_the_space_it_was_written_from(tmp_path: Path) -> None:
    (tmp_path / "mine.json").write_text(_space_json(SPACE))
    assert spaces.get(tmp_path / "mine.json") == SPACE
    assert spaces.get(str(tmp_path / "mine.json")) == SPACE
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(err):
        assert main(["spaces", str(tmp_path / "mine.json")]) == 0
        assert main(["search", "--space", str(tmp_path / "mine.json"), "--data", "synthetic",
                     "--budget", "2trials", "--trial-budget", "1ep", "--no-progress",
                     "--db", str(tmp_path / "s.db")]) == 0
    assert "width" in out.getvalue() and err.getvalue() == ""
    with Storage.open(tmp_path / "s.db") as store:
        assert spaces.space_from_json(store.settings["space"]) == SPACE
        assert all(r.status is TrialStatus.OK for r in store.trials())


def markdown_table() -> str:
    """Every row with the message it gets today, as a markdown table."""
    lines = ["| bad input | input | message |", "|---|---|---|"]
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            _, message = run_case(case, Path(folder))
        said = [" ".join(line.split()) for line in message.splitlines() if line.strip()]
        left = [line for line in said if line.startswith("[left behind")]
        said = [line for line in said if line not in left]
        text = said[-1] if said else ""
        if len(said) > 1:
            text = f"({len(said)} lines, the last:) {text}"
        text = " ".join([text, *left])
        text = text.replace("|", "\\|")
        if case.gap:
            text += f" *(known gap: {case.gap.split(':')[0]})*"
        lines.append(f"| {case.what} | `{case.display}` | {text} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
