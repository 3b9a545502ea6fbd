"""Trials per minute of `nas.optimize` on digits-mlp at its lowest budget vs a bare evaluate loop.

    python -m pytest benchmarks/bench_end_to_end.py -q -p no:cacheprovider

One round is a whole random search of TRIALS one-epoch trials (searcher, ledger, in-memory
journal, in-process executor); the baseline calls `Problem.evaluate` on the very same
(config, budget, seed) triples in a plain loop, so the difference is what the search machinery
costs per trial. Not part of the default test run (pyproject: testpaths = ["tests"]).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import nas
from benchmarks.timing import benchmarks_off, interleaved, median_ratio
from nas.engine.result import SearchResult
from nas.problems import Problem
from nas.problems import get as get_problem
from nas.storage import MEMORY

# Threads are set explicitly to 2 (torch's default on this 2-core machine, so what a user gets);
# set here rather than left implicit because tests/conftest.py pins 1 for the unit tests.
THREADS = 2  # torch threads while this module runs (benchmarks/conftest.py)
PROBLEM = "digits-mlp"
SEARCHER = "random"
TRIALS = 20
SEED = 0
ROUNDS = 7
GROUP = "end-to-end"

Call = tuple[dict[str, Any], float, int]


@pytest.fixture(scope="module")
def problem() -> Problem:
    """The benchmark problem."""
    return get_problem(PROBLEM)


def search(problem: Problem,
           objective: Callable[..., Any] | None = None) -> SearchResult:
    """One random search of TRIALS trials, every one at the problem's lowest budget."""
    return nas.optimize(objective or problem.evaluate, problem.space, SEARCHER,
                        f"{TRIALS}trials", min_budget=problem.min_budget,
                        max_budget=problem.min_budget, seed=SEED, storage=MEMORY)


def loop(problem: Problem, calls: list[Call]) -> list[float | dict[str, Any]]:
    """The baseline: the same evaluations, called one after the other."""
    return [problem.evaluate(config, budget, seed=seed) for config, budget, seed in calls]


VARIANTS: dict[str, Callable[..., Any]] = {"optimize": search, "loop": loop}


@pytest.fixture(scope="module")
def calls(problem: Problem) -> list[Call]:
    """The (config, budget, seed) of every evaluation the search makes, recorded in one run.

    Also loads the data set and imports the search machinery, outside every timing.
    """
    made: list[Call] = []

    def recording(config: Mapping[str, Any], budget: float, seed: int) -> Any:
        made.append((dict(config), budget, seed))
        return problem.evaluate(config, budget, seed=seed)

    search(problem, recording)
    return made


@pytest.fixture(scope="module")
def round_seconds(bench_report: list[str]) -> Iterator[dict[str, float]]:
    """Median seconds per round of each variant; reports trials/minute once both ran.

    Reported at teardown rather than by a test of its own, which `--benchmark-only` would skip.
    """
    seconds: dict[str, float] = {}
    yield seconds
    if set(seconds) != set(VARIANTS):  # one was deselected, or both disabled
        return
    rates = ", ".join(f"{k} {TRIALS * 60 / v:,.0f} trials/min" for k, v in seconds.items())
    bench_report.append(
        f"end to end, {PROBLEM} at budget 1, {SEARCHER}, {TRIALS} trials per round (median of "
        f"{ROUNDS}): {rates}; optimize/loop time = {seconds['optimize'] / seconds['loop']:.3f} "
        f"(machinery {(seconds['optimize'] - seconds['loop']) / TRIALS * 1e3:+.1f} ms per trial)"
    )


def test_baseline_makes_the_searchs_evaluations(problem: Problem, calls: list[Call]) -> None:
    """Sanity: the loop evaluates what the search evaluates, with the same losses."""
    assert len(calls) == TRIALS
    assert {budget for _, budget, _ in calls} == {problem.min_budget}
    assert len({seed for _, _, seed in calls}) == TRIALS  # each trial has a seed of its own
    result = search(problem)
    assert [dict(r.trial.config) for r in result.trials] == [c for c, _, _ in calls]
    losses = [out["loss"] for out in loop(problem, calls) if isinstance(out, dict)]
    assert [r.result.loss for r in result.trials if r.result is not None] == losses



@pytest.mark.parametrize("name", list(VARIANTS))
def test_trials_per_minute(benchmark: BenchmarkFixture, problem: Problem, calls: list[Call],
                           round_seconds: dict[str, float], name: str) -> None:
    """Seconds per round of TRIALS trials; trials/minute in the report."""
    benchmark.group = GROUP
    benchmark.extra_info.update(trials=TRIALS, problem=PROBLEM, budget=problem.min_budget)
    args = (problem,) if name == "optimize" else (problem, calls)
    out = benchmark.pedantic(VARIANTS[name], args=args, rounds=ROUNDS, iterations=1,
                             warmup_rounds=1)
    n = len(out.trials) if isinstance(out, SearchResult) else len(out)
    assert n == TRIALS
    if benchmark.stats is not None:  # None under --benchmark-disable
        round_seconds[name] = benchmark.stats.stats.median


def test_interleaved_ratio(problem: Problem, calls: list[Call], bench_report: list[str],
                           pytestconfig: pytest.Config) -> None:
    """Most noise-robust ratio: a search and the bare loop alternate round by round; reported."""
    if benchmarks_off(pytestconfig):
        pytest.skip("benchmarks disabled or skipped: nothing is timed")
    times = interleaved({"optimize": lambda: search(problem), "loop": lambda: loop(problem, calls)},
                        ROUNDS)
    rates = ", ".join(f"{k} {TRIALS * 60 / statistics.median(v):,.0f} trials/min"
                      for k, v in times.items())
    bench_report.append(
        f"end to end, interleaved ({ROUNDS} rounds of {TRIALS} trials): {rates}; median per-round "
        f"optimize/loop time = {median_ratio(times, 'optimize', 'loop'):.3f}"
    )
