"""Journal writes per trial: `Storage` vs the same rows through bare sqlite3 vs a JSON-lines log.

    python -m pytest benchmarks/bench_storage.py -q -p no:cacheprovider

One trial is what the runner journals for it: `add_trial`, `start_trial`, `finish_trial` (with
the ledger's total), three committed transactions on a file-backed WAL journal with
``synchronous = FULL``. The baselines keep that durability: bare sqlite3 runs the same three
transactions with the same pragmas and schema, and the JSON-lines log appends and fsyncs one line
per event. Not part of the default test run (pyproject: testpaths = ["tests"]).
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.timing import benchmarks_off, interleaved, median_ratio
from nas.storage import _SCHEMA, Storage
from nas.types import Result, Trial, TrialStatus

GROUP = "journal-trial"
ROUNDS = 30
# Trials per round: one trial (three commits) is a few milliseconds, too short to time alone.
ITERATIONS = 20
# A digits-mlp configuration and the result a one-epoch trial reports: rows of realistic size.
CONFIG: dict[str, Any] = {
    "architecture": "residual-mlp", "activation": "relu", "batch_size": 64, "block1_mult": 1.0,
    "block2_mult": 1.0, "dropout": 0.1, "lr": 1e-3, "lr_schedule": "cosine", "n_blocks": 2,
    "norm": "batchnorm", "optimizer": "adamw", "weight_decay": 1e-4, "width": 128,
}
INFO: dict[str, Any] = {"origin": "random"}
RESULT = Result(loss=0.17, epochs=1.0, seconds=0.05,
                metrics={"val_accuracy": 0.83, "val_loss": 0.61, "epochs": 1.0, "status": "ok"},
                curve=({"epoch": 1.0, "train_loss": 1.9, "val_loss": 0.61, "val_accuracy": 0.83},),
                cost=1.0)
DEVICE = "cpu"
WORKER = "host:1"
# The trial columns a reader sees (timestamps differ between any two runs).
COMPARED = ("id, config, budget, parent, info, status, loss, result, device, ask_seq, tell_seq, "
            "worker")


class JournalWriter:
    """Trials through `nas.storage.Storage`, as the runner writes them."""

    def __init__(self, path: Path) -> None:
        self.store = Storage.create(path, {"name": "bench"})
        self.next_id = 0

    def __call__(self) -> None:
        tid = self.next_id
        self.next_id += 1
        self.store.add_trial(Trial(id=tid, config=CONFIG, budget=1.0, info=INFO), seq=2 * tid)
        self.store.start_trial(tid, device=DEVICE)
        self.store.finish_trial(tid, RESULT, spent=float(tid + 1), seq=2 * tid + 1,
                                worker=WORKER)

    def finished(self) -> int:
        """Trials stored as finished."""
        return sum(r.status is TrialStatus.OK for r in self.store.trials())

    def close(self) -> None:
        self.store.close()


class BareSqliteWriter:
    """The same rows and transactions through sqlite3 directly: the floor for an SQLite journal.

    The dicts are JSON-encoded per trial (any journal must) but built once: turning `Trial` and
    `Result` into dicts is part of what `Storage` costs.
    """

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = FULL")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self.db.execute(statement)
        self.result = RESULT.to_dict()
        self.next_id = 0

    def _commit(self, sql: str, args: tuple[Any, ...],
                meta: tuple[str, str] | None = None) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute(sql, args)
        if meta is not None:
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta)
        self.db.execute("COMMIT")

    def __call__(self) -> None:
        tid = self.next_id
        self.next_id += 1
        self._commit(
            "INSERT INTO trials (id, config, budget, parent, info, status, asked_at, ask_seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (tid, json.dumps(CONFIG), 1.0, None, json.dumps(INFO), TrialStatus.PENDING.value,
             time.time(), 2 * tid),
        )
        self._commit("UPDATE trials SET status = ?, started_at = ?, device = ? WHERE id = ?",
                     (TrialStatus.RUNNING.value, time.time(), DEVICE, tid))
        self._commit(
            "UPDATE trials SET status = ?, loss = ?, result = ?, finished_at = ?, tell_seq = ?, "
            "worker = ? WHERE id = ?",
            (TrialStatus.OK.value, RESULT.loss, json.dumps(self.result), time.time(),
             2 * tid + 1, WORKER, tid),
            meta=("spent", json.dumps(float(tid + 1))),
        )

    def finished(self) -> int:
        """Trials stored as finished."""
        sql = "SELECT COUNT(*) FROM trials WHERE status = ?"
        return int(self.db.execute(sql, (TrialStatus.OK.value,)).fetchone()[0])

    def close(self) -> None:
        self.db.close()


class JsonLinesWriter:
    """One JSON line per event (ask, start, finish), each flushed and fsynced: the simplest
    durable log of the same information."""

    def __init__(self, path: Path) -> None:
        self.file: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close)
        self.result = RESULT.to_dict()
        self.next_id = 0

    def _append(self, event: dict[str, Any]) -> None:
        self.file.write(json.dumps(event) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def __call__(self) -> None:
        tid = self.next_id
        self.next_id += 1
        self._append({"event": "ask", "id": tid, "config": CONFIG, "budget": 1.0, "info": INFO,
                      "asked_at": time.time(), "seq": 2 * tid})
        self._append({"event": "start", "id": tid, "started_at": time.time(), "device": DEVICE})
        self._append({"event": "finish", "id": tid, "result": self.result,
                      "finished_at": time.time(), "seq": 2 * tid + 1, "worker": WORKER,
                      "spent": float(tid + 1)})

    def finished(self) -> int:
        """Finish events in the log."""
        with open(self.file.name, encoding="utf-8") as log:
            return sum('"event": "finish"' in line for line in log)

    def close(self) -> None:
        self.file.close()


WRITERS: dict[str, Callable[[Path], Any]] = {
    "storage": JournalWriter,
    "bare-sqlite": BareSqliteWriter,
    "jsonl-fsync": JsonLinesWriter,
}
SUFFIX = {"storage": ".db", "bare-sqlite": ".db", "jsonl-fsync": ".jsonl"}


@pytest.fixture(scope="module")
def trial_seconds(bench_report: list[str]) -> Iterator[dict[str, float]]:
    """Median seconds per journaled trial of each writer; reports the ratios once all ran.

    Reported at teardown rather than by a test of its own, which `--benchmark-only` would skip.
    """
    seconds: dict[str, float] = {}
    yield seconds
    if set(seconds) != set(WRITERS):  # some were deselected, or all disabled
        return
    medians = ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in seconds.items())
    storage = seconds["storage"]
    bench_report.append(
        f"journal per trial (median of {ROUNDS} rounds x {ITERATIONS} trials): {medians}; "
        f"storage/bare-sqlite = {storage / seconds['bare-sqlite']:.3f}, "
        f"storage/jsonl-fsync = {storage / seconds['jsonl-fsync']:.3f}"
    )


@pytest.fixture
def writer_for(tmp_path: Path) -> Iterator[Callable[[str], Any]]:
    """Make a writer on a fresh file under tmp_path; closes every writer made afterwards."""
    made: list[Any] = []

    def make(name: str) -> Any:
        writer = WRITERS[name](tmp_path / f"{name}{SUFFIX[name]}")
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.close()


def _rows(path: Path) -> tuple[list[tuple[Any, ...]], Any]:
    db = sqlite3.connect(str(path))
    try:
        rows = db.execute(f"SELECT {COMPARED} FROM trials ORDER BY id").fetchall()
        spent = db.execute("SELECT value FROM meta WHERE key = 'spent'").fetchone()
    finally:
        db.close()
    return rows, spent


def test_baselines_write_the_same_information(writer_for: Callable[[str], Any],
                                              tmp_path: Path) -> None:
    """Sanity: the bare-sqlite rows equal Storage's, and the log holds every event's values."""
    writers = {name: writer_for(name) for name in WRITERS}
    for writer in writers.values():
        for _ in range(3):
            writer()
    stored, spent = _rows(tmp_path / "storage.db")
    assert len(stored) == 3 and spent == ("3.0",)
    assert _rows(tmp_path / "bare-sqlite.db") == (stored, spent)
    writers["jsonl-fsync"].close()
    events = [json.loads(line) for line in (tmp_path / "jsonl-fsync.jsonl").open()]
    assert [e["event"] for e in events] == ["ask", "start", "finish"] * 3
    for (tid, config, _, _, info, _, _, result, *_), ask, finish in zip(
            stored, events[0::3], events[2::3], strict=True):
        assert (ask["id"], ask["config"], ask["info"]) == (tid, json.loads(config),
                                                           json.loads(info))
        assert finish["result"] == json.loads(result)


@pytest.mark.parametrize("name", list(WRITERS))
def test_trial_write(benchmark: BenchmarkFixture, writer_for: Callable[[str], Any],
                     trial_seconds: dict[str, float], name: str) -> None:
    """Seconds per journaled trial (three durable writes) of one writer."""
    benchmark.group = GROUP
    writer = writer_for(name)
    benchmark.pedantic(writer, rounds=ROUNDS, iterations=ITERATIONS, warmup_rounds=1)
    assert writer.finished() == writer.next_id >= 1  # every call journaled a whole trial
    if benchmark.stats is not None:  # None under --benchmark-disable
        trial_seconds[name] = benchmark.stats.stats.median



def _block(writer: Callable[[], None]) -> Callable[[], None]:
    def write() -> None:
        for _ in range(ITERATIONS):
            writer()

    return write


def test_interleaved_ratio(writer_for: Callable[[str], Any], bench_report: list[str],
                           pytestconfig: pytest.Config) -> None:
    """Most noise-robust ratios: the writers alternate within each round; reported only."""
    if benchmarks_off(pytestconfig):
        pytest.skip("benchmarks disabled or skipped: nothing is timed")
    writers = {name: writer_for(name) for name in WRITERS}
    times = interleaved({name: _block(w) for name, w in writers.items()}, ROUNDS)
    assert all(w.finished() == (ROUNDS + 1) * ITERATIONS for w in writers.values())
    medians = ", ".join(f"{k} {statistics.median(v) / ITERATIONS * 1e3:.2f} ms"
                        for k, v in times.items())
    bare = median_ratio(times, "storage", "bare-sqlite")
    jsonl = median_ratio(times, "storage", "jsonl-fsync")
    bench_report.append(
        f"journal per trial, interleaved ({ROUNDS} rounds x {ITERATIONS} trials): {medians}; "
        f"median per-round storage/bare-sqlite = {bare:.3f}, storage/jsonl-fsync = {jsonl:.3f}"
    )
