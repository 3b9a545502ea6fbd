"""Search quality of every searcher on the multi-fidelity test problems, through `nas bench`.

Each searcher gets the same total budget (30 x max_budget, in the problem's own units) on
counting-ones, mf-branin and mf-hartmann6, over 10 seeds; regret is the incumbent's noise-free
loss minus the optimum. Writes `nas bench`'s summary and regret plots to
benchmarks/results/searcher_quality/ and the table of median final regrets to
benchmarks/results/searcher_quality.md.

    python benchmarks/searcher_quality.py [--seeds 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from nas.bench import bench

PROBLEMS = ("counting-ones", "mf-branin", "mf-hartmann6")
SEARCHERS = ("random", "tpe", "hyperband", "bohb", "asha")
RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        result = bench(PROBLEMS, SEARCHERS, seeds=args.seeds, budget="30x", out=tmp,
                       workers=args.workers)
        kept = RESULTS / "searcher_quality"
        shutil.rmtree(kept, ignore_errors=True)
        # The summary and plots are kept; the rows (16 MB) and journals are scratch.
        shutil.copytree(tmp, kept, ignore=shutil.ignore_patterns("runs", "results.*"))
    elapsed = time.monotonic() - start

    final: dict[tuple[str, str, int], float] = {}
    for row in result.rows:  # rows come in each run's order: the last one is its final state
        final[row["problem"], row["searcher"], row["seed"]] = row["regret"]
    lines = [f"# Final regret, total budget 30 x max_budget, {args.seeds} seeds", "",
             "| problem | " + " | ".join(SEARCHERS) + " |", "|---|" + "---|" * len(SEARCHERS)]
    medians: dict[str, dict[str, float]] = {}
    for p in PROBLEMS:
        cells = []
        for s in SEARCHERS:
            values = [v for (pp, ss, _), v in final.items() if (pp, ss) == (p, s)]
            q25, med, q75 = np.percentile(values, [25, 50, 75])
            medians.setdefault(p, {})[s] = statistics.median(values)
            cells.append(f"{med:.4g} [{q25:.3g}, {q75:.3g}]")
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    lines += ["", "median [25th, 75th percentile]; lower is better. "
              f"{len(final)} runs in {elapsed:.0f} s. Ranks, budget to target and Wilcoxon "
              "tests: searcher_quality/summary.md.", ""]
    for p, m in medians.items():
        lines.append(f"{p}: BOHB < Hyperband < Random: {m['bohb'] < m['hyperband'] < m['random']}"
                     f"; TPE < Random: {m['tpe'] < m['random']}; ASHA < Random: "
                     f"{m['asha'] < m['random']}")
    text = "\n".join(lines)
    print(text)
    (RESULTS / "searcher_quality.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
