"""Where trials run: in this process, in local worker processes, or on a Dask cluster.

The runner only sees `share`, `submit` and `concurrent.futures.Future`s, and stays the only
writer of the journal: workers compute and send results back. A worker that dies mid-task
makes its future raise `WorkerLost`; the runner decides whether to run the task again.

This module imports neither torch nor dask at import time: a spawned worker sets its thread
count and visible GPU before torch is first imported.
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
from typing import Any, ClassVar, Protocol

from nas.errors import UserError

#: How long a worker process may take to start (import torch, unpickle the data).
START_TIMEOUT = 120.0


class WorkerLost(RuntimeError):
    """The worker running a task died (killed process, lost Dask worker) before answering."""


class Executor(Protocol):
    """What the runner needs from an executor."""

    name: str
    #: True when tasks run in the calling process (callbacks may then see every epoch).
    in_process: bool
    #: True when workers see the driver's files, so checkpoints can travel by path.
    shared_filesystem: bool

    @property
    def workers(self) -> int:
        """How many tasks may run at once."""

    def start(self) -> None:
        """Start workers (idempotent)."""

    def share(self, value: Any) -> Any:
        """A handle for `value`, sent to each worker once and passed as a task argument."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` on a worker."""

    def close(self) -> None:
        """Stop the workers; running tasks are abandoned."""


class InProcessExecutor:
    """Runs each submitted call at once, in this process (the sequential default)."""

    name = "inprocess"
    in_process = True
    shared_filesystem = True
    workers = 1

    def start(self) -> None:
        """Nothing to start."""

    def share(self, value: Any) -> Any:
        """The value itself: nothing crosses a process boundary."""
        return value

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run `fn` now and return a finished future holding its value or exception."""
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt and SystemExit stop the search, not just the trial
            future.set_exception(exc)
        return future

    def close(self) -> None:
        """Nothing to stop."""


def cpu_count() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _dumps(value: Any) -> bytes:
    """Pickle, with cloudpickle where it is installed (functions defined in a notebook)."""
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


@dataclass(frozen=True)
class _Shared:
    """Stands in a task's arguments for a value each worker holds already."""

    key: int


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
            if task is not None:
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
        task = _Task(future, self._pickle((fn, args, kwargs)), handles)
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
    threads = env.get("NAS_TORCH_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
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
            fn, args, kwargs = pickle.loads(body)
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


class DaskExecutor:
    """Trials as Dask tasks, on a running cluster (`scheduler`) or a LocalCluster of `workers`.

    With ``gpu=True`` each task asks for one ``GPU`` resource (start workers with
    ``dask worker --resources GPU=1``). Shared values are scattered to every worker once.
    """

    name = "dask"
    in_process = False

    def __init__(self, *, scheduler: str | None = None, workers: int | None = None,
                 gpu: bool = False, shared_filesystem: bool | None = None,
                 threads: int | None = None) -> None:
        if scheduler is not None and workers is not None:
            raise UserError("give either --scheduler (a running cluster) or --workers "
                            "(a local one), not both")
        if workers is not None and (isinstance(workers, bool) or int(workers) != workers
                                    or workers < 1):
            raise UserError(f"--workers must be a whole number >= 1, got {workers!r}")
        self.scheduler = scheduler
        self.n_workers = int(workers) if workers is not None else (
            None if scheduler else cpu_count())
        self.gpu = bool(gpu)
        # A local cluster shares this machine's disk; a remote one is not assumed to.
        self.shared_filesystem = scheduler is None if shared_filesystem is None \
            else bool(shared_filesystem)
        self.threads = threads if threads is not None else (
            max(1, cpu_count() // self.n_workers) if self.n_workers else None)
        self.client: Any = None
        self.cluster: Any = None
        self._scattered: dict[int, tuple[Any, Any]] = {}

    resources_key: ClassVar[str] = "GPU"

    def start(self) -> None:
        """Connect to the scheduler, or start the local cluster."""
        if self.client is not None:
            return
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise UserError("the dask executor needs Dask: pip install 'nas-engine[distributed]'"
                            ) from None
        if self.scheduler is not None:
            try:
                self.client = Client(self.scheduler, timeout=30)
            except (OSError, TimeoutError, ValueError) as exc:
                raise UserError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}"
                                ) from None
            return
        # Our own cluster: a task whose worker dies comes straight back to the runner, which
        # counts its retries (a remote scheduler applies its own allowed-failures first).
        # Dask's housekeeping (a stack-sampling profiler at 100 Hz, event-loop ticks at 50 Hz,
        # system and memory monitors) competes for the GIL and the cores with the training loop;
        # on a small machine trials ran ~30 % slower with the defaults.
        with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                              "distributed.worker.profile.enabled": False,
                              "distributed.admin.tick.interval": "1s",
                              "distributed.admin.system-monitor.interval": "5s"}):
            resources = {self.resources_key: 1} if self.gpu else None
            self.cluster = LocalCluster(
                n_workers=self.n_workers, threads_per_worker=1, processes=True,
                scheduler_port=0, dashboard_address=None, resources=resources, memory_limit=0,
                env={"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)},
            )
        self.client = Client(self.cluster)
        # Every worker up before anything is scattered: data broadcast to one worker alone
        # would be lost with it.
        self.wait_for_workers(self.n_workers or 1)

    @property
    def workers(self) -> int:
        """Tasks that may run at once: GPUs advertised (with ``gpu``) or worker threads."""
        if self.client is None:
            return self.n_workers or 1
        info = self.client.scheduler_info().get("workers", {})
        if self.gpu:
            total = sum(int(w.get("resources", {}).get(self.resources_key, 0))
                        for w in info.values())
        else:
            total = sum(int(w.get("nthreads", 1)) for w in info.values())
        return max(1, total)

    def wait_for_workers(self, n: int = 1, timeout: float = 60.0) -> None:
        """Block until `n` workers joined (a fresh cluster has none for a moment)."""
        self.start()
        try:
            self.client.wait_for_workers(n, timeout=timeout)
        except TimeoutError:
            raise UserError(f"no Dask worker joined {self.scheduler or 'the local cluster'} "
                            f"within {timeout:g}s") from None

    def share(self, value: Any) -> _Shared:
        """A handle of `value`, scattered to every worker once (again if every copy is lost)."""
        self.start()
        key = id(value)
        if key not in self._scattered:
            self._scattered[key] = (value, self.client.scatter(value, broadcast=True,
                                                               hash=False))
        return _Shared(key)

    def _resolve(self, value: Any) -> Any:
        """The Dask future behind a handle; scattered anew when the workers holding it died."""
        if not isinstance(value, _Shared):
            return value
        original, future = self._scattered[value.key]
        if future.status != "finished":
            future = self.client.scatter(original, broadcast=True, hash=False)
            self._scattered[value.key] = (original, future)
        return future

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` as a Dask task; a lost worker raises `WorkerLost`."""
        from distributed import KilledWorker

        self.start()
        done: Future[Any] = Future()
        done.set_running_or_notify_cancel()
        resources = {self.resources_key: 1} if self.gpu else None
        args = tuple(self._resolve(a) for a in args)
        kwargs = {k: self._resolve(v) for k, v in kwargs.items()}
        task = self.client.submit(_dask_call, self.threads, fn, *args, pure=False,
                                  resources=resources, **kwargs)

        def settle(f: Any) -> None:
            try:
                done.set_result(f.result())
            except KilledWorker as exc:
                done.set_exception(WorkerLost(f"Dask worker lost while running the trial: {exc}"))
            except BaseException as exc:
                # Cancelled by the scheduler: its inputs died with their workers.
                lost = f.status == "cancelled"
                done.set_exception(WorkerLost("the Dask task was cancelled (its data was "
                                              "lost with a worker)") if lost else exc)

        task.add_done_callback(settle)
        done.dask_future = task  # type: ignore[attr-defined]
        return done

    def close(self) -> None:
        """Disconnect; a local cluster is shut down."""
        client, cluster = self.client, self.cluster
        self.client = self.cluster = None
        self._scattered.clear()
        if client is not None:
            with contextlib.suppress(Exception):
                client.close(timeout=10)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=10)

    def __enter__(self) -> DaskExecutor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dask_call(threads: int | None, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """A task on a Dask worker: give torch its share of the cores, then run `fn`."""
    if threads:
        import torch

        # Every time: OpenMP keeps the setting per thread, and Dask may run a task on a new one.
        torch.set_num_threads(int(threads))
    return fn(*args, **kwargs)


EXECUTORS: dict[str, Callable[..., Executor]] = {
    "inprocess": lambda **_: InProcessExecutor(),
    "local": lambda *, workers=None, gpus=None, **_: LocalExecutor(workers, gpus=gpus),
    "dask": lambda *, workers=None, scheduler=None, gpus=None, **_: DaskExecutor(
        scheduler=scheduler, workers=workers, gpu=bool(gpus)),
}


def make_executor(name: str = "inprocess", *, workers: int | None = None,
                  scheduler: str | None = None, gpus: Sequence[int] | None = None) -> Executor:
    """The executor called `name` (inprocess, local, dask), from the command line's options."""
    if scheduler is not None and name != "dask":
        raise UserError("--scheduler needs --executor dask")
    if name == "inprocess" and workers not in (None, 1):
        name = "local"  # --workers N alone means N local worker processes
    try:
        factory = EXECUTORS[name]
    except KeyError:
        raise UserError(f"unknown executor {name!r}; available: {', '.join(EXECUTORS)}"
                        ) from None
    return factory(workers=workers, scheduler=scheduler, gpus=gpus)
