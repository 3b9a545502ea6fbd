"""The statistics `nas bench` writes per problem: final regret, ranks, budget to a target,
the loop's overhead and Wilcoxon signed-rank tests against a baseline searcher."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nas.problems import Problem

#: The searcher every other is tested against (single-objective problems).
BASELINE = "random"


def problem_section(name: str, problem: Problem, rows: Sequence[dict[str, Any]],
                     curves: Mapping[tuple[str, int], list[tuple[float, float]]],
                     searchers: Sequence[str], reference: float, *, what: str | None = None,
                     against: str = BASELINE) -> list[str]:
    """One problem's part of summary.md: per searcher, the median final regret [IQR], mean
    rank over seeds, budget to `against`'s median final regret, overhead and Wilcoxon p."""
    from scipy import stats

    seeds = sorted({seed for _, seed in curves})
    final = {s: np.array([curves[(s, seed)][-1][1] if curves.get((s, seed)) else np.nan
                          for seed in seeds]) for s in searchers}
    # Rank the searchers within each seed (1 = best), then average over seeds.
    matrix = np.array([final[s] for s in searchers])
    ranks = np.array([stats.rankdata(np.nan_to_num(col, nan=np.inf)) for col in matrix.T]).T
    baseline = final.get(against)
    target = float(np.nanmedian(baseline)) if baseline is not None else math.nan
    known = math.isfinite(float(getattr(problem, "optimum", math.nan)))
    what = what or ("regret" if known else f"loss - {reference:.4g} (best seen at max budget)")
    lines = [f"## {name}", "",
             f"{what}; target for 'budget to target' = {against}'s median final regret "
             f"({target:.4g}); budgets in multiples of max_budget ({problem.max_budget:g}).", "",
             f"| searcher | median final regret [IQR] | mean rank | budget to target "
             f"| overhead ms/trial | vs {against}: Wilcoxon p |",
             "|---|---|---|---|---|---|"]
    for i, s in enumerate(searchers):
        values = final[s]
        q25, med, q75 = np.nanpercentile(values, [25, 50, 75]) if np.isfinite(values).any() \
            else (math.nan,) * 3
        reach = [_budget_to(curves[(s, seed)], target) for seed in seeds if (s, seed) in curves]
        reached = [b for b in reach if b is not None]
        to_target = (f"{np.median(reached) / problem.max_budget:.3g}x"
                     f" ({len(reached)}/{len(reach)})") if reached else f"- (0/{len(reach)})"
        lines.append(f"| {s} | {med:.4g} [{q25:.3g}, {q75:.3g}] | {ranks[i].mean():.2f} | "
                     f"{to_target} | {_overhead_ms(rows, s):.2f} | "
                     f"{_wilcoxon(values, baseline) if s != against else '-'} |")
    return [*lines, ""]


def _budget_to(curve: Sequence[tuple[float, float]], target: float) -> float | None:
    """Budget spent when the incumbent's regret first reached `target`."""
    for spent, regret in curve:
        if math.isfinite(regret) and regret <= target + 1e-12:
            return spent
    return None


def _overhead_ms(rows: Sequence[dict[str, Any]], searcher: str) -> float:
    """Wall time per trial not spent evaluating: searcher, journal and loop, in ms."""
    total, count = 0.0, 0
    runs: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        if r["searcher"] == searcher:
            runs.setdefault(r["seed"], []).append(r)
    for trials in runs.values():
        wall = max(t["wall"] for t in trials)
        total += max(0.0, wall - sum(t["seconds"] for t in trials))
        count += len(trials)
    return 1000 * total / count if count else math.nan


def _wilcoxon(values: np.ndarray, baseline: np.ndarray | None) -> str:
    """Two-sided Wilcoxon signed-rank p over seeds, and which side is better."""
    from scipy import stats

    if baseline is None:
        return "-"
    ok = np.isfinite(values) & np.isfinite(baseline)
    diff = values[ok] - baseline[ok]
    if len(diff) < 2 or np.all(diff == 0):
        return "n/a"
    p = float(stats.wilcoxon(values[ok], baseline[ok], zero_method="zsplit").pvalue)
    if p >= SIGNIFICANT:
        # With few seeds no difference can be told apart (5 seeds: p >= 0.0625 whatever
        # the regrets): not "better" on a coin's evidence.
        return f"{p:.3g} (no clear difference)"
    middle = float(np.median(diff))
    side = "better" if middle < 0 else "worse" if middle > 0 else "even"
    return f"{p:.3g} ({side})"


#: The p-value under which the summary calls a searcher better or worse than random.
SIGNIFICANT = 0.05
