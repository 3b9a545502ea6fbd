"""Multi-fidelity searchers with and without the fidelity check, against full-budget TPE.

Each run asks and tells directly (no journal) until 30 x max_budget is charged (a trial is
charged its budget); the incumbent is the best trial at the highest budget so far, and its
regret is its noise-free full-budget loss minus the optimum.

    python benchmarks/misleading_fidelity.py --seeds 20

Prints the median final regret and the mean log10 regret over the seeds per (problem, variant).
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Mapping
from typing import Any

import searchers
from nas import problems
from nas.types import Result

PROBLEMS = ("mixed-10d", "mixed-20d", "mf-branin", "mf-hartmann6", "counting-ones")
#: label -> (searcher, options)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "tpe": ("tpe", {}),
    "bohb": ("bohb", {}),
    "bohb check": ("bohb", {"check_fidelity": True}),
    "hyperband": ("hyperband", {}),
    "hyperband check": ("hyperband", {"check_fidelity": True}),
    "asha": ("asha", {}),
    "asha check": ("asha", {"check_fidelity": True}),
    "bohb ladders 3": ("bohb", {"check_fidelity": True, "ladders": 3}),
    "bohb ladders 4": ("bohb", {"check_fidelity": True, "ladders": 4}),
    "bohb ladders 6": ("bohb", {"check_fidelity": True, "ladders": 6}),
    "hyperband ladders 6": ("hyperband", {"check_fidelity": True, "ladders": 6}),
}


def final_regret(problem: problems.Problem, name: str, options: Mapping[str, Any], seed: int,
                 factor: float = 30) -> float:
    """The incumbent's regret once `factor` x max_budget is charged."""
    extra = {"min_budget": problem.min_budget, "max_budget": problem.max_budget} \
        if searchers.get_class(name).multi_fidelity else {}
    searcher = searchers.get(name, problem.space, seed=seed, **extra, **options)
    spent, best = 0.0, (-math.inf, math.inf, None)
    while spent < factor * problem.max_budget:
        trial = searcher.ask()
        if trial is None:
            break
        budget = trial.budget if trial.budget is not None else problem.max_budget
        loss = problem.evaluate(trial.config, budget, seed=seed)
        spent += budget
        searcher.tell(trial, Result(loss=loss))
        if (budget, -loss) > (best[0], -best[1]):
            best = (budget, loss, trial.config)
    assert best[2] is not None
    return problem.regret(best[2])


def main() -> None:
    """Parse the command line and print the table's lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    for name in args.problems.split(","):
        problem = problems.get(name)
        for label in args.variants.split(","):
            searcher, options = VARIANTS[label]
            regrets = [final_regret(problem, searcher, options, s) for s in range(args.seeds)]
            mean_log = statistics.mean(math.log10(max(r, 1e-9)) for r in regrets)
            print(f"{name:14s} {label:16s} median {statistics.median(regrets):.4f}, "
                  f"mean log10 {mean_log:.2f}", flush=True)


if __name__ == "__main__":
    main()
