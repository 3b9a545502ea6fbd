"""`nas bench` on multi-objective problems: objective values per row, hypervolume regret of the
incumbent front, the summary's table and the hypervolume-regret plot."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nas import bench_pareto
from nas.bench import annotate_regret, bench
from nas.dominance import hypervolume, non_dominated
from nas.errors import UserError
from nas.problems import get as get_problem


def test_bench_writes_hypervolume_regret_a_summary_and_a_plot(tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = bench(["zdt1-mf"], ["mo-random", "moasha"], seeds=2, budget="2x", out=out)
    problem = get_problem("zdt1-mf")
    assert result.ran == 4
    for name in ("results.csv", "results.json", "summary.md", "regret-zdt1-mf.png"):
        assert (out / name).stat().st_size > 0
    rows = json.loads((out / "results.json").read_text())
    with open(out / "results.csv") as handle:
        header = next(csv.reader(handle))
    assert header[-3:] == ["objectives", "true_objectives", "hypervolume"]
    for key in {(r["searcher"], r["seed"]) for r in rows}:
        run = [r for r in rows if (r["searcher"], r["seed"]) == key]
        assert all(len(r["objectives"]) == 2 for r in run)
        # The last row's regret is the optimum less the hypervolume of the true values of the
        # results non-dominated in their observed values, recomputed here from scratch.
        observed = np.array([r["objectives"] for r in run])
        true = np.array([r["true_objectives"] for r in run])
        front = true[non_dominated(observed)]
        expected = problem.optimum_hypervolume - hypervolume(front, problem.reference_point)
        assert run[-1]["regret"] == pytest.approx(expected)
        assert all(r["regret"] >= -1e-9 for r in run if r["regret"] is not None)
    summary = (out / "summary.md").read_text()
    assert "reference point (1.1, 11)" in summary and "11.7667" in summary
    assert "vs mo-random: Wilcoxon p" in summary and "| moasha |" in summary
    assert "target for 'budget to target' = mo-random's median final regret" in summary


def _row(searcher: str, budget: float, values: list[float] | None, true: list[float] | None,
         seed: int = 0) -> dict[str, Any]:
    return {"problem": "p", "searcher": searcher, "seed": seed, "budget": budget,
            "objectives": values, "true_objectives": true, "loss": None, "true_loss": None}


def test_the_incumbent_front_is_chosen_by_observed_values_and_scored_at_true_ones() -> None:
    problem = dataclasses.replace(get_problem("zdt1-mf"), name="p", reference_point=(2.0, 2.0),
                                  optimum_hypervolume=4.0)
    rows = [
        _row("s", 1.0, [0.5, 0.5], [1.0, 1.0]),  # counts at its true values: 1 x 1
        _row("s", 1.0, [1.0, 1.0], [0.0, 0.0]),  # observed as dominated: left out, however good
        _row("s", 1.0, None, None),  # a failure: nothing changes
        _row("s", 3.0, [0.2, 0.2], [1.5, 0.5]),  # dominates the first: replaces it
        _row("s", 9.0, [0.1, 0.9], None),  # no true values: the observed ones; both stay
    ]
    annotate_regret(rows, {"p": problem})
    # Last: (1.5, 0.5) and (0.1, 0.9): 0.5 x 1.5 + 1.4 x 1.1 - 0.5 x 1.1 (shared).
    assert [r["hypervolume"] for r in rows] == pytest.approx(
        [1.0, 1.0, 1.0, 0.75, 0.75 + 1.9 * 1.1 - 0.5 * 1.1])
    assert [r["regret"] for r in rows] == pytest.approx(
        [4.0 - r["hypervolume"] for r in rows])


def test_a_run_has_no_regret_before_its_first_usable_result() -> None:
    problem = dataclasses.replace(get_problem("zdt1-mf"), name="p", reference_point=(2.0, 2.0),
                                  optimum_hypervolume=4.0)
    rows = [_row("s", 1.0, None, None), _row("s", 1.0, [1.0, 1.0], [1.0, 1.0])]
    annotate_regret(rows, {"p": problem})
    assert rows[0]["regret"] is None and rows[1]["regret"] == pytest.approx(3.0)


def test_without_a_stated_front_regret_is_measured_from_the_runs() -> None:
    problem = dataclasses.replace(get_problem("zdt1-mf"), name="p", reference_point=None,
                                  optimum_hypervolume=math.nan)
    rows = [_row("a", 81.0, [0.0, 1.0], None), _row("b", 81.0, [1.0, 0.0], None),
            _row("b", 81.0, [2.0, 2.0], None)]
    reference, optimum = bench_pareto.measures(rows, problem)
    assert reference == pytest.approx((2.2, 2.2))  # worst seen + 10% of the range
    assert optimum == pytest.approx(hypervolume([[0, 1], [1, 0]], reference))
    annotate_regret(rows, {"p": problem})
    assert rows[-1]["regret"] == pytest.approx(optimum - hypervolume([[1, 0]], reference))
    text, against, label = bench_pareto.describe(problem, rows, ["a", "b"])
    assert "from the runs' results" in text and "observed values" in text
    assert (against, label) == ("random", "hypervolume regret")


def test_single_objective_problems_keep_their_columns_and_regret() -> None:
    assert bench_pareto.fields([{"problem": "mf-branin", "loss": 1.0}]) == []
    assert bench_pareto.describe(get_problem("mf-branin"), [], ["random"]) == (
        None, None, "regret")
    branin = get_problem("mf-branin")
    rows = [{"problem": "mf-branin", "searcher": "random", "seed": 0, "budget": 81.0,
             "loss": 1.0, "true_loss": 1.0}]
    annotate_regret(rows, {"mf-branin": branin})
    assert rows[0]["regret"] == pytest.approx(1.0 - branin.optimum)
    assert "hypervolume" not in rows[0]


def test_a_single_objective_searcher_on_a_multi_objective_problem_is_refused(
        tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        bench(["zdt2-mf"], ["mo-random", "random"], seeds=1, budget="1x", out=tmp_path / "b")
    message = str(info.value)
    assert "\n" not in message and "'zdt2-mf' has 2 objectives" in message
    assert "random minimise one" in message and "mo-random" in message
    assert not (tmp_path / "b").exists()  # refused before any run
