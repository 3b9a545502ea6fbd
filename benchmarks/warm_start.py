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

from nas import problems

try:
    from benchmarks.drive import build, drive
except ImportError:  # run as a script: benchmarks/ itself is first on sys.path
    from drive import build, drive  # type: ignore[no-redef]

PROBLEMS = ("mf-hartmann6", "counting-ones")
SEARCHERS = ("bohb", "tpe")
FIRST, CAP = 10.0, 30.0


def one_seed(problem: problems.Problem, name: str, seed: int) -> dict[str, float]:
    """Budgets (in max budgets) a second search needs to reach the first's final regret."""
    first = drive(build(problem, name, seed), problem, seed, factor=FIRST)
    out = {}
    for variant in ("cold", "warm", "warm + retrain 1"):
        second = build(problem, name, seed + 1000)
        if variant != "cold":
            for config, budget, result in first.told:
                second.observe(config, result, budget=budget)
        if variant == "warm + retrain 1":
            second.enqueue(first.incumbent)
        run = drive(second, problem, seed + 1000, factor=CAP, target=first.final_regret)
        out[variant] = run.reached / problem.max_budget
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
