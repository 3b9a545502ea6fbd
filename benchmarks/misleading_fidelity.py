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

from nas import problems

try:
    from benchmarks.drive import build, drive
except ImportError:  # run as a script: benchmarks/ itself is first on sys.path
    from drive import build, drive  # type: ignore[no-redef]

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
    return drive(build(problem, name, seed, **options), problem, seed, factor=factor).final_regret


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
