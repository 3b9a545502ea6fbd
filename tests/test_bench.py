"""`nas bench`: runs, reuse and resume, results files, statistics and plots."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pytest

from nas.bench import RunSpec, annotate_regret, bench, load_problem, run_budget, write_outputs
from nas.cli import main
from nas.errors import UserError
from nas.problems import get as get_problem
from nas.storage import Storage


def test_bench_writes_rows_plots_and_a_summary_and_reuses_finished_runs(tmp_path: Path) -> None:
    out = tmp_path / "b"
    first = bench(["mf-branin"], ["random", "hyperband"], seeds=2, budget="3x", out=out)
    assert first.ran == 4 and first.reused == 0
    for name in ("results.csv", "results.json", "summary.md", "regret-mf-branin.png"):
        assert (out / name).stat().st_size > 0
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [{k: ("" if v is None else str(v)) for k, v in r.items()}
                    for r in json.loads((out / "results.json").read_text())]
    assert {(r["searcher"], r["seed"]) for r in rows} == {
        (s, str(seed)) for s in ("random", "hyperband") for seed in (0, 1)}
    for key in {(r["searcher"], r["seed"]) for r in rows}:
        spent = [float(r["spent"]) for r in rows if (r["searcher"], r["seed"]) == key]
        assert spent == sorted(spent) and spent[-1] <= 3 * 81 + 1e-9  # one ledger, one budget
    assert "| hyperband |" in first.summary and "Wilcoxon" in first.summary
    again = bench(["mf-branin"], ["random", "hyperband"], seeds=3, budget="3x", out=out)
    assert again.reused == 4 and again.ran == 2  # only the new seed ran
    assert len(again.rows) > len(first.rows)


def test_an_interrupted_run_is_resumed(tmp_path: Path) -> None:
    out = tmp_path / "b"
    bench(["mf-branin"], ["random"], seeds=1, budget="2x", out=out)
    db = out / "runs" / f"{RunSpec('mf-branin', 'random', 0, '2x').name}.db"
    with Storage.open(db) as store:
        store.set_meta("state", "interrupted")
    result = bench(["mf-branin"], ["random"], seeds=1, budget="2x", out=out)
    assert result.ran == 1 and result.reused == 0
    with Storage.open(db) as store:
        assert store.meta("state") == "finished"


def test_the_summary_ranks_and_tests_against_random(tmp_path: Path) -> None:
    problem = load_problem("tests.helpers:toy_problem")
    rows = []
    for seed in range(6):
        for searcher, x in (("random", 0.9), ("good", 0.3 + 0.01 * seed)):
            loss = (x - 0.3) ** 2 + 1 / 9
            rows.append({"problem": "toy", "searcher": searcher, "seed": seed, "trial": 0,
                         "budget": 9.0, "loss": loss, "status": "ok", "spent": 9.0,
                         "seconds": 0.0, "wall": 0.0, "true_loss": loss})
    annotate_regret(rows, {"toy": problem})
    assert [r["regret"] for r in rows[:2]] == pytest.approx([0.6**2, 0.0])
    text = write_outputs(tmp_path, rows, {"toy": problem}, ["random", "good"], "1x")
    good = next(line for line in text.splitlines() if line.startswith("| good |"))
    cells = [c.strip() for c in good.strip("|").split("|")]
    assert cells[2] == "1.00"  # best on every seed
    median = statistics.median((0.01 * seed) ** 2 for seed in range(6))
    assert float(cells[1].split()[0]) == pytest.approx(median, rel=1e-3)
    assert cells[5].endswith("(better)") and float(cells[5].split()[0]) < 0.05


def test_problems_by_import_path_and_budgets(tmp_path: Path) -> None:
    result = bench(["tests.helpers:toy_problem"], ["random"], seeds=1, budget="4x",
                   out=tmp_path / "b")
    assert result.ran == 1 and all(r["true_loss"] is not None for r in result.rows)
    branin = get_problem("mf-branin")
    assert run_budget("30x", branin).amount == 30 * 81
    assert run_budget("300ep", branin).amount == 300
    with pytest.raises(UserError, match="positive"):
        run_budget("0x", branin)
    with pytest.raises(UserError, match="cannot import problem"):
        load_problem("no.such.module:thing")


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_runs_go_to_worker_processes(tmp_path: Path, executor: str) -> None:
    if executor == "dask":
        pytest.importorskip("distributed")
    result = bench(["mf-branin"], ["random", "asha"], seeds=2, budget="2x", out=tmp_path / "b",
                   workers=2, executor=executor)
    assert result.ran == 4
    runs = {(r["searcher"], r["seed"]) for r in result.rows}
    assert len(runs) == 4 and all(math.isfinite(r["spent"]) for r in result.rows)


def test_cli_bench_and_its_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b"
    assert main(["bench", "--problems", "mf-branin", "--searchers", "random,tpe", "--seeds", "1",
                 "--budget", "2x", "-o", str(out)]) == 0
    assert "## mf-branin" in capsys.readouterr().out
    for argv, message in [
        (["--problems", "nope"], "unknown problem 'nope'"),
        (["--searchers", "annealing"], "unknown searcher 'annealing'"),
        (["--problems", "mf-branin", "--budget", "0x"], "a budget multiple must be positive"),
        (["--problems", "mf-branin", "--seeds", "0"], "--seeds is a number of seeds >= 1"),
        (["--problems", "mf-branin", "--workers", "0"], "--workers must be at least 1"),
    ]:
        assert main(["bench", "-o", str(out), *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("nas: error: ") and message in err and err.count("\n") == 1


def test_few_seeds_are_no_clear_difference() -> None:
    import numpy as np

    from nas.bench_summary import _wilcoxon

    three = _wilcoxon(np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0]))
    assert three.endswith("(no clear difference)")  # p = 0.25 at best with 3 seeds
    ten = _wilcoxon(np.arange(10) / 10, np.arange(10) + 5.0)
    assert ten.endswith("(better)") and float(ten.split()[0]) < 0.05


def test_report_of_a_bench_folder_says_where_its_results_are(tmp_path, capsys) -> None:
    out = tmp_path / "b"
    assert main(["bench", "--problems", "mf-branin", "--searchers", "random", "--seeds", "1",
                 "--budget", "2x", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert "`nas bench` folder" in err and "summary.md" in err and err.count("\n") == 1
    assert main(["show", str(out / "runs")]) == 2
    assert "name one of its journals (mf-branin-random-seed0.db)" in capsys.readouterr().err
