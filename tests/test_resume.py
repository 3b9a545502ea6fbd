from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas.cli import main
from nas.storage import Storage
from nas.types import TrialStatus

# Small enough to run in seconds, big enough that every searcher's model gets used.
OPTIONS = {
    "random": [],
    "tpe": ["--option", "n_startup=4"],
    "hyperband": [],
    "bohb": ["--option", "min_points_in_model=3", "--option", "random_fraction=0"],
    # Several objectives: the front's promotions and the Pareto split survive the kill too.
    "mobohb": ["--objectives", "val_error,params", "--option", "min_points_in_model=3",
               "--option", "random_fraction=0"],
}


def _env() -> dict[str, str]:
    # One thread: the same float reductions in every process, and no fight over the 2 cores.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _args(searcher: str, name: str) -> list[str]:
    return [sys.executable, "-m", "nas", "search", "--data", "synthetic", "--searcher", searcher,
            "--budget", "16trials", "--trial-budget", "9ep", "--set", "width=16:32",
            "--set", "n_blocks=1", "--seed", "3", "--name", name, "--no-progress",
            *OPTIONS[searcher]]


def _finished(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT count(*) FROM trials WHERE status NOT IN "
                               "('pending', 'running')").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # the schema is not written yet


def _start_and_stop(tmp_path: Path, searcher: str, name: str, sig: int, after: int = 5,
                    argv: list[str] | None = None,
                    ) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    db = tmp_path / "runs" / f"{name}.db"
    # The child takes Ctrl-C as a user's shell gives it, whatever this test process inherited
    # (a child starts with SIGINT ignored if its parent ignores it, and Python then never
    # raises KeyboardInterrupt: the search ran to its end in a CI run).
    proc = subprocess.Popen(argv or _args(searcher, name), cwd=tmp_path, env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while _finished(db) < after:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the search did not get going"
        time.sleep(0.02)
    assert proc.poll() is None, "the search ended before it could be stopped"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    return proc


def _outcome(db: Path) -> tuple[list, tuple, float]:
    with Storage.open(db) as store:
        rows = [(r.trial.to_dict(), r.status.value, r.result.loss, r.result.epochs,
                 r.result.metrics.get("val_loss"), r.result.objectives) for r in store.trials()]
        summary = store.meta("summary")
        return rows, (summary["best_trial"], summary["test_accuracy"]), store.meta("spent")


# Three searches in fresh processes each (~35 s on a slow machine): random, bohb and mobohb by
# default; tpe's and hyperband's replay is also checked in-process by the conformance suite
# (check_replay) and asynchronously by tests/test_parallel.py.
@pytest.mark.parametrize("searcher", [
    "random", "bohb", "mobohb", pytest.param("tpe", marks=pytest.mark.slow),
    pytest.param("hyperband", marks=pytest.mark.slow)])
def test_killed_and_resumed_search_equals_the_uninterrupted_one(tmp_path, searcher) -> None:
    full = subprocess.run(_args(searcher, "full"), cwd=tmp_path, env=_env(), text=True,
                          capture_output=True, timeout=300)
    assert full.returncode == 0, full.stderr
    killed = _start_and_stop(tmp_path, searcher, "cut", signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    db = tmp_path / "runs" / "cut.db"
    with Storage.open(db) as store:
        assert store.meta("state") == "running"  # it never got to say otherwise
        before = len([r for r in store.trials() if r.status.finished])
    resumed = subprocess.run([sys.executable, "-m", "nas", "resume", str(db), "--no-progress"],
                             cwd=tmp_path, env=_env(), text=True, capture_output=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "rank  trial" in resumed.stdout and "(finished)" in resumed.stdout
    want, got = _outcome(tmp_path / "runs" / "full.db"), _outcome(db)
    assert got[0] == want[0]  # the same trials, results and statuses, in the same order
    assert got[1:] == want[1:]  # the same best, test accuracy and spend
    assert before >= 5 and len(got[0]) == 16
    if searcher in ("hyperband", "bohb", "mobohb"):
        assert any(row[0]["parent"] is not None for row in got[0])
    if searcher == "mobohb":
        assert all(row[5] is not None and len(row[5]) == 2 for row in got[0])


def test_ctrl_c_marks_the_trial_interrupted_and_says_how_to_resume(tmp_path) -> None:
    # 40 trials: the signal must land while trials remain, even when a busy machine starves
    # this process's polling for a few seconds (with 16 a loaded CI run saw the search end).
    args = [("40trials" if a == "16trials" else a) for a in _args("random", "int")]
    stopped = _start_and_stop(tmp_path, "random", "int", signal.SIGINT, after=3, argv=args)
    _, err = stopped.communicate()
    assert stopped.returncode == 130
    db = tmp_path / "runs" / "int.db"
    assert f"resume with: nas resume {Path('runs/int.db')}" in err and "Traceback" not in err
    with Storage.open(db) as store:
        assert store.meta("state") == "interrupted"
        statuses = [r.status for r in store.trials()]
    assert TrialStatus.RUNNING not in statuses and TrialStatus.PENDING not in statuses
    assert main(["resume", str(db), "--no-progress"]) == 0
    with Storage.open(db) as store:
        records = store.trials()
        assert store.meta("state") == "finished"
    assert len(records) == 40 and all(r.status is TrialStatus.OK for r in records)


def test_a_live_search_refuses_a_second_writer_but_not_a_reader(tmp_path, capsys) -> None:
    db = tmp_path / "runs" / "live.db"
    args = [("400trials" if a == "16trials" else a) for a in _args("random", "live")]
    proc = subprocess.Popen(args, cwd=tmp_path, env=_env(), text=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _finished(db) < 1:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        assert main(["resume", str(db)]) == 2
        err = capsys.readouterr().err
        assert "is in use by a running search (pid" in err and err.count("\n") == 1
        assert main(["show", str(db)]) == 0
        assert "(running)" in capsys.readouterr().out
    finally:
        proc.kill()
        proc.wait()
    # The killed process's lock is gone with it: nothing blocks the resume any more.
    with Storage.open(db) as store:
        store.lock()


def test_resume_of_a_finished_search_changes_nothing(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["search", "--data", "synthetic", "--budget", "2trials", "--trial-budget",
                 "1ep", "--name", "done", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["resume", "runs/done.db"]) == 0
    assert "finished already" in capsys.readouterr().out
    with Storage.open(tmp_path / "runs" / "done.db") as store:
        assert len(store.trials()) == 2
