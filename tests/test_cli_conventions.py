"""The CLI's conventions (issue 26): `--version`, `nas search` needs `--data`, a bare `nas bench`
starts nothing, `nas show --format json|csv`, and a closed pipe is no traceback."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import nas
from nas.cli import main


def _loss(config: dict, budget: float) -> float:
    return (config["x"] - 0.3) ** 2


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ConfigSpace import ConfigurationSpace

    path = tmp_path_factory.mktemp("show") / "s.db"
    nas.optimize(_loss, ConfigurationSpace({"x": (0.0, 1.0), "k": ["a", "b"]}, seed=0),
                 "random", "6trials", storage=path)
    return path


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("nas ")


def test_search_needs_data_and_bare_bench_starts_nothing(tmp_path, capsys,
                                                         monkeypatch) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["search", "--budget", "1m"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "--data" in err[0]
    monkeypatch.chdir(tmp_path)
    assert main(["bench"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--problems" in err[0] and "--searchers" in err[0]
    assert not (tmp_path / "bench").exists()  # nothing ran


def test_show_as_json_and_csv(db, capsys) -> None:
    assert main(["show", str(db), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["search"]["searcher"] == "random" and len(doc["trials"]) == 6
    first = doc["trials"][0]
    assert first["status"] == "ok" and set(first["config"]) == {"x", "k"}
    assert first["loss"] == pytest.approx(_loss(first["config"], 1.0))
    assert main(["show", str(db), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 6 and {"config.x", "config.k", "status", "parent", "epochs"} <= set(
        rows[0])
    assert float(rows[0]["config.x"]) == pytest.approx(first["config"]["x"])


def test_a_closed_pipe_is_no_traceback(db) -> None:
    # `nas show ... | head -1`: here the reader is gone before the first line is written, so
    # every write fails, however large the pipe's buffer.
    proc = subprocess.Popen([sys.executable, "-m", "nas", "show", str(db), "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_the_table_counts_a_lineage_s_epochs_and_names_parents(tmp_path, capsys) -> None:
    from nas.journal import JournalView
    from nas.reporting.console import total_epochs

    db = tmp_path / "h.db"
    main(["search", "--data", "synthetic", "--space", "residual-mlp", "--searcher",
          "hyperband", "--budget", "30ep", "--trial-budget", "9ep", "--set", "width=16:32",
          "--set", "n_blocks=1", "--no-progress", "--db", str(db), "--no-baselines"])
    capsys.readouterr()
    records = JournalView.load(db).records
    promoted = [r for r in records if r.trial.parent is not None and r.result is not None]
    assert promoted
    totals = total_epochs(records)
    child = promoted[0]
    assert totals[child.id] == pytest.approx(totals[child.trial.parent] + child.result.epochs)
    assert main(["show", str(db), "--top", "40", "--full"]) == 0
    out = capsys.readouterr().out
    assert "rank  trial  parent" in out and "…" not in out  # whole configurations
    assert "(a full trial 9ep" in out


def test_progress_shows_the_planning_and_the_running_trial_s_epochs(tmp_path, capsys) -> None:
    from nas.budget import Budget
    from nas.engine.ledger import Ledger
    from nas.journal import SearchSettings
    from nas.reporting.console import ProgressBar
    from nas.types import Trial

    stream = io.StringIO()
    bar = ProgressBar(stream=stream)
    settings = SearchSettings(budget="90ep", trial_budget="9ep").to_dict()
    bar.on_search_start(tmp_path / "x.db", settings, Ledger.for_budget(Budget.parse("90ep")))
    trial = Trial(id=4, config={"x": 1.0}, budget=3.0)
    bar.on_trial_start(trial)
    bar.on_epoch(trial, {"epoch": 2.0, "val_accuracy": 0.5})
    assert "trial 4 epoch 2/3 val 50.0%" in stream.getvalue()
    bar.on_search_end(None)
    nas.search("residual-mlp", "synthetic", "random", "4s", storage=tmp_path / "p.db",
               space_overrides={"width": (16, 32), "n_blocks": 1}, baselines=False)
    assert "planning timing the default model" in capsys.readouterr().err


def test_spaces_auto_prints_what_a_default_search_searches(capsys) -> None:
    assert main(["spaces", "--auto", "--data", "digits"]) == 0
    out = capsys.readouterr().out
    assert "residual-conv: samples are images" in out and "augment" in out
    assert "channels         integer      [32, 128]" in out  # the range the plan searches
    assert main(["spaces", "--auto"]) == 2
    assert "needs --data" in capsys.readouterr().err


def test_workers_per_device_without_a_gpu_is_one_line(tmp_path, capsys) -> None:
    code = main(["search", "--data", "synthetic", "--budget", "1trials", "--device", "cpu",
                 "--workers-per-device", "2", "--db", str(tmp_path / "w.db"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "packs trials onto GPUs" in err[0]


def test_searchers_keeps_its_columns_apart(capsys) -> None:
    import searchers

    assert main(["searchers"]) == 0
    out = capsys.readouterr().out.splitlines()
    width = max(map(len, searchers.available()))
    rows = [line for line in out if line.split(" ", 1)[0] in searchers.available()]
    assert rows and all(line[width:width + 2] == "  " for line in rows)  # even the longest
