"""Multi-fidelity searchers with and without the fidelity check, against full-budget TPE.

Each run asks and tells directly (no journal) until 30 x max_budget is charged (a trial is
charged its budget); the incumbent is the best trial at the highest budget so far, and its
regret is its noise-free full-budget loss minus the optimum.

    python benchmarks/misleading_fidelity.py --seeds 20
    python benchmarks/misleading_fidelity.py --json \
        '{"bohb": ["bohb", {}], "rf 0.1": ["bohb", {"random_fraction": 0.1}]}'

Prints per (problem, variant) the median final regret and the mean log10 regret over the seeds,
the paired Wilcoxon p against the first variant, and the median budget (x max budget) at which the
incumbent first reached random search's median final regret (inf: in fewer than half the seeds).
"""

from __future__ import annotations

import argparse
import math
import statistics
from typing import Any

from nas import problems

try:
    from benchmarks.drive import Drive, build, drive, variants
except ImportError:  # run as a script: benchmarks/ itself is first on sys.path
    from drive import Drive, build, drive, variants  # type: ignore[no-redef]

PROBLEMS = ("mixed-10d", "mixed-20d", "mf-branin", "mf-hartmann6", "counting-ones")
#: label -> (searcher, options)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "tpe": ("tpe", {}),
    "tpe startup 10": ("tpe", {"n_startup": 10}),
    "tpe startup 7": ("tpe", {"n_startup": 7}),
    "tpe startup 5": ("tpe", {"n_startup": 5}),
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
    "bohb-checked": ("bohb-checked", {}),
    "bohb-checked pool 1": ("bohb-checked", {"ladder_pool": 1}),
    "bohb-checked pool 3": ("bohb-checked", {"ladder_pool": 3}),
    "bohb-checked trust 0.5": ("bohb-checked", {"min_trust": 0.5}),
    "bohb-checked pool 9": ("bohb-checked", {"ladder_pool": 9}),
    "bohb-checked pool 27": ("bohb-checked", {"ladder_pool": 27}),
    "bohb-checked top 10": ("bohb-checked", {"top_startup": 10}),
    "bohb-checked top 7": ("bohb-checked", {"top_startup": 7}),
    "bohb-checked top 5": ("bohb-checked", {"top_startup": 5}),
}


def to_target(run: Drive, target: float, max_budget: float) -> float:
    """Budget (x max_budget) at which the run's incumbent first had regret <= `target`."""
    return next((spent / max_budget for spent, regret in run.path if regret <= target),
                math.inf)


def main() -> None:
    """Parse the command line and print the table's lines."""
    from scipy.stats import wilcoxon

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json", help='variants as JSON: {"label": ["searcher", {options}]} '
                        "(instead of --variants)")
    args = parser.parse_args()
    chosen = variants(args.json, VARIANTS, args.variants)
    seeds = range(args.seeds)
    for name in args.problems.split(","):
        problem = problems.get(name)
        target = statistics.median(
            drive(build(problem, "random", s), problem, s, factor=30).final_regret for s in seeds)
        first: list[float] | None = None
        for label, (searcher, options) in chosen.items():
            runs = [drive(build(problem, searcher, s, **options), problem, s, factor=30)
                    for s in seeds]
            regrets = [run.final_regret for run in runs]
            mean_log = statistics.mean(math.log10(max(r, 1e-9)) for r in regrets)
            reach = statistics.median(to_target(r, target, problem.max_budget) for r in runs)
            paired = ""
            if first is None:
                first = regrets
            elif any(a != b for a, b in zip(first, regrets, strict=True)):
                paired = f", p {wilcoxon(first, regrets).pvalue:.3f}"
            print(f"{name:15s} {label:22s} median {statistics.median(regrets):.4f}, "
                  f"mean log10 {mean_log:.3f}, to random's {reach:.2f}x{paired}", flush=True)


if __name__ == "__main__":
    main()
