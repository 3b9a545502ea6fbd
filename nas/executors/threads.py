"""How many torch threads a process should use here: measured on the machine as it is now.

A busy machine (a laptop with a browser and a build running, a shared server) makes extra
threads wait on each other: there one thread can be many times faster than two. So the count
is not read off the core count but timed: the same small workload at each candidate count.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: A higher thread count must be at least this much faster to be chosen: extra threads also
#: take cores from everything else running, and a noisy timing should not decide.
BETTER_BY = 1.3
#: Timings of each count, interleaved; their median counts.
REPEATS = 5


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count chosen, and why (one line for the console and the journal)."""

    threads: int
    reason: str


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def user_threads() -> int | None:
    """The thread count the user set through the environment, if any."""
    for name in ("NAS_TORCH_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def choose_threads(cores: int | None = None) -> ThreadChoice:
    """The fastest torch thread count for this process now, among 1 and the usable cores
    (and half of them on larger machines); the user's own setting wins."""
    import torch

    own = user_threads()
    if own is not None:
        return ThreadChoice(own, f"{own} (set by the environment)")
    cores = usable_cores() if cores is None else cores
    counts = sorted({1, max(1, cores // 2), cores})
    if len(counts) == 1:
        return ThreadChoice(1, "1 (one usable core)")
    before = torch.get_num_threads()
    samples: dict[int, list[float]] = {n: [] for n in counts}
    try:
        # Interleaved, so every count meets the same moments of the machine's load; the median
        # counts, as a lucky quiet moment must not decide for a busy machine.
        for _ in range(REPEATS):
            for n in counts:
                samples[n].append(_rate(torch, n))
    finally:
        torch.set_num_threads(before)
    rates = {n: statistics.median(v) for n, v in samples.items()}
    chosen = counts[0]
    for n in counts[1:]:
        if rates[n] >= BETTER_BY * rates[chosen]:
            chosen = n
    speeds = ", ".join(f"{n}: {rates[n] / rates[1]:.2f}x" for n in counts)
    return ThreadChoice(chosen, f"{chosen} of {cores} cores (measured speed vs one thread: "
                                f"{speeds})")


def _rate(torch: object, threads: int) -> float:
    """Matrix products per second at `threads` threads, over about 10 ms."""
    import torch as th

    th.set_num_threads(threads)
    generator = th.Generator().manual_seed(0)
    a = th.randn(192, 192, generator=generator)
    b = th.randn(192, 192, generator=generator)
    a @ b  # the first product pays one-off costs
    start = time.perf_counter()
    for _ in range(16):
        a @ b
    return 16 / max(time.perf_counter() - start, 1e-9)


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with torch at `threads` threads, then as it was."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
