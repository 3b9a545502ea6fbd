"""The SQLite journal: a search's settings, every trial and its result, and checkpoint paths.

Every write is committed before the runner moves on, so a finished trial is never lost. WAL mode
lets `nas show` read a search while it runs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nas.errors import DiskFull, UserError, is_disk_full
from nas.records import MetaKey, SearchState, TrialRecord
from nas.types import Result, Trial, TrialKind, TrialStatus

SCHEMA_VERSION = 3
# Version 2 added ask_seq / tell_seq (and worker): the order of asks and tells of an
# asynchronous search, which a replay must follow. A version-1 journal was sequential: ask k,
# tell k, ask k + 1. Version 3 added a trial's kind and seed, and moved the tie-break and the
# reuse of a result out of its metrics into typed fields.
#: A journal that lives in memory only (for throwaway benchmark runs).
MEMORY = ":memory:"

_SCHEMA = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL              -- JSON
);
CREATE TABLE trials (
    id          INTEGER PRIMARY KEY,
    config      TEXT NOT NULL,       -- JSON
    budget      REAL,
    parent      INTEGER,
    info        TEXT NOT NULL,       -- JSON
    status      TEXT NOT NULL,
    loss        REAL,
    result      TEXT,                -- JSON of nas.types.Result
    asked_at    REAL NOT NULL,
    started_at  REAL,
    finished_at REAL,
    device      TEXT,
    ask_seq     INTEGER,             -- position of the ask among all asks and tells
    tell_seq    INTEGER,             -- position of the tell (NULL until told)
    worker      TEXT,                -- host:pid of the process that ran it
    kind        TEXT NOT NULL DEFAULT 'search',  -- nas.types.TrialKind
    seed        INTEGER              -- the seed its model trained with
);
CREATE TABLE checkpoints (
    trial_id    INTEGER PRIMARY KEY REFERENCES trials(id),
    path        TEXT NOT NULL,       -- relative to the database's folder
    kind        TEXT NOT NULL,
    created_at  REAL NOT NULL
);
"""


#: What a checkpoint's file may be called: no separators, no leading dot.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class JournalExists(UserError):
    """A new journal's file exists already."""


class Storage:
    """One search's journal in one SQLite file; open it with `create` or `open`."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        self._lock: Any = None
        self._lock_path: Path | None = None
        self._columns = _COLUMNS
        # An older journal that could not be upgraded (read-only): converted row by row.
        self._legacy = False
        #: True when the journal or its folder cannot be written (a read-only mount): it can be
        #: read (show, export, report) but not locked for a resume.
        self.read_only = False

    def lock(self) -> None:
        """Claim the journal for this process; refuse if a live search holds it.

        The lock is an OS advisory lock on ``<db>.lock``: it vanishes with its process, so a
        search killed with SIGKILL leaves nothing that blocks a resume; `close` removes the file.
        """
        if str(self.path) == MEMORY or self._lock is not None:
            return
        if self.read_only:
            raise UserError(f"{self.path} is on a read-only location: it can be read (nas show, "
                            "export, report) but not continued; copy it and its "
                            f"{self.checkpoint_dir.name} folder somewhere writable")
        # The real path's lock: a symlink to the journal must not let a second search in.
        real = self.real_path
        lock_path = real.with_name(real.name + ".lock")
        for _ in range(100):
            handle = self._claim(lock_path)
            # A holder removes the file as it lets go: the lock then held is on a file that no
            # longer has this name, and another process may claim a new one. Only the lock on
            # the file the name points to counts.
            try:
                named = os.stat(lock_path, follow_symlinks=False)
            except FileNotFoundError:
                handle.close()
                continue
            held = os.fstat(handle.fileno())
            if (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
                break
            handle.close()
        else:
            raise UserError(f"cannot lock {self.path}: its lock file keeps changing")
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
        except OSError as exc:
            # Closing flushes what the failed write left buffered, which fails the same way.
            with contextlib.suppress(OSError):
                handle.close()
            if is_disk_full(exc):
                raise DiskFull(self.path) from None
            raise
        self._lock, self._lock_path = handle, lock_path

    def _claim(self, lock_path: Path) -> Any:
        """Open `lock_path` (never through a symlink) and take its flock; refuse if held."""
        import fcntl

        try:
            # A symlink planted as the lock file would have its target overwritten with a pid.
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0),
                         0o644)
        except OSError as exc:
            if lock_path.is_symlink():
                raise UserError(f"{lock_path} is a symbolic link; a journal's lock file must be "
                                "a plain file: remove the link") from None
            if is_disk_full(exc):
                raise DiskFull(self.path) from None
            raise UserError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        handle = os.fdopen(fd, "r+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            handle.close()
            raise UserError(
                f"{self.path} is in use by a running search (pid {pid}); "
                f"`nas show {self.path}` can read it while it runs"
            ) from None
        return handle

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike[str], settings: Mapping[str, Any]) -> Storage:
        """Create a new journal holding `settings`; refuses to overwrite an existing file."""
        path = Path(path)
        exists = JournalExists(f"{path} already exists; pick another name or journal (--name, "
                               "--db; storage=), or continue it (nas resume; "
                               "load_if_exists=True)")
        if path.exists() and str(path) != MEMORY:
            raise exists
        if path.suffix == ".ckpt":
            raise UserError(f"a journal may not be named {path.name}: <name>.ckpt is its "
                            "checkpoint folder; use another suffix, e.g. .db")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            claimed = str(path) != MEMORY
            if claimed:
                # Claimed atomically: two searches started in the same second under the same
                # name must not both write one file.
                try:
                    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                except FileExistsError:
                    raise exists from None
            try:
                db = _connect(path)
            except BaseException:
                if claimed:
                    path.unlink(missing_ok=True)
                raise
        except (OSError, sqlite3.Error) as exc:
            if is_disk_full(exc):
                raise DiskFull(path) from None
            raise UserError(f"cannot create {path}: {exc}") from None
        store = cls(path, db)
        store.lock()
        with store._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            store._put_meta(MetaKey.SCHEMA_VERSION, SCHEMA_VERSION)
            store._put_meta(MetaKey.SETTINGS, dict(settings))
            store._put_meta(MetaKey.SETTINGS_DIGEST, settings_digest(settings))
            store._put_meta(MetaKey.CREATED_AT, time.time())
            store._put_meta(MetaKey.STATE, SearchState.RUNNING.value)
        return store

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Storage:
        """Open an existing journal, checking that it is one and that its schema is readable."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"no search database at {path}{_what_is_there(path)}")
        # Checked before SQLite opens it: SQLite would turn an empty file into a database (a
        # journal's main file may be empty while its pages are in its WAL file). Only stat():
        # opening and closing the file here would drop this process's SQLite locks on it.
        wal = path.with_name(path.name + "-wal")
        if path.stat().st_size == 0 and not (wal.is_file() and wal.stat().st_size > 0):
            raise UserError(f"{path} is not a search database")
        read_only = not _writable(path)
        try:
            db = _connect(path, read_only=read_only)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            if is_disk_full(exc):
                raise DiskFull(path) from None
            raise UserError(f"{path} is not a search database") from None
        if row is None:
            raise UserError(f"{path} is not a search database (no schema version)")
        try:
            version = json.loads(row[0])
        except (TypeError, ValueError):
            version = None
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise UserError(f"{path} is damaged: its schema version is {row[0]!r}, not a "
                            "whole number")
        missing = {"meta", "trials", "checkpoints"} - {name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if missing:
            raise UserError(f"{path} is damaged: it has no {', '.join(sorted(missing))} table")
        if version > SCHEMA_VERSION:
            raise UserError(
                f"{path} was written by a newer version (schema {version} > {SCHEMA_VERSION}); "
                "upgrade nas to read it"
            )
        store = cls(path, db)
        store.read_only = read_only
        if version < SCHEMA_VERSION:
            store._upgrade(version)
        return store

    def _upgrade(self, version: int) -> None:
        """Bring an older journal to this schema; a read-only file is read as it is."""
        try:
            with self._transaction():
                if version < 2:  # the event order: NULL is the old sequential order
                    for column in ("ask_seq INTEGER", "tell_seq INTEGER", "worker TEXT"):
                        self._db.execute(f"ALTER TABLE trials ADD COLUMN {column}")
                self._db.execute("ALTER TABLE trials ADD COLUMN kind TEXT NOT NULL "
                                 "DEFAULT 'search'")
                self._db.execute("ALTER TABLE trials ADD COLUMN seed INTEGER")
                rows = self._db.execute("SELECT id, info, result FROM trials").fetchall()
                for tid, info, result in rows:
                    kind, result = _legacy(json.loads(info), result)
                    self._db.execute("UPDATE trials SET kind = ?, result = ? WHERE id = ?",
                                     (kind.value, result, tid))
                self._put_meta(MetaKey.SCHEMA_VERSION, SCHEMA_VERSION)
        except sqlite3.OperationalError:
            self._legacy = True
            if version < 2:
                self._columns = _COLUMNS_V1
            else:
                self._columns = _COLUMNS_V2

    def close(self) -> None:
        """Close the connection and let go of the lock."""
        self._db.close()
        if self._lock is not None:
            # Removed while still held (see `lock`), then closed: closing releases the flock.
            with contextlib.suppress(OSError):
                os.unlink(self._lock_path)
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta ----------------------------------------------------------------------------------

    def meta(self, key: str, default: Any = None) -> Any:
        """A JSON value stored under `key` (a `MetaKey`)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (_key(key),)).fetchone()
        if row is None:
            return default
        try:
            return json.loads(row[0])
        except (TypeError, ValueError):
            raise UserError(f"{self.path} is damaged: its {_key(key)!r} entry is not valid "
                            "JSON") from None

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value under `key` (committed at once)."""
        with self._transaction():
            self._put_meta(key, value)

    def edited_settings(self) -> list[str]:
        """The settings changed since the journal was created (none for journals older than
        their digest)."""
        digest = self.meta(MetaKey.SETTINGS_DIGEST)
        if not isinstance(digest, dict):
            return []
        now = settings_digest(self.settings)
        return sorted(k for k in set(digest) | set(now) if digest.get(k) != now.get(k))

    @property
    def settings(self) -> dict[str, Any]:
        """The settings the search was created with, as stored (`nas.journal.SearchSettings`
        reads them)."""
        return dict(self.meta(MetaKey.SETTINGS, {}))

    # -- trials --------------------------------------------------------------------------------

    def add_trial(self, trial: Trial, *, seq: int | None = None,
                  random_state: Mapping[str, Any] | None = None) -> None:
        """Record a trial the searcher asked for, as the `seq`-th event of the search; with
        `random_state` (the searcher's generators right after asking it), kept with the one
        before it, so a resume can skip re-asking (`MetaKey.SEARCHER_STATES`)."""
        with self._transaction():
            if random_state is not None:
                states = self.meta(MetaKey.SEARCHER_STATES, []) or []
                self._put_meta(MetaKey.SEARCHER_STATES, [
                    *states[-1:], {"after": trial.id, "state": dict(random_state)}])
            # A trial that was running when its search died is run again on resume: it keeps
            # its place among the asks, and its old result goes.
            asked = trial.asked()
            self._db.execute(
                "INSERT INTO trials (id, config, budget, parent, info, status, asked_at, "
                "ask_seq, kind, seed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET "
                "status = excluded.status, loss = NULL, result = NULL, finished_at = NULL, "
                "tell_seq = NULL, ask_seq = COALESCE(trials.ask_seq, excluded.ask_seq), "
                "seed = excluded.seed",
                (trial.id, json.dumps(asked["config"]), trial.budget, trial.parent,
                 json.dumps(asked["info"]), TrialStatus.PENDING.value, time.time(),
                 seq, trial.kind.value, trial.seed),
            )

    def start_trial(self, trial_id: int, *, device: str | None = None) -> None:
        """Mark a trial as running."""
        with self._transaction():
            self._db.execute(
                "UPDATE trials SET status = ?, started_at = ?, device = ? WHERE id = ?",
                (TrialStatus.RUNNING.value, time.time(), device, trial_id),
            )

    def finish_trial(self, trial_id: int, result: Result, *, spent: float | None = None,
                     checkpoint: Path | None = None, seq: int | None = None,
                     worker: str | None = None) -> None:
        """Store a trial's result with the ledger's new total and its checkpoint, atomically.

        `seq` is the tell's position in the search's events (None: not told to the searcher).
        """
        loss = result.loss if math.isfinite(result.loss) else None
        with self._transaction():
            self._db.execute(
                "UPDATE trials SET status = ?, loss = ?, result = ?, finished_at = ?, "
                "tell_seq = ?, worker = COALESCE(?, worker) WHERE id = ?",
                (result.status.value, loss, json.dumps(result.to_dict()), time.time(), seq,
                 worker, trial_id),
            )
            if spent is not None:
                self._put_meta(MetaKey.SPENT, spent)
            if checkpoint is not None:
                self._put_checkpoint(trial_id, checkpoint, "weights")

    def interrupt_trial(self, trial_id: int, *, spent: float | None = None) -> None:
        """Mark a trial interrupted, unless its result is in already (that one is kept)."""
        result = Result.failure(TrialStatus.INTERRUPTED, "interrupted by the user")
        with self._transaction():
            self._db.execute(
                "UPDATE trials SET status = ?, result = ?, finished_at = ? "
                "WHERE id = ? AND status IN (?, ?)",
                (result.status.value, json.dumps(result.to_dict()), time.time(), trial_id,
                 TrialStatus.PENDING.value, TrialStatus.RUNNING.value),
            )
            if spent is not None:
                self._put_meta(MetaKey.SPENT, spent)

    def finish_search(self, summary: Mapping[str, Any], *, spent: float) -> None:
        """Store a finished search's summary and final spend, and mark it finished, at once."""
        with self._transaction():
            self._put_meta(MetaKey.SUMMARY, dict(summary))
            self._put_meta(MetaKey.SPENT, spent)
            self._put_meta(MetaKey.STATE, SearchState.FINISHED.value)

    def trials(self) -> list[TrialRecord]:
        """Every trial, in the order asked."""
        rows = self._db.execute(f"SELECT {self._columns} FROM trials ORDER BY id").fetchall()
        return [self._read(row) for row in rows]

    def _read(self, row: tuple[Any, ...]) -> TrialRecord:
        """A trial row as a record; a row no version of nas wrote is named in one line."""
        try:
            return _record(row, legacy=self._legacy)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise UserError(f"{self.path} is damaged: trial row {row[0]!r} cannot be read "
                            f"({type(exc).__name__}: {exc}); `nas resume --repair` drops it"
                            ) from None

    def trial_ids(self) -> list[int]:
        """Every trial row's id, in order (whether or not the row can be read)."""
        return [int(t) for (t,) in self._db.execute("SELECT id FROM trials ORDER BY id")]

    def unreadable_trials(self) -> list[int]:
        """Ids of trial rows that cannot be read (damaged or edited journals), in id order."""
        rows = self._db.execute(f"SELECT {self._columns} FROM trials ORDER BY id").fetchall()
        bad = []
        for row in rows:
            try:
                _record(row, legacy=self._legacy)
            except (TypeError, ValueError, KeyError, AttributeError):
                bad.append(row[0])
        return bad

    def drop_trials_from(self, trial_id: int) -> int:
        """Delete trial `trial_id` and every later one (and their checkpoint rows): a replay
        must ask them all again. How many were deleted."""
        with self._transaction():
            count = self._db.execute("DELETE FROM trials WHERE id >= ?", (trial_id,)).rowcount
            self._db.execute("DELETE FROM checkpoints WHERE trial_id >= ?", (trial_id,))
            for key in (MetaKey.SUMMARY, MetaKey.SEARCHER_STATES):  # both name dropped trials
                self._db.execute("DELETE FROM meta WHERE key = ?", (_key(key),))
            self._put_meta(MetaKey.STATE, SearchState.INTERRUPTED.value)
        return int(count)

    def trial(self, trial_id: int) -> TrialRecord:
        """One trial by id."""
        row = self._db.execute(f"SELECT {self._columns} FROM trials WHERE id = ?",
                               (trial_id,)).fetchone()
        if row is None:
            raise KeyError(trial_id)
        return self._read(row)

    # -- checkpoints -----------------------------------------------------------------------------

    @property
    def real_path(self) -> Path:
        """The journal's file with symlinks resolved (its lock and checkpoints go beside it)."""
        return self.path if str(self.path) == MEMORY else Path(os.path.realpath(self.path))

    @property
    def checkpoint_dir(self) -> Path:
        """Folder beside the database that holds its checkpoints (named after the journal, so a
        journal renamed with its folder keeps them)."""
        return self.real_path.with_suffix(".ckpt")

    def add_checkpoint(self, trial_id: int, path: Path, kind: str = "weights") -> None:
        """Record a checkpoint file written for a trial."""
        with self._transaction():
            self._put_checkpoint(trial_id, path, kind)

    def remove_checkpoint(self, trial_id: int) -> None:
        """Forget a trial's checkpoint (the caller deletes the file after this commits)."""
        with self._transaction():
            self._db.execute("DELETE FROM checkpoints WHERE trial_id = ?", (trial_id,))

    def checkpoints(self) -> dict[int, Path]:
        """Trial id -> checkpoint path, always inside `checkpoint_dir`: a row naming a file
        anywhere else is refused (a journal is untrusted input)."""
        rows = self._db.execute("SELECT trial_id, path FROM checkpoints").fetchall()
        return {int(t): self._checkpoint_file(int(t), str(p)) for t, p in rows}

    def _checkpoint_file(self, trial_id: int, stored: str) -> Path:
        """The file a checkpoint row names: its bare file name in `checkpoint_dir`. Rows older
        than that hold ``<stem>.ckpt/<name>`` (the stem as it was: a renamed journal keeps
        them)."""
        parts = stored.replace("\\", "/").split("/")
        name = parts[-1]
        legacy = len(parts) == 2 and parts[0].endswith(".ckpt") and parts[0] not in (".ckpt",)
        if not _SAFE_NAME.fullmatch(name) or not (len(parts) == 1 or legacy):
            raise UserError(f"{self.path}: the checkpoint row of trial {trial_id} names "
                            f"{stored!r}, outside the journal's checkpoint folder; refusing to "
                            "use it (the journal was edited or damaged)")
        return self.checkpoint_dir / name

    # -- internals -------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if is_disk_full(exc):
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise DiskFull(self.path) from None
            raise

    def _put_checkpoint(self, trial_id: int, path: Path, kind: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO checkpoints (trial_id, path, kind, created_at) "
            "VALUES (?, ?, ?, ?)",
            (trial_id, Path(path).name, kind, time.time()),
        )

    def _put_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (_key(key), json.dumps(value))
        )


def _what_is_there(path: Path) -> str:
    """What a folder given for a journal holds instead: a `nas bench` output, or journals."""
    if not path.is_dir():
        return ""
    if (path / "summary.md").is_file() and (path / "runs").is_dir():
        return (f": it is a `nas bench` folder (its summary: {path / 'summary.md'}, its "
                f"regret plots: {path}/regret-*.png); one run's journal is "
                f"{path}/runs/<run>.db")
    journals = sorted(path.glob("*.db"))
    if journals:
        names = ", ".join(j.name for j in journals[:3]) + (", ..." if len(journals) > 3 else "")
        return f": it is a folder; name one of its journals ({names})"
    return ": it is a folder"


def settings_digest(settings: Mapping[str, Any]) -> dict[str, str]:
    """A digest of each setting's JSON: what `edited_settings` compares."""
    import hashlib

    return {str(k): hashlib.sha256(json.dumps(v, sort_keys=True, default=str).encode()
                                   ).hexdigest()[:16] for k, v in settings.items()}


def _writable(path: Path) -> bool:
    """Whether the journal and its folder (WAL side files, the lock) can be written."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        # Immutable: SQLite may not create its WAL side files there; a journal closed cleanly
        # holds everything in its main file.
        uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro&immutable=1"
        return sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None,
                               check_same_thread=False)
    db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    # FULL: a committed trial survives power loss, not only a killed process.
    db.execute("PRAGMA synchronous = FULL")
    return db


_COLUMNS = ("id, config, budget, parent, info, status, result, asked_at, started_at, "
            "finished_at, device, ask_seq, tell_seq, worker, kind, seed")
_COLUMNS_V2 = _COLUMNS.replace("kind, seed", "'search', NULL")
_COLUMNS_V1 = _COLUMNS_V2.replace("ask_seq, tell_seq, worker", "NULL, NULL, NULL")
#: A schema-2 replica's `Trial.info` key naming the trial it repeats.
_REPLICA_OF = "replica_of"


def _key(key: str) -> str:
    """A meta key's text (a `MetaKey` is a str enum; str() of one names the member)."""
    return key.value if isinstance(key, MetaKey) else key


def _legacy(info: Mapping[str, Any], result: str | None) -> tuple[TrialKind, str | None]:
    """A schema-2 row's kind, and its result JSON with the typed fields schema 3 added.

    Schema 2 marked a replica in its info, and kept the reuse of a result and the tie-break
    (the trainer's validation loss; any objective's ``val_loss``) in the metrics.
    """
    kind = TrialKind.REPLICA if _REPLICA_OF in info else TrialKind.SEARCH
    if result is None:
        return kind, None
    data = json.loads(result)
    metrics = data.get("metrics") or {}
    if isinstance(metrics.get("val_loss"), (int, float)):
        data.setdefault("tiebreak_loss", float(metrics["val_loss"]))
    if metrics.get("reused_from") is not None:
        data.setdefault("reused_from", int(metrics["reused_from"]))
    return kind, json.dumps(data)


def _record(row: tuple[Any, ...], *, legacy: bool = False) -> TrialRecord:
    (tid, config, budget, parent, info, status, result, asked, started, finished, device,
     ask_seq, tell_seq, worker, kind, seed) = row
    info = json.loads(info)
    if legacy:
        kind, result = _legacy(info, result)
    trial = Trial(id=int(tid), config=json.loads(config), budget=budget, parent=parent,
                  info=info, kind=TrialKind(kind), seed=seed)
    return TrialRecord(
        trial=trial,
        status=TrialStatus(status),
        result=None if result is None else Result.from_dict(json.loads(result)),
        asked_at=asked,
        started_at=started,
        finished_at=finished,
        device=device,
        ask_seq=ask_seq,
        tell_seq=tell_seq,
        worker=worker,
    )
