"""Trials in worker processes on this machine: one per GPU, or an equal share of the cores.

Each worker is a spawned process that sets its thread count and visible GPU before torch is
first imported; values shared by every task (the data) are sent to each worker once.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from nas.errors import UserError
from nas.executors.base import (
    DeadlinePassed,
    WorkerLost,
    _Shared,
    check_main_guard,
)
from nas.executors.threads import busy_cores, cpu_count, free_cores

#: How long a worker process may take to start (import torch, unpickle the data).
START_TIMEOUT = 120.0


def _dumps(value: Any) -> bytes:
    """Pickle, with cloudpickle where it is installed (functions defined in a notebook)."""
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


@dataclass
class _Task:
    future: Future[Any]
    payload: bytes
    shared: tuple[_Shared, ...]


class _Worker:
    """One worker process, its pipe to the driver and the thread that reads its answers."""

    def __init__(self, executor: LocalExecutor, number: int, slot: int,
                 env: Mapping[str, str]) -> None:
        import multiprocessing

        self.executor = executor
        self.number = number
        self.slot = slot  # which GPU / share of the cores it stands for
        ctx = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, dict(env)),
                                   name=f"nas-worker-{number}", daemon=True)
        self.process.start()
        child.close()
        self.task: _Task | None = None
        self.holds: set[int] = set()
        self.reader = threading.Thread(target=self._read, name=f"nas-reader-{number}",
                                       daemon=True)
        self.reader.start()

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self.process.pid

    def send(self, task: _Task) -> None:
        """Send `task` (assigned to this worker already) with the shared values it lacks."""
        try:
            for handle in task.shared:
                if handle.key not in self.holds:
                    self.conn.send_bytes(b"S" + handle.key.to_bytes(8, "little")
                                         + self.executor.shared_payload(handle.key))
                    self.holds.add(handle.key)
            self.conn.send_bytes(b"T" + task.payload)
        except OSError:
            pass  # the process is gone: the reader thread reports the task lost

    def _read(self) -> None:
        while True:
            try:
                message = self.conn.recv_bytes()
            except (EOFError, OSError):
                break
            task, self.task = self.task, None
            if task is not None and not task.future.done():  # done: stopped at its deadline
                ok, value = pickle.loads(message)
                if ok:
                    task.future.set_result(value)
                else:
                    task.future.set_exception(value)
            self.executor.worker_idle(self)
        self.executor.worker_died(self)

    def ask_to_stop(self) -> None:
        """Tell the process to exit (kill it if it is busy: nobody will read its answer)."""
        if self.task is not None:
            self.process.kill()
        with contextlib.suppress(OSError):
            self.conn.send_bytes(b"Q")

    def stop(self) -> None:
        """Make sure the process has exited (after `ask_to_stop`), and close the pipe."""
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        with contextlib.suppress(OSError):
            self.conn.close()


class LocalExecutor:
    """`workers` processes on this machine: one per GPU when trials run on CUDA, else CPU cores.

    Each worker is pinned to its GPU (``CUDA_VISIBLE_DEVICES``) or given an equal share of the
    cores as torch threads; shared values (the data) are sent to each worker once. A worker that
    dies is replaced, and its task's future raises `WorkerLost`.
    """

    name = "local"
    in_process = False
    shared_filesystem = True

    def __init__(self, workers: int | None = None, *, gpus: Sequence[int] | None = None,
                 threads: int | None = None) -> None:
        if workers is not None and (isinstance(workers, bool) or int(workers) != workers
                                    or workers < 1):
            raise UserError(f"--workers must be a whole number >= 1, got {workers!r}")
        if threads is not None and threads < 1:
            raise UserError(f"threads per worker must be >= 1, got {threads!r}")
        self.gpus = None if gpus is None else [int(g) for g in gpus]
        if self.gpus is not None and not self.gpus:
            self.gpus = None
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
        self._closing = False
        self.lost = 0  # workers that died, for reports and tests

    @property
    def workers(self) -> int:
        """How many tasks may run at once."""
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
            for slot in range(self._workers):
                self._spawn(slot)

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
        """Queue ``fn(*args, **kwargs)``; it runs on the next idle worker."""
        self.start()
        future: Future[Any] = Future()
        handles = tuple(a for a in (*args, *kwargs.values()) if isinstance(a, _Shared))
        # The thread count travels with each task: `retune` may have changed it.
        task = _Task(future, self._pickle((fn, args, kwargs, self.threads)), handles)
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
            worker = self._idle.popleft()
            task = self._queue.popleft()
            if task.future.set_running_or_notify_cancel():
                worker.task = task
                handed.append((worker, task))
            else:
                self._idle.appendleft(worker)
        return handed

    def stop(self, future: Future[Any]) -> bool:
        """Stop the task behind `future` now: its worker is killed (and replaced) and the
        future raises `DeadlinePassed`. False when it is not running here."""
        with self._lock:
            worker = next((w for w in self._pool
                           if w.task is not None and w.task.future is future), None)
            if worker is None or future.done():
                return False
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
        return (f"torch threads per worker {before} -> {threads} ({busy:.1f} of {cores} cores "
                "busy with other work)")

    def close(self) -> None:
        """Stop every worker; tasks still queued or running are abandoned."""
        with self._lock:
            self._closing = True
            pool, self._pool = self._pool, []
            self._idle.clear()
            queued, self._queue = list(self._queue), deque()
        for task in queued:
            task.future.cancel()
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


def _send(handed: list[tuple[_Worker, _Task]]) -> None:
    for worker, task in handed:
        worker.send(task)


def _worker_main(conn: Any, env: Mapping[str, str]) -> None:
    """A worker process: hold shared values, run tasks, send back (ok, value) pairs."""
    import signal

    os.environ.update(env)  # before torch is imported: thread pools and visible GPUs
    # Ctrl-C reaches the whole process group: the driver handles it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threads = _use_threads(0, int(env.get("NAS_TORCH_THREADS") or 0))
    held: dict[int, Any] = {}
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        kind, body = message[:1], message[1:]
        if kind == b"Q":
            return
        if kind == b"S":
            held[int.from_bytes(body[:8], "little")] = pickle.loads(body[8:])
            continue
        try:
            fn, args, kwargs, wanted = pickle.loads(body)
            threads = _use_threads(threads, wanted)
            args = [held[a.key] if isinstance(a, _Shared) else a for a in args]
            kwargs = {k: held[v.key] if isinstance(v, _Shared) else v for k, v in kwargs.items()}
            answer: tuple[bool, Any] = (True, fn(*args, **kwargs))
        except BaseException as exc:
            answer = (False, exc)
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            data = pickle.dumps((False, RuntimeError(f"cannot send the result back: {exc}")))
        try:
            conn.send_bytes(data)
        except OSError:
            return


def _use_threads(current: int, wanted: int | None) -> int:
    """Set torch's threads to `wanted` when it differs from `current` (0: not set yet)."""
    if not wanted or wanted == current:
        return current
    import torch

    torch.set_num_threads(wanted)
    return wanted
