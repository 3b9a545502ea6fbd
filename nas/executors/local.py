"""Trials in worker processes on this machine: one (or `workers_per_device`) per GPU, or an
equal share of the cores.

Each worker is a spawned process that sets its thread count and visible GPU before torch is
first imported; values shared by every task (the data) are sent to each worker once. With
several workers per GPU, a task starts only when its memory fits there (`packing.Packer`).
"""

from __future__ import annotations

import contextlib
import itertools
import pickle
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from nas.errors import UserError
from nas.executors.base import (
    DeadlinePassed,
    WorkerLost,
    _Shared,
    check_main_guard,
)
from nas.executors.packing import DeviceMemory, Packer, packer_for
from nas.executors.threads import busy_cores, claim, cpu_count, free_cores, peer_threads
from nas.executors.worker import _send, _Task, _Worker

#: How long a worker process may take to start (import torch, unpickle the data).
START_TIMEOUT = 120.0


def _dumps(value: Any) -> bytes:
    """Pickle, with cloudpickle where it is installed (functions defined in a notebook)."""
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


class LocalExecutor:
    """`workers` processes on this machine: one per GPU when trials run on CUDA, else CPU cores.

    Each worker is pinned to its GPU (``CUDA_VISIBLE_DEVICES``) or given an equal share of the
    cores as torch threads; shared values (the data) are sent to each worker once. A worker that
    dies is replaced, and its task's future raises `WorkerLost`.

    `workers_per_device` (N, or "auto": as many as typical trials fit, `packing.auto_cap` at
    most) packs trials: a task waits until its estimate (``submit(..., memory_mb=...)``) fits
    on a GPU with a free worker, measured by `memory` (default: CUDA's); one that runs out of
    memory runs again once alone on its GPU.
    """

    name = "local"
    in_process = False
    shared_filesystem = True

    def __init__(self, workers: int | None = None, *, gpus: Sequence[int] | None = None,
                 threads: int | None = None, workers_per_device: int | str | None = None,
                 memory: DeviceMemory | None = None) -> None:
        if workers is not None and (isinstance(workers, bool) or int(workers) != workers
                                    or workers < 1):
            raise UserError(f"--workers must be a whole number >= 1, got {workers!r}")
        if threads is not None and threads < 1:
            raise UserError(f"threads per worker must be >= 1, got {threads!r}")
        self.gpus = None if gpus is None else [int(g) for g in gpus]
        if self.gpus is not None and not self.gpus:
            self.gpus = None
        self.workers_per_device = workers_per_device
        #: Admits tasks by memory when several share a GPU; None: one task per free worker.
        self.packer: Packer | None
        self.packer, self._cap = packer_for(self.gpus, workers_per_device, memory, workers)
        if self.packer is not None:
            workers = self._cap * len(self.packer.devices)
        #: Whether tasks are admitted by memory, so `submit` wants their ``memory_mb``.
        self.packs_memory = self.packer is not None
        default = len(self.gpus) if self.gpus else cpu_count()
        self._workers = int(workers) if workers is not None else default
        self.threads = threads or max(1, cpu_count() // self._workers)
        self._threads_given = threads is not None
        self._pool: list[_Worker] = []
        self._idle: deque[_Worker] = deque()
        self._queue: deque[_Task] = deque()
        self._shared: dict[int, tuple[Any, bytes]] = {}
        self._lock = threading.RLock()
        self._numbers = itertools.count()
        self._keys = itertools.count()
        self._closing = False
        self.lost = 0  # workers that died, for reports and tests

    @property
    def workers(self) -> int:
        """How many tasks may run at once ("auto": as many as typical ones fit, known once
        tasks with estimates came)."""
        if self.packer is not None and self.workers_per_device == "auto":
            with self._lock:
                return min(self._workers, self.packer.auto_workers(self._cap))
        return self._workers

    def env_for(self, number: int) -> dict[str, str]:
        """Environment of worker `number`: its GPU, or its share of the CPU threads."""
        env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads),
               "NAS_TORCH_THREADS": str(self.threads)}
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(self.gpus[number % len(self.gpus)])
        return env

    def start(self) -> None:
        """Start the worker processes (they import torch in parallel)."""
        with self._lock:
            if self._pool:
                return
            check_main_guard("executor 'local'")
            self._closing = False
            if not self.gpus:
                self._claim_cores()
            for slot in range(self._workers):
                self._spawn(slot)

    def _claim_cores(self) -> None:
        """Leave the workers' threads, all together, for the searches beside this one
        (`nas.executors.threads.claim`); without a given count, share what their claims leave."""
        if not self._threads_given:
            held = sum(peer_threads().values())
            self.threads = max(1, (cpu_count() - held) // self._workers)
        claim(self.threads * self._workers)

    def _spawn(self, slot: int) -> _Worker:
        worker = _Worker(self, next(self._numbers), slot, self.env_for(slot))
        self._pool.append(worker)
        self._idle.append(worker)
        return worker

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        with self._lock:
            return [w.pid for w in self._pool if w.pid is not None]

    def busy_pids(self) -> list[int]:
        """Process ids of the workers running a task now."""
        with self._lock:
            return [w.pid for w in self._pool if w.task is not None and w.pid is not None]

    def share(self, value: Any) -> _Shared:
        """A handle that workers resolve to their own copy of `value`, sent once each."""
        key = id(value)
        with self._lock:
            if key not in self._shared:
                # Keep the value itself alive too: its id must not be reused for another one.
                self._shared[key] = (value, self._pickle(value))
        return _Shared(key)

    def shared_payload(self, key: int) -> bytes:
        """The pickled shared value `key`."""
        return self._shared[key][1]

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue ``fn(*args, **kwargs)``; it runs on the next idle worker (packing: on a GPU
        where it fits). ``memory_mb``, its estimated peak device memory (`packing.estimate_mb`),
        is taken out of `kwargs`, never passed to `fn`; without it a task reserves nothing."""
        memory_mb = kwargs.pop("memory_mb", None)
        if memory_mb is not None and (isinstance(memory_mb, bool) or not memory_mb >= 0):
            raise ValueError(f"memory_mb must be a number >= 0, got {memory_mb!r}")
        self.start()
        future: Future[Any] = Future()
        handles = tuple(a for a in (*args, *kwargs.values()) if isinstance(a, _Shared))
        # The thread count travels with each task: `retune` may have changed it.
        task = _Task(future, self._pickle((fn, args, kwargs, self.threads)), handles,
                     next(self._keys), None if memory_mb is None else float(memory_mb))
        with self._lock:
            self._queue.append(task)
            handed = self._assign()
        _send(handed)
        return future

    def _pickle(self, value: Any) -> bytes:
        try:
            return _dumps(value)
        except Exception as exc:
            raise UserError(
                f"cannot send {type(value).__name__} to worker processes ({exc}); define the "
                "objective at module level, or install cloudpickle"
            ) from None

    def _assign(self) -> list[tuple[_Worker, _Task]]:
        """Pair idle workers with queued tasks, under the lock; the caller sends them after.

        Sending waits until the worker reads (a worker still importing torch, a large dataset):
        outside the lock, one slow send holds up no other worker.
        """
        handed = []
        while self._queue and self._idle:
            task = self._queue[0]
            worker = self._place(task)
            if worker is None:  # first come first served: nothing overtakes a waiting task
                break
            self._queue.popleft()
            if task.started or task.future.set_running_or_notify_cancel():
                task.started = True
                self._idle.remove(worker)
                worker.task = task
                handed.append((worker, task))
            else:
                self._release(task)
        return handed

    def _place(self, task: _Task) -> _Worker | None:
        """The idle worker to run `task` on, its memory reserved; None: it waits."""
        if self.packer is None or not self.gpus:
            return self._idle[0]
        idle = {self.gpus[w.slot % len(self.gpus)]: w for w in reversed(self._idle)}
        device = self.packer.admit(task.key, task.memory_mb, idle, alone=task.alone)
        return None if device is None else idle[device]

    def _release(self, task: _Task) -> None:
        if self.packer is not None:
            self.packer.release(task.key)

    def answered(self, task: _Task, message: bytes) -> None:
        """Settle `task`'s future with its worker's answer; a packed task out of memory goes
        first in the queue instead, to run once alone (`Packer.settle`)."""
        ok, value = pickle.loads(message)
        with self._lock:
            again = self.packer is not None and self.packer.settle(
                task.key, task.memory_mb, ok, value, retried=task.alone)
            if task.future.done():  # stopped at its deadline meanwhile
                return
            if again and not self._closing:
                task.alone = True
                self._queue.appendleft(task)
                return
        if ok:
            task.future.set_result(value)
        else:
            task.future.set_exception(value)

    def stop(self, future: Future[Any]) -> bool:
        """Stop the task behind `future` now: its worker is killed (and replaced), or it leaves
        the queue, and the future raises `DeadlinePassed`. False when it is not here."""
        with self._lock:
            worker = next((w for w in self._pool
                           if w.task is not None and w.task.future is future), None)
            queued = next((t for t in self._queue if t.future is future), None)
            if queued is not None and not future.done():  # waiting for memory: it never ran
                self._queue.remove(queued)
                future.set_exception(DeadlinePassed("its deadline passed before it could start"))
                return True
            if worker is None or future.done():
                return False
            self._release(worker.task)
            worker.task = None
            future.set_exception(DeadlinePassed("stopped at the time budget's deadline"))
        worker.process.kill()  # its reader sees the process go and replaces it
        return True

    def worker_idle(self, worker: _Worker) -> None:
        """Called by a worker's reader when it answered: give it the next task."""
        handed = []
        with self._lock:
            if worker in self._pool:
                self._idle.append(worker)
                handed = self._assign()
        _send(handed)

    def worker_died(self, worker: _Worker) -> None:
        """Called by a worker's reader when its process is gone: replace it, fail its task."""
        with self._lock:
            # Under the lock: no task can be handed to this worker after this point.
            task, worker.task = worker.task, None
            if task is not None:
                self._release(task)
            if worker not in self._pool:
                return
            self._pool.remove(worker)
            with contextlib.suppress(ValueError):
                self._idle.remove(worker)
            if self._closing:
                return
            self.lost += 1
            worker.process.join(timeout=5)
            code = worker.process.exitcode
            self._spawn(worker.slot)
            handed = self._assign()
        _send(handed)
        if task is not None and not task.future.done():
            task.future.set_exception(WorkerLost(
                f"worker process {worker.pid} died (exit code {code}) while running the trial"))

    def retune(self) -> str:
        """Give each worker's next tasks the cores other work leaves free, shared equally
        (never more than at the start); what changed, or "". Not when the threads were given
        or the trials run on GPUs."""
        if self._threads_given or self.gpus:
            return ""
        # The workers' own CPU time is this search's, not another program's.
        busy = busy_cores(ours=self.pids())
        if busy is None:
            return ""
        cores = cpu_count()
        threads = max(1, free_cores(cores, busy) // self._workers)
        if threads == self.threads:
            return ""
        before, self.threads = self.threads, threads
        claim(self.threads * self._workers)
        return (f"torch threads per worker {before} -> {threads} ({busy:.1f} of {cores} cores "
                "busy with other work)")

    def close(self) -> None:
        """Stop every worker; tasks still queued or running are abandoned."""
        with self._lock:
            self._closing = True
            pool, self._pool = self._pool, []
            self._idle.clear()
            queued, self._queue = list(self._queue), deque()
            for task in [*queued, *(w.task for w in pool if w.task is not None)]:
                self._release(task)
        for task in queued:
            if not task.future.cancel() and not task.future.done():  # queued again, alone
                task.future.set_exception(WorkerLost("the executor was closed"))
        tasks = [worker.task for worker in pool]
        for worker in pool:  # all at once: each takes a moment to shut its interpreter down
            worker.ask_to_stop()
        for worker, task in zip(pool, tasks, strict=True):
            worker.stop()
            if task is not None and not task.future.done():
                task.future.set_exception(WorkerLost("the executor was closed"))

    def __enter__(self) -> LocalExecutor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
