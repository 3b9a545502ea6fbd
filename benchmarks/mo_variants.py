"""Multi-objective searchers and their variants on the analytic multi-objective problems.

Each run asks and tells directly (no journal) until 30 x max_budget is charged (a trial is
charged its budget, as `nas bench` charges). The incumbent front is `nas bench`'s
(`nas.bench_pareto.IncumbentFront`: the results non-dominated in their observed values, at
any budget, scored at their true values); its hypervolume regret is the problem's optimum
hypervolume minus the front's.

    python benchmarks/mo_variants.py --seeds 10 --variants "mo-random,mobohb,moasha"

Prints, per (problem, variant), the median final hypervolume regret and the budget (in
multiples of max_budget) at which the median run first reached mo-random's median final
hypervolume regret.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Mapping
from typing import Any

import searchers
from nas import problems
from nas.bench_pareto import IncumbentFront
from nas.types import Result

try:
    from benchmarks.drive import answer_loss, evaluations
except ImportError:  # run as a script: benchmarks/ itself is first on sys.path
    from drive import answer_loss, evaluations  # type: ignore[no-redef]

PROBLEMS = ("zdt1-mf", "zdt2-mf", "dtlz2-mf", "tab-mlp-digits-mo", "tab-mlp-mnist1d-mo")
#: label -> (searcher, options)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "mo-random": ("mo-random", {}),
    "motpe": ("motpe", {}),
    "moasha": ("moasha", {}),
    "mobohb": ("mobohb", {}),
    "hyperband-rw": ("hyperband-rw", {}),
    "mohb": ("mobohb", {"random_fraction": 1.0}),
    "mobohb rf0.5": ("mobohb", {"random_fraction": 0.5}),
    "mobohb g0.3": ("mobohb", {"gamma": 0.3}),
}


def curve(problem: problems.Problem, name: str, options: Mapping[str, Any], seed: int,
          factor: float = 30) -> list[tuple[float, float]]:
    """(budget spent, hypervolume regret of the incumbent front) after each evaluation."""
    cls = searchers.get_class(name)
    extra: dict[str, Any] = {"n_objectives": len(problem.objectives)}
    if cls.multi_fidelity:
        extra.update(min_budget=problem.min_budget, max_budget=problem.max_budget)
    searcher = searchers.get(name, problem.space, seed=seed, **extra, **options)
    front = IncumbentFront(problem.reference_point)
    out: list[tuple[float, float]] = []
    for trial, _, value, spent in evaluations(searcher, problem, seed, factor=factor):
        values = tuple(answer_loss(value))
        searcher.tell(trial, Result(loss=values[0], objectives=values))
        front.add(values, problem.true_objectives(trial.config))
        out.append((spent, problem.optimum_hypervolume - front.volume))
    return out


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--variants", default="mo-random,moasha,mobohb,hyperband-rw")
    parser.add_argument("--factor", type=float, default=30)
    args = parser.parse_args()
    labels = args.variants.split(",")
    for name in args.problems.split(","):
        problem = problems.get(name)
        curves = {label: [curve(problem, *VARIANTS[label], seed, args.factor)
                          for seed in range(args.seeds)] for label in labels}
        target = statistics.median(c[-1][1] for c in curves.get("mo-random", []) or [[(0, 0)]])
        print(f"\n{name} (target: mo-random's median final regret {target:.3f})")
        for label in labels:
            finals = [c[-1][1] for c in curves[label]]
            reach = [next((s for s, r in c if r <= target + 1e-12), math.inf)
                     for c in curves[label]]
            print(f"  {label:<16} median final {statistics.median(finals):.3f}   "
                  f"median budget to target {statistics.median(reach) / problem.max_budget:.2f}x")


if __name__ == "__main__":
    main()
