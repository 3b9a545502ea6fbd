"""The process side of the local executor: a spawned worker's main loop, and the driver's
handle on one worker (its process, its pipe, the thread reading its answers)."""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.executors.base import _Shared
from nas.executors.packing import release_device_memory

if TYPE_CHECKING:
    from nas.executors.local import LocalExecutor


@dataclass
class _Task:
    future: Future[Any]
    payload: bytes
    shared: tuple[_Shared, ...]
    key: int = 0
    memory_mb: float | None = None  # its estimated peak, for packing by memory
    alone: bool = False  # run again alone on its device after running out of memory
    started: bool = False  # its future is running (it may be queued again, alone)


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
                self.executor.answered(task, message)
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
        fn = args = kwargs = None  # bound even when unpickling fails, for the `del` below
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
        # Before answering, as the driver measures the GPU then: nothing of the task may hold
        # its tensors (a traceback's frames do).
        del fn, args, kwargs, answer
        release_device_memory()
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
