"""Anytime benchmark: the test accuracy a user gets from `nas search` at each time budget, on
datasets nobody tuned the defaults on, beside plain scikit-learn baselines and the hand-written
Optuna study (`optuna_baseline.py`) at the same budget.

Each search is ``python -m nas search --data D --budget Bs --seed S --db ...`` in a fresh
process with ``OMP_NUM_THREADS`` unset, as a user would type it, so the engine picks its own
threads; the wall clock covers the whole process (imports and the final ensemble included).
Every run sees the dataset's default split (data seed 0); the seed drives the search. The
baselines (logistic regression, RBF SVM, kNN; the best on validation, reported on test) do not
depend on the budget: they are fitted once per dataset and written beside every budget.

    python benchmarks/bench_anytime.py --datasets digits,mnist1d,wine,breast-cancer,shapes16 \\
        --budgets 10,30,60,120,300,600 --seeds 0,1,2 --out runs/anytime [--jobs J]
    python benchmarks/bench_anytime.py ... --out runs/anytime-slow --taskset 4

`--taskset N` runs N searches (or studies) at once, all pinned to core 0: a machine made slow
on purpose (its rows have mode `tasksetN`; `--jobs` is then ignored, the baselines unpinned).
Rows already in `DIR/results.csv` are skipped, so a killed bench continues where it stopped;
`DIR/summary.md` is rewritten from the whole file at the end.
`pytest benchmarks/bench_anytime.py` runs a tiny smoke version.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("digits", "mnist1d", "wine", "breast-cancer", "shapes16", "shapes28", "templates16",
            "mnist1d-hard")
BUDGETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
METHODS = ("nas", "baseline", "optuna")
#: Variables that would choose the engine's threads for it; the bench leaves that to the engine.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NAS_TORCH_THREADS")


@dataclass
class Row:
    """One run: a (dataset, budget, seed, method) in one mode, and what it achieved."""

    dataset: str
    budget: float
    seed: int
    method: str
    test_accuracy: float | None
    wall_seconds: float
    overshoot: float
    threads: str = ""
    mode: str = "normal"
    trials: int | None = None
    detail: str = ""
    machine_speed: float | None = None

    @property
    def key(self) -> tuple[str, float, int, str, str]:
        """What makes a row unique in results.csv (the resumability key)."""
        return (self.dataset, self.budget, self.seed, self.method, self.mode)


COLUMNS = [f.name for f in fields(Row)]


# ---------------------------------------------------------------- the runs


def _environment() -> dict[str, str]:
    """The caller's environment without thread settings, and this checkout's code first."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    # `python benchmarks/...` puts benchmarks/ first on sys.path, and a venv's editable install
    # may point at another checkout: name this one explicitly.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _timed(command: list[str], log: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run `command`, keep its output in `log`; its wall seconds and the finished process."""
    start = time.perf_counter()
    done = subprocess.run(command, env=_environment(), cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"$ {' '.join(command)}\nexit {done.returncode}, {wall:.1f} s\n"
                   f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}); see {log}")
    return wall, done


_THREADS_SAID = re.compile(r"(\d+)\s+(?:torch\s+|CPU\s+)?threads?\b", re.IGNORECASE)
_THREADS_CHANGED = re.compile(r"torch threads (?:per worker )?\d+ -> (\d+)")


def _threads_chosen(executor: Any, settings: Any, output: str, replans: Any = ()) -> str:
    """The torch threads the search says it used: journal first, then its output; "" if neither
    says (the engine did not record it). Changes made on re-plans follow: "2>1"."""
    chosen = ""
    for source in (executor, settings):
        if isinstance(source, dict) and not chosen:
            for name in ("threads", "torch_threads", "num_threads"):
                if source.get(name) is not None:
                    chosen = str(source[name])
                    break
    if not chosen:
        found = _THREADS_SAID.search(output)
        chosen = found.group(1) if found else ""
    for replan in replans or ():
        changed = _THREADS_CHANGED.search(str(replan.get("reason", "")))
        if changed and chosen:
            chosen += f">{changed.group(1)}"
    return chosen


def run_search(dataset: str, budget: float, seed: int, out: Path, prefix: Sequence[str] = ()
               ) -> Row:
    """One default `nas search` in a fresh process; the final model's test accuracy."""
    from nas.journal import JournalView
    from nas.records import MetaKey
    from nas.storage import Storage

    name = f"{dataset}-{budget:g}s-seed{seed}"
    db = out / "journals" / f"{name}.db"
    for stale in db.parent.glob(f"{name}.db*"):
        stale.unlink()  # a killed earlier run left it: `nas search` would refuse to reuse it
    db.parent.mkdir(parents=True, exist_ok=True)
    wall, done = _timed([*prefix, sys.executable, "-m", "nas", "search", "--data", dataset,
                         "--budget", f"{budget:g}s", "--seed", str(seed), "--db", str(db),
                         "--no-progress"], out / "logs" / f"nas-{name}.log")
    view = JournalView.load(db)
    with Storage.open(db) as store:
        executor, settings = store.meta(MetaKey.EXECUTOR), store.settings
        replans = store.meta(MetaKey.REPLANS, [])
    summary = view.summary
    accuracy, detail = None, "no summary"
    if summary is not None:
        # The final model: a baseline that beat the search on validation, else the ensemble
        # when the search built one, else the best trial (`SearchResult.final_test_accuracy`).
        if summary.baseline_won:
            accuracy = summary.baseline_won.get("test_accuracy")
            detail = f"baseline {summary.baseline_won['name']} won"
        elif summary.ensemble:
            accuracy = summary.ensemble.get("test_accuracy")
            detail = f"ensemble of {len(summary.ensemble['weights'])}"
        else:
            accuracy, detail = summary.test_accuracy, "best trial"
    return Row(dataset, budget, seed, "nas", accuracy, wall, wall / budget - 1,
               threads=_threads_chosen(executor, settings, done.stdout + done.stderr, replans),
               trials=len(view.records), detail=detail)


def run_optuna(dataset: str, budget: float, seed: int, out: Path, prefix: Sequence[str] = ()
               ) -> Row:
    """The hand-written Optuna study (`optuna_baseline.py`) at the same budget, own process."""
    script = Path(__file__).with_name("optuna_baseline.py")
    name = f"{dataset}-{budget:g}s-seed{seed}"
    wall, done = _timed([*prefix, sys.executable, str(script), "--data", dataset,
                         "--budget", f"{budget:g}", "--seed", str(seed)],
                        out / "logs" / f"optuna-{name}.log")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Row(dataset, budget, seed, "optuna", result["test_accuracy"], wall, wall / budget - 1,
               threads="1",  # optuna_baseline.py sets one torch thread itself
               trials=int(result["trials"]), detail=f"{result['complete']} complete")


def fit_baselines(dataset: str) -> tuple[float, str, float]:
    """Logistic regression, RBF SVM and kNN on the default split: the test accuracy of the one
    best on validation, its name, and the seconds all of them took."""
    from nas.data import load

    start = time.perf_counter()
    data = load(dataset, seed=0)
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    def flat(x: Any) -> Any:
        return x.reshape(len(x), -1).numpy()

    x_train, x_val, x_test = flat(data.x_train), flat(data.x_val), flat(data.x_test)
    y_train, y_val, y_test = data.y_train.numpy(), data.y_val.numpy(), data.y_test.numpy()
    # Small grids: the usual first tries of someone fitting these by hand.
    candidates: list[tuple[str, Any]] = [
        *((f"logreg C={c:g}", LogisticRegression(C=c, max_iter=500)) for c in (0.01, 0.1, 1.0)),
        *((f"svm-rbf C={c:g}", SVC(C=c)) for c in (1.0, 10.0)),
        *((f"knn k={k}", KNeighborsClassifier(k)) for k in (1, 5, 15)),
    ]
    best_val, best_test, best_name = -1.0, 0.0, ""
    for label, model in candidates:
        model.fit(x_train, y_train)
        val = float(model.score(x_val, y_val))
        if val > best_val:  # the first of equals wins: the simplest, as listed
            best_val, best_name = val, label
            best_test = float(model.score(x_test, y_test))
    return best_test, best_name, time.perf_counter() - start


# ---------------------------------------------------------------- results.csv


def read_rows(path: Path) -> list[Row]:
    """The rows of an existing results.csv (none if there is no file)."""
    if not path.exists():
        return []
    rows = []
    with path.open(newline="") as f:
        for raw in csv.DictReader(f):
            rows.append(Row(raw["dataset"], float(raw["budget"]), int(raw["seed"]),
                            raw["method"], _cell(raw, "test_accuracy"),
                            float(raw["wall_seconds"]), float(raw["overshoot"]),
                            raw.get("threads") or "", raw.get("mode") or "normal",
                            _cell(raw, "trials", int), raw.get("detail") or "",
                            _cell(raw, "machine_speed")))
    return rows


def _cell(raw: dict[str, str], key: str, cast: Callable[[str], Any] = float) -> Any:
    """A number from a CSV cell, None for an empty one."""
    return cast(raw[key]) if raw.get(key) not in (None, "") else None


class ResultsFile:
    """results.csv, appended one row at a time (a killed bench keeps what finished); callers
    append from one thread at a time."""

    def __init__(self, path: Path) -> None:
        """Open (or start) the file at `path`."""
        self.path = path
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="") as f:
                csv.writer(f).writerow(COLUMNS)

    def append(self, row: Row) -> None:
        """Write `row` and flush it to disk."""
        values = asdict(row)
        for key in ("test_accuracy", "overshoot"):
            if values[key] is not None:
                values[key] = round(values[key], 4)
        # Milliseconds: the plain baselines on a small cached set take a few hundredths.
        values["wall_seconds"] = round(row.wall_seconds, 3)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, COLUMNS).writerow(values)


# ---------------------------------------------------------------- summary.md


def _median(values: Iterable[float | None]) -> float | None:
    # A run without a model (no finished trial by the deadline) counts as accuracy 0: the user
    # got nothing to predict with.
    found = [0.0 if v is None else v for v in values]
    return statistics.median(found) if found else None


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def summarise(rows: Sequence[Row], speed: float | None) -> str:
    """summary.md: per mode, dataset and budget the medians over seeds and the checks."""
    speeds = sorted({r.machine_speed for r in rows if r.machine_speed is not None})
    lines = ["# Anytime benchmark: test accuracy at each time budget (median over seeds)", "",
             f"Machine speed (`machine_speed`, fixed MLP steps/s on one thread): "
             f"{'not measured' if speed is None else f'{speed:g}'} at the last invocation; "
             f"rows measured at {', '.join(f'{s:g}' for s in speeds) or 'unknown'}.", "",
             "Search = the final model of `nas search` (a baseline that beat it on validation, "
             "else its ensemble, else its best trial); "
             "baseline = the best on validation of logistic regression, RBF SVM and kNN; "
             "Optuna = `optuna_baseline.py` (a run without a finished trial counts 0). "
             "Overshoot = wall clock / budget - 1, whole process.", ""]
    for mode in sorted({r.mode for r in rows}):
        mine = [r for r in rows if r.mode == mode]
        lines += [f"## Mode: {mode}", "",
                  "| dataset | budget s | search | baseline | Optuna | search >= baseline "
                  "| search runs | worst overshoot (search) | worst overshoot (Optuna) "
                  "| threads |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        curves: dict[str, list[float | None]] = {}
        for dataset in dict.fromkeys(r.dataset for r in mine):
            for budget in sorted({r.budget for r in mine if r.dataset == dataset}):
                cell = [r for r in mine if r.dataset == dataset and r.budget == budget]
                by = {m: [r for r in cell if r.method == m] for m in METHODS}
                search = _median(r.test_accuracy for r in by["nas"])
                base = _median(r.test_accuracy for r in by["baseline"])
                opt = _median(r.test_accuracy for r in by["optuna"])
                curves.setdefault(dataset, []).append(search)
                beats = ("—" if search is None or base is None
                         else "yes" if search >= base else "**no**")
                worst = {m: max((r.overshoot for r in by[m]), default=None)
                         for m in ("nas", "optuna")}
                threads = ",".join(sorted({r.threads or "?" for r in by["nas"]}))
                lines.append(
                    f"| {dataset} | {budget:g} | {_percent(search)} | {_percent(base)} | "
                    f"{_percent(opt)} | {beats} | {len(by['nas'])} | "
                    + " | ".join("—" if worst[m] is None else f"{100 * worst[m]:+.0f} %"
                                 for m in ("nas", "optuna"))
                    + f" | {threads or '—'} |")
        lines += ["", "| dataset | search median by budget | non-decreasing in budget |",
                  "|---|---|---|"]
        for dataset, curve in curves.items():
            known = [c for c in curve if c is not None]
            monotone = all(b >= a for a, b in itertools.pairwise(known))
            lines.append(f"| {dataset} | {' → '.join(_percent(c) for c in curve)} | "
                         f"{'yes' if monotone else '**no**'} |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- the bench


def _budget(text: str) -> float:
    seconds = float(text.strip().removesuffix("s"))
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"a budget is a positive number of seconds, not {text!r}")
    return seconds


def run_bench(out: Path, datasets: Sequence[str], budgets: Sequence[float],
              seeds: Sequence[int], methods: Sequence[str] = METHODS, jobs: int = 1,
              taskset: int = 0, speed: float | None = None) -> list[Row]:
    """Run every missing (dataset, budget, seed, method) row, append it to results.csv, write
    summary.md; the rows this call added."""
    results = ResultsFile(out / "results.csv")
    mode = f"taskset{taskset}" if taskset else "normal"
    done = {r.key for r in read_rows(results.path)}
    added: list[Row] = []
    lock = threading.Lock()

    def keep(row: Row) -> None:
        row.mode, row.machine_speed = mode, speed
        with lock:  # the file and `added` in one order
            results.append(row)
            added.append(row)
            print(json.dumps(asdict(row)), flush=True)

    if "baseline" in methods:
        for dataset in datasets:
            missing = [(b, s) for b in budgets for s in seeds
                       if (dataset, b, s, "baseline", mode) not in done]
            if not missing:
                continue
            accuracy, name, wall = fit_baselines(dataset)
            for b, s in missing:  # the same fit for every budget and seed: it depends on neither
                keep(Row(dataset, b, s, "baseline", accuracy, wall, wall / b - 1, detail=name))

    runners = {"nas": run_search, "optuna": run_optuna}
    todo = [(m, d, b, s) for b in budgets for d in datasets for s in seeds for m in runners
            if m in methods and (d, b, s, m, mode) not in done]
    prefix = ["taskset", "-c", "0"] if taskset else []

    def one(job: tuple[str, str, float, int]) -> None:
        method, dataset, budget, seed = job
        try:
            keep(runners[method](dataset, budget, seed, out, prefix))
        except Exception as exc:
            # One failed run must not stop the bench; with no row, the next invocation
            # tries it again.
            print(f"FAILED {job}: {exc}", file=sys.stderr, flush=True)

    with ThreadPoolExecutor(taskset or jobs) as pool:
        list(pool.map(one, todo))
    summary = summarise(read_rows(results.path), speed)
    (out / "summary.md").write_text(summary + "\n")
    return added


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, measure the machine, run the bench and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--budgets", default=",".join(f"{b:g}" for b in BUDGETS),
                        help="seconds, comma-separated")
    parser.add_argument("--seeds", default="0,1,2", help="search seeds, comma-separated")
    parser.add_argument("--methods", default=",".join(METHODS), help="nas, baseline, optuna")
    parser.add_argument("--out", required=True, type=Path, help="folder of results.csv, "
                        "summary.md, the journals and logs")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at once (normal mode; --taskset sets its own)")
    parser.add_argument("--taskset", type=int, default=0, metavar="N",
                        help="N runs at once, all pinned to core 0 (a slow machine on purpose)")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown or args.jobs < 1 or args.taskset < 0:
        parser.error(f"methods are {', '.join(METHODS)}; --jobs >= 1; --taskset >= 0")
    from benchmarks.bench_e2e import machine_speed

    speed = machine_speed()  # before the runs, while the machine is idle
    print(f"machine: {speed} MLP steps/s on one thread", flush=True)
    run_bench(args.out, args.datasets.split(","), [_budget(b) for b in args.budgets.split(",")],
              [int(s) for s in args.seeds.split(",")], methods, args.jobs, args.taskset, speed)
    print((args.out / "summary.md").read_text())


def test_anytime_smoke(tmp_path: Path) -> None:
    """One tiny bench: the three methods write their rows, and a second call adds none."""
    added = run_bench(tmp_path, ["wine"], [2.0], [0], jobs=2)
    assert sorted(r.method for r in added) == ["baseline", "nas", "optuna"]
    rows = read_rows(tmp_path / "results.csv")
    assert [r.key for r in rows] == [r.key for r in added]
    assert all(r.wall_seconds > 0 for r in rows)
    baseline = next(r for r in rows if r.method == "baseline")
    assert baseline.test_accuracy is not None and baseline.test_accuracy > 0.8
    assert "| wine | 2 |" in (tmp_path / "summary.md").read_text()
    assert run_bench(tmp_path, ["wine"], [2.0], [0], jobs=2) == []


if __name__ == "__main__":
    # Run as a script, benchmarks/ comes first on sys.path: make this checkout's `nas` and
    # `benchmarks` the ones imported.
    sys.path.insert(0, str(REPO))
    main()
