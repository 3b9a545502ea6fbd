from __future__ import annotations

import base64
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ConfigSpace import Categorical, ConfigurationSpace, EqualsCondition, Float
from PIL import Image

import nas
import spaces
from nas.budget import charge
from nas.cli import main
from nas.errors import UserError
from nas.journal import JournalView, ranked
from nas.reporting.html import PLOT_FILES, write_report
from nas.reporting.importance import importance
from nas.storage import Storage
from nas.types import TrialStatus
from tests.helpers import blobs

CHROMIUM = Path("/usr/bin/chromium")


def _space() -> ConfigurationSpace:
    s = ConfigurationSpace(name="toy", seed=0)
    c = Categorical("c", ["a", "b"])
    z = Float("z", (0.0, 1.0))  # only active when c == "b": a conditional hyperparameter
    s.add([Float("x", (0.0, 1.0)), Float("y", (0.0, 1.0)), c, z])
    s.add(EqualsCondition(z, c, "b"))
    return s


def toy(config: dict, budget: float) -> float:
    """x matters most; failures and divergences at the edges of x."""
    x = config["x"]
    if x > 0.93:
        raise RuntimeError("boom")
    if x < 0.04:
        return math.nan
    return 10 * (x - 0.3) ** 2 + 0.3 * config["y"] + (0.2 if config["c"] == "a" else 0.0) \
        + 0.1 * config.get("z", 0.0) + 1.0 / budget


def noise(config: dict, budget: float, seed: int) -> float:
    """A loss that no hyperparameter explains."""
    return float(np.random.default_rng(seed).normal())


@pytest.fixture(scope="module")
def hyperband_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hb") / "hb.db"
    nas.optimize(toy, _space(), "hyperband", 300, min_budget=1, max_budget=9, seed=3,
                 storage=path)
    return path


@pytest.fixture(scope="module")
def random_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rnd") / "rnd.db"
    nas.optimize(toy, _space(), "random", "40trials", seed=0, storage=path)
    return path


@pytest.fixture(scope="module")
def search_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("search") / "s.db"
    nas.search(spaces.residual_mlp(width=(16, 32), n_blocks=1), blobs(), "random", "4trials",
               trial_budget="1ep", storage=path, progress=False, name="tiny")
    return path


def _png_ok(path: Path) -> None:
    """A readable PNG of a real plot: large enough and with more than a few colours."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        img.load()
        assert img.width >= 300 and img.height >= 200
        colors = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colors is not None and len(colors) > 20


def _embedded(page: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def _top_rows(page: str) -> list[int]:
    table = page.split('<table class="top">')[1].split("</table>")[0]
    return [int(t) for t in re.findall(r'<tr data-trial="(\d+)">', table)]


def test_multi_fidelity_report_has_every_plot_embedded_and_the_best_trial_first(
        hyperband_db, tmp_path) -> None:
    page_path = write_report(hyperband_db, tmp_path / "out", top_k=7)
    assert page_path == tmp_path / "out" / "report.html"
    # A function objective trains no model: no sizes (no Pareto plot of them), no learning
    # curves, no architecture to draw.
    models_only = ("pareto.png", "learning-curves.png", "architecture.png")
    pngs = [tmp_path / "out" / name for name in PLOT_FILES if name not in models_only]
    for png in pngs:
        _png_ok(png)
    assert not any((tmp_path / "out" / name).exists() for name in models_only)
    page = page_path.read_text()
    assert "Not shown: no trial with two objectives" in page
    assert "Not shown: no trial journaled a learning curve" in page
    # Self-contained: each PNG is embedded byte for byte, nothing is fetched from elsewhere.
    assert sorted(_embedded(page)) == sorted(p.read_bytes() for p in pngs)
    assert not re.search(r'(src|href)="(?!data:)', page) and "<link" not in page
    assert "hyperband" in page and "bracket" in page
    with Storage.open(hyperband_db) as store:
        best = ranked(store.trials())
        counts = {s: sum(r.status is s for r in store.trials()) for s in TrialStatus}
    assert counts[TrialStatus.FAILED] and counts[TrialStatus.DIVERGED]  # the plot marks them
    rows = _top_rows(page)
    assert rows == [r.id for r in best[:7]]
    assert "val acc" not in page.split('<table class="top">')[1].split("</table>")[0]
    assert f"{counts[TrialStatus.FAILED]} failed" in page


def test_budget_spent_is_what_the_ledger_charged(hyperband_db, search_db) -> None:
    for db in (hyperband_db, search_db):
        journal = JournalView.load(db)
        curve = journal.spend_curve()
        assert curve[-1][1] == pytest.approx(journal.spent)
        bests = [best for _, _, best in curve]
        assert bests == sorted(bests, reverse=True)  # best so far never gets worse
        assert bests[-1] == journal.ranked()[0].result.loss
        told = [r.tell_order for r, _, _ in curve]
        assert told == sorted(told)
    # A function objective does not continue its parent: each trial is charged its budget.
    journal = JournalView.load(hyperband_db)
    assert {charge(r.result, journal.unit) for r in journal.finished()} == {1.0, 3.0, 9.0}


def test_importance_finds_the_hyperparameter_that_matters(random_db, tmp_path) -> None:
    result = importance(JournalView.load(random_db))
    assert result.reason is None and result.n_trials >= 30
    assert result.names[0] == "x" and result.r2 > 0.5
    assert result.mean[0] > 5 * max(result.mean[1:])
    assert set(result.names) <= {"x", "y", "c", "z"}  # z (conditional) was encoded, not fatal
    page = write_report(random_db, tmp_path / "out").read_text()
    assert "permutation importance of a random forest" in page
    assert f"Trials used: {result.n_trials}" in page
    _png_ok(tmp_path / "out" / "importance.png")
    # One budget level: no rungs, so no per-rung plot, and the page says why.
    assert not (tmp_path / "out" / "budget-per-rung.png").exists()
    # Best so far, loss vs budget, importance and the configurations side by side.
    assert "same budget (no rungs)" in page and len(_embedded(page)) == 4


def test_importance_reads_the_stored_space_again_and_again(random_db) -> None:
    # ConfigSpace's reader had emptied the journal's stored space: a second call found none.
    view = JournalView.load(random_db)
    first, second = importance(view), importance(view)
    assert first.reason is None and second == first


def test_inactive_values_sort_below_active_ones_and_foreign_configs_are_skipped() -> None:
    from nas.reporting.importance import _columns, _encode, _inactive_below

    columns = _columns(spaces.space_to_json(_space()))
    assert columns is not None and [n for n, _ in columns] == ["c", "x", "y", "z"]
    rows = [_encode(columns, {"c": "b", "x": 0.5, "y": 0.1, "z": 0.2}),
            _encode(columns, {"c": "a", "x": 0.7, "y": 0.3})]
    assert _encode(columns, {"c": "other", "x": 0.5, "y": 0.1}) is None
    assert _encode(columns, {"c": "a", "x": "0.5", "y": 0.1}) is None
    x = _inactive_below(np.array(rows))
    assert x[0].tolist() == [1.0, 0.5, 0.1, 0.2]
    assert x[1, 3] < x[0, 3] and x[1, :3].tolist() == [0.0, 0.7, 0.3]
    assert _columns({"hyperparameters": "nonsense"}) is None


def test_importance_trains_on_a_seeded_sample_of_many_trials(random_db, monkeypatch) -> None:
    # 10,000 trials must not mean a forest on 10,000 rows (issue 21: the report took 29 s).
    import nas.reporting.importance as module

    monkeypatch.setattr(module, "MAX_IMPORTANCE_TRIALS", 20)
    view = JournalView.load(random_db)
    first, second = importance(view), importance(view, seed=1)
    assert first.n_trials == second.n_trials == 20
    assert first == importance(view) and first.r2 != second.r2


def test_a_report_imports_neither_torch_nor_configspace(random_db, tmp_path) -> None:
    code = ("import sys\n"
            "from nas.reporting.html import write_report\n"
            f"write_report({str(random_db)!r}, {str(tmp_path / 'out')!r})\n"
            "print(sorted(m for m in ('torch', 'ConfigSpace') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "out" / "importance.png").exists()


def test_too_few_trials_say_so_instead_of_plotting_noise(search_db, tmp_path) -> None:
    page = write_report(search_db, tmp_path / "out").read_text()
    assert "No importance shown: not enough trials" in page
    assert not (tmp_path / "out" / "importance.png").exists()
    assert "permutation importance" in page  # the method is named all the same
    # A training search: validation accuracy in the table, the data set in the header.
    assert "val acc" in page and "blobs" in page and "tiny" in page
    with Storage.open(search_db) as store:
        assert _top_rows(page) == [r.id for r in ranked(store.trials())]


def test_a_loss_no_hyperparameter_explains_gets_no_importance(tmp_path) -> None:
    nas.optimize(noise, _space(), "random", "40trials", seed=0, storage=tmp_path / "n.db")
    result = importance(JournalView.load(tmp_path / "n.db"))
    assert result.reason is not None and "does not predict" in result.reason
    assert result.r2 is not None and result.r2 <= 0 and not result.names


def test_a_stale_plot_does_not_survive_a_new_report(hyperband_db, search_db, tmp_path) -> None:
    write_report(hyperband_db, tmp_path / "out")
    assert (tmp_path / "out" / "budget-per-rung.png").exists()
    page = write_report(search_db, tmp_path / "out").read_text()
    assert not (tmp_path / "out" / "budget-per-rung.png").exists()
    assert len(_embedded(page)) == len(list((tmp_path / "out").glob("*.png")))


def test_empty_journal_is_one_user_error(tmp_path, capsys) -> None:
    Storage.create(tmp_path / "empty.db", {"name": "empty", "budget": "3trials"}).close()
    with pytest.raises(UserError, match="no finished trial"):
        write_report(tmp_path / "empty.db", tmp_path / "out")
    assert main(["report", str(tmp_path / "empty.db"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nas: error:") and "no finished trial" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("name", "content", "pattern"), [
    ("missing.db", None, "no search database at"),
    ("notes.db", "just some text\n", "is not a search database"),
])
def test_cli_report_of_a_non_journal_is_one_line_exit_2(tmp_path, capsys, name, content,
                                                        pattern) -> None:
    if content is not None:
        (tmp_path / name).write_text(content)
    assert main(["report", str(tmp_path / name), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nas: error:") and pattern in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_report_prints_the_page_and_checks_top(search_db, tmp_path, capsys) -> None:
    out = tmp_path / "r"
    assert main(["report", str(search_db), "-o", str(out), "--top", "2"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "report.html")
    assert len(_top_rows((out / "report.html").read_text())) == 2
    with pytest.raises(SystemExit) as exited:  # argparse's own one-line error
        main(["report", str(search_db), "-o", str(out), "--top", "0"])
    assert exited.value.code == 2
    assert "--top: must be at least 1" in capsys.readouterr().err


def _artifacts() -> Path:
    folder = Path(os.environ.get("NAS_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args],
        capture_output=True, text=True, timeout=120)


def test_report_renders_in_headless_chromium(hyperband_db, tmp_path) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("NAS_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"NAS_REQUIRE_CHROMIUM=1 but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is not installed")
    page = write_report(hyperband_db, tmp_path / "out")
    expected = len(list((tmp_path / "out").glob("*.png")))
    # All but what only trained models have: a Pareto plot, learning curves, an architecture.
    assert expected == len(PLOT_FILES) - 3
    dom = _chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    # The page's own script sets this once every <img> decoded with a non-zero width.
    assert f'data-plots-loaded="{expected}"' in dom.stdout

    shot = _artifacts() / "report.png"
    shot.unlink(missing_ok=True)
    run = _chromium(f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri(),
                    profile=tmp_path / "profile-shot")
    assert run.returncode == 0, run.stderr[-2000:]
    shutil.copyfile(page, _artifacts() / "report.html")
    with Image.open(shot) as img:
        img.load()
        assert img.size == (1280, 2400)
        rgb = np.asarray(img.convert("RGB"), dtype=np.float64)
    # Not blank: plot colours and text, far from one flat background.
    assert rgb.std() > 10
    assert len(np.unique(rgb.reshape(-1, 3)[::7], axis=0)) > 100


def test_a_search_report_plots_error_against_size_with_its_front(search_db, tmp_path) -> None:
    from nas.journal import JournalView
    from nas.pareto import pareto_front

    page = write_report(search_db, tmp_path / "out").read_text()
    png = tmp_path / "out" / "pareto.png"
    _png_ok(png)
    assert png.read_bytes() in _embedded(page) and "<h2>Pareto front</h2>" in page
    assert pareto_front(JournalView.load(search_db).records)  # what the plot highlights


def test_the_pareto_plot_follows_the_searchs_objectives_and_draws_its_limits(tmp_path) -> None:
    from nas.journal import JournalView
    from nas.reporting.pareto_plot import _hypervolume_curve, plot_pareto
    from tests.test_objectives import TwoObjectiveRandom, _space_mlp

    db = tmp_path / "latency.db"
    nas.search("residual-mlp", "synthetic", TwoObjectiveRandom(_space_mlp(), seed=2),
               "6trials", trial_budget="1ep", storage=db, progress=False,
               space_overrides={"width": (16, 128), "n_blocks": (1, 2)},
               objectives="val_error,latency", constraints={"max_latency": "1s"})
    view = JournalView.load(db)
    drawn: list[str] = []
    import matplotlib.axes

    original = matplotlib.axes.Axes.axvline

    def spy(self, x=0, *args, **kwargs):  # type: ignore[no-untyped-def]
        drawn.append(kwargs.get("label", ""))
        return original(self, x, *args, **kwargs)

    matplotlib.axes.Axes.axvline = spy  # type: ignore[method-assign]
    try:
        assert plot_pareto(view, tmp_path / "p.png") is not None
    finally:
        matplotlib.axes.Axes.axvline = original  # type: ignore[method-assign]
    assert drawn == ["limit: latency per batch (ms) <= 1,000"]
    spent, volumes = _hypervolume_curve(view, ("val_error", "latency"), {"latency": 1000.0})
    assert len(spent) == 6 and volumes == sorted(volumes) and 0 < volumes[-1] <= 1


@pytest.mark.parametrize("searcher", ["bohb", "tpe"])
def test_the_report_of_a_training_search_shows_every_view(searcher, tmp_path) -> None:
    db = tmp_path / f"{searcher}.db"
    # Small and short (one cell of 4-8 channels, 2-epoch trials): the views, not the models.
    nas.search("residual-conv", "digits", searcher, "16ep", trial_budget="2ep", storage=db,
               progress=False, seed=1,
               space_overrides={"channels": (4, 8), "n_stages": 1, "n_cells": 1},
               searcher_options={"min_points_in_model": 3} if searcher == "bohb"
               else {"n_startup": 3})
    page = write_report(db, tmp_path / "out").read_text()
    for name in ("learning-curves.png", "parallel.png", "architecture.png", "best-so-far.png",
                 "loss-vs-budget.png"):
        _png_ok(tmp_path / "out" / name)
        assert f"<code>{name}</code>" in page
    summary = JournalView.load(db).summary
    assert summary is not None and summary.ensemble
    assert "<th>ensemble</th>" in page and "<th>result</th>" in page and "test acc" in page
    if CHROMIUM.exists():
        shot = _artifacts() / f"report-{searcher}.png"
        shot.unlink(missing_ok=True)
        run = _chromium(f"--screenshot={shot}", "--window-size=1280,6600",
                        (tmp_path / "out" / "report.html").as_uri(),
                        profile=tmp_path / "profile")
        assert run.returncode == 0, run.stderr[-2000:]
        with Image.open(shot) as img:
            img.load()
            assert np.asarray(img.convert("RGB"), dtype=np.float64).std() > 10
            # Half size: what a reader of the artifact needs, a quarter of the bytes.
            img.convert("RGB").resize((640, 3300)).save(shot, optimize=True)
