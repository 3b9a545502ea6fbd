"""Parallel and distributed evaluation: local worker processes and a Dask LocalCluster."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from ConfigSpace import ConfigurationSpace, Float

import spaces
from nas import optimize, resume, search
from nas.cli import main
from nas.engine.callbacks import Callback
from nas.errors import UserError
from nas.executors import DaskExecutor, LocalExecutor, WorkerLost, cpu_count, make_executor
from nas.storage import Storage
from nas.types import TrialStatus
from tests.helpers import (
    blobs,
    kill_self,
    kill_worker_for_small_x,
    pid_and_threads,
    slow_quadratic,
)

distributed = pytest.importorskip("distributed")


def _space() -> ConfigurationSpace:
    space = ConfigurationSpace(name="quad")
    space.add([Float("x", (0.0, 1.0)), Float("y", (0.0, 1.0))])
    return space


def _key(record):  # what a trial asked and what it got, whoever ran it
    return record.id, record.trial.to_dict(), record.result.loss


# -- the local executor on its own ----------------------------------------------------------------


def test_local_workers_split_the_cores_and_receive_shared_values_once() -> None:
    with LocalExecutor(2) as ex:
        handle = ex.share(list(range(100)))
        futures = [ex.submit(pid_and_threads, handle, i) for i in range(6)]
        answers = [f.result(timeout=120) for f in futures]
    assert sorted(a[3] for a in answers) == list(range(6))
    assert len({a[0] for a in answers}) == 2  # both processes worked
    assert {a[1] for a in answers} == {max(1, cpu_count() // 2)}
    # Each process resolved the handle to one object of its own, not a fresh copy per task.
    held: dict[int, set[int]] = {}
    for pid, _, ident, _ in answers:
        held.setdefault(pid, set()).add(ident)
    assert all(len(ids) == 1 for ids in held.values())


def test_local_workers_are_pinned_one_per_gpu() -> None:
    ex = LocalExecutor(gpus=[0, 1, 2])  # nothing starts before `start`
    assert ex.workers == 3
    assert [ex.env_for(i)["CUDA_VISIBLE_DEVICES"] for i in range(4)] == ["0", "1", "2", "0"]
    assert ex.pids() == []


def test_a_killed_worker_fails_its_task_and_is_replaced() -> None:
    with LocalExecutor(1) as ex:
        handle = ex.share("data")
        with pytest.raises(WorkerLost, match="died"):
            ex.submit(kill_self, handle).result(timeout=120)
        assert ex.submit(pid_and_threads, handle, 7).result(timeout=120)[3] == 7
        assert ex.lost == 1


def test_dask_trials_on_gpus_ask_for_one_gpu_resource_each() -> None:
    # A GPU resource is a label to Dask: a CPU-only local cluster can advertise it too.
    with DaskExecutor(workers=2, gpu=True) as ex:
        assert ex.workers == 2  # counted in GPUs, not threads
        handle = ex.share("data")
        future = ex.submit(pid_and_threads, handle, 3)
        assert future.result(timeout=120)[3] == 3
        assert ex.client.run_on_scheduler(_resources_of, future.dask_future.key) == {"GPU": 1}


def test_workers_lost_while_dask_resends_the_data_lose_the_trial_not_the_search() -> None:
    # Three kills of busy workers ~3 s apart crashed the driver in scatter (CommClosedError).
    from distributed.comm.core import CommClosedError

    class DeadData:
        status = "lost"  # every worker holding the shared data died

    class Client:
        def scatter(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise CommClosedError("in <TCP (closed) ConnectionPool.scatter>: Stream is closed")

    ex = DaskExecutor(workers=1)
    ex.client = Client()  # as if started; nothing else is reached
    ex._scattered[1] = ("data", DeadData())
    from nas.executors.base import _Shared

    future = ex.submit(pid_and_threads, _Shared(1), 3)
    with pytest.raises(WorkerLost, match="while sending the trial's data"):
        future.result(timeout=5)
    ex.client = None


def _resources_of(key: str, dask_scheduler=None) -> dict:  # runs on the scheduler
    return dict(dask_scheduler.tasks[key].resource_restrictions or {})


def test_executor_options_are_checked() -> None:
    with pytest.raises(UserError, match="--workers"):
        LocalExecutor(0)
    with pytest.raises(UserError, match="--scheduler needs --executor dask"):
        make_executor("local", scheduler="tcp://host:8786")
    with pytest.raises(UserError, match="unknown executor 'ray'"):
        make_executor("ray")
    with pytest.raises(UserError, match="not both"):
        DaskExecutor(scheduler="tcp://host:8786", workers=2)
    assert make_executor("inprocess", workers=3).name == "local"


# -- searches on several workers ----------------------------------------------------------------


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_two_workers_give_the_same_results_as_one_process(tmp_path: Path, executor: str) -> None:
    kw = {"searcher": "random", "budget": "12trials", "seed": 4}
    alone = optimize(slow_quadratic, _space(), storage=tmp_path / "a.db", **kw)
    pair = optimize(slow_quadratic, _space(), storage=tmp_path / "b.db", executor=executor,
                    workers=2, **kw)
    assert sorted(map(_key, alone.trials)) == sorted(map(_key, pair.trials))
    assert len({r.worker for r in pair.trials}) == 2
    with Storage.open(tmp_path / "b.db") as store:
        meta = store.meta("executor")
        assert (meta["name"], meta["workers"]) == (executor, 2)


def test_trained_models_are_the_same_on_local_workers(tmp_path: Path) -> None:
    space = spaces.residual_mlp(width=(8, 32), n_blocks=(1, 2))
    kw = {"trial_budget": "2ep", "seed": 3, "progress": False}
    alone = search(space, blobs(), "random", "4trials", storage=tmp_path / "a.db", **kw)
    pair = search(space, blobs(), "random", "4trials", storage=tmp_path / "b.db",
                  executor="local", workers=2, **kw)
    assert [_key(r) for r in alone.trials] == [_key(r) for r in pair.trials]
    assert alone.test_accuracy == pair.test_accuracy


def test_a_time_budget_is_wall_clock_time_with_several_workers(tmp_path: Path) -> None:
    # Workers started (torch imported) before the clock: on a slow machine their start-up alone
    # can take most of an 8 s budget, and this test is about what the running trials are charged.
    with LocalExecutor(workers=2) as executor:
        for future in [executor.submit(pid_and_threads, None, i) for i in range(2)]:
            future.result(timeout=120)
        start = time.monotonic()
        result = optimize(slow_quadratic, _space(), "random", "8s", max_budget=10, seed=0,
                          storage=tmp_path / "run.db", executor=executor)
        wall = time.monotonic() - start
    assert 7.5 <= result.spent <= min(wall, 8.5)
    # The charge is the wall time, not the trials' seconds added up: two trials ran at once
    # (their journaled spans overlap), whatever else slowed the machine down.
    spans = sorted((r.started_at, r.finished_at, r.worker) for r in result.trials
                   if r.started_at is not None and r.finished_at is not None)
    assert any(a[1] > b[0] and a[2] != b[2] for a, b in itertools.pairwise(spans))
    assert len({r.worker for r in result.trials}) == 2


class _StopAfter(Callback):
    """Ctrl-C after `n` finished trials."""

    def __init__(self, n: int) -> None:
        self.n = n

    def on_trial_end(self, *args: object) -> None:
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt


@pytest.mark.parametrize("searcher", ["hyperband", "asha"])
def test_an_asynchronous_search_resumes_by_replaying_asks_and_tells_in_order(
        tmp_path: Path, searcher: str) -> None:
    db = tmp_path / "run.db"
    kw = {"min_budget": 1, "max_budget": 9, "seed": 2}
    with pytest.raises(KeyboardInterrupt):
        optimize(slow_quadratic, _space(), searcher, "120u", storage=db, executor="local",
                 workers=2, callbacks=[_StopAfter(12)], **kw)
    with Storage.open(db) as store:
        records = store.trials()
    # Asynchronous: some trial was asked while an earlier one was still out.
    assert any(t.tell_seq is None or r.ask_seq < t.tell_seq
               for t in records for r in records if r.id > t.id)
    assert any(r.status is TrialStatus.INTERRUPTED for r in records)
    done = resume(db, objective=slow_quadratic, executor="local", workers=2, progress=False)
    assert done.spent <= 120 + 1e-9
    assert all(r.status is TrialStatus.OK for r in done.trials)
    by_id = {r.id: r for r in done.trials}
    for r in done.trials:  # a promoted trial was asked only after its parent was told
        if r.trial.parent is not None:
            assert by_id[r.trial.parent].tell_seq < r.ask_seq


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_a_worker_killed_mid_trial_gets_its_trial_run_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, executor: str) -> None:
    marker = tmp_path / "killed"
    monkeypatch.setenv("NAS_TEST_KILL_ONCE", str(marker))
    result = optimize(kill_worker_for_small_x, _space(), "random", "10trials", seed=1,
                      storage=tmp_path / "run.db", executor=executor, workers=2)
    assert any(r.trial.config["x"] < 0.25 for r in result.trials)  # the seed kills one
    assert marker.exists()
    assert len(result.trials) == 10
    assert all(r.status is TrialStatus.OK for r in result.trials), \
        [(r.id, r.status.value, r.result.error) for r in result.trials if not r.result.ok]
    again = [r for r in result.trials if "attempts" in r.result.metrics]
    # Each lost attempt ran once more, and the killing trial was among them.
    assert again and all(r.result.metrics["attempts"] == 2 for r in again)
    assert any(r.trial.config["x"] < 0.25 for r in again)
    if executor == "local":  # separate processes: only the killed one ran again
        assert len(again) == 1
    # On Dask a neighbour fetching the shared objective from the dying worker, or a task it
    # had queued, may lose its attempt too.


def test_a_worker_killed_from_outside_mid_trial_costs_no_result(tmp_path: Path) -> None:
    import os
    import signal
    import threading

    ex = LocalExecutor(2)
    killed: list[int] = []

    def kill_one_busy_worker() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            busy = ex.busy_pids()
            if busy and len(ex.pids()) == 2:
                time.sleep(0.5)  # well into a trial: every one takes at least 0.2 s
                busy = ex.busy_pids()
                if busy:
                    os.kill(busy[0], signal.SIGKILL)
                    killed.append(busy[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_busy_worker)
    with ex:
        killer.start()
        result = optimize(slow_quadratic, _space(), "random", "20trials", max_budget=10, seed=5,
                          storage=tmp_path / "run.db", executor=ex)
        killer.join()
    assert killed and ex.lost == 1
    assert len(result.trials) == 20 and all(r.status is TrialStatus.OK for r in result.trials)
    assert [r.result.metrics.get("attempts") for r in result.trials].count(2) == 1


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_a_trial_that_keeps_killing_its_worker_fails_and_the_search_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, executor: str) -> None:
    monkeypatch.delenv("NAS_TEST_KILL_ONCE", raising=False)
    # Seed 28 draws one x < 0.25 of 8, the fifth: three worker deaths (each a new process),
    # then trials that must still run.
    result = optimize(kill_worker_for_small_x, _space(), "random", "8trials", seed=28,
                      storage=tmp_path / "run.db", executor=executor, workers=2)
    assert len(result.trials) == 8
    lost = [r for r in result.trials if r.trial.config["x"] < 0.25]
    assert [r.id for r in lost] == [4]
    for r in result.trials:
        if r in lost:
            assert r.status is TrialStatus.FAILED
            assert r.result.error.startswith("worker lost (3 attempts)")
        else:
            assert r.status is TrialStatus.OK, (r.id, r.result.error, r.result.metrics)
    assert result.best is not None and result.best.trial.config["x"] >= 0.25


def test_dask_local_cluster_runs_a_training_search_with_continued_trials(tmp_path: Path) -> None:
    space = spaces.residual_mlp(width=(8, 16), n_blocks=1)
    # No shared disk assumed: parents' checkpoints travel to the workers as bytes.
    with DaskExecutor(workers=2, shared_filesystem=False) as ex:
        ex.wait_for_workers(2)
        result = search(space, blobs(), "hyperband", "20trials", trial_budget="9ep",
                        storage=tmp_path / "run.db", executor=ex, progress=False, seed=1)
        assert ex.client is not None  # given as an object: the search leaves it open
        # One task per worker thread: none waits on a worker behind another (and dies with it).
        assert ex.client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.WORKER_SATURATION
                                          ) == 1.0
    assert len(result.trials) == 20 and all(r.status is TrialStatus.OK for r in result.trials)
    by_id = {r.id: r for r in result.trials}
    promoted = [r for r in result.trials if r.trial.parent is not None]
    assert promoted
    for r in promoted:  # continued: only the increment over the parent was trained
        assert r.result.epochs == pytest.approx(r.trial.budget - by_id[r.trial.parent].trial.budget)
    assert len({r.worker for r in result.trials}) == 2
    assert result.test_accuracy is not None and result.load_best_model() is not None


def test_cli_search_on_local_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["search", "--data", "synthetic", "--budget", "4trials", "--trial-budget", "1ep",
                 "--set", "width=16:32", "--set", "n_blocks=1", "--workers", "2",
                 "--name", "par", "--no-progress"])
    assert code == 0
    with Storage.open(tmp_path / "runs" / "par.db") as store:
        meta = store.meta("executor")
        assert (meta["name"], meta["workers"]) == ("local", 2)
        assert len(store.trials()) == 4
    code = main(["search", "--data", "digits", "--workers", "0", "--name", "bad"])
    assert code == 2
    assert capsys.readouterr().err.strip().startswith("nas: error: --workers must be at least 1")
