"""Time one ask+tell of every registered searcher at history sizes 100, 1,000 and 5,000."""

from __future__ import annotations

import copy
import gc
import math
import statistics
import time
from collections.abc import Mapping
from typing import Any

import pytest
from ConfigSpace import (
    Categorical,
    ConfigurationSpace,
    EqualsCondition,
    Float,
    Integer,
    OrdinalHyperparameter,
)
from pytest_benchmark.fixture import BenchmarkFixture

import searchers
from benchmarks.timing import benchmarks_off
from nas.types import Result, Trial
from searchers import Searcher, hyperband_layout

# Run with:  python -m pytest benchmarks/bench_searchers.py -q -p no:cacheprovider
# Not part of the default test run (pyproject: testpaths = ["tests"]).
#
# What one round measures. A searcher's state changes with every ask+tell, so each round starts
# from its own deep copy of a searcher prepared at history exactly n (copies made before timing)
# and times WINDOW consecutive ask+tells on it; pytest-benchmark divides by WINDOW (`iterations`),
# so the tables read in seconds per ask+tell. A window rather than a single call because the cost
# of one call depends on what the call is: Hyperband/BOHB alternate promotions (cheap), random
# proposals and, for BOHB, model proposals, in a fixed schedule. One call at exactly n would time
# whichever kind the schedule happens to put there; a window of one full Hyperband cycle (every
# rung of every bracket, 69 trials for budgets 1..27 at eta 3) times each kind in the proportion
# a run has, wherever in the cycle n falls. The history drifts from n to n + 68 within a window:
# at most 7% for n >= 1,000; at n = 100 read the number as "a short history". Every round replays
# the same calls (same copied state and generator), so rounds differ only by timing noise.

SEED = 0
SIZES = (100, 1_000, 5_000)
# A Gaussian process (`costly_asks`) would take most of the run for its 69-ask windows.
NAMES = tuple(n for n in searchers.available() if not searchers.get_class(n).costly_asks)
MIN_BUDGET, MAX_BUDGET, ETA = 1, 27, 3
# The target: TPE and BOHB at most 5 ms per ask+tell at 1,000 observations.
TARGET_MS = 5.0
TARGET_N = 1_000
TARGETED = ("tpe", "bohb")
WINDOW = sum(rung.n_configs for bracket in hyperband_layout(MIN_BUDGET, MAX_BUDGET, ETA)
             for rung in bracket.rungs)
ROUNDS = 10
WARMUP_ROUNDS = 1
KIND_ROUNDS = 3


def mixed_space() -> ConfigurationSpace:
    """Ten hyperparameters: log and linear ints and floats, categoricals, an ordinal, a child."""
    cs = ConfigurationSpace(seed=SEED)
    optimizer = Categorical("optimizer", ["sgd", "adam", "adamw"])
    momentum = Float("momentum", (0.0, 0.99))
    cs.add([
        Integer("width", (16, 1024), log=True),
        Integer("depth", (1, 8)),
        Float("lr", (1e-5, 1e-1), log=True),
        Float("dropout", (0.0, 0.5)),
        Float("weight_decay", (0.0, 0.1)),
        optimizer,
        momentum,  # active only with sgd
        Categorical("activation", ["relu", "gelu", "silu", "tanh"]),
        Categorical("norm", ["none", "batch", "layer"]),
        OrdinalHyperparameter("batch_size", [32, 64, 128, 256, 512]),
        EqualsCondition(momentum, optimizer, "sgd"),
    ])
    return cs


SPACE = mixed_space()
_ACTIVATION = {"gelu": 0.0, "silu": 0.1, "relu": 0.3, "tanh": 1.0}
_NORM = {"layer": 0.0, "batch": 0.2, "none": 0.6}
_OPTIMIZER = {"adamw": 0.0, "adam": 0.1, "sgd": 0.3}


def objective(config: Mapping[str, Any], budget: float | None) -> float:
    """Cheap deterministic loss: a quadratic in the numeric values plus categorical penalties.

    A low budget adds a bias shrinking as 1 / budget, so multi-fidelity searchers see budgets
    that matter.
    """
    loss = (((math.log2(config["width"]) - 7) / 3) ** 2 + ((config["depth"] - 3) / 4) ** 2
            + ((math.log10(config["lr"]) + 3) / 2) ** 2 + ((config["dropout"] - 0.1) / 0.5) ** 2
            + ((config["weight_decay"] - 0.01) / 0.1) ** 2
            + ((math.log2(config["batch_size"]) - 7) / 2) ** 2)
    loss += (_OPTIMIZER[config["optimizer"]] + _ACTIVATION[config["activation"]]
             + _NORM[config["norm"]])
    if "momentum" in config:
        loss += ((config["momentum"] - 0.9) / 0.5) ** 2
    return loss + (0.0 if budget is None else 1.0 / budget)


def make_searcher(name: str) -> Searcher:
    """A fresh searcher; multi-fidelity ones (by class attribute) get the benchmark's budgets,
    multi-objective ones two objectives (`step` tells them a size beside the loss)."""
    cls = searchers.get_class(name)
    options: dict[str, Any] = {}
    if cls.multi_fidelity:
        options = {"min_budget": MIN_BUDGET, "max_budget": MAX_BUDGET, "eta": ETA}
    if cls.multi_objective:
        options["n_objectives"] = 2
    return searchers.get(name, SPACE, seed=SEED, **options)


def step(searcher: Searcher) -> Trial:
    """One ask+tell with the objective; the unit that is timed."""
    trial = searcher.ask()
    if trial is None:  # only while trials are pending, which a sequential loop never leaves
        raise RuntimeError(f"{searcher!r} asked for nothing with no trial pending")
    loss = objective(trial.config, trial.budget)
    size = float(trial.config["width"] * trial.config["depth"])
    searcher.tell(trial, Result(loss=loss, objectives=(loss, size)
                                if searcher.multi_objective else None))
    return trial


class Histories:
    """Searchers fed n trials through their own ask/tell, each (name, n) built once and kept.

    Snapshots are shared: deep-copy one before asking it anything.
    """

    def __init__(self) -> None:
        self._live: dict[str, Searcher] = {}
        self._at: dict[tuple[str, int], Searcher] = {}

    def at(self, name: str, n: int) -> Searcher:
        """The snapshot of searcher `name` after exactly `n` ask+tells."""
        if (name, n) not in self._at:
            live = self._live.get(name)
            if live is None or len(live.history) > n:
                live = self._live[name] = make_searcher(name)
            while len(live.history) < n:  # sizes come in increasing order: one feed per name
                step(live)
            self._at[name, n] = copy.deepcopy(live)
        return self._at[name, n]


class Windows:
    """Benchmark target: one ask+tell per call, on the next fresh copy every WINDOW calls.

    The copies are made here, before timing; past the last copy calls go on with it (the one
    untimed call pytest-benchmark makes for the result).
    """

    def __init__(self, prepared: Searcher, n_windows: int) -> None:
        self.copies = [copy.deepcopy(prepared) for _ in range(n_windows)]
        self.current = self.copies[0]
        self.calls = 0

    def __call__(self) -> None:
        window, offset = divmod(self.calls, WINDOW)
        if offset == 0 and window < len(self.copies):
            self.current = self.copies[window]
        self.calls += 1
        step(self.current)


@pytest.fixture(scope="module")
def histories() -> Histories:
    """Prepared searchers for the whole module (built outside every timing)."""
    return Histories()


@pytest.fixture(scope="module")
def medians() -> dict[tuple[str, int], float]:
    """Median seconds per ask+tell of each (searcher, n) benchmark, for the report."""
    return {}


def test_copies_replay(histories: Histories) -> None:
    """Sanity for the method: a deep copy asks exactly what the searcher it copies would."""
    n = SIZES[0]
    for name in NAMES:
        prepared = histories.at(name, n)
        original = make_searcher(name)  # the same searcher, fed the same n trials, never copied
        for _ in range(n):
            step(original)
        copied = copy.deepcopy(prepared)
        assert [step(copied) for _ in range(WINDOW)] == [step(original) for _ in range(WINDOW)]
        assert len(prepared.history) == n, name  # and the shared snapshot is left untouched


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", SIZES, ids=lambda n: f"n={n}")
def test_ask_tell(benchmark: BenchmarkFixture, histories: Histories,
                  medians: dict[tuple[str, int], float], name: str, n: int) -> None:
    """Seconds per ask+tell at history n (each round: mean of one window from a fresh copy)."""
    if benchmark.disabled and n > SIZES[0]:
        # A smoke run: the same window code runs at the smallest history for every searcher;
        # building the larger histories alone takes minutes for the slower searchers.
        pytest.skip(f"benchmarks disabled: only n={SIZES[0]} runs")
    benchmark.group = f"ask+tell n={n}"
    benchmark.extra_info.update(history=n, window=WINDOW)
    prepared = histories.at(name, n)
    windows = Windows(prepared, 1 if benchmark.disabled else WARMUP_ROUNDS + ROUNDS)
    gc.collect()  # start every benchmark from a clean heap, not the last one's garbage
    benchmark.pedantic(windows, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS, iterations=WINDOW)
    if benchmark.stats is None:  # None under --benchmark-disable
        return
    # Every timed window ran exactly WINDOW ask+tells from history n (the last copy ran one more).
    assert [len(s.history) - n for s in windows.copies[:-1]] == [WINDOW] * ROUNDS
    medians[name, n] = benchmark.stats.stats.median


def test_report(medians: dict[tuple[str, int], float], bench_report: list[str]) -> None:
    """One line per searcher and history size: median ms per ask+tell; reported, not asserted."""
    if set(medians) != {(name, n) for name in NAMES for n in SIZES}:
        pytest.skip("the per-searcher benchmarks did not all run (or were disabled)")
    bench_report.append(f"searchers: median ms per ask+tell over {ROUNDS} rounds, each round the "
                        f"mean of {WINDOW} consecutive calls from history n")
    for name in NAMES:
        for n in SIZES:
            bench_report.append(f"  {name:<10} n={n:<5}  {medians[name, n] * 1e3:8.3f} ms")


def test_target(medians: dict[tuple[str, int], float], bench_report: list[str]) -> None:
    """The issue's target: TPE and BOHB at most 5 ms per ask+tell (median) at n = 1,000."""
    if any((name, TARGET_N) not in medians for name in TARGETED):
        pytest.skip("the TPE/BOHB benchmarks at n=1000 did not run (or were disabled)")
    ms = {name: medians[name, TARGET_N] * 1e3 for name in TARGETED}
    line = (f"TPE at n={TARGET_N}: {ms['tpe']:.2f} ms, BOHB at n={TARGET_N}: {ms['bohb']:.2f} ms "
            f"(target <= {TARGET_MS:g} ms)")
    print("\n" + line)
    bench_report.append(line)
    assert all(v <= TARGET_MS for v in ms.values()), line


def test_cost_by_kind(histories: Histories, bench_report: list[str],
                      pytestconfig: pytest.Config) -> None:
    """Model-based searchers at n = 1,000: median ms per call by kind of proposal; reported only.

    The window mean above blends BOHB's cheap promotions and random draws with its model
    proposals; this shows what a model proposal alone costs.
    """
    if benchmarks_off(pytestconfig):
        pytest.skip("benchmarks disabled or skipped")
    for name in NAMES:
        if not searchers.get_class(name).model_based:
            continue
        prepared = histories.at(name, TARGET_N)
        times: dict[str, list[float]] = {}
        for _ in range(KIND_ROUNDS):
            searcher = copy.deepcopy(prepared)
            gc.collect()
            for _ in range(WINDOW):
                start = time.perf_counter()
                trial = step(searcher)
                elapsed = time.perf_counter() - start
                times.setdefault(str(trial.info.get("origin", "?")), []).append(elapsed)
        kinds = ", ".join(f"{kind} {statistics.median(t) * 1e3:.3f} ms "
                          f"({len(t) // KIND_ROUNDS}/{WINDOW} calls)"
                          for kind, t in sorted(times.items()))
        bench_report.append(f"{name} at n={TARGET_N}, median per call by kind: {kinds}")
