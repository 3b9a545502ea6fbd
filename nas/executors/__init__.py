"""Where trials run: in this process, in local worker processes, or on a Dask cluster.

The runner only sees `share`, `submit` and `concurrent.futures.Future`s, and stays the only
writer of the journal: workers compute and send results back. A worker that dies mid-task
makes its future raise `WorkerLost`; the runner decides whether to run the task again.

No module of this package imports torch or dask at import time: a spawned worker sets its
thread count and visible GPU before torch is first imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nas.errors import UserError
from nas.executors import base
from nas.executors.base import (
    EXECUTORS,
    DeadlinePassed,
    Executor,
    InProcessExecutor,
    WorkerLost,
    describe,
)
from nas.executors.dask import DaskExecutor
from nas.executors.local import LocalExecutor
from nas.executors.packing import DeviceMemory, FakeDeviceMemory, estimate_mb, memory_hint
from nas.executors.threads import cpu_count


# After "inprocess" (registered with the protocol), in the order `make_executor`'s message
# lists them.
@EXECUTORS.register("local")
def _local(*, workers: int | None = None, gpus: Sequence[int] | None = None,
           workers_per_device: int | str | None = None, memory: DeviceMemory | None = None,
           **_: Any) -> Executor:
    """Worker processes on this machine: one (or `workers_per_device`) per GPU, or one per
    core."""
    return LocalExecutor(workers, gpus=gpus, workers_per_device=workers_per_device,
                         memory=memory)


@EXECUTORS.register("dask")
def _dask(*, workers: int | None = None, scheduler: str | None = None,
          gpus: Sequence[int] | None = None, **_: Any) -> Executor:
    """Dask tasks, on a running cluster or on a local one of `workers` processes."""
    return DaskExecutor(scheduler=scheduler, workers=workers, gpu=bool(gpus))


def make_executor(name: str = "inprocess", *, workers_per_device: int | str | None = None,
                  memory: DeviceMemory | None = None, **options: Any) -> Executor:
    """`base.make_executor` (same `options`), and `workers_per_device` (N or "auto": several
    trials per GPU, admitted by `memory`), which only the local executor takes."""
    if workers_per_device is None and memory is None:
        return base.make_executor(name, **options)
    if name not in ("inprocess", "local"):
        raise UserError("--workers-per-device needs --executor local")
    if options.get("scheduler") is not None:
        raise UserError("--scheduler needs --executor dask")
    return EXECUTORS.get("local")(workers=options.get("workers"), gpus=options.get("gpus"),
                                  workers_per_device=workers_per_device, memory=memory)


__all__ = [
    "EXECUTORS",
    "DaskExecutor",
    "DeadlinePassed",
    "DeviceMemory",
    "Executor",
    "FakeDeviceMemory",
    "InProcessExecutor",
    "LocalExecutor",
    "WorkerLost",
    "cpu_count",
    "describe",
    "estimate_mb",
    "make_executor",
    "memory_hint",
]
