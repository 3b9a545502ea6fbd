"""Searches that hold on any machine and budget: measured threads, a time budget that is wall
clock from the call, a capped probe, the cost model's refusals and re-plans, the full-budget
default first, and plain baselines beside (or instead of) the search's model."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import nas
import searchers
import spaces
from nas.budget import Budget
from nas.defaults import replanned_epochs
from nas.engine.costs import RECENT, CostModel, CostPlan, Replan
from nas.engine.ensemble import winning_baseline
from nas.engine.ledger import Ledger
from nas.errors import SearchInterrupted
from nas.executors import InProcessExecutor
from nas.executors import threads as threads_module
from nas.executors.threads import choose_threads
from nas.journal import JournalView
from nas.reporting.console import summary_text
from nas.types import Result, Trial, TrialStatus
from spaces import Work
from tests.helpers import blobs, shifted_images

# -- threads -----------------------------------------------------------------------------------


def test_the_environment_decides_the_threads_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAS_TORCH_THREADS", "3")
    assert choose_threads().threads == 3
    assert "environment" in choose_threads().reason


@pytest.mark.parametrize(("speedup", "chosen"), [(2.0, 2), (1.1, 1), (0.3, 1)])
def test_more_threads_only_when_measured_clearly_faster(monkeypatch: pytest.MonkeyPatch,
                                                        speedup: float, chosen: int) -> None:
    monkeypatch.delenv("NAS_TORCH_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads_module, "_rate", lambda torch, n: 100.0 * speedup ** (n - 1))
    monkeypatch.setattr(threads_module, "busy_cores", lambda: 0.0)
    choice = choose_threads(cores=2)
    assert choice.threads == chosen
    assert f"2: {speedup:.2f}x" in choice.reason
    assert torch.get_num_threads() == 1  # the measurement leaves torch as it found it


@pytest.mark.parametrize(("busy", "cores", "chosen"), [(1.0, 2, 1), (0.9, 2, 1), (2.0, 4, 2),
                                                       (None, 2, 2)])
def test_cores_other_work_holds_are_not_timed(monkeypatch: pytest.MonkeyPatch,
                                              busy: float | None, cores: int,
                                              chosen: int) -> None:
    # Two threads time 2x faster in short bursts, but a neighbour holds a core for minutes.
    monkeypatch.delenv("NAS_TORCH_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads_module, "_rate", lambda torch, n: 100.0 * 2.0 ** (n - 1))
    monkeypatch.setattr(threads_module, "busy_cores", lambda: busy)
    choice = choose_threads(cores=cores)
    assert choice.threads == chosen
    assert ("busy with other work" in choice.reason) == (busy is not None)


def test_searches_side_by_side_count_each_other_s_threads(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path) -> None:
    # Two threads time 2x faster and nothing looks busy (both searches sleep while they
    # watch), but a live search beside this one holds a core: one thread here.
    import subprocess
    import sys

    monkeypatch.delenv("NAS_TORCH_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("NAS_THREAD_CLAIMS", str(tmp_path))
    monkeypatch.setattr(threads_module, "_rate", lambda torch, n: 100.0 * 2.0 ** (n - 1))
    monkeypatch.setattr(threads_module, "busy_cores", lambda **kwargs: 0.0)
    assert choose_threads(cores=2).threads == 2  # alone: both cores
    assert (tmp_path / str(os.getpid())).read_text() == "2"
    threads_module.release()
    assert not (tmp_path / str(os.getpid())).exists()
    neighbour = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    try:
        (tmp_path / str(neighbour.pid)).write_text("1")
        (tmp_path / str(gone.pid)).write_text("2")  # killed without releasing
        choice = choose_threads(cores=2)
        assert choice.threads == 1 and "1 held by 1 other search" in choice.reason
        assert not (tmp_path / str(gone.pid)).exists()
    finally:
        neighbour.kill()
        neighbour.wait()
        threads_module.release()


@pytest.fixture
def neighbour(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """A live process beside this one, whose claim the test writes: its path; the thread
    variables unset and claims kept in `tmp_path`."""
    import subprocess
    import sys

    monkeypatch.delenv("NAS_TORCH_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("NAS_THREAD_CLAIMS", str(tmp_path))
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield tmp_path / str(process.pid)
    finally:
        process.kill()
        process.wait()
        threads_module.release()


def test_a_search_that_claims_a_core_during_the_timing_is_counted(
        monkeypatch: pytest.MonkeyPatch, neighbour) -> None:
    # The neighbour was still importing when this search looked, and claimed its core while
    # this one timed: two threads timed fastest, one is what is left.
    monkeypatch.setattr(threads_module, "busy_cores", lambda **kwargs: 0.0)

    def rate(torch, n: int) -> float:
        neighbour.write_text("1")
        return 100.0 * 2.0 ** (n - 1)

    monkeypatch.setattr(threads_module, "_rate", rate)
    choice = choose_threads(cores=2)
    assert choice.threads == 1 and "2 timed fastest" in choice.reason


def test_within_peers_leaves_the_cores_other_searches_claim(
        monkeypatch: pytest.MonkeyPatch, neighbour) -> None:
    assert threads_module.within_peers(2, cores=2) == 2  # no claim yet
    neighbour.write_text("1")
    assert threads_module.within_peers(2, cores=2) == 1
    assert threads_module.within_peers(4, cores=4) == 3
    neighbour.write_text("4")
    assert threads_module.within_peers(4, cores=4) == 1  # never below one
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads_module.within_peers(2, cores=2) == 2  # the user's count is theirs


def test_trials_run_within_the_cores_a_later_search_leaves(
        monkeypatch: pytest.MonkeyPatch, neighbour) -> None:
    # This search timed two threads fastest alone; a search started later claims a core:
    # its trials run on one until that search ends, then on two again.
    monkeypatch.setattr(threads_module, "cpu_count", lambda: 2)
    before = torch.get_num_threads()
    executor = InProcessExecutor(threads=2, reason="2 of 2 cores", measured=True)
    executor.start()
    try:
        assert executor.submit(torch.get_num_threads).result() == 2
        neighbour.write_text("1")
        assert executor.submit(torch.get_num_threads).result() == 1
        assert (neighbour.parent / str(os.getpid())).read_text() == "1"  # said to the others
        neighbour.unlink()
        assert executor.submit(torch.get_num_threads).result() == 2
        given = InProcessExecutor(threads=2, reason="2 (given)")
        given.start()
        neighbour.write_text("1")
        assert given.submit(torch.get_num_threads).result() == 2  # a given count stands
        given.close()
    finally:
        executor.close()
    assert torch.get_num_threads() == before


def test_busy_cores_reads_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    # Of 2 cpus, 150 of 200 ticks were busy while this process slept: 1.5 cores.
    times = iter([(100.0, 1000.0), (250.0, 1200.0)])
    monkeypatch.setattr(threads_module, "_cpu_times", lambda: next(times))
    monkeypatch.setattr(threads_module.os, "cpu_count", lambda: 2)
    assert threads_module.busy_cores(seconds=0.0) == pytest.approx(1.5, abs=0.05)


def test_cpu_times_and_quota_parse_the_kernel_files(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  10 0 5 80 5 0 0 0 0 0\ncpu0 5 0 2 40 3 0 0 0 0 0\n")
    assert threads_module._cpu_times(str(stat)) == (15.0, 100.0)
    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")
    assert threads_module._cgroup_quota(str(quota)) == 1.5
    quota.write_text("max 100000\n")
    assert threads_module._cgroup_quota(str(quota)) is None
    assert threads_module._cgroup_quota(str(tmp_path / "absent")) is None


def test_the_in_process_executor_sets_threads_and_gives_them_back() -> None:
    before = torch.get_num_threads()
    executor = InProcessExecutor(threads=2, reason="2 (given)")
    executor.start()
    assert torch.get_num_threads() == 2
    executor.close()
    assert torch.get_num_threads() == before


def test_a_measured_thread_count_is_measured_again_when_retuned(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Started beside another search that was still loading: two threads timed fastest; once
    # both train, the neighbour holds a core and one thread is the count to run with.
    monkeypatch.delenv("NAS_TORCH_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads_module, "_rate", lambda torch, n: 100.0 * 2.0 ** (n - 1))
    monkeypatch.setattr(threads_module, "cpu_count", lambda: 2)
    busy = [0.0]
    monkeypatch.setattr(threads_module, "busy_cores", lambda: busy[0])
    before = torch.get_num_threads()
    executor = InProcessExecutor()
    executor.start()
    try:
        assert executor.threads == 2 and torch.get_num_threads() == 2
        assert executor.retune() == ""  # nothing changed on the machine
        busy[0] = 1.8
        change = executor.retune()
        assert change.startswith("torch threads 2 -> 1") and "busy with other work" in change
        assert torch.get_num_threads() == 1 and executor.threads == 1
        assert "busy with other work" in executor.threads_reason
    finally:
        executor.close()
    assert torch.get_num_threads() == before
    # A count the user gave is theirs: never re-timed.
    given = InProcessExecutor(threads=2, reason="2 (given)")
    given.start()
    try:
        assert given.retune() == "" and torch.get_num_threads() == 2
    finally:
        given.close()


def test_local_workers_take_the_cores_other_work_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    from nas.executors import local

    monkeypatch.setattr(local, "cpu_count", lambda: 4)
    executor = local.LocalExecutor(2)
    assert executor.threads == 2
    seen: list[Sequence[int]] = []

    def busy(*, ours: Sequence[int] = ()) -> float:
        seen.append(ours)
        return 2.2

    monkeypatch.setattr(local, "busy_cores", busy)
    with executor:
        assert executor.retune() == ("torch threads per worker 2 -> 1 (2.2 of 4 cores busy "
                                     "with other work)")
        assert seen == [executor.pids()]  # the workers' own time is not another program's
        # The next task runs at the new count.
        assert executor.submit(torch.get_num_threads).result(timeout=60) == 1
        assert executor.retune() == ""
    assert local.LocalExecutor(2, threads=2).retune() == ""  # given: kept


def test_local_workers_leave_their_threads_for_the_searches_beside_them(
        monkeypatch: pytest.MonkeyPatch, neighbour) -> None:
    # 4 cores, a neighbour holding 2: two workers of one thread each, and the claim says 2.
    from nas.executors import local

    monkeypatch.setattr(local, "cpu_count", lambda: 4)
    neighbour.write_text("2")
    executor = local.LocalExecutor(2)
    with executor:
        assert executor.threads == 1
        assert (neighbour.parent / str(os.getpid())).read_text() == "2"
        assert executor.submit(torch.get_num_threads).result(timeout=60) == 1
    alone = local.LocalExecutor(2)
    neighbour.unlink()
    with alone:
        assert alone.threads == 2 and (neighbour.parent / str(os.getpid())).read_text() == "4"


def test_busy_cores_leaves_out_this_searchs_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    # 150 busy ticks of 200 on 2 cpus: 1.5 cores, of which a worker used 1.0 over 1 s.
    times = iter([(100.0, 1000.0), (250.0, 1200.0)])
    monkeypatch.setattr(threads_module, "_cpu_times", lambda: next(times))
    monkeypatch.setattr(threads_module.os, "cpu_count", lambda: 2)
    worker = iter([3.0, 4.0])
    monkeypatch.setattr(threads_module, "_process_seconds", lambda pids: next(worker))
    monkeypatch.setattr(threads_module.time, "sleep", lambda seconds: None)
    assert threads_module.busy_cores(1.0, ours=[1]) == pytest.approx(0.5, abs=0.05)


def test_process_seconds_reads_proc_stat() -> None:
    import os

    spent = threads_module._process_seconds([os.getpid()])
    assert 0.0 < spent <= time.process_time() + 0.1
    assert threads_module._process_seconds([2**22 + 12345]) == 0.0  # no such process



# -- the ledger --------------------------------------------------------------------------------


def test_a_time_ledger_counts_from_when_the_call_began() -> None:
    ledger = Ledger.for_budget(Budget.parse("60s"), since=time.monotonic() - 5.0)
    ledger.start_clock()
    assert 5.0 <= ledger.spent < 6.0
    assert ledger.finish_cost(2.0) == 2.0
    assert Ledger.for_budget(Budget.parse("90ep")).finish_cost(2.0) == 0.0


# -- the cost model ----------------------------------------------------------------------------


def _work(config: dict[str, Any]) -> Work:
    # A configuration's cost is its "size" here (written elements, no FLOPs unless it says).
    return Work(float(config["size"]), float(config.get("flops", 0.0)))


def _costs(limit: float = 100.0) -> CostModel:
    # The reference is size 10 at 1 s per epoch.
    plan = CostPlan({"size": 10}, epoch_seconds=1.0, full_epochs=9, limit=limit, share=1 / 3)
    return CostModel(plan, _work, lambda config: str(config))


def _trial(size: int, trial_id: int = 0) -> Trial:
    return Trial(id=trial_id, config={"size": size}, budget=9)


def test_a_rescaling_sizes_the_trials_anew_and_re_plans_the_searcher() -> None:
    # Trials 3x slower than the probe said: a full trial is sized again by the plan's rules at
    # that speed, the searcher told (from its trial 7 on), and the refusals use the new length.
    plan = CostPlan({"size": 10}, epoch_seconds=1.0, full_epochs=27, limit=1200.0,
                    share=1 / 3, floor=9)
    asked: list[float] = []

    def rebudget(epochs: float) -> int | None:
        asked.append(epochs)
        return 7

    costs = CostModel(plan, _work, str, replanned_epochs)
    slow = Result(loss=0.1, epochs=3.0, seconds=9.0)
    replan = costs.learn(_trial(10, 0), slow, spent=20.0, rebudget=rebudget)
    assert replan is not None and asked == [replan.trial_epochs] == [9.0]
    assert replan.at_trial == 7 and "trials from 7 on run up to 9 epochs (were 27)" in \
        replan.reason
    assert costs.full_epochs == 9.0
    assert Replan.from_dict(replan.to_dict()) == replan
    resumed = CostModel(plan, _work, str, replanned_epochs)
    resumed.resume([replan])
    assert resumed.full_epochs == 9.0 and resumed.epoch_seconds == pytest.approx(3.0)
    # A searcher that cannot re-plan keeps the trial budget; so does a plan without a floor.
    fixed = CostModel(plan, _work, str, replanned_epochs)
    assert fixed.learn(_trial(10, 0), slow, 20.0,
                       rebudget=lambda e: None).trial_epochs is None
    assert fixed.full_epochs == 27


def test_architectures_slower_per_flop_do_not_shorten_the_trials_a_slower_machine_does() -> None:
    # The measured model (size 10) ran as planned; models of size 20 take 4x their FLOP
    # prediction throughout. The FLOP scale follows them (refusals), the trial length does not.
    plan = CostPlan({"size": 10}, epoch_seconds=1.0, full_epochs=27, limit=1200.0,
                    share=1 / 3, floor=9)
    costs = CostModel(plan, _work, str, replanned_epochs)
    assert replanned_epochs(1200.0, 2.5, 9) < 27
    assert costs.learn(_trial(10, 0), Result(loss=0.1, epochs=27.0, seconds=27.0), 30.0,
                       rebudget=lambda e: 7) is None
    misfit = Result(loss=0.1, epochs=3.0, seconds=24.0)  # 8 s per epoch, 2 s predicted
    replans = [costs.learn(_trial(20, i), misfit, 30.0 + i, rebudget=lambda e: 7)
               for i in range(1, 1 + RECENT)]
    assert replans[0] is not None and costs.epoch_seconds == pytest.approx(2.5)
    assert all(r is None or r.trial_epochs is None for r in replans)
    assert costs.full_epochs == 27 and costs.machine_factor() == pytest.approx(1.0)
    # Then the machine slows down 3x: the same models now take 24 s per epoch.
    for i in range(10, 10 + 2 * RECENT):
        costs.learn(_trial(20, i), Result(loss=0.1, epochs=3.0, seconds=72.0), 40.0 + i,
                    rebudget=lambda e: 7)
    assert costs.machine_factor() == pytest.approx(3.0)
    assert costs.full_epochs == replanned_epochs(1200.0, 3.0, 9) < 27


def test_a_candidate_whose_full_trial_would_not_fit_is_refused() -> None:
    costs = _costs()
    assert costs.refusal(_trial(30)) is None  # 27 s of a 33 s share
    reason = costs.refusal(_trial(40))  # 36 s
    assert reason is not None and "too slow for this budget" in reason


def test_the_flops_or_the_cost_whichever_predicts_longer_refuses() -> None:
    # The reference does 1 FLOP (a negligible part of its cost): a candidate writing what it
    # writes but doing 40x its arithmetic is refused by its FLOPs (360 s); its cost says 9 s.
    plan = CostPlan({"size": 10, "flops": 1.0}, epoch_seconds=1.0, full_epochs=9,
                    limit=100.0, share=1 / 3)
    costs = CostModel(plan, _work, str)
    heavy = Trial(id=0, config={"size": 10, "flops": 40.0}, budget=9)
    assert costs.predict(heavy.config) == pytest.approx(1.0, rel=0.01)
    assert costs.refusal(heavy) is not None
    # And one doing a tenth of the arithmetic but writing 4x as much is refused by its cost.
    pools = Trial(id=1, config={"size": 40, "flops": 0.1}, budget=9)
    assert costs.refusal(pools) is not None
    assert costs.refusal(Trial(id=2, config={"size": 30, "flops": 3.0}, budget=9)) is None


def test_trials_slower_than_predicted_rescale_the_model_once() -> None:
    costs = _costs()
    slow = Result(loss=0.1, epochs=3.0, seconds=9.0)  # 3 s per epoch against 1 s predicted
    assert costs.learn(_trial(10, 0), slow, spent=20.0) is not None
    assert costs.epoch_seconds == pytest.approx(3.0)
    assert costs.refusal(_trial(30)) is not None  # 81 s now: too slow
    # As predicted now: no further re-plan; a tiny model does not calibrate at all.
    assert costs.learn(_trial(10, 1), slow, spent=30.0) is None
    assert costs.learn(_trial(1, 2), Result(loss=0.1, epochs=3.0, seconds=90.0), 40.0) is None
    assert [r.spent for r in costs.replans] == [20.0]
    # One fast trial after a rescaling is not enough to swing it back; the median of three is.
    fast = Result(loss=0.1, epochs=3.0, seconds=1.0)
    assert costs.learn(_trial(10, 3), fast, spent=50.0) is None
    assert costs.learn(_trial(10, 4), fast, spent=60.0) is not None
    assert costs.epoch_seconds < 3.0 and len(costs.replans) == 2
    costs.replans.pop()
    again = _costs()
    again.resume([Replan.from_dict(r.to_dict()) for r in costs.replans])
    assert again.epoch_seconds == pytest.approx(3.0)


def test_a_retune_that_changes_the_machine_keeps_the_scale_until_timed_again() -> None:
    # Trials 9x slower than predicted because two searches each took both cores: the executor
    # drops to one thread; that was the cause, so the scale is not multiplied by 9.
    costs = _costs()
    slow = Result(loss=0.1, epochs=3.0, seconds=27.0)
    replan = costs.learn(_trial(10, 0), slow, spent=20.0,
                         retune=lambda: "torch threads 2 -> 1 of 2 cores")
    assert replan is not None and "torch threads 2 -> 1" in replan.reason
    assert replan.trial_epochs is None and costs.epoch_seconds == pytest.approx(1.0)
    assert Replan.from_dict(replan.to_dict()) == replan
    # Still slow under the new count: after the median of three, the scale moves.
    assert costs.learn(_trial(10, 1), slow, spent=30.0, retune=lambda: "") is None
    assert costs.learn(_trial(10, 2), slow, spent=40.0, retune=lambda: "") is None
    later = costs.learn(_trial(10, 3), slow, spent=50.0, retune=lambda: "")
    assert later is not None and costs.epoch_seconds == pytest.approx(9.0)


# -- the full-budget default first --------------------------------------------------------------


def test_full_first_trains_the_default_at_the_full_budget_then_the_brackets() -> None:
    space = spaces.residual_mlp()
    searcher = searchers.get("bohb", space, seed=0, min_budget=1, max_budget=9,
                             include_default=True, full_first=True)
    first = searcher.ask()
    assert first.budget == 9 and dict(first.config) == dict(space.get_default_configuration())
    searcher.tell(first, Result(loss=0.2, epochs=9))
    second = searcher.ask()
    assert second.budget == 1 and second.info["rung"] == 0
    assert searcher.options["full_first"] is True
    plain = searchers.get("bohb", space, seed=0, min_budget=1, max_budget=9)
    assert "full_first" not in plain.options and plain.ask().budget == 1


# -- baselines ---------------------------------------------------------------------------------


def test_a_baseline_wins_only_when_better_on_validation() -> None:
    baselines = [{"name": "knn", "val_accuracy": 0.9, "test_accuracy": 0.88, "seconds": 0.1},
                 {"name": "logistic", "val_accuracy": 0.8, "seconds": 0.1},
                 {"name": "svm-rbf", "val_accuracy": None, "skipped": "cap"}]
    won = winning_baseline(baselines, {"val_accuracy": 0.85}, None)
    assert won is not None and won["name"] == "knn" and won["search_val_accuracy"] == 0.85
    assert winning_baseline(baselines, {"val_accuracy": 0.9}, None) is None  # a tie: search
    # The same tie as a model's float32 accuracy (69 of 72) against a baseline's float64 one.
    tie = [{"name": "svm-rbf", "val_accuracy": 69 / 72, "seconds": 0.0}]
    assert winning_baseline(tie, {"val_accuracy": float(np.float32(69 / 72))}, None) is None
    assert winning_baseline(tie, {"val_accuracy": 68 / 72}, None) is not None
    assert winning_baseline([], {"val_accuracy": 0.1}, None) is None


def test_a_search_fits_baselines_and_returns_one_that_beats_it(tmp_path) -> None:
    # One step at the smallest learning rate: the network stays near chance, k-NN does not.
    space = spaces.residual_mlp(width=8, n_blocks=1, lr=1e-4)
    result = nas.search(space, blobs(), "random", "2trials", trial_budget="0.01ep", seed=0,
                        storage=tmp_path / "a.db", progress=False)
    names = {b["name"] for b in result.baselines}
    assert names == {"logistic", "svm-rbf", "knn"}
    assert result.baseline_won is not None
    assert result.final_test_accuracy == result.baseline_won["test_accuracy"]
    model = result.load_final_model(blobs())
    data = blobs()
    raw = data.x_test * data.std + data.mean
    accuracy = (model(raw).argmax(1) == data.y_test).float().mean().item()
    assert accuracy == pytest.approx(result.final_test_accuracy)
    assert "beat the search's model" in summary_text(JournalView.load(result.path))


def test_a_baseline_on_pooled_images_is_returned_and_reads_raw_images(tmp_path) -> None:
    # Shifted templates: the baselines fit 2x2-pooled images; the model the search returns
    # pools raw inputs the same way.
    data = shifted_images(block=4, shift=2, noise=3.0)
    space = spaces.residual_mlp(width=8, n_blocks=1, lr=1e-4)
    result = nas.search(space, data, "random", "2trials", trial_budget="0.01ep", seed=0,
                        storage=tmp_path / "a.db", progress=False)
    won = result.baseline_won
    assert won is not None
    journaled = next(b for b in result.baselines if b["name"] == won["name"])
    assert journaled["pool"] == 2
    model = result.load_final_model(data)
    raw = data.x_test * data.std + data.mean
    with torch.no_grad():
        accuracy = (model(raw).argmax(1) == data.y_test).float().mean().item()
    assert accuracy == pytest.approx(result.final_test_accuracy)
    assert f"{won['name']} (2x2-pooled) val acc" in summary_text(JournalView.load(result.path))


def test_baselines_can_be_left_out(tmp_path) -> None:
    space = spaces.residual_mlp(width=8, n_blocks=1)
    result = nas.search(space, blobs(), "random", "1trials", trial_budget="1ep", seed=0,
                        storage=tmp_path / "a.db", progress=False, baselines=False)
    assert result.baselines == () and result.baseline_won is None
    assert result.load_final_model() is not None


# -- a time budget is the wall clock -------------------------------------------------------------


def test_a_time_budget_is_kept_from_the_call_to_the_result(tmp_path) -> None:
    assert nas.search  # the engine imported before the clock: the call is what is timed
    start = time.monotonic()
    result = nas.search(data=blobs(n=600), budget="8s", seed=0, storage=tmp_path / "a.db",
                        progress=False)
    wall = time.monotonic() - start
    # Everything counts: the probe, the baselines, the trials and the final scoring; a running
    # trial stops at its deadline after the batch that crosses it.
    assert result.spent <= wall + 0.05
    assert wall <= 8 * 1.15
    view = JournalView.load(result.path)
    assert view.baselines and result.trials
    first = min(result.trials, key=lambda r: r.id)
    assert first.trial.info.get("first") == "full budget"  # the default, fully trained, first
    # A resume rebuilds the cost model the search journaled, at its last re-plan's scale.
    from nas.engine.resuming import _resumed_costs
    from nas.objective import TrainingObjective
    from nas.storage import Storage

    with Storage.open(result.path) as store:
        costs = _resumed_costs(store, TrainingObjective(blobs(n=600), Budget.parse("9ep")))
        journaled = store.meta("cost_plan")
    assert costs is not None and costs.plan.to_dict() == journaled
    assert costs.epoch_seconds == (view.replans[-1]["epoch_seconds"] if view.replans
                                   else journaled["epoch_seconds"])


def test_a_refused_trial_is_finished_without_a_usable_loss() -> None:
    assert TrialStatus.SKIPPED.finished
    assert not Result.failure(TrialStatus.SKIPPED, "too slow").ok


def test_a_budget_spent_before_the_first_trial_returns_the_best_baseline(tmp_path) -> None:
    result = nas.search(data=blobs(), budget="1s", seed=0, storage=tmp_path / "a.db",
                        progress=False, started_at=time.monotonic() - 2.0)
    assert not result.trials
    assert result.baseline_won is not None
    assert result.final_test_accuracy is not None and result.final_test_accuracy > 0.8
    view = JournalView.load(result.path)
    assert any("spent before the first trial" in line for line in view.settings.auto or ())


def test_a_slow_start_leaves_the_baselines_only_what_is_left(tmp_path) -> None:
    # 8.5 s of a 10 s budget gone before the call: the baselines' cap (4 s of a 10 s budget)
    # shrinks to what is left, and the search still ends near its budget.
    assert nas.search  # the engine imported before the clock
    start = time.monotonic()
    result = nas.search(data=blobs(), budget="10s", seed=0, storage=tmp_path / "a.db",
                        progress=False, started_at=start - 8.5)
    caps = {b["cap"] for b in result.baselines}
    assert len(caps) == 1 and 0.0 <= caps.pop() <= 1.5
    assert result.baseline_won is not None or result.trials
    # What is left, plus importing scikit-learn for the first fit (~1 s) and the end.
    assert time.monotonic() - start <= 1.5 + 3.0


def test_a_plan_with_no_time_for_a_network_starts_no_trial(tmp_path) -> None:
    # 12 s of 20 s gone and 5 s kept for the baselines: under a third is left to plan with, so
    # no network trains, although the ledger still has seconds (a trial started there ran
    # past the budget by 5 s: its optimizer's first import, its validation, its scoring).
    assert nas.search
    start = time.monotonic()
    result = nas.search(data=blobs(), budget="20s", seed=0, storage=tmp_path / "a.db",
                        progress=False, started_at=start - 12.0)
    assert not result.trials and result.baseline_won is not None
    view = JournalView.load(result.path)
    assert view.summary is not None
    assert view.summary.stopped == "the budget was spent before the first trial"
    assert time.monotonic() - start < 8.0


def test_with_no_network_to_train_the_baselines_get_what_is_left(tmp_path) -> None:
    # 36 s of 60 s gone: no network trains, so the baselines, the result, may use most of the
    # 24 s left (not only their usual 5 s cap); on these small data they need far less.
    assert nas.search
    start = time.monotonic()
    result = nas.search(data=blobs(), budget="60s", seed=0, storage=tmp_path / "a.db",
                        progress=False, started_at=start - 36.0)
    assert not result.trials and result.baseline_won is not None
    caps = {b["cap"] for b in result.baselines}
    assert len(caps) == 1 and 15.0 <= caps.pop() <= 24.0
    assert time.monotonic() - start < 10.0


# Timing-dependent (a loaded CI machine may end the 25 s search before the re-planned trials);
# the schedule's and the cost model's parts are tested above without a clock.
@pytest.mark.slow
def test_trials_slower_than_the_probe_re_plan_the_trial_budget_and_resume(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The probe says an epoch takes 2 ms, so the plan gives 36-epoch trials; real epochs take
    # far longer: after the first trials the trial budget is planned again for what is left,
    # the searcher's later brackets run up to it, and the journal says so. A resume replays
    # the re-plan (else it would not ask the journaled trials again).
    import nas.defaults
    from nas.engine.callbacks import Callback

    monkeypatch.setattr(nas.defaults, "measure_epoch_seconds", lambda *a, **k: 0.002)
    seen: list[int] = []

    class StopSoonAfter(Callback):
        def on_trial_end(self, trial, result, best, ledger) -> None:  # type: ignore[no-untyped-def]
            view = JournalView.load(tmp_path / "a.db")
            replans = [r for r in view.replans if r.get("trial_epochs") is not None]
            if replans and trial.id >= int(replans[0]["at_trial"]) + 3:
                seen.append(trial.id)
                raise KeyboardInterrupt

    data = blobs(n=600)
    with pytest.raises(SearchInterrupted):
        nas.search(data=data, budget="25s", seed=0, storage=tmp_path / "a.db", progress=False,
                   callbacks=[StopSoonAfter()], baselines=False)
    view = JournalView.load(tmp_path / "a.db")
    replan = next(r for r in view.replans if r.get("trial_epochs") is not None)
    assert replan["trial_epochs"] < 36 and "run up to" in replan["reason"]
    later = [r for r in view.records if r.id >= replan["at_trial"]]
    assert seen and later and all(r.trial.budget <= replan["trial_epochs"] or
                                  "horizon" not in r.trial.info for r in later)
    assert any(r.trial.info.get("horizon") == replan["trial_epochs"] for r in later)
    resumed = nas.resume(tmp_path / "a.db", data=data, progress=False)
    assert len(resumed.trials) >= len(view.records)
