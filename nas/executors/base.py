"""What every executor shares: the `Executor` protocol, `WorkerLost`, the in-process executor,
and `make_executor`, which finds an executor by name in `EXECUTORS`.

Nothing here imports torch or dask: a spawned worker sets its thread count and visible GPU
before torch is first imported.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from nas.errors import UserError
from nas.registry import Registry


class DeadlinePassed(RuntimeError):
    """The executor stopped a task that ran past its deadline (`stop`); it is not retried."""


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

    def retune(self) -> str:
        """Measure the machine again when trials ran far off their predicted time, and adapt
        (the torch threads); what changed, in one line, or "" when nothing did. Optional: an
        executor without it is never retuned."""


class InProcessExecutor:
    """Runs each submitted call at once, in this process (the sequential default)."""

    name = "inprocess"
    in_process = True
    shared_filesystem = True
    workers = 1

    def __init__(self, *, threads: int | None = None, reason: str = "",
                 measured: bool = False) -> None:
        """`threads`: torch threads for the trials (`reason`: why that many; `measured`: timed
        on this machine, so `retune` may time them again); None: measured when the search
        starts (`nas.executors.threads.choose_threads`)."""
        if threads is not None and threads < 1:
            raise UserError(f"threads must be >= 1, got {threads!r}")
        self._given = threads
        self._measured = measured or threads is None
        #: The torch threads the trials run with, and why; known once started.
        self.threads = threads
        self.threads_reason = reason or ("" if threads is None else f"{threads} (given)")
        self._before: int | None = None

    def start(self) -> None:
        """Set torch's threads for the trials: the given count, or the fastest measured."""
        import torch

        from nas.executors.threads import choose_threads

        if self._before is None:
            self._before = torch.get_num_threads()
        if self._given is None:
            choice = choose_threads()
            self.threads, self.threads_reason = choice.threads, choice.reason
            self._measured = choice.measured
        assert self.threads is not None
        torch.set_num_threads(self.threads)

    def retune(self) -> str:
        """Time the thread counts again (unless the user or the environment set them) and
        switch to the fastest now; what changed, or ""."""
        import torch

        from nas.executors.threads import choose_threads

        if not self._measured or self.threads is None or self._before is None:
            return ""
        choice = choose_threads()
        if choice.threads == self.threads:
            return ""
        before, self.threads, self.threads_reason = self.threads, choice.threads, choice.reason
        torch.set_num_threads(self.threads)
        return f"torch threads {before} -> {choice.reason}"

    def _fit_to_peers(self) -> None:
        """Run this call at the measured count, or fewer while searches started since hold
        cores (`within_peers`); back up once they end. Their threads and ours beyond the cores
        would wait on each other: an epoch timed 5-14x as long (docs/decisions.md)."""
        if not self._measured or self.threads is None or self.threads <= 1 \
                or self._before is None:
            return
        import torch

        from nas.executors.threads import claim, within_peers

        now = within_peers(self.threads)
        if now != torch.get_num_threads():
            torch.set_num_threads(now)
            claim(now)

    def share(self, value: Any) -> Any:
        """The value itself: nothing crosses a process boundary."""
        return value

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run `fn` now and return a finished future holding its value or exception."""
        self._fit_to_peers()
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt and SystemExit stop the search, not just the trial
            future.set_exception(exc)
        return future

    def close(self) -> None:
        """Give torch back the threads it had before `start`."""
        if self._before is not None:
            import torch

            torch.set_num_threads(self._before)
            self._before = None


@dataclass(frozen=True)
class _Shared:
    """Stands in a task's arguments for a value each worker holds already."""

    key: int


EXECUTORS: Registry[Callable[..., Executor]] = Registry("executor", sort=False)
"""Executor factories by name; each takes the keyword options of `make_executor`."""


@EXECUTORS.register("inprocess")
def _inprocess(*, threads: int | None = None, reason: str = "", measured: bool = False,
               **_: Any) -> Executor:
    """Each trial in this process, one at a time (the sequential default)."""
    return InProcessExecutor(threads=threads, reason=reason, measured=measured)


def make_executor(name: str = "inprocess", *, workers: int | None = None,
                  scheduler: str | None = None, gpus: Sequence[int] | None = None,
                  threads: int | None = None, reason: str = "",
                  measured: bool = False) -> Executor:
    """The executor called `name` (inprocess, local, dask), from the command line's options;
    `threads` (and why: `reason`; `measured`: timed here) applies to the in-process one."""
    if scheduler is not None and name != "dask":
        raise UserError("--scheduler needs --executor dask")
    if name == "inprocess" and workers not in (None, 1):
        name = "local"  # --workers N alone means N local worker processes
    if name == "inprocess":
        return EXECUTORS.get(name)(threads=threads, reason=reason, measured=measured)
    return EXECUTORS.get(name)(workers=workers, scheduler=scheduler, gpus=gpus)


def describe(executor: Executor) -> dict[str, Any]:
    """What the journal records of an executor: its name, workers and torch threads."""
    return {"name": executor.name, "workers": executor.workers,
            "threads": getattr(executor, "threads", None),
            "threads_reason": getattr(executor, "threads_reason", "")}


def check_main_guard(what: str) -> None:
    """Refuse to start worker processes from a script whose search call is not under
    ``if __name__ == "__main__":``: each spawned worker re-runs the script's top level, so every
    worker would start a search of its own and never serve a trial."""
    import __main__

    spec = getattr(__main__, "__spec__", None)
    path = getattr(__main__, "__file__", None)
    # What spawn re-runs: a script's top level; not a package's __main__ nor an interpreter.
    if path is None or (spec is not None and spec.name.endswith("__main__")):
        return
    frame = sys._getframe(1)
    outermost = None
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__":
            outermost = frame
        frame = frame.f_back
    if outermost is None:
        return
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return
    line = outermost.f_lineno
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _tests_main(node.test) and node.body \
                and node.body[0].lineno <= line <= (node.body[-1].end_lineno or line):
            return
    raise UserError(f"{path}, line {line}: {what} starts worker processes, and each re-runs this "
                    "script's top level; put the code that starts the search under "
                    "`if __name__ == \"__main__\":`")


def _tests_main(test: ast.expr) -> bool:
    """Whether `test` is ``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    texts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(texts) == 1
