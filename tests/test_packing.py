"""Several trials per device, admitted by measured memory (`nas.executors.packing`).

Everything runs on the CPU: GPUs are fake ids (only ``CUDA_VISIBLE_DEVICES`` in the workers)
and their memory a `FakeDeviceMemory` counter.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from ConfigSpace import ConfigurationSpace, Float

import spaces
from nas import optimize
from nas.budget import Budget
from nas.errors import UserError
from nas.executors import (
    DeadlinePassed,
    InProcessExecutor,
    LocalExecutor,
    make_executor,
    packing,
)
from nas.executors.packing import (
    Correction,
    FakeDeviceMemory,
    Packer,
    estimate_mb,
    is_out_of_memory,
    memory_hint,
)
from nas.executors.threads import cpu_count
from nas.objective import Evaluation, FunctionObjective, TrainingObjective
from nas.types import Result, Trial, TrialStatus
from tests.helpers import blobs

# -- tasks run by worker processes (module level: workers import them by name) -----------------


def nap(seconds: float) -> tuple[float, float]:
    """Sleep; when it ran (wall clock, comparable across processes)."""
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


def oom_once(marker: str, seconds: float) -> Evaluation | tuple[float, float]:
    """Out of memory (as the trainer reports it) the first time, then `nap`."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return nap(seconds)
    return Evaluation(Result.failure(TrialStatus.FAILED, "out of memory"))


def oom_always(folder: str) -> Evaluation:
    """Out of memory every time; leaves a file per attempt in `folder`."""
    Path(folder, f"{os.getpid()}-{time.time_ns()}").touch()
    return Evaluation(Result.failure(TrialStatus.FAILED, "out of memory"))


def timed(config: dict, budget: float) -> dict:
    """A 0.3 s trial reporting when it ran and a peak 1.2 times `_hint`'s estimate."""
    start, end = nap(0.3)
    return {"loss": config["x"], "start": start, "end": end,
            "peak_memory_mb": 1.2 * _hint(config)}


def _hint(config: dict) -> float:
    return 700.0 if config["x"] > 0.5 else 300.0


class _Hinting(LocalExecutor):
    """Passes each trial's memory estimate, as the search loop does (`packing.memory_hint`)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        trial = args[1]
        return super().submit(fn, *args, memory_mb=_hint(trial.config), **kwargs)


def _mlp(width: int, batch_size: int) -> dict:
    config = dict(spaces.residual_mlp().get_default_configuration())
    return {**config, "width": width, "batch_size": batch_size}


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


# -- the estimate and its correction -------------------------------------------------------------


def test_the_estimate_grows_with_width_and_batch() -> None:
    widths = [estimate_mb(_mlp(w, 64), (32,), 10) for w in (16, 64, 256)]
    assert widths[0] < widths[1] < widths[2]
    # Training's activations outgrow evaluation's with the batch.
    batches = [estimate_mb(_mlp(64, b), (32,), 10, eval_batch_size=64) for b in (64, 512, 2048)]
    assert batches[0] < batches[1] < batches[2]
    assert estimate_mb(_mlp(64, 64), (32,), 10, data_mb=100) == pytest.approx(
        100 + estimate_mb(_mlp(64, 64), (32,), 10))
    # Weights, grads and two Adam states: 16 bytes per parameter at least.
    params = spaces.model_size(_mlp(256, 64), (32,), 10, flops=False)[0]
    assert widths[2] >= 16 * params / 2**20


def test_a_trial_is_estimated_for_a_packing_executor_only() -> None:
    data = blobs(n=60)
    objective = TrainingObjective(data, Budget.parse("1ep"))
    trial = Trial(id=0, config=_mlp(32, 64))
    packed = LocalExecutor(workers_per_device=2, gpus=[0], memory=FakeDeviceMemory(1000))
    hint = memory_hint(packed, objective, trial)
    data_mb = sum(t.numel() * t.element_size() for t in
                  (data.x_train, data.y_train, data.x_val, data.y_val)) / 2**20
    assert hint["memory_mb"] == pytest.approx(estimate_mb(
        trial.config, data.input_shape, data.num_classes, data_mb=data_mb))
    assert memory_hint(InProcessExecutor(threads=1), objective, trial) == {}
    assert memory_hint(LocalExecutor(2), objective, trial) == {}
    assert memory_hint(packed, FunctionObjective(lambda c, b: 0.0), trial) == {}


def test_the_correction_follows_the_recorded_peaks() -> None:
    correction = Correction()
    assert correction.factor(100) == 1.0  # no evidence yet
    for peak in (150, 200, 250):
        correction.record(100, peak)
    assert correction.factor(120) == pytest.approx(2.0)  # the median of similar trials
    correction.record(10_000, 5_000)
    assert correction.factor(9_000) == pytest.approx(0.5)  # its own kind, not the small ones
    assert correction.factor(1_000) == pytest.approx(1.75)  # none similar: all of them

    packer = Packer(FakeDeviceMemory(10_000), [0])
    assert packer.reservation_mb(100) == 100
    measured = Evaluation(Result(loss=0.1, metrics={"peak_memory_mb": 300.0}))
    assert packer.admit(1, 100, [0]) == 0
    assert packer.settle(1, 100, True, measured, retried=False) is False
    assert packer.reservation_mb(100) == pytest.approx(300)


# -- admission on a fake device ------------------------------------------------------------------


def test_small_trials_share_a_device_and_a_big_one_waits_for_memory() -> None:
    memory = FakeDeviceMemory(1000)  # 900 usable with the 10 % margin
    packer = Packer(memory, [0])
    assert packer.admit(1, 300, [0]) == 0
    assert packer.admit(2, 300, [0]) == 0
    assert packer.admit(3, 700, [0]) is None  # 600 + 700 > 900: waits
    packer.release(1)
    assert packer.admit(3, 700, [0]) is None  # 300 + 700 still > 900
    packer.release(2)
    assert packer.admit(3, 700, [0]) == 0
    assert packer.reserved_mb(0) == 700
    # What other programs use counts: measured when none of ours runs.
    packer.release(3)
    memory.used[0] = 300
    assert packer.admit(4, 300, [0]) == 0
    assert packer.admit(5, 300, [0]) == 0
    assert packer.admit(6, 1, [0]) is None


def test_a_trial_goes_where_it_leaves_the_most_room_and_only_where_a_worker_is_free() -> None:
    packer = Packer(FakeDeviceMemory({0: 1000, 1: 2000}), [0, 1])
    assert packer.admit(1, 100, [0, 1]) == 1
    assert packer.admit(2, 100, [0]) == 0  # device 1 has no free worker
    assert packer.admit(3, 1500, [0, 1]) == 1
    assert packer.admit(4, 500, [1]) is None


def test_out_of_memory_runs_again_once_alone_then_fails() -> None:
    packer = Packer(FakeDeviceMemory(1000), [0])
    oom = Evaluation(Result.failure(TrialStatus.FAILED, "out of memory"))
    assert packer.admit(1, 100, [0]) == 0
    assert packer.admit(2, 100, [0]) == 0
    assert packer.settle(1, 100, True, oom, retried=False) is True  # again, alone
    assert packer.admit(1, 100, [0], alone=True) is None  # trial 2 still runs there
    packer.release(2)
    assert packer.admit(1, 100, [0], alone=True) == 0
    assert packer.admit(3, 1, [0]) is None  # nothing joins a trial running alone
    assert packer.settle(1, 100, True, oom, retried=True) is False  # failed for good
    assert packer.running(0) == 0 and packer.admit(3, 1, [0]) == 0
    # Too big to fit beside anything: runs alone at once, so running out is final.
    assert packer.admit(4, 5000, [0]) is None
    packer.release(3)
    assert packer.admit(4, 5000, [0]) == 0
    assert packer.settle(4, 5000, True, oom, retried=False) is False
    # The forms an out-of-memory failure takes.
    assert is_out_of_memory(False, torch.OutOfMemoryError("CUDA out of memory. Tried ..."))
    assert is_out_of_memory(True, Result.failure(
        TrialStatus.FAILED, "OutOfMemoryError: CUDA out of memory\nTraceback ..."))
    assert not is_out_of_memory(True, Result.failure(TrialStatus.FAILED,
                                                     "ValueError: x\nout of memory"))
    assert not is_out_of_memory(False, ValueError("bad shape"))


def test_auto_fits_as_many_typical_trials_as_memory_allows() -> None:
    ex = LocalExecutor(workers_per_device="auto", gpus=[0], memory=FakeDeviceMemory(10_000))
    cap = packing.auto_cap(1, cpu_count())
    assert ex.workers == 1  # nothing estimated yet
    assert ex.packer is not None and ex.packer.admit(1, 3_000, [0]) == 0
    assert ex.workers == min(cap, 3)  # 9000 usable / 3000
    assert packing.auto_workers_per_device(9_000, 100, 8) == 8  # capped
    assert packing.auto_cap(2, 6) == 3 and packing.auto_cap(4, 2) == 1


def test_packing_options_are_checked() -> None:
    fake = FakeDeviceMemory(1000)
    with pytest.raises(UserError, match="needs trials on GPUs"):
        LocalExecutor(workers_per_device=2)
    with pytest.raises(UserError, match="not both"):
        LocalExecutor(3, workers_per_device=2, gpus=[0])
    with pytest.raises(UserError, match="whole number >= 1 or 'auto'"):
        LocalExecutor(workers_per_device=0, gpus=[0], memory=fake)
    with pytest.raises(UserError, match="needs --executor local"):
        make_executor("dask", workers_per_device=2, gpus=[0])
    ex = make_executor("inprocess", workers_per_device="2", gpus=[0, 1], memory=fake)
    assert isinstance(ex, LocalExecutor) and ex.workers == 4 and ex.packs_memory
    assert [ex.env_for(i)["CUDA_VISIBLE_DEVICES"] for i in range(4)] == ["0", "1", "0", "1"]
    assert ex.pids() == []  # nothing starts before `start`
    assert make_executor("local", workers=2).packs_memory is False
    with pytest.raises(ValueError, match="memory_mb"):
        ex.submit(nap, 0.0, memory_mb=-1)


def test_device_memory_is_released_only_where_cuda_was_used(monkeypatch) -> None:
    emptied: list[bool] = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    packing.release_device_memory()
    assert emptied == []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    packing.release_device_memory()
    assert emptied == [True]


# -- worker processes on one fake GPU ------------------------------------------------------------


@pytest.mark.timeout(120)  # a reservation never released makes tasks wait for ever
def test_workers_share_a_fake_gpu_and_a_task_out_of_memory_reruns_alone(tmp_path: Path) -> None:
    fake = FakeDeviceMemory(1000)
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    with LocalExecutor(workers_per_device=2, gpus=[0], memory=fake) as ex:
        assert ex.packer is not None
        again = ex.submit(oom_once, str(tmp_path / "marker"), 0.6, memory_mb=100)
        naps = [ex.submit(nap, 0.6, memory_mb=100) for _ in range(3)]
        lost = ex.submit(oom_always, str(attempts), memory_mb=100)
        alone = again.result(timeout=60)
        ran = [f.result(timeout=60) for f in naps]
        failed = lost.result(timeout=60)
        # Nothing ran beside the retry; it ran once more only.
        assert isinstance(alone, tuple) and not any(_overlap(alone, r) for r in ran)
        assert failed.result.error == "out of memory" and len(list(attempts.iterdir())) == 2
        # Finished trials (and trials waiting for promotion, which do not run) hold nothing.
        assert ex.packer.running(0) == 0 and ex.packer.reserved_mb(0) == 0
        assert ex.packer.admit(99, 800, [0]) == 0
        # A task waiting for memory past its deadline leaves the queue.
        waiting = ex.submit(nap, 0.0, memory_mb=500)
        time.sleep(0.2)
        assert not waiting.done() and ex.stop(waiting)
        assert isinstance(waiting.exception(timeout=1), DeadlinePassed)
        ex.packer.release(99)


@pytest.mark.timeout(120)
def test_a_search_with_two_workers_on_one_fake_gpu_runs_to_the_end(tmp_path: Path) -> None:
    space = ConfigurationSpace(name="packed")
    space.add([Float("x", (0.0, 1.0))])
    # 900 MB usable: two small trials (360 once corrected) together, a big one (840) alone.
    with _Hinting(workers_per_device=2, gpus=[0], memory=FakeDeviceMemory(1000)) as ex:
        result = optimize(timed, space, "random", "8trials", seed=3,
                          storage=tmp_path / "run.db", executor=ex)
        assert ex.packer is not None and ex.packer.reserved_mb(0) == 0
        assert ex.packer.correction.factor(300) == pytest.approx(1.2)  # learned from workers
    assert len(result.trials) == 8
    assert all(r.status is TrialStatus.OK for r in result.trials)
    spans = [(r.result.metrics["start"], r.result.metrics["end"], r.trial.config["x"] > 0.5)
             for r in result.trials]
    assert any(big for *_, big in spans) and not all(big for *_, big in spans)
    for i, (s, e, big) in enumerate(spans):
        if big:
            assert not any(_overlap((s, e), (s2, e2)) for j, (s2, e2, _) in enumerate(spans)
                           if j != i)
    assert not torch.cuda.is_initialized()  # nothing here touched CUDA
