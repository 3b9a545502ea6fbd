"""Ask+tell of our TPE and BOHB against DEHB and Optuna's TPE, in one interleaved run.

Issue 22, item 5: ours must be no slower than DEHB at 1,000 and 5,000 observations. Each
searcher is fed n trials of `bench_searchers.objective` on its ten-hyperparameter space through
its own ask/tell; then rounds of one window (one Hyperband cycle, 69 ask+tells) each, from a
fresh copy of that state, go round the searchers in turn, so a busy moment of the machine hits
all of them alike. The peers run their own libraries' ask and tell: DEHB 0.1.x directly
(`DEHB.ask` / `DEHB.tell`, its files in a temporary folder), Optuna through the `optuna-tpe`
adapter (Optuna's study.ask/tell plus our codec, which is a small share of its time).

    python benchmarks/bench_peer_speed.py --sizes 100,1000,5000 --rounds 5 [--no-optuna]

Prints one row per history size: median ms per ask+tell, and ours / DEHB.
`pytest benchmarks/bench_peer_speed.py` runs a smoke version (n = 30, one round).
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib.util
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_searchers import (
    ETA,
    MAX_BUDGET,
    MIN_BUDGET,
    SEED,
    SPACE,
    WINDOW,
    make_searcher,
    objective,
    step,
)

OURS = ("tpe", "bohb")


class NativeDEHB:
    """DEHB 0.1.x through its own ask/tell on the benchmark's space; its files in a temp dir."""

    def __init__(self) -> None:
        from dehb import DEHB
        from loguru import logger

        logger.disable("dehb")  # its per-tell log lines would be timed too
        self.folder = tempfile.TemporaryDirectory(prefix="dehb-speed-")
        self.dehb = DEHB(cs=copy.deepcopy(SPACE), min_fidelity=MIN_BUDGET,
                         max_fidelity=MAX_BUDGET, eta=ETA, n_workers=1,
                         output_path=self.folder.name, seed=SEED, save_freq=None)
        self.n = 0

    def step(self) -> None:
        """One ask+tell."""
        job = self.dehb.ask()
        loss = objective(dict(job["config"]), float(job["fidelity"]))
        self.dehb.tell(job, {"fitness": loss, "cost": float(job["fidelity"])})
        self.n += 1

    def __deepcopy__(self, memo: dict[int, Any]) -> NativeDEHB:
        clone = NativeDEHB.__new__(NativeDEHB)
        clone.folder, clone.n = self.folder, self.n
        clone.dehb = copy.deepcopy(self.dehb, memo)
        return clone


def available(names: Sequence[str]) -> list[str]:
    """`names` less the peers whose library is not installed."""
    needs = {"dehb": "dehb", "optuna-tpe": "optuna"}
    return [n for n in names if n not in needs or importlib.util.find_spec(needs[n])]


def prepared(name: str, n: int) -> tuple[Any, Callable[[Any], Any]]:
    """A searcher of `name` after n ask+tells, and its one-step function."""
    if name == "dehb":
        dehb = NativeDEHB()
        while dehb.n < n:
            dehb.step()
        return dehb, NativeDEHB.step
    searcher = make_searcher(name)
    while len(searcher.history) < n:
        step(searcher)
    return searcher, step


def measure(names: Sequence[str], sizes: Sequence[int], rounds: int,
            window: int = WINDOW) -> dict[int, dict[str, float]]:
    """Median seconds per ask+tell of each searcher at each history size, rounds interleaved."""
    logging.getLogger("optuna").setLevel(logging.ERROR)
    out: dict[int, dict[str, float]] = {}
    for n in sizes:
        states = {name: prepared(name, n) for name in names}
        times: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(rounds):
            for name in names:
                state, one = states[name]
                fresh = copy.deepcopy(state)
                gc.collect()
                start = time.perf_counter()
                for _ in range(window):
                    one(fresh)
                times[name].append((time.perf_counter() - start) / window)
        out[n] = {name: statistics.median(t) for name, t in times.items()}
    return out


def table(results: dict[int, dict[str, float]]) -> str:
    """Markdown: ms per ask+tell by history size, with ours / DEHB where DEHB ran."""
    names = list(next(iter(results.values())))
    head = ["n", *(f"{n} ms" for n in names)]
    ratios = [o for o in OURS if o in names] if "dehb" in names else []
    head += [f"{o} / dehb" for o in ratios]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, row in results.items():
        cells = [f"{n:,}", *(f"{row[k] * 1e3:.2f}" for k in names)]
        cells += [f"{row[o] / row['dehb']:.2f}" for o in ratios]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-optuna", action="store_true",
                        help="leave Optuna's TPE out (its 5,000-trial history takes minutes)")
    args = parser.parse_args(argv)
    names = [*OURS, "dehb", *(() if args.no_optuna else ("optuna-tpe",))]
    names = available(names)
    results = measure(names, [int(s) for s in args.sizes.split(",")], args.rounds)
    print(table(results))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # DEHB calls ConfigSpace's old getters
def test_peer_speed_smoke() -> None:
    """Every searcher steps through the interleaved rounds; the table has a row per size."""
    names = available([*OURS, "dehb", "optuna-tpe"])
    results = measure(names, [30], rounds=1, window=5)
    assert set(results[30]) == set(names) and all(v > 0 for v in results[30].values())
    assert table(results).count("\n") == 2


if __name__ == "__main__":
    main()
