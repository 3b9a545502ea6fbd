"""The report's Pareto figure: every trained trial, the front, the limits, and the front's
hypervolume as the budget was spent.

The objectives shown are the search's own (`nas search --objectives`), else validation error
against parameters. Sizes, FLOPs and latencies span decades, so they are drawn, and enter the
hypervolume, on a log scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from nas.constraints import Constraints
from nas.dominance import hypervolume
from nas.journal import JournalView
from nas.objectives import VAL_ERROR
from nas.pareto import Front, front_of, reader
from nas.reporting.plots import figure, save

#: Objectives whose values span decades: log axes, log-scaled hypervolume.
_LOG = ("params", "flops", "latency")
_LABEL = {VAL_ERROR: "validation error", "params": "parameters",
          "flops": "FLOPs per sample", "latency": "latency per batch (ms)"}


def _limits(constraints: Constraints) -> dict[str, float]:
    return {name: value for name, value in (("params", constraints.max_params),
                                            ("flops", constraints.max_flops),
                                            ("latency", constraints.max_latency_ms))
            if value is not None}


def _amount(value: float) -> str:
    return f"{value:,.0f}" if value >= 1e4 else f"{value:,.4g}"


def _axes(names: Sequence[str]) -> tuple[str, str]:
    """(x, y) of the scatter: accuracy up the side when it is an objective."""
    if VAL_ERROR in names:
        return next(n for n in names if n != VAL_ERROR), VAL_ERROR
    return names[0], names[1]


def plot_pareto(journal: JournalView, path: Path) -> Path | None:
    """Two objectives of every trained trial (grey; infeasible ones red), the Pareto front
    highlighted, limits drawn, and the front's hypervolume against the budget charged; None
    when no trial has the values."""
    searched = journal.settings.objectives
    names, front = front_of(journal.records, searched)
    x_name, y_name = _axes(names)
    read_x = reader(x_name, searched, usable_only=False)
    read_y = reader(y_name, searched, usable_only=False)
    points = [(x, y, r.result.ok) for r in journal.records if r.result is not None
              and (x := read_x(r)) is not None and (y := read_y(r)) is not None]
    if not any(ok for _, _, ok in points):
        return None
    fig = figure(width=11.0)
    ax, hv_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    ax.plot([x for x, _, ok in points if ok], [y for _, y, ok in points if ok],
            linestyle="none", marker="o", ms=3.5, color="#9e9e9e", alpha=0.6,
            label="trained trials")
    out = [(x, y) for x, y, ok in points if not ok]
    if out:
        ax.plot([x for x, _ in out], [y for _, y in out], linestyle="none", marker="x", ms=5,
                color="#d62728", label="infeasible (trained)")
    i, j = names.index(x_name), names.index(y_name)
    # The front of all the objectives, seen in two: with a third, some points look dominated.
    shown = sorted((p.values[i], p.values[j]) for p in front)
    ax.step([x for x, _ in shown], [y for _, y in shown], where="post", color="#1f77b4",
            lw=1.5, marker="o", ms=5, label=f"Pareto front ({len(front)})")
    limits = _limits(Constraints.from_dict(journal.settings.constraints))
    for name, draw in ((x_name, ax.axvline), (y_name, ax.axhline)):
        if name in limits:
            draw(limits[name], color="#333333", ls="--", lw=1,
                 label=f"limit: {_LABEL.get(name, name)} <= {_amount(limits[name])}")
    if x_name in _LOG:
        ax.set_xscale("log")
    errors = [y for _, y, _ in points if y > 0]
    # Errors spanning a decade or more: the front sits near zero, a log axis spreads it out.
    if y_name in _LOG or (y_name == VAL_ERROR and errors and max(errors) > 10 * min(errors)):
        ax.set_yscale("log")
    ax.set_xlabel(_LABEL.get(x_name, x_name))
    ax.set_ylabel(f"{_LABEL.get(y_name, y_name)} (lower is better)")
    ax.set_title(f"{_LABEL.get(y_name, y_name)} vs {_LABEL.get(x_name, x_name)}".capitalize())
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    xs, ys = _hypervolume_curve(journal, names, limits)
    hv_ax.step(xs, ys, where="post", color="#1f77b4", lw=2)
    hv_ax.set_xlabel(f"budget charged ({journal.unit.value})")
    hv_ax.set_ylabel("hypervolume (higher is better)")
    hv_ax.set_title("Front's hypervolume vs budget")
    hv_ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


def _hypervolume_curve(journal: JournalView, names: Sequence[str],
                       limits: dict[str, float]) -> tuple[list[float], list[float]]:
    """The front's hypervolume after each told trial, every objective scaled to [0, 1]:
    validation error as it is (reference 1), the others (log-scaled where they span decades)
    from the smallest seen to their limit, else 1.1 x the largest seen."""
    searched = journal.settings.objectives
    readers = [reader(n, searched) for n in names]
    values = [[v for r in journal.records if (v := read(r)) is not None] for read in readers]
    scales = []
    for name, seen in zip(names, values, strict=True):
        if name == VAL_ERROR or not seen:
            scales.append((lambda v: v, 0.0, 1.0))
            continue
        f = (lambda v: math.log10(max(v, 1e-12))) if name in _LOG else (lambda v: v)
        low = f(min(seen))
        high = f(limits[name]) if name in limits else f(max(seen)) + 0.1 * max(
            f(max(seen)) - low, 1e-9)
        scales.append((f, low, max(high - low, 1e-9)))
    online, xs, ys, volume = Front(), [], [], 0.0
    for record, spent, _ in journal.spend_curve():
        point = [read(record) for read in readers]
        # The volume changes only when the front does: a long search tells mostly others.
        if all(v is not None for v in point) and online.add(
                record.id, [(f(v) - low) / span for v, (f, low, span)
                            in zip(point, scales, strict=True) if v is not None]):
            volume = hypervolume(list(online.points.values()), [1.0] * len(names))
        xs.append(spent)
        ys.append(volume)
    return xs, ys
