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

from nas.executors.base import (
    EXECUTORS,
    DeadlinePassed,
    Executor,
    InProcessExecutor,
    WorkerLost,
    describe,
    make_executor,
)
from nas.executors.dask import DaskExecutor
from nas.executors.local import LocalExecutor
from nas.executors.threads import cpu_count


# After "inprocess" (registered with the protocol), in the order `make_executor`'s message
# lists them.
@EXECUTORS.register("local")
def _local(*, workers: int | None = None, gpus: Sequence[int] | None = None,
           **_: Any) -> Executor:
    """Worker processes on this machine: one per GPU, or one per core."""
    return LocalExecutor(workers, gpus=gpus)


@EXECUTORS.register("dask")
def _dask(*, workers: int | None = None, scheduler: str | None = None,
          gpus: Sequence[int] | None = None, **_: Any) -> Executor:
    """Dask tasks, on a running cluster or on a local one of `workers` processes."""
    return DaskExecutor(scheduler=scheduler, workers=workers, gpu=bool(gpus))


__all__ = [
    "EXECUTORS",
    "DaskExecutor",
    "DeadlinePassed",
    "Executor",
    "InProcessExecutor",
    "LocalExecutor",
    "WorkerLost",
    "cpu_count",
    "describe",
    "make_executor",
]
