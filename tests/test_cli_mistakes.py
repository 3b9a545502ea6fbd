"""Command-line mistakes found by issue 21 (item 13): each is one line and exit 2, nothing is
written, nothing outside `runs/`."""

from __future__ import annotations

from pathlib import Path

import pytest

import nas.reporting.tensorboard
from nas.cli import main
from tests.helpers import one_line_error

SEARCH = ["search", "--data", "synthetic", "--budget", "2trials", "--trial-budget", "1ep",
          "--set", "width=16", "--set", "n_blocks=1", "--no-progress"]



@pytest.mark.parametrize(("extra", "message"), [
    (["--name", "../../x"], "must be a plain name"),
    (["--name", "x" * 300], "characters long"),
    (["--db", "foo.ckpt"], "checkpoint folder"),
    (["--budget", "5ep", "--trial-budget", "20ep"], "more than the whole budget"),
])
def test_search_mistakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str], extra: list[str],
                         message: str) -> None:
    monkeypatch.chdir(tmp_path / ".")
    argv = [a for a in SEARCH]
    if "--budget" in extra:  # replaces the default budgets
        argv = [a for a in argv if a not in ("2trials", "1ep", "--budget", "--trial-budget")]
    assert message in one_line_error(capsys, argv + extra)
    assert not list(tmp_path.rglob("*.db")) and not (tmp_path.parent / "x.db").exists()


def test_tensorboard_behind_a_file_is_refused_before_the_search(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(nas.reporting.tensorboard, "tensorboard_available", lambda: True)
    (tmp_path / "file").write_text("")
    err = one_line_error(capsys, [*SEARCH, "--tensorboard", "file/x"])
    assert "is a file, not a folder" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("top", ["0", "-3", "x"])
def test_show_top_must_be_at_least_one(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       top: str) -> None:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:  # argparse's own exit, after its one line
        main(["show", str(tmp_path / "a.db"), f"--top={top}"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and "--top" in err


def test_show_on_an_empty_file_leaves_it_empty(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert "is not a search database" in one_line_error(capsys, ["show", str(empty)])
    assert empty.read_bytes() == b"" and sorted(p.name for p in tmp_path.iterdir()) == \
        ["empty.db"]


def test_a_finished_search_leaves_no_lock_file(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*SEARCH, "--name", "done"]) == 0
    assert (tmp_path / "runs" / "done.db").exists()
    assert not (tmp_path / "runs" / "done.db.lock").exists()
