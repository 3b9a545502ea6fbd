"""Trials as Dask tasks, on a running cluster or a local one; Dask is imported on first use."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ClassVar

from nas.errors import UserError
from nas.executors.base import WorkerLost, _Shared, check_main_guard
from nas.executors.threads import cpu_count

#: Seconds a re-sending of the shared data may take before the trial counts as lost.
SCATTER_TIMEOUT = 60


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
        check_main_guard("executor 'dask' with a local cluster")
        # Our own cluster: a task whose worker dies comes straight back to the runner, which
        # counts its retries (a remote scheduler applies its own allowed-failures first). One
        # task per worker thread at a time (Dask's default saturation sends a 1-thread worker
        # two): a trial waiting behind another on a worker that dies was counted lost with it,
        # and one that kept waiting behind a trial killing its worker failed unrun.
        # Dask's housekeeping (a stack-sampling profiler at 100 Hz, event-loop ticks at 50 Hz,
        # system and memory monitors) competes for the GIL and the cores with the training loop;
        # on a small machine trials ran ~30 % slower with the defaults.
        with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                              "distributed.scheduler.worker-saturation": 1.0,
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
            future = self.client.scatter(original, broadcast=True, hash=False,
                                         timeout=SCATTER_TIMEOUT)
            self._scattered[value.key] = (original, future)
        return future

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` as a Dask task; a lost worker raises `WorkerLost`."""
        from distributed import KilledWorker

        self.start()
        done: Future[Any] = Future()
        done.set_running_or_notify_cancel()
        resources = {self.resources_key: 1} if self.gpu else None
        try:
            args = tuple(self._resolve(a) for a in args)
            kwargs = {k: self._resolve(v) for k, v in kwargs.items()}
            task = self.client.submit(_dask_call, self.threads, fn, *args, pure=False,
                                      resources=resources, **kwargs)
        except (OSError, TimeoutError) as exc:  # CommClosedError is an OSError
            # Workers died while the data was sent again: the trial is lost like its worker,
            # and runs again (re-sending then) instead of ending the search.
            done.set_exception(WorkerLost(f"Dask workers lost while sending the trial's data: "
                                          f"{type(exc).__name__}: {exc}"))
            return done

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

    def retune(self) -> str:
        """Nothing: a cluster's workers run on machines this process cannot watch."""
        return ""

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
