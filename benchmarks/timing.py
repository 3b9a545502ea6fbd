"""Timing helpers shared by the benchmark files: interleaved rounds, the benchmarks-off check."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping

import pytest


def benchmarks_off(config: pytest.Config) -> bool:
    """True under ``--benchmark-disable`` (unless re-enabled) or ``--benchmark-skip``."""
    disabled = config.getoption("benchmark_disable") and not config.getoption("benchmark_enable")
    return bool(disabled or config.getoption("benchmark_skip"))


def interleaved(variants: Mapping[str, Callable[[], object]],
                rounds: int) -> dict[str, list[float]]:
    """Seconds of each variant in each round; the variants alternate within every round.

    Neighbours in time share the machine's load at the time, so per-round ratios resist noise
    that sequential benchmarks (one variant's rounds, then the next's) turn into bias. The
    order rotates so that no variant always runs first. One untimed warm-up call each first.
    """
    for fn in variants.values():
        fn()
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            gc.collect()  # no variant pays for another's garbage
            start = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - start)
    return times


def median_ratio(times: Mapping[str, list[float]], numerator: str, denominator: str) -> float:
    """Median over rounds of ``times[numerator] / times[denominator]`` (same-round pairs)."""
    return statistics.median(a / b for a, b in zip(times[numerator], times[denominator],
                                                   strict=True))
