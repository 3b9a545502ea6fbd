from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from nas.cli import main
from nas.storage import Storage
from nas.types import TrialStatus


def _nas(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "nas", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_search_show_export_end_to_end_in_a_subprocess(tmp_path) -> None:
    run = _nas("search", "--space", "residual-mlp", "--searcher", "random", "--data", "digits",
               "--budget", "3trials", "--trial-budget", "2ep", "--name", "e2e",
               "--set", "width=16:64", "--set", "n_blocks=1:2", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    db = tmp_path / "runs" / "e2e.db"
    assert "runs/e2e.db" in run.stdout
    assert "rank  trial  parent  val acc" in run.stdout and "test acc" in run.stdout
    table = run.stdout.split("rank  trial")[1].split("\n\n")[0]
    assert len(table.strip().splitlines()) == 4  # header + all 3 trials (fewer than top 5)
    # One progress line per trial on a non-terminal stderr.
    assert run.stderr.count("trial ") == 3 and "Traceback" not in run.stderr
    with Storage.open(db) as store:
        records = store.trials()
        summary = store.meta("summary")
    assert len(records) == 3 and all(r.status is TrialStatus.OK for r in records)

    show = _nas("show", str(db), "--top", "2", cwd=tmp_path)
    assert show.returncode == 0 and "(finished)" in show.stdout
    assert "3trials spent of 3trials" in show.stdout and "3 ok" in show.stdout
    table = show.stdout.split("rank  trial")[1].split("\n\n")[0]
    assert len(table.strip().splitlines()) == 3  # header + top 2

    export = _nas("export", str(db), "-o", "best.pt", cwd=tmp_path)
    assert export.returncode == 0 and (tmp_path / "best.pt").is_file()

    # A fresh process with torch + spaces only loads it and reproduces the test accuracy.
    check = textwrap.dedent("""
        import sys, json, torch, spaces
        from sklearn.datasets import load_digits
        model = spaces.load_model("best.pt")
        ckpt = torch.load("best.pt", weights_only=True)
        print(json.dumps({"test": ckpt["test_accuracy"], "modules": sorted(
            m for m in sys.modules if m == "nas" or m.startswith("nas."))}))
    """)
    out = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import json

    info = json.loads(out.stdout)
    # The file is the search's final model: its ensemble when it chose one of several trials.
    ensemble = summary["ensemble"]
    final = ensemble if ensemble and len(ensemble["weights"]) > 1 else summary
    assert info["test"] == pytest.approx(final["test_accuracy"])
    # Nothing of the engine: the errors and the registry spaces list their families in.
    assert info["modules"] == [m for m in info["modules"]
                               if m in ("nas", "nas.errors", "nas.registry")]


def test_exported_model_reproduces_test_accuracy(tmp_path, monkeypatch) -> None:
    import spaces
    from nas.data import load

    monkeypatch.chdir(tmp_path)
    assert main(["search", "--space", "residual-mlp", "--searcher", "random", "--data",
                 "digits", "--budget", "2trials", "--trial-budget", "3ep", "--name", "x",
                 "--no-progress", "--set", "width=32:64"]) == 0
    assert main(["export", "runs/x.db", "-o", "model.pt"]) == 0
    data = load("digits")
    model = spaces.load_model(tmp_path / "model.pt")
    raw = data.x_test * data.std + data.mean
    with torch.no_grad():
        acc = (model(raw).argmax(1) == data.y_test).float().mean().item()
    ckpt = torch.load(tmp_path / "model.pt", weights_only=True)
    assert acc == pytest.approx(ckpt["test_accuracy"])
    assert ckpt["space_name"] == "residual-mlp" and ckpt["data"] == "digits"
    assert spaces.space_from_json(ckpt["space"]) == spaces.residual_mlp(width=(32, 64))


def test_data_seed_picks_the_split_and_is_journaled(tmp_path, monkeypatch) -> None:
    from nas.data import load
    from nas.storage import Storage

    monkeypatch.chdir(tmp_path)
    assert main(["search", "--space", "residual-mlp", "--searcher", "random", "--data",
                 "digits", "--data-seed", "3", "--budget", "1trials", "--trial-budget", "1ep",
                 "--name", "x", "--no-progress", "--set", "width=32:64"]) == 0
    with Storage.open(tmp_path / "runs/x.db") as store:
        data = store.settings["data"]
    assert data["options"] == {"seed": 3}  # so `nas resume` reloads the same split
    assert data["sizes"] == load("digits", seed=3).sizes
    assert load("digits", seed=3).y_test.tolist() != load("digits").y_test.tolist()


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["search", "--data", "digits", "--budget", "10parsecs"], "cannot read budget"),
        (["search", "--data", "digits", "--searcher", "annealing"], "unknown searcher"),
        (["search", "--data", "digits", "--space", "transformer"], "unknown space"),
        (["search", "--data", "imagenet"], "imagenet"),
        (["search", "--data", "digits", "--set", "depth=3"], "no hyperparameter 'depth'"),
        (["search", "--data", "digits", "--set", "width"], "NAME=VALUE"),
        (["search", "--data", "digits", "--device", "banana", "--budget", "1trials"],
         "unknown device"),
        (["search", "--data", "digits", "--trial-budget", "2trials"], "epochs or seconds"),
        (["search", "--data", "digits", "--searcher", "bohb", "--option", "eta=1"],
         "bad options for searcher"),
        (["search", "--data", "digits", "--searcher", "tpe", "--option", "colour=red"],
         "bad options"),
        (["search", "--data", "mnist", "--data-root", "{tmp}"], "download"),
        (["search", "--data", "digits", "--data-seed", "-1", "--budget", "1trials"], "seed"),
        (["show", "{tmp}/missing.db"], "no search database"),
        (["show", "{tmp}"], "no search database"),
        (["export", "{tmp}/missing.db"], "no search database"),
        (["spaces", "transformer"], "unknown space"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(tmp_path, capsys, args, pattern) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("nas: error: ") and pattern in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_mistake_in_a_real_process_has_no_traceback(tmp_path) -> None:
    run = _nas("show", "nothing.db", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip() == "nas: error: no search database at nothing.db"


def test_search_refuses_to_overwrite_an_existing_journal(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["search", "--data", "synthetic", "--budget", "1trials", "--trial-budget", "1ep",
            "--name", "dup", "--no-progress"]
    assert main(args) == 0
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err


def test_export_without_finished_trials(tmp_path, capsys) -> None:
    from nas.storage import Storage

    Storage.create(tmp_path / "empty.db", {"name": "e", "budget": "1m"}).close()
    assert main(["export", str(tmp_path / "empty.db"), "-o", str(tmp_path / "m.pt")]) == 2
    assert "no finished trial" in capsys.readouterr().err


def test_listings(capsys) -> None:
    assert main(["spaces"]) == 0
    assert "residual-mlp" in capsys.readouterr().out
    assert main(["spaces", "residual-mlp", "--set", "width=32:256", "--set",
                 "optimizer=adam"]) == 0
    out = capsys.readouterr().out
    assert "[32, 256] log" in out and "= 'adam'" in out
    assert main(["spaces", "residual-mlp", "--json"]) == 0
    assert '"hyperparameters"' in capsys.readouterr().out
    assert main(["searchers"]) == 0
    out = capsys.readouterr().out
    for name in ("random", "tpe", "hyperband", "bohb"):
        assert name in out
    assert "multi-fidelity, model" in out
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("digits", "mnist1d", "synthetic", "mnist", "fashion-mnist", "cifar10"):
        assert name in out


@pytest.mark.parametrize("sub", [[], ["search"], ["show"], ["export"], ["spaces"]])
def test_help_everywhere(sub, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*sub, "--help"])
    assert exit_.value.code == 0 and "usage: nas" in capsys.readouterr().out


def test_show_reads_a_search_while_it_runs(tmp_path, capsys) -> None:
    import nas
    import spaces
    from nas.engine.callbacks import Callback
    from tests.helpers import blobs

    db = tmp_path / "live.db"
    seen: list[int] = []

    class ShowMidway(Callback):
        def on_trial_end(self, trial, result, best, ledger):
            if trial.id == 1:
                seen.append(main(["show", str(db)]))

    nas.search(spaces.residual_mlp(width=16, n_blocks=1), blobs(), "random", "3trials",
               trial_budget="1ep", storage=db, progress=False, callbacks=[ShowMidway()])
    out = capsys.readouterr().out
    assert seen == [0]
    assert "(running)" in out and "trials   2: 2 ok" in out
    assert "2trials spent of 3trials" in out


def test_progress_bar_shows_trials_spend_best_and_config(tmp_path) -> None:
    import io

    import nas
    import spaces
    from nas.reporting.console import ProgressBar
    from tests.helpers import blobs

    stream = io.StringIO()
    nas.search(spaces.residual_mlp(width=24, n_blocks=1), blobs(), "random", "2trials",
               trial_budget="1ep", storage=tmp_path / "p.db", progress=False,
               callbacks=[ProgressBar(stream=stream)])
    text = stream.getvalue()
    assert "trials 0 | best val -" in text
    assert "trials 2 | best val " in text and "%" in text
    assert "2/2 trials" in text
    assert "training blocks=1 width=24" in text


def test_search_with_objectives_prints_its_front(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["search", "--space", "residual-mlp", "--searcher", "mo-random", "--data",
                 "synthetic", "--budget", "4trials", "--trial-budget", "1ep", "--name", "mo",
                 "--no-progress", "--set", "width=16:64", "--objectives",
                 "val_error,flops"]) == 0
    capsys.readouterr()
    assert main(["show", "runs/mo.db"]) == 0
    out = capsys.readouterr().out
    assert "trials on the front of val_error, flops" in out
    assert main(["search", "--searcher", "tpe", "--data", "synthetic", "--budget", "1trials",
                 "--objectives", "val_error,params", "--no-progress"]) == 2
    assert "minimises one objective" in capsys.readouterr().err


def test_export_writes_the_final_ensemble_and_checks_the_input_shape(tmp_path,
                                                                     monkeypatch) -> None:
    import numpy as np

    import spaces
    from nas.data import load
    from nas.errors import UserError
    from nas.journal import JournalView

    monkeypatch.chdir(tmp_path)
    assert main(["search", "--space", "residual-conv", "--searcher", "random", "--data",
                 "digits", "--budget", "3trials", "--trial-budget", "2ep", "--name", "e",
                 "--no-progress", "--set", "channels=8:12", "--set", "n_stages=1",
                 "--no-baselines"]) == 0
    summary = JournalView.load("runs/e.db").summary
    assert summary is not None and summary.ensemble and len(summary.ensemble["weights"]) > 1
    assert main(["export", "runs/e.db", "-o", "final.pt"]) == 0
    model = spaces.load_model("final.pt")
    data = load("digits")
    raw = data.x_test * data.std + data.mean  # (n, 1, 8, 8) images
    with torch.no_grad():
        acc = (model(raw).argmax(1) == data.y_test).float().mean().item()
        flat = model(raw.reshape(len(raw), 64)).argmax(1)  # scikit-learn's (n, 64) digits
    assert acc == pytest.approx(summary.ensemble["test_accuracy"])
    assert model.input_shape == (1, 8, 8)
    assert torch.equal(flat, model(raw).argmax(1))
    with pytest.raises(UserError, match=r"takes samples of shape \(1, 8, 8\)"):
        model(torch.zeros(2, 63))
    one = int(np.argmax(list(summary.ensemble["weights"].values())))
    trial = int(list(summary.ensemble["weights"])[one])
    assert main(["export", "runs/e.db", "-o", "one.pt", "--trial", str(trial)]) == 0
    single = torch.load("one.pt", weights_only=True)
    assert "members" not in single and single["trial_id"] == trial


def test_an_exported_model_names_its_classes(tmp_path, monkeypatch) -> None:
    import numpy as np

    import spaces
    from nas import AutoClassifier

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 6)).astype(np.float32)
    labels = np.array(["cat", "dog", "eel"])[(x[:, 0] > 0).astype(int) + (x[:, 1] > 1)]
    lines = ["a,b,c,d,e,f,animal"] + [",".join(f"{v:.4f}" for v in row) + f",{lab}"
                                      for row, lab in zip(x, labels, strict=True)]
    (tmp_path / "zoo.csv").write_text("\n".join(lines) + "\n")
    assert main(["search", "--data", "zoo.csv", "--target", "animal", "--space",
                 "residual-mlp", "--searcher", "random", "--budget", "2trials",
                 "--trial-budget", "1ep", "--name", "zoo", "--no-progress",
                 "--set", "width=16:32", "--no-baselines"]) == 0
    assert main(["export", "runs/zoo.db", "-o", "zoo.pt"]) == 0
    assert spaces.load_model("zoo.pt").classes == ["cat", "dog", "eel"]
    clf = AutoClassifier(space="residual-mlp", searcher="random", budget="2trials",
                         trial_budget="1ep", storage=tmp_path / "clf.db", ensemble=0)
    clf.fit(x, labels, validation_split=0.25)
    assert main(["export", str(tmp_path / "clf.db"), "-o", "clf.pt"]) == 0
    model = spaces.load_model("clf.pt")
    assert model.classes == ["cat", "dog", "eel"] and model.input_shape == (6,)
