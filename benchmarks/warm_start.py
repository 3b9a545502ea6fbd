"""Warm starts: how much sooner a second search reaches the first one's final regret.

Per seed: a first search runs 10 x max budget; a second one (another seed) then runs cold, and
warm (told every result of the first with `Searcher.observe`, and, for "retrain 1", training
the first's best configuration again first, as ``--warm-start-retrain 1`` does). Each run asks
and tells directly, charged its trials' budgets, until its incumbent (the best trial at the
highest budget so far, its own trials only) has a regret no higher than the first search's
final one, or 30 x max budget is spent. Prints, per problem and searcher, the median budget to
that regret (cold, warm, warm + retrain), their ratios, and how many runs never got there.

    python benchmarks/warm_start.py --seeds 10
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from typing import Any

import searchers
from nas import problems
from nas.types import Result

PROBLEMS = ("mf-hartmann6", "counting-ones")
SEARCHERS = ("bohb", "tpe")
FIRST, CAP = 10.0, 30.0


def _make(name: str, problem: problems.Problem, seed: int) -> searchers.Searcher:
    extra = {"min_budget": problem.min_budget, "max_budget": problem.max_budget} \
        if searchers.get_class(name).multi_fidelity else {}
    return searchers.get(name, problem.space, seed=seed, **extra)


def search(searcher: searchers.Searcher, problem: problems.Problem, seed: int, *,
           factor: float, target: float = -math.inf
           ) -> tuple[list[tuple[dict[str, Any], float | None, Result]], float, float, Any]:
    """Ask and tell until `factor` x max budget is spent or the incumbent's regret is at most
    `target`: (results, the incumbent's final regret, the budget spent when it got there (inf:
    never), the incumbent's configuration)."""
    spent, best = 0.0, (-math.inf, math.inf, None)
    told: list[tuple[dict[str, Any], float | None, Result]] = []
    regret = math.inf
    while spent < factor * problem.max_budget:
        trial = searcher.ask()
        if trial is None:
            break
        budget = trial.budget if trial.budget is not None else problem.max_budget
        result = Result(loss=problem.evaluate(trial.config, budget, seed=seed))
        spent += budget
        searcher.tell(trial, result)
        told.append((dict(trial.config), trial.budget, result))
        if (budget, -result.loss) > (best[0], -best[1]):
            best = (budget, result.loss, trial.config)
            regret = problem.regret(best[2])
        # A configuration enqueued again comes back rounded by ConfigSpace (13 digits).
        if regret <= target + 1e-9 * (1 + abs(target)):
            return told, regret, spent, best[2]
    return told, regret, math.inf, best[2]


def one_seed(problem: problems.Problem, name: str, seed: int) -> dict[str, float]:
    """Budgets (in max budgets) a second search needs to reach the first's final regret."""
    first, target, _, incumbent = search(_make(name, problem, seed), problem, seed,
                                         factor=FIRST)
    out = {}
    for variant in ("cold", "warm", "warm + retrain 1"):
        second = _make(name, problem, seed + 1000)
        if variant != "cold":
            for config, budget, result in first:
                second.observe(config, result, budget=budget)
        if variant == "warm + retrain 1":
            second.enqueue(incumbent)
        _, _, spent, _ = search(second, problem, seed + 1000, factor=CAP, target=target)
        out[variant] = spent / problem.max_budget
    return out


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _ratio(warm: float, cold: float) -> str:
    """warm / cold; a cold median that never got there (inf) is at least the cap: a bound."""
    if math.isinf(warm):
        return "n/a"
    return f"< {warm / CAP:.2f}" if math.isinf(cold) else f"{warm / cold:.2f}"


def main() -> None:
    """Run every problem x searcher over the seeds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--searchers", default=",".join(SEARCHERS))
    args = parser.parse_args()
    print("| problem | searcher | cold | warm | warm + retrain 1 | warm / cold | "
          "warm + retrain / cold | never reached (cold, warm, retrain) |")
    print("|---|---|---|---|---|---|---|---|")
    for pname in args.problems.split(","):
        problem = problems.get(pname)
        for name in args.searchers.split(","):
            rows = [one_seed(problem, name, seed) for seed in range(args.seeds)]
            med = {v: _median([r[v] for r in rows]) for v in rows[0]}
            never = ", ".join(str(sum(math.isinf(r[v]) for r in rows)) for v in rows[0])
            print(f"| {pname} | {name} | {med['cold']:.2f} | {med['warm']:.2f} | "
                  f"{med['warm + retrain 1']:.2f} | {_ratio(med['warm'], med['cold'])} | "
                  f"{_ratio(med['warm + retrain 1'], med['cold'])} | {never} |", flush=True)


if __name__ == "__main__":
    main()
