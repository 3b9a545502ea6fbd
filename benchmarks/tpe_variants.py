"""Full-budget TPE variants against Optuna's TPE: median final regret over many seeds.

Each run asks and tells `--trials` full-budget evaluations of a synthetic problem directly
(no journal, no processes), so 60 seeds of a variant take seconds. Variants are searcher
options; `optuna-tpe` needs the `compare` extra.

    python benchmarks/tpe_variants.py --seeds 60 --trials 30,100

Prints a table row per (problem, variant, trials): the median final regret, the mean log10
regret, the mean rank among the variants (same seed, same trials) and, against the first
variant, the share of seeds it won and a Wilcoxon signed-rank p. `--json` takes variants of any
searcher: ``'{"label": ["tpe", {"bandwidth_scale": 1.0}], ...}'``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata, wilcoxon

import searchers
from nas import problems
from nas.types import Result

try:
    from benchmarks.drive import variants
except ImportError:  # run as a script: benchmarks/ itself is first on sys.path
    from drive import variants  # type: ignore[no-redef]

#: label -> (searcher, options)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "tpe": ("tpe", {}),
    "tpe rule widths": ("tpe", {"bandwidth_scale": 1.0}),
    "tpe univariate": ("tpe", {"multivariate": False}),
    "tpe neighbors": ("tpe", {"bandwidth_rule": "neighbors"}),
    "optuna-tpe": ("optuna-tpe", {}),
}
PROBLEMS = ("mf-branin", "mf-hartmann6", "counting-ones")


def regret_curve(problem: problems.Problem, make: Callable[[], searchers.Searcher],
                 trials: int) -> list[float]:
    """The incumbent's regret after each of `trials` full-budget evaluations."""
    searcher = make()
    best, best_config, curve = math.inf, None, []
    for _ in range(trials):
        trial = searcher.ask()
        assert trial is not None
        loss = problem.loss(trial.config, problem.max_budget)
        searcher.tell(trial, Result(loss=loss))
        if loss < best:
            best, best_config = loss, trial.config
        assert best_config is not None
        curve.append(problem.regret(best_config))
    return curve


def _maker(problem: problems.Problem, searcher: str, options: Mapping[str, Any],
           seed: int) -> Callable[[], searchers.Searcher]:
    return lambda: searchers.get(searcher, problem.space, seed=seed, **options)


def compare(variants: Mapping[str, tuple[str, Mapping[str, Any]]], names: Sequence[str],
            seeds: int, trials: Sequence[int]) -> None:
    """Print every variant's regret on every problem, paired by seed with the first variant."""
    print("| problem | trials | variant | median regret | mean log10 | mean rank "
          "| wins vs first | p |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        problem = problems.get(name)
        curves = {label: np.array([regret_curve(problem, _maker(problem, searcher, options, seed),
                                                max(trials)) for seed in range(seeds)])
                  for label, (searcher, options) in variants.items()}
        for n in trials:
            final = np.array([c[:, n - 1] for c in curves.values()])
            ranks = np.apply_along_axis(rankdata, 0, final).mean(axis=1)
            for k, (label, rank) in enumerate(zip(curves, ranks, strict=True)):
                r, base = final[k], final[0]
                wins = "-" if k == 0 else f"{np.mean(r < base):.2f}"
                p = "-" if k == 0 or np.all(r == base) else f"{wilcoxon(r, base).pvalue:.3f}"
                print(f"| {name} | {n} | {label} | {np.median(r):.4g} | "
                      f"{np.mean(np.log10(np.maximum(r, 1e-9))):+.2f} | {rank:.2f} | {wins} | "
                      f"{p} |", flush=True)


def main() -> None:
    """Parse the command line and compare."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=60)
    parser.add_argument("--trials", default="30,100", help="comma-separated")
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, of: {', '.join(VARIANTS)}; the first is the base")
    parser.add_argument("--json", help='variants as JSON: {"label": ["searcher", {options}]}')
    args = parser.parse_args()
    chosen = variants(args.json, VARIANTS, args.variants)
    compare(chosen, args.problems.split(","), args.seeds,
            [int(n) for n in args.trials.split(",")])


if __name__ == "__main__":
    main()
