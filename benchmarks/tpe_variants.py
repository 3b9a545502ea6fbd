"""Full-budget TPE variants against Optuna's TPE: median final regret over many seeds.

Each run asks and tells `--trials` full-budget evaluations of a synthetic problem directly
(no journal, no processes), so 60 seeds of a variant take seconds. Variants are searcher
options; `optuna-tpe` needs the `compare` extra.

    python benchmarks/tpe_variants.py --seeds 60 --trials 30,100

Prints one line per (problem, variant): the median final regret and the mean log10 regret at
each number of trials.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import searchers
from nas import problems
from nas.types import Result

#: label -> (searcher, options)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "tpe": ("tpe", {}),
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
    """Print median and mean-log regret of every variant on every problem."""
    for name in names:
        problem = problems.get(name)
        for label, (searcher, options) in variants.items():
            start = time.perf_counter()
            curves = [regret_curve(problem, _maker(problem, searcher, options, seed), max(trials))
                      for seed in range(seeds)]
            cells = []
            for n in trials:
                final = [c[n - 1] for c in curves]
                mean_log = statistics.mean(math.log10(max(r, 1e-9)) for r in final)
                cells.append(f"n={n}: median {statistics.median(final):.4f}, "
                             f"mean log10 {mean_log:.2f}")
            print(f"{name:14s} {label:16s} " + "; ".join(cells)
                  + f"  ({time.perf_counter() - start:.1f} s)", flush=True)


def main() -> None:
    """Parse the command line and compare."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=60)
    parser.add_argument("--trials", default="30,100", help="comma-separated")
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, of: {', '.join(VARIANTS)}")
    args = parser.parse_args()
    chosen = {v: VARIANTS[v] for v in args.variants.split(",")}
    compare(chosen, args.problems.split(","), args.seeds,
            [int(n) for n in args.trials.split(",")])


if __name__ == "__main__":
    main()
