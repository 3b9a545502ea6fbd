"""Wall-clock speed-up of parallel workers: a fixed 40-trial digits-mlp random search.

Each setting runs the same search (same seed, same 40 configurations, 1-27 epochs of real
training each) from the start of its workers to the last result; settings are interleaved round
by round so that machine noise hits them alike. Ratios are against 1 worker of the same executor.

    python benchmarks/parallel_speedup.py [--rounds 2] [--trials 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import nas
from nas.executors import cpu_count
from nas.problems import get as get_problem

SETTINGS = [("inprocess", None), ("local", 1), ("local", 2), ("dask", 1), ("dask", 2)]
RESULTS = Path(__file__).parent / "results"


def run_once(executor: str, workers: int | None, trials: int) -> tuple[float, list[float]]:
    """Seconds from start to finish of one search, and its losses in trial order."""
    problem = get_problem("digits-mlp")
    start = time.perf_counter()
    result = nas.optimize(problem.evaluate, problem.space, "random", f"{trials}trials",
                          min_budget=problem.min_budget, max_budget=problem.max_budget, seed=0,
                          storage=":memory:", executor=executor, workers=workers)
    seconds = time.perf_counter() - start
    return seconds, [r.result.loss for r in result.trials]


def main() -> None:
    """Run the rounds, print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    times: dict[str, list[float]] = {}
    losses: dict[str, list[float]] = {}
    for round_ in range(args.rounds):
        order = SETTINGS if round_ % 2 == 0 else SETTINGS[::-1]
        for executor, workers in order:
            label = f"{executor} x{workers or 1}"
            seconds, got = run_once(executor, workers, args.trials)
            times.setdefault(label, []).append(seconds)
            losses[label] = got
            print(f"round {round_ + 1}: {label:12s} {seconds:6.1f}s", flush=True)
    reference = losses["inprocess x1"]
    same = {label: got == reference for label, got in losses.items()}
    median = {label: statistics.median(t) for label, t in times.items()}
    lines = [
        f"# Parallel speed-up: {args.trials}-trial digits-mlp random search, "
        f"{cpu_count()} cores, {args.rounds} rounds",
        "",
        "| setting | median wall s | runs | speed-up vs 1 worker of the same executor |"
        " same losses as in-process |",
        "|---|---|---|---|---|",
    ]
    for label in median:
        executor = label.split()[0]
        base = median.get(f"{executor} x1", median[label])
        lines.append(f"| {label} | {median[label]:.1f} | "
                     f"{', '.join(f'{t:.1f}' for t in times[label])} | "
                     f"{base / median[label]:.2f}x | {same[label]} |")
    lines += ["", "Same losses: bit-identical to the in-process run. One worker trains with all "
              "the cores' threads, two with one thread each, so float reductions (and so losses) "
              "differ slightly; with equal thread counts they match exactly "
              "(tests/test_parallel.py)."]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "parallel_speedup.md").write_text(text)
    (RESULTS / "parallel_speedup.json").write_text(json.dumps(
        {"trials": args.trials, "cores": cpu_count(), "times": times, "same_losses": same},
        indent=2))


if __name__ == "__main__":
    main()
