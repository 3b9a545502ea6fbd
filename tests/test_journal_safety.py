"""A journal and the files beside it are untrusted input (issue 21): no row or planted link may
make the engine touch files outside the journal's own checkpoint folder."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from nas.cli import main
from nas.engine.checkpoints import Checkpoints, save_atomic
from nas.errors import UserError
from nas.records import MetaKey, SearchState
from nas.storage import Storage, settings_digest


def _unfinished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "x") -> Path:
    """A journal of a 3-trial search with continuation checkpoints, marked as stopped midway."""
    monkeypatch.chdir(tmp_path)
    assert main(["search", "--data", "synthetic", "--searcher", "hyperband", "--budget",
                 "3trials", "--trial-budget", "3ep", "--option", "min_budget=1", "--name", name,
                 "--set", "width=16", "--set", "n_blocks=1", "--no-progress"]) == 0
    db = tmp_path / "runs" / f"{name}.db"
    with Storage.open(db) as store:
        store.set_meta(MetaKey.STATE, SearchState.RUNNING.value)
    return db


def _insert_checkpoint(db: Path, trial_id: int, stored: str) -> None:
    with sqlite3.connect(db) as con:
        con.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, 'weights', 0)",
                    (trial_id, stored))


@pytest.mark.parametrize("stored", ["../victim.txt", "{victim}", "x.ckpt/../../victim.txt",
                                    "x.ckpt/sub/trial-1.pt"])
def test_a_crafted_checkpoint_row_never_deletes_a_file_outside(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        stored: str) -> None:
    db = _unfinished(tmp_path, monkeypatch)
    victim = tmp_path / "runs" / "victim.txt" if stored.startswith("../") else \
        tmp_path / "victim.txt"
    victim.write_text("keep me")
    _insert_checkpoint(db, 999, stored.format(victim=victim))
    capsys.readouterr()
    assert main(["resume", str(db)]) != 0
    err = capsys.readouterr().err
    assert "checkpoint row of trial 999" in err and "outside" in err and err.count("\n") == 1
    assert victim.read_text() == "keep me"


def test_old_rows_and_bare_names_stay_in_the_folder(tmp_path: Path) -> None:
    with Storage.create(tmp_path / "a.db", {}) as store:
        folder = store.checkpoint_dir
        for trial_id, stored in ((1, "trial-1.pt"), (2, "old-name.ckpt/trial-2.pt")):
            store._db.execute("INSERT INTO checkpoints VALUES (?, ?, 'weights', 0)",
                              (trial_id, stored))
        assert store.checkpoints() == {1: folder / "trial-1.pt", 2: folder / "trial-2.pt"}
        store.add_checkpoint(3, folder / "trial-3.pt")
        row = store._db.execute("SELECT path FROM checkpoints WHERE trial_id = 3").fetchone()
        assert row[0] == "trial-3.pt"  # the folder is not stored: a renamed journal keeps it


def test_a_renamed_journal_with_its_folder_resumes_and_exports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _unfinished(tmp_path, monkeypatch, name="a")
    with Storage.open(db) as store:
        kept = store.checkpoints()
    assert kept and all(p.exists() for p in kept.values())
    os.rename(db, tmp_path / "runs" / "b.db")
    os.rename(tmp_path / "runs" / "a.ckpt", tmp_path / "runs" / "b.ckpt")
    assert main(["resume", "runs/b.db", "--no-progress"]) == 0
    assert main(["export", "runs/b.db", "--out", str(tmp_path / "model.pt")]) == 0
    assert (tmp_path / "model.pt").stat().st_size > 0


def test_a_lock_file_planted_as_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    with Storage.create(tmp_path / "a.db", {}):
        pass
    assert not (tmp_path / "a.db.lock").exists()  # closing removed it
    (tmp_path / "a.db.lock").symlink_to(target)
    with Storage.open(tmp_path / "a.db") as store, pytest.raises(UserError, match="symbolic"):
        store.lock()
    assert target.read_text() == "keep me"


def test_a_symlink_to_the_journal_takes_the_same_lock(tmp_path: Path) -> None:
    with Storage.create(tmp_path / "a.db", {}) as first:
        (tmp_path / "alias.db").symlink_to(tmp_path / "a.db")
        with Storage.open(tmp_path / "alias.db") as second:
            assert second.checkpoint_dir == first.checkpoint_dir
            with pytest.raises(UserError, match="in use by a running search"):
                second.lock()


def test_a_planted_side_file_link_is_replaced_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    with Storage.create(tmp_path / "a.db", {}) as store:
        store.checkpoint_dir.mkdir()
        (store.checkpoint_dir / "trial-0.pt.tmp").symlink_to(target)
        path = Checkpoints(store).write(0, {"weights": {}})
    assert target.read_text() == "keep me"
    assert path.is_file() and not path.is_symlink()
    save_atomic({"a": 1}, tmp_path / "out.pt")
    assert (tmp_path / "out.pt").is_file()


def test_a_checkpoint_folder_that_is_a_link_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with Storage.create(tmp_path / "a.db", {}) as store:
        store.checkpoint_dir.symlink_to(elsewhere)
        with pytest.raises(UserError, match="symbolic link"):
            Checkpoints(store).write(0, {"weights": {}})
    assert not list(elsewhere.iterdir())


def test_the_journal_never_chooses_where_data_is_downloaded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import nas.data.vision as vision

    db = _unfinished(tmp_path, monkeypatch)
    anywhere = tmp_path / "any" / "dir"
    with Storage.open(db) as store:
        settings = dict(store.settings)
        settings["data"] = {"name": "mnist", "options": {"root": str(anywhere), "download": True}}
        store.set_meta(MetaKey.SETTINGS, settings)
        # A crafted journal carries a matching digest too: the digest catches edits, not attacks.
        store.set_meta(MetaKey.SETTINGS_DIGEST, settings_digest(settings))
    asked: list[tuple[object, bool]] = []

    def fake(spec: object, root: object, download: bool, seed: int) -> None:
        asked.append((root, download))
        raise UserError("not found")

    monkeypatch.setattr(vision, "_load_torchvision", fake)
    capsys.readouterr()
    assert main(["resume", str(db)]) != 0
    assert "cannot reload the data" in capsys.readouterr().err
    assert asked == [(None, False)] and not anywhere.exists()
    # The caller may say both.
    assert main(["resume", str(db), "--data-root", str(tmp_path), "--download"]) != 0
    assert asked[-1] == (str(tmp_path), True)


def test_where_the_data_was_read_is_not_journaled(tmp_path: Path) -> None:
    import nas
    from nas.journal import JournalView

    result = nas.search(data="synthetic", data_options={"root": str(tmp_path), "seed": 1},
                        budget="1trials", trial_budget="1ep", storage=tmp_path / "a.db",
                        space_overrides={"width": 16, "n_blocks": 1}, progress=False)
    spec = JournalView.load(result.path).settings.data
    assert spec is not None and dict(spec.options) == {"seed": 1}


@pytest.fixture
def small_mount(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 32 MB tmpfs at tmp_path / "mnt" (skipped where this process may not mount)."""
    import subprocess

    point = tmp_path / "mnt"
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def test_a_journal_on_a_read_only_mount_is_read_and_not_resumed(
        tmp_path: Path, small_mount: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    db = _unfinished(small_mount, monkeypatch)
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["show", str(db)]) == 0
    assert "trials" in capsys.readouterr().out
    assert main(["export", str(db), "--out", str(tmp_path / "m.pt")]) == 0
    capsys.readouterr()
    assert main(["resume", str(db)]) == 2
    err = capsys.readouterr().err
    assert "read-only location" in err and err.count("\n") == 1


def _fill(folder: Path) -> Path:
    """Write zeros into `folder` until its file system is full; the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 20, 4096, 1):  # then the last few KB, then the last bytes
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


# The disk fills after `after` finished trials: mid-search, in whichever write comes next (the
# journal's row, a checkpoint, the WAL). Three searches in fresh processes (~30 s).
@pytest.mark.parametrize("after", [3, pytest.param(1, marks=pytest.mark.slow),
                                   pytest.param(9, marks=pytest.mark.slow)])
def test_a_full_disk_is_one_line_and_the_search_resumes_to_the_same_result(
        tmp_path: Path, small_mount: Path, after: int) -> None:
    import subprocess
    import sys
    import time

    from tests.test_resume import _args, _env, _finished, _outcome

    reference = subprocess.run(_args("bohb", "full"), cwd=tmp_path, env=_env(), text=True,
                               capture_output=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    db = small_mount / "runs" / "cut.db"
    proc = subprocess.Popen(_args("bohb", "cut"), cwd=small_mount, env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _finished(db) < after:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the search did not get going"
        time.sleep(0.01)
    filler = _fill(small_mount)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1 and "no space left" in lines[0]
    assert f"nas resume {db}" in lines[0] or "nas resume runs/cut.db" in lines[0]
    # A resume while the disk is still full says so too, and changes nothing.
    early = subprocess.run([sys.executable, "-m", "nas", "resume", str(db), "--no-progress"],
                           cwd=small_mount, env=_env(), text=True, capture_output=True,
                           timeout=300)
    assert early.returncode == 2 and "Traceback" not in early.stderr
    assert "no space left" in early.stderr.strip().splitlines()[-1]
    filler.unlink()
    with Storage.open(db) as store:
        assert store.meta("state") == "running"
    resumed = subprocess.run([sys.executable, "-m", "nas", "resume", str(db), "--no-progress"],
                             cwd=small_mount, env=_env(), text=True, capture_output=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert _outcome(db) == _outcome(tmp_path / "runs" / "full.db")


def test_a_finished_search_keeps_only_the_checkpoints_its_result_may_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A finished Hyperband run on local workers kept one-epoch checkpoints that could never be
    # promoted (brackets still in progress when the budget ran out).
    monkeypatch.chdir(tmp_path)
    assert main(["search", "--data", "synthetic", "--searcher", "hyperband", "--budget",
                 "12trials", "--trial-budget", "9ep", "--option", "min_budget=1", "--name", "h",
                 "--set", "width=16", "--set", "n_blocks=1", "--ensemble", "2",
                 "--workers", "2", "--no-progress"]) == 0
    db = tmp_path / "runs" / "h.db"
    with Storage.open(db) as store:
        kept = set(store.checkpoints())
        summary = store.meta("summary")
        files = {p.name for p in store.checkpoint_dir.iterdir()}
    wanted = {summary["best_trial"]} | {int(k) for k in (summary["ensemble"] or {}).get(
        "weights", {})}
    assert wanted <= kept and len(kept) <= 2 + len(wanted)
    assert files == {f"trial-{i}.pt" for i in kept}
    assert main(["export", str(db), "--out", str(tmp_path / "m.pt")]) == 0
