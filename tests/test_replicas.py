from __future__ import annotations

import math
import signal

import pytest
import torch
from ConfigSpace import ConfigurationSpace

import nas
import searchers
import spaces
from nas.budget import Budget
from nas.cli import main
from nas.engine import replicas
from nas.engine.ledger import Ledger
from nas.engine.phases import NO_TIME, Phases
from nas.ensemble import greedy_selection
from nas.errors import UserError
from nas.journal import TrialRecord
from nas.optim import preload
from nas.storage import Storage
from nas.types import Result, Trial, TrialKind, TrialStatus
from tests.helpers import blobs
from tests.test_resume import _env, _outcome, _start_and_stop


def _onehot(labels: list[int], classes: int = 2, sure: float = 0.9) -> torch.Tensor:
    probs = torch.full((len(labels), classes), (1 - sure) / (classes - 1))
    probs[torch.arange(len(labels)), torch.tensor(labels)] = sure
    return probs


def test_greedy_selection_starts_from_the_initial_members() -> None:
    y = torch.tensor([0, 0, 1, 1])
    right, wrong = _onehot([0, 0, 1, 1]), _onehot([1, 1, 0, 0])
    assert greedy_selection([wrong, right], y, 4) == [0, 1]
    # Started from the wrong one, it stays in; the right one is added until the vote is right.
    counts = greedy_selection([wrong, right], y, 4, initial=[0])
    assert counts[0] == 1 and counts[1] >= 2
    # No round improves on the initial members: they are the ensemble, one each.
    assert greedy_selection([right, right.clone()], y, 4, initial=[0, 1]) == [1, 1]
    with pytest.raises(ValueError, match="outside"):
        greedy_selection([right], y, 2, initial=[3])


def test_initial_members_that_cost_validation_errors_are_left_out() -> None:
    y = torch.tensor([0, 0, 1, 1, 0, 1])
    best = _onehot([0, 0, 1, 1, 0, 1])
    # Two seeds of one configuration that learnt much less: as the start, their votes win.
    weak = _onehot([1, 1, 0, 1, 0, 1], sure=0.95)
    weak2 = _onehot([1, 1, 0, 1, 0, 1], sure=0.95)
    # Started from them, 2 rounds of the best still leave their 3 disputed samples wrong; a
    # selection from nothing, the best alone, makes no error, so it is the ensemble.
    assert greedy_selection([best, weak, weak2], y, 2, initial=[1, 2]) == [1, 0, 0]
    # Where the start costs no error, it stays (the original design, measured on digits).
    assert greedy_selection([best, best.clone(), weak], y, 4, initial=[0, 1]) == [1, 1, 0]


def _record(tid: int, loss: float, budget: float | None, *, status: TrialStatus = TrialStatus.OK,
            kind: TrialKind = TrialKind.SEARCH, reused_from: int | None = None) -> TrialRecord:
    result = Result(loss=loss, status=status, epochs=1.0, seconds=1.0, reused_from=reused_from)
    return TrialRecord(Trial(tid, {"x": tid}, budget, kind=kind), status, result,
                       0.0, None, None, None)


def _is_replica(record: TrialRecord) -> bool:
    return record.kind is TrialKind.REPLICA


def test_the_target_is_the_best_searcher_trial_trained_in_full() -> None:
    records = [
        _record(0, 0.10, 9.0),
        _record(1, 0.01, 3.0),  # better, but not trained in full
        _record(2, 0.05, 9.0),
        _record(3, 0.00, 9.0, status=TrialStatus.TRUNCATED),  # cut short
        _record(4, 0.00, 9.0, kind=TrialKind.REPLICA),  # a replica is never a target
        _record(5, 0.00, 9.0, reused_from=2),  # nor a reused result
    ]
    chosen = replicas.target(records, lambda r: r.trial.budget == 9.0)
    assert chosen is not None and chosen.id == 2
    assert replicas.target(records[1:2], lambda r: r.trial.budget == 9.0) is None


def test_replica_cost_and_how_many_fit() -> None:
    timed, epochs, trials = (Ledger.for_budget(Budget.parse(b)) for b in ("1m", "90ep", "9trials"))
    assert timed.retrain_cost(10.0, 9.0) == 10.0  # as long as its lineage took
    margin = replicas.TIME_MARGIN
    assert timed.padded(10.0, margin) == pytest.approx(10.0 * margin)
    assert epochs.padded(9.0, margin) == 9.0
    assert epochs.retrain_cost(10.0, 9.0) == 9.0  # from scratch, not the rest
    assert trials.retrain_cost(10.0, 9.0) == 1.0
    assert replicas.fit(2, 100.0, 30.0) == 2
    assert replicas.fit(2, 50.0, 30.0) == 1
    assert replicas.fit(2, 20.0, 30.0) == 0
    assert replicas.fit(2, 0.0, 0.0) == 2


def _phase_of_one(count: int, budget: str) -> replicas.ReplicaPhase:
    """A replica phase of `count` copies whose only candidate is trial 2, trained in full."""
    best = _record(2, 0.05, 9.0)
    return replicas.ReplicaPhase(
        count, Ledger.for_budget(Budget.parse(budget)).view(), candidates=lambda: [best],
        lineage_seconds=lambda i: 1.0, budget_of=lambda t: t.budget, full=lambda r: True,
        source=lambda i: best)


def test_a_replica_that_never_started_is_forgotten() -> None:
    # The budget could not afford a replica handed out: the end must neither look it up in the
    # journal (a KeyError in a 30 s shapes28 search) nor report it.
    phase = _phase_of_one(2, "90ep")
    phase.end_searcher("searcher done")
    first = phase.next(7)
    assert first is not None and first.kind is TrialKind.REPLICA and phase.ids == [7]
    phase.forget(first)
    assert phase.ids == [] and phase.group(lambda i: TrialStatus.OK) == []
    assert phase.summary() == {"of": 2, "trials": []}
    phase.forget(Trial(3, {"x": 3}, 9.0))  # a searcher's trial is none of its business
    assert phase.next(8) is not None and phase.ids == [8]


def test_a_replica_runs_at_most_past_budget_beyond_a_time_budget() -> None:
    phase = _phase_of_one(1, "100s")
    copy = Trial(7, {"x": 1}, 9.0, kind=TrialKind.REPLICA)
    phase.plan = replicas.ReplicaPlan(2, 1, 30.0)  # estimated when the machine was faster
    # Twice its estimate would be 60 s, 50 s past the budget: it gets 5 % of 100 s past it.
    assert phase.room(copy, 10.0) == pytest.approx(10.0 + replicas.PAST_BUDGET * 100.0)
    phase.plan = replicas.ReplicaPlan(2, 1, 2.0)
    assert phase.room(copy, 1.0) == pytest.approx(replicas.OVERRUN * 2.0)  # within the cap
    assert phase.room(copy, 50.0) == 50.0  # more left than it needs
    assert phase.room(Trial(3, {"x": 3}, 9.0), 10.0) == 10.0  # a searcher's trial: its room


def test_time_the_replicas_did_not_take_goes_to_more_replicas() -> None:
    # The plan kept two replicas at the original's 45 s, measured while a neighbour held a
    # core; each took 15 s. The time left fits more: up to MORE x the two wanted, no further.
    best = _record(2, 0.05, 9.0)
    done: dict[int, TrialRecord] = {}

    def source(i: int) -> TrialRecord:
        return best if i == 2 else done.get(i) or TrialRecord(
            Trial(i, best.trial.config, 9.0, kind=TrialKind.REPLICA), TrialStatus.RUNNING,
            None, 0.0, None, None, None)

    phase = replicas.ReplicaPhase(
        2, Ledger.for_budget(Budget.parse("300s")).view(), candidates=lambda: [best],
        lineage_seconds=lambda i: 45.0 if i == 2 else 15.0, budget_of=lambda t: t.budget,
        full=lambda r: True, source=source)
    phase.end_searcher(replicas.KEPT_FOR_REPLICAS)
    handed = [phase.next(7), phase.next(8)]
    assert all(t is not None for t in handed) and phase.plan.count == 2
    assert phase.next(9) is None  # both still running: their times are not known yet
    for trial in handed:
        done[trial.id] = TrialRecord(trial, TrialStatus.OK, Result(loss=0.05, seconds=15.0),
                                     0.0, None, None, None)
    more = [phase.next(9), phase.next(10)]
    assert all(t is not None and t.info["replicas"] == 4 for t in more)
    assert phase.plan.count == 4 and phase.plan.cost == 15.0
    for trial in more:
        done[trial.id] = TrialRecord(trial, TrialStatus.OK, Result(loss=0.05, seconds=15.0),
                                     0.0, None, None, None)
    assert phase.next(11) is None and phase.ids == [7, 8, 9, 10]
    # A resume reads the grown count back from the journal's replicas.
    again = replicas.ReplicaPhase(
        2, Ledger.for_budget(Budget.parse("300s")).view(), candidates=lambda: [best],
        lineage_seconds=lambda i: 45.0, budget_of=lambda t: t.budget, full=lambda r: True,
        source=source)
    for i in (7, 8, 9, 10):
        again.restore(done[i], replicas.KEPT_FOR_REPLICAS, 4)
    assert again.plan.count == 4 and again.next(11) is None


def _phases_with_time_left(left: float, best: TrialRecord | None) -> Phases:
    """Phases of a 10 s search with `left` seconds left, two replicas wanted of `best` (each
    0.1 s), searched by random search over `x`."""
    ledger = Ledger.for_budget(Budget.parse("10s"), spent=10.0 - left).view()
    phase = replicas.ReplicaPhase(
        2, ledger, candidates=lambda: [] if best is None else [best],
        lineage_seconds=lambda i: 0.1, budget_of=lambda t: t.budget, full=lambda r: True,
        source=lambda i: best)
    space = ConfigurationSpace({"x": (0.0, 1.0)})
    return Phases(searchers.get("random", space, seed=0), phase, on_searcher_done=print)


def test_too_little_time_for_a_searcher_trial_still_leaves_the_replicas_their_reserve() -> None:
    # Searcher trials take 2 s, the best's replicas 0.1 s: with 0.5 s left the searcher's
    # phase ends but the reserve is the replicas'. (The search used to stop there with no
    # replica and no word why, when a searcher trial cut at the reserve left less than 1 s.)
    phases = _phases_with_time_left(0.5, _record(2, 0.05, 9.0))
    assert not phases.out_of_time(2.0)
    trial = phases.next_trial(0.0, 2.0, running=False, searcher_running=False)
    assert trial is not None and trial.kind is TrialKind.REPLICA and trial.info["replica_of"] == 2
    assert phases.done == replicas.KEPT_FOR_REPLICAS
    assert not phases.out_of_time(2.0)  # the replicas' phase goes on
    # With no trial trained in full there is no reserve: the search stops and says why.
    phases = _phases_with_time_left(0.5, None)
    assert phases.out_of_time(2.0)
    assert phases.replicas.last_word(NO_TIME) == (
        f"{NO_TIME} (no replicas: no trial trained to the full budget)")
    # Time left for a searcher trial: the searcher goes on.
    phases = _phases_with_time_left(5.0, _record(2, 0.05, 9.0))
    assert not phases.out_of_time(2.0)
    trial = phases.next_trial(0.0, 2.0, running=False, searcher_running=False)
    assert trial is not None and trial.kind is TrialKind.SEARCH and not phases.done


def _space():
    return spaces.residual_mlp(width=(16, 48), n_blocks=1, lr=(1e-3, 1e-2))


def test_the_last_trials_are_replicas_of_the_best_and_start_the_ensemble(tmp_path) -> None:
    result = nas.search(_space(), blobs(), "random", "8trials", trial_budget="3ep", seed=1,
                        storage=tmp_path / "r.db", progress=False, ensemble=4, replicas=2)
    searched = [r for r in result.trials if not _is_replica(r)]
    copies = [r for r in result.trials if _is_replica(r)]
    assert len(searched) == 6 and len(copies) == 2  # the reserve: two of the eight trials
    target = min(searched, key=TrialRecord.rank_key)
    assert all(r.trial.info["replica_of"] == target.id for r in copies)
    assert all(r.trial.config == target.trial.config and r.trial.parent is None for r in copies)
    assert [r.id for r in copies] == [max(r.id for r in searched) + 1,
                                      max(r.id for r in searched) + 2]
    # New seeds: each replica learnt something else (nothing was reused from the original).
    losses = {r.result.metrics["val_loss"] for r in [target, *copies]}
    assert len(losses) == 3 and all(r.result.epochs == 3 for r in copies)
    weights = {int(k) for k in result.ensemble["weights"]}
    # They start the ensemble and stay in, unless a selection from nothing made fewer
    # validation errors (then it holds the best, as good on validation as the best alone).
    assert {target.id, *(r.id for r in copies)} <= weights or (
        target.id in weights
        and result.ensemble["val_accuracy"] >= target.result.metrics["val_accuracy"])
    with Storage.open(result.path) as store:
        summary = store.meta("summary")
        assert weights | {target.id} <= set(store.checkpoints())
    assert summary["replicas"] == {"of": target.id, "trials": [r.id for r in copies]}
    assert "2 replicas of trial" in result.stopped
    assert result.load_ensemble() is not None


def test_an_epoch_budget_keeps_the_replicas_share(tmp_path) -> None:
    result = nas.search(_space(), blobs(n=120), "hyperband", "60ep", trial_budget="9ep",
                        seed=0, storage=tmp_path / "hb.db", progress=False, ensemble=4,
                        replicas=2)
    copies = [r for r in result.trials if _is_replica(r)]
    assert len(copies) == 2 and all(r.trial.budget == 9.0 for r in copies)
    assert all(r.result.epochs == 9.0 for r in copies)  # trained from scratch, in full
    assert result.spent <= 60.0
    assert result.stopped.startswith("the rest of the budget is kept for replicas")


def test_a_time_budget_keeps_time_for_whole_replicas(tmp_path, monkeypatch) -> None:
    import time

    # Trial id -> the seconds the engine gave it, what it saw left of the budget then, and the
    # trial's deadline, all as the engine decided them (read where it does: a delay before the
    # trial starts is not the engine's grant).
    rooms: dict[int, float] = {}
    lefts: dict[int, float] = {}
    deadlines: dict[int, float] = {}
    estimates: dict[int, float] = {}
    original = replicas.ReplicaPhase.room

    def room(self, trial, left):
        rooms[trial.id] = given = original(self, trial, left)
        lefts[trial.id] = left  # the budget's rest, less what the end's scoring holds
        deadlines[trial.id] = time.monotonic() + given
        if self.plan is not None:
            estimates[trial.id] = self.plan.cost
        return given

    monkeypatch.setattr(replicas.ReplicaPhase, "room", room)
    # Trials of ~0.4 s: a replica is not cut by the deadline when it runs a little over. One
    # width, so a best found late costs what the reserve was sized on (a wider late best may
    # rightly not fit, which is not what this test is about).
    # The budget counts from the call: making the data and importing `nas.search` are not in it,
    # nor torch's compiler, which a process imports once (seconds on a loaded machine: with
    # xdist this may be the worker's first training, and it left no time for replicas).
    space, data = spaces.residual_mlp(width=32, n_blocks=1, lr=(1e-3, 1e-2)), blobs(n=600)
    search = nas.search
    preload()
    start = time.monotonic()
    result = search(space, data, "random", "12s", trial_budget="40ep", seed=0,
                    storage=tmp_path / "t.db", progress=False, ensemble=4, replicas=2)
    copies = [r for r in result.trials if _is_replica(r)]
    trials = (result.stopped, [(r.id, r.kind.value, r.status.name, round(r.result.seconds, 2),
                                round(rooms.get(r.id, math.nan), 2)) for r in result.trials])
    assert copies, trials
    # A replica trains in full unless it ran out of what it was given (the budget's end was
    # near and it took over twice its estimate: a loaded machine's burst); then it is cut there,
    # never sooner, and left out of the ensemble.
    for r in copies:
        assert (r.status is TrialStatus.OK and r.result.epochs == 40) or (
            r.status is TrialStatus.TRUNCATED and r.result.seconds >= rooms[r.id] - 0.1), trials
    target = next(r for r in result.trials if r.id == copies[0].trial.info["replica_of"])
    # Each replica was given twice its estimate, the last one too, though less than that was
    # left of the budget, but never more than 5 % of it past the budget's end; what overran is
    # its noise and the ensemble at most. The estimate is the original's time for the planned
    # replicas, and the slowest of the earlier full replicas' for those planned once they were
    # done.
    end = start + 12.0 * (1 + replicas.PAST_BUDGET)
    for r in copies:
        before = [c.result.seconds for c in copies
                  if c.id < r.id and c.status is TrialStatus.OK]
        possible = [target.result.seconds] + [max(before[:k]) for k in range(1, len(before) + 1)]
        assert any(estimates[r.id] == pytest.approx(p) for p in possible)
        assert rooms[r.id] >= min(replicas.OVERRUN * estimates[r.id],
                                  lefts[r.id] + 12.0 * replicas.PAST_BUDGET) - 1e-9
        assert deadlines[r.id] - rooms[r.id] + lefts[r.id] <= start + 12.0 + 0.05
        assert deadlines[r.id] <= end + 0.05
    assert result.spent <= 12.0 + target.result.seconds + 2.0


def test_when_no_replica_of_a_costlier_new_best_fits_the_searcher_uses_the_reserve(
        tmp_path, monkeypatch) -> None:
    # The target is the newest full trial; from trial 8 on, one replica costs 5 of 12 trials.
    # After trial 8 the reserve (5) is more than is left (3): no replica can run, so the
    # searcher, stopped for them, gets those 3 trials back instead of leaving them unspent.
    monkeypatch.setattr(replicas, "target",
                        lambda records, full: max(records, key=lambda r: r.id, default=None))
    monkeypatch.setattr(replicas.ReplicaPhase, "cost_of",
                        lambda self, record: 5.0 if record.id >= 8 else 1.0)
    result = nas.search(_space(), blobs(), "random", "12trials", trial_budget="2ep", seed=1,
                        storage=tmp_path / "d.db", progress=False, ensemble=12, replicas=2)
    assert len(result.trials) == 12 and not any(_is_replica(r) for r in result.trials)
    assert result.spent == 12
    assert "no replicas: trial 8's training does not fit in what is left" in result.stopped
    with Storage.open(result.path) as store:
        assert store.meta("summary")["replicas"] == {
            "dropped": "trial 8's training does not fit in what is left"}


def test_no_replicas_without_asking(tmp_path) -> None:
    result = nas.search(_space(), blobs(), "random", "5trials", trial_budget="2ep", seed=1,
                        storage=tmp_path / "n.db", progress=False, ensemble=3)
    assert len(result.trials) == 5 and not any(_is_replica(r) for r in result.trials)
    with pytest.raises(UserError, match="need ensemble >= 2"):
        nas.search(_space(), blobs(), "random", "5trials", storage=tmp_path / "x.db",
                   progress=False, ensemble=0, replicas=2)
    with pytest.raises(UserError, match="replicas is a number"):
        nas.search(_space(), blobs(), "random", "5trials", storage=tmp_path / "y.db",
                   progress=False, replicas=-1)


def test_cli_replicas_mistakes_are_one_line(capsys) -> None:
    assert main(["search", "--data", "digits", "--replicas", "two", "--budget", "3trials"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--replicas is a number or auto" in err[0]
    assert main(["search", "--data", "digits", "--replicas", "-1", "--budget", "3trials"]) == 2
    assert "replicas is a number" in capsys.readouterr().err


def test_explain_says_replicas_come_with_the_default_searcher(capsys) -> None:
    assert main(["search", "--data", "synthetic", "--budget", "300ep", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "replicas 2:" in out
    assert main(["search", "--data", "synthetic", "--budget", "300ep", "--searcher", "tpe",
                 "--explain"]) == 0
    assert "replicas" not in capsys.readouterr().out


def test_a_search_killed_among_its_replicas_resumes_to_the_same_end(tmp_path) -> None:
    import subprocess
    import sys

    args = ["--replicas", "2"]
    full = subprocess.run(_cli("full", args), cwd=tmp_path, env=_env(), text=True,
                          capture_output=True, timeout=300)
    assert full.returncode == 0, full.stderr
    killed = _start_and_stop(tmp_path, "random", "cut", signal.SIGKILL, after=9,
                             argv=_cli("cut", args))
    assert killed.returncode == -signal.SIGKILL
    db = tmp_path / "runs" / "cut.db"
    with Storage.open(db) as store:
        assert any(_is_replica(r) for r in store.trials())  # killed in their phase
    resumed = subprocess.run([sys.executable, "-m", "nas", "resume", str(db), "--no-progress"],
                             cwd=tmp_path, env=_env(), text=True, capture_output=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    want, got = _outcome(tmp_path / "runs" / "full.db"), _outcome(db)
    assert got == want
    stops = []
    for path in (tmp_path / "runs" / "full.db", db):
        with Storage.open(path) as store:
            stops.append(store.meta("summary")["stopped"])
    assert stops[0] == stops[1] and "2 replicas of trial" in stops[0]
    assert sum("replica_of" in row[0]["info"] for row in got[0]) == 2
    assert not math.isnan(got[1][1])


def _cli(name: str, extra: list[str]) -> list[str]:
    import sys

    return [sys.executable, "-m", "nas", "search", "--data", "synthetic", "--searcher", "random",
            "--budget", "10trials", "--trial-budget", "9ep", "--set", "width=16:32",
            "--set", "n_blocks=1", "--seed", "3", "--name", name, "--no-progress", *extra]


def test_local_workers_train_the_replicas_side_by_side(tmp_path) -> None:
    result = nas.search(_space(), blobs(), "random", "8trials", trial_budget="6ep", seed=1,
                        storage=tmp_path / "w.db", progress=False, ensemble=4, replicas=2,
                        executor="local", workers=2)
    first, second = [r for r in result.trials if _is_replica(r)]
    assert second.started_at < first.finished_at  # not one after the other
    assert len({r.worker for r in (first, second)}) == 2


def test_a_lineage_asked_before_its_result_is_not_kept_short(tmp_path) -> None:
    # A replica is planned as long as its configuration's lineage took; asked while the last
    # trial's journal row had no result yet, that lineage had been kept as its parents' alone.
    from nas.engine.reuse import Reuse
    from nas.types import Result, Trial

    with Storage.create(tmp_path / "l.db", {"name": "l"}) as store:
        store.add_trial(Trial(id=0, config={"a": 1}, budget=3.0))
        store.finish_trial(0, Result(loss=0.5, seconds=10.0))
        store.add_trial(Trial(id=1, config={"a": 1}, budget=9.0, parent=0))
        reuse = Reuse(store, dedup=False, continue_trials=True, budget_of=lambda t: t.budget)
        assert reuse.lineage_seconds(1) == 10.0  # running: its parent's seconds so far
        store.finish_trial(1, Result(loss=0.4, seconds=30.0))
        assert reuse.lineage_seconds(1) == 40.0
