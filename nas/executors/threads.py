"""How many torch threads a process should use here: measured on the machine as it is now.

A busy machine (a laptop with a browser and a build running, a shared server) makes extra
threads wait on each other: there one thread can be many times faster than two. So the count
is not read off the core count but timed: the same small workload at each candidate count.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import math
import os
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: A higher thread count must be at least this much faster to be chosen: extra threads also
#: take cores from everything else running, and a noisy timing should not decide.
BETTER_BY = 1.3
#: Timings of each count, interleaved; their median counts.
REPEATS = 5
#: How long the machine's other work is watched before timing (seconds): long enough to see
#: a neighbour that holds a core, which 10 ms timing bursts can miss.
WATCH_SECONDS = 0.3


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count chosen, and why (one line for the console and the journal);
    `measured`: timed on the machine, so it may be timed again when the machine changes."""

    threads: int
    reason: str
    measured: bool = False


def cpu_count() -> int:
    """Cores this process may run on: its affinity, within a container's CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def _cgroup_quota(path: str = "/sys/fs/cgroup/cpu.max") -> float | None:
    """Cores' worth of CPU time a cgroup v2 quota allows, or None when there is none."""
    try:
        with open(path) as f:
            quota, period = f.read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def _cpu_times(path: str = "/proc/stat") -> tuple[float, float] | None:
    """The machine's (busy, total) CPU time so far, in clock ticks; None off Linux."""
    try:
        with open(path) as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [float(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def busy_cores(seconds: float = WATCH_SECONDS, *, ours: Sequence[int] = ()) -> float | None:
    """Cores kept busy by other processes, watched over `seconds` while this one sleeps (and
    the processes `ours`, this search's workers, are not counted); None where the machine does
    not say (not Linux)."""
    before, own_before = _cpu_times(), time.process_time()
    if before is None:
        return None
    workers_before = _process_seconds(ours)
    time.sleep(seconds)
    after, own = _cpu_times(), time.process_time() - own_before
    if after is None or after[1] <= before[1]:
        return None
    own += _process_seconds(ours) - workers_before
    cpus = os.cpu_count() or 1
    busy_share = (after[0] - before[0]) / (after[1] - before[1])
    return max(0.0, busy_share * cpus - (own / seconds if seconds > 0 else 0.0))


def _process_seconds(pids: Sequence[int]) -> float:
    """CPU seconds the processes `pids` have used so far (those that have gone count 0)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK") if pids else 100
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                # The command name may hold spaces: the fields start after its closing bracket.
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += (float(fields[11]) + float(fields[12])) / ticks  # utime + stime
    return total


def free_cores(cores: int, busy: float | None) -> int:
    """Of `cores`, those other work leaves free (`busy`: `busy_cores`; None: all of them)."""
    return cores if busy is None else max(1, min(cores, round(cores - busy)))


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
        claim(own)
        return ThreadChoice(own, f"{own} (set by the environment)")
    cores = cpu_count() if cores is None else cores
    if cores <= 1:
        claim(1)
        return ThreadChoice(1, "1 (one usable core)", measured=True)
    # Claimed before the watch, so that a search starting beside this one sees it after its
    # own watch: both sleep then, and neither would see the other busy.
    claim(1)
    # Cores another process holds are not ours to time: a neighbour that keeps one busy for
    # minutes lets a 10 ms burst on two threads look fast, then halves every epoch.
    known = peer_threads()
    busy = busy_cores(ours=tuple(known)) if known else busy_cores()
    peers = peer_threads()
    if peers:
        # Other searches' threads are theirs even while they plan or wait: counted as held
        # (the CPU time of those known before the watch was left out of `busy`).
        busy = (busy or 0.0) + sum(peers.values())
    free = free_cores(cores, busy)
    taken = "" if busy is None or busy < 0.5 else f"; {busy:.1f} busy with other work"
    if peers:
        taken += f" ({sum(peers.values())} held by {len(peers)} other search" \
                 f"{'es' if len(peers) > 1 else ''})"
    counts = sorted({1, max(1, free // 2), free})
    if len(counts) == 1:
        return ThreadChoice(1, f"1 of {cores} cores{taken}", measured=True)
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
    fastest = chosen
    # A search that started during the watch or the timing claimed its core after we looked.
    chosen = within_peers(chosen, cores)
    claim(chosen)
    speeds = ", ".join(f"{n}: {rates[n] / rates[1]:.2f}x" for n in counts)
    late = "" if chosen == fastest else \
        f"; {fastest} timed fastest, but a search that started meanwhile holds a core"
    return ThreadChoice(chosen, f"{chosen} of {cores} cores{taken} (measured speed vs one "
                                f"thread: {speeds}){late}", measured=True)


def within_peers(threads: int, cores: int | None = None) -> int:
    """`threads`, or fewer where the other searches' claims (`claim`) leave fewer of the
    usable cores free (at least 1); unchanged when the environment set the count."""
    if threads <= 1 or user_threads() is not None:
        return threads
    held = sum(peer_threads().values())
    if not held:
        return threads
    cores = cpu_count() if cores is None else cores
    return max(1, min(threads, cores - held))


def _claims_dir() -> Path:
    """Where the searches of this user on this machine leave their pid and thread count
    (`NAS_THREAD_CLAIMS` names another folder: the searches that share it see each other)."""
    own = os.environ.get("NAS_THREAD_CLAIMS", "").strip()
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(own) if own else Path(tempfile.gettempdir()) / f"nas-threads-{user}"


@functools.cache
def _release_at_exit() -> None:
    """Drop the claim when the process ends (registered once)."""
    atexit.register(release)


def claim(threads: int) -> None:
    """Record that this process runs torch at `threads` threads, for the searches beside it
    (`peer_threads`); dropped by `release` or at exit. Best effort: a temp folder that
    cannot be written leaves the choice to the busy-core watch alone."""
    try:
        folder = _claims_dir()
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / str(os.getpid())
        partial = folder / f".{os.getpid()}.tmp"
        partial.write_text(str(int(threads)))
        os.replace(partial, path)
    except OSError:
        return
    _release_at_exit()


def release() -> None:
    """Drop this process's claim (its search ended)."""
    with contextlib.suppress(OSError):
        (_claims_dir() / str(os.getpid())).unlink(missing_ok=True)


def peer_threads() -> dict[int, int]:
    """Threads claimed by other live processes (`claim`), by pid; a dead one's claim (a
    search killed) is removed. Off POSIX, none (signal 0 is no liveness probe there)."""
    if os.name != "posix":
        return {}
    try:
        entries = list(_claims_dir().iterdir())
    except OSError:
        return {}
    peers: dict[int, int] = {}
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                entry.unlink()
            continue
        except PermissionError:
            pass  # alive, someone else's
        try:
            peers[pid] = max(1, int(entry.read_text().strip()))
        except (OSError, ValueError):
            continue
    return peers


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


@contextmanager
def planning_threads(device_type: str) -> Iterator[ThreadChoice | None]:
    """Choose threads as a search does (on the CPU only) and run the block at that count.

    Yields the choice, or None off the CPU, where torch's count is left as it is."""
    import torch

    choice = choose_threads() if device_type == "cpu" else None
    with torch_threads(choice.threads if choice else torch.get_num_threads()):
        yield choice
