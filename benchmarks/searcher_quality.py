"""Search quality of every searcher on the multi-fidelity test problems.

Each searcher gets the same total budget (30 x max_budget, in the problem's own units) on
counting-ones, mf-branin and mf-hartmann6, over 10 seeds. The incumbent at any moment is the best
trial at the highest budget evaluated so far; its regret is measured with the problem's
noise-free loss. Prints the median and IQR of the final regret and writes regret-vs-budget plots.

    python benchmarks/searcher_quality.py [--seeds 10] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

import nas
import searchers
from nas.problems import get as get_problem

PROBLEMS = ("counting-ones", "mf-branin", "mf-hartmann6")
SEARCHERS = ("random", "tpe", "hyperband", "bohb", "asha")
BUDGET_MULTIPLE = 30


def one_run(problem_name: str, searcher: str, seed: int) -> dict[str, Any]:
    """Run one search; return its regret trajectory over the budget spent."""
    problem = get_problem(problem_name)
    result = nas.optimize(
        problem.evaluate, problem.space, searcher, BUDGET_MULTIPLE * problem.max_budget,
        min_budget=problem.min_budget, max_budget=problem.max_budget, seed=seed,
        storage=":memory:",
    )
    spent, curve = 0.0, []
    incumbent: tuple[float, float] | None = None  # (budget, loss)
    regret = math.nan
    for record in result.trials:
        res = record.result
        budget = float(record.trial.budget or problem.max_budget)
        spent += res.cost if res.cost is not None else budget
        if res.ok and (incumbent is None or budget > incumbent[0]
                       or (budget == incumbent[0] and res.loss < incumbent[1])):
            incumbent = (budget, res.loss)
            regret = problem.regret(record.trial.config)
        curve.append((spent, regret))
    return {"problem": problem_name, "searcher": searcher, "seed": seed, "curve": curve,
            "final": regret, "trials": len(result.trials)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    jobs = [(p, s, seed) for p in PROBLEMS for s in SEARCHERS for seed in range(args.seeds)]
    start = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        runs = list(pool.map(one_run, *zip(*jobs, strict=True)))
    elapsed = time.time() - start

    lines = [f"# Final regret, total budget {BUDGET_MULTIPLE} x max_budget, {args.seeds} seeds",
             "", "| problem | " + " | ".join(SEARCHERS) + " |",
             "|---|" + "---|" * len(SEARCHERS)]
    table: dict[str, dict[str, dict[str, float]]] = {}
    for p in PROBLEMS:
        cells = []
        for s in SEARCHERS:
            finals = np.array([r["final"] for r in runs if r["problem"] == p
                               and r["searcher"] == s])
            q25, med, q75 = np.percentile(finals, [25, 50, 75])
            table.setdefault(p, {})[s] = {"median": med, "q25": q25, "q75": q75}
            cells.append(f"{med:.4g} [{q25:.3g}, {q75:.3g}]")
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    lines += ["", "median [25th, 75th percentile]; lower is better. "
              f"{len(runs)} runs in {elapsed:.0f} s."]
    checks = []
    for p in PROBLEMS:
        m = {s: table[p][s]["median"] for s in SEARCHERS}
        checks.append(f"{p}: BOHB < Hyperband < Random: "
                      f"{m['bohb'] < m['hyperband'] < m['random']}; TPE < Random: "
                      f"{m['tpe'] < m['random']}; ASHA < Random: {m['asha'] < m['random']}")
    lines += ["", *checks]
    text = "\n".join(lines)
    print(text)
    (out / "searcher_quality.md").write_text(text + "\n")
    (out / "searcher_quality.json").write_text(json.dumps(
        {"table": table, "runs": [{k: v for k, v in r.items() if k != "curve"} for r in runs]},
        indent=1))
    _plot(runs, out / "searcher_quality.png", args.seeds)


def _plot(runs: list[dict[str, Any]], path: Path, seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PROBLEMS), figsize=(5 * len(PROBLEMS), 4))
    for ax, p in zip(axes, PROBLEMS, strict=True):
        max_budget = get_problem(p).max_budget
        grid = np.linspace(0, BUDGET_MULTIPLE, 200)
        for s in SEARCHERS:
            curves = []
            for r in runs:
                if r["problem"] != p or r["searcher"] != s:
                    continue
                spent = np.array([c[0] for c in r["curve"]]) / max_budget
                regret = np.array([c[1] for c in r["curve"]])
                idx = np.searchsorted(spent, grid, side="right") - 1
                curves.append(np.where(idx >= 0, regret[np.clip(idx, 0, None)], np.nan))
            with warnings.catch_warnings():  # no incumbent yet at the very start of a run
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(np.array(curves), axis=0)
            ax.plot(grid, med, label=s)
        ax.set_yscale("log")
        ax.set_title(f"{p} ({seeds} seeds, median)")
        ax.set_xlabel("budget spent / max_budget")
        ax.set_ylabel("regret of the incumbent")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    assert set(SEARCHERS) <= set(searchers.available())
    main()
