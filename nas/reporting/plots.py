"""The plots of `nas report` and `nas bench`, drawn with matplotlib's object API on an Agg canvas
(no pyplot, no global backend switch)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.budget import Unit, display_amount
from nas.journal import JournalView, TrialRecord
from nas.reporting.importance import Importance
from nas.types import TrialStatus
from nas.warmstart import WarmStart

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_FAILED_COLOR = "#d62728"


def budget_groups(journal: JournalView) -> dict[tuple[int | None, float], tuple[float, int]]:
    """(bracket or None, trial budget) -> (budget charged, number of trials)."""
    groups: dict[tuple[int | None, float], tuple[float, int]] = {}
    for record in journal.finished():
        assert record.result is not None
        bracket = record.trial.info.get("bracket")
        key = (None if bracket is None else int(bracket), journal.budget_of(record))
        cost, n = groups.get(key, (0.0, 0))
        groups[key] = (cost + journal.charged(record), n + 1)
    return groups


def figure(width: float = 7.0, height: float = 4.2) -> Figure:
    """A matplotlib figure of `width` x `height` inches on its own Agg canvas."""
    # The object API with an explicit Agg canvas: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: Path) -> Path:
    """Write `fig` as a PNG at `path` and return the path."""
    for ax in fig.axes:
        # Data is clipped to its axes, so it cannot change the margins; measuring 10,000
        # markers' extents made the layout take most of a plot's time.
        for artist in (*ax.lines, *ax.collections, *ax.patches):
            artist.set_in_layout(False)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    return path


def log_scale_fits(values: Sequence[float]) -> bool:
    """A log axis only for positive values spanning more than two decades."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 100


def amount_text(amount: float, unit: str) -> str:
    """An amount of `unit` (its short name) for an axis or a table."""
    return display_amount(amount, Unit(unit))


def plot_best_so_far(journal: JournalView, path: Path) -> Path | None:
    """Best loss so far against the budget charged, in tell order; None without a success."""
    curve = journal.spend_curve()
    if not any(math.isfinite(best) for _, _, best in curve):
        return None
    fig = figure()
    ax = fig.add_subplot()
    xs = [0.0] + [spent for _, spent, _ in curve]
    ys = [math.nan] + [best if math.isfinite(best) else math.nan for _, _, best in curve]
    ax.step(xs, ys, where="post", color="#1f77b4", lw=2, label="best so far")
    done = [(spent, r.result.loss) for r, spent, _ in curve
            if r.result is not None and r.result.ok]
    # Markers of one line, not a scatter collection: ten times faster to draw 10,000 trials.
    ax.plot([d[0] for d in done], [d[1] for d in done], linestyle="none", marker="o", ms=3.5,
            color="#7f7f7f", alpha=0.5, label="each trial")
    limit = journal.limit
    if limit is not None and limit.unit is not Unit.SECONDS:
        ax.axvline(limit.amount, color="#333333", ls="--", lw=1, label=f"budget {limit}")
    for k, (at, updates) in enumerate(space_change_points(journal)):
        ax.axvline(at, color="#d62728", ls=":", lw=1.5,
                   label="space changed" if k == 0 else None)
        ax.annotate(updates, (at, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                    va="top", ha="right", fontsize=7, color="#d62728")
    imported = [i.result.loss for i in WarmStart.of(journal.settings).imported if i.result.ok]
    if imported:
        ax.axhline(min(imported), color="#2ca02c", ls="-.", lw=1,
                   label="best imported (not trained here)")
    if log_scale_fits([d[1] for d in done]):
        ax.set_yscale("log")
    unit = journal.unit.value
    what = "trial seconds (sum)" if journal.unit is Unit.SECONDS else f"budget charged ({unit})"
    ax.set_xlabel(what)
    ax.set_ylabel("loss (lower is better)")
    ax.set_title("Best loss so far vs budget spent")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, path)


def space_change_points(journal: JournalView) -> list[tuple[float, str]]:
    """Where the search's space changed on the best-so-far curve's x axis (what its trials
    before the change were charged), with the updates as text."""
    told = journal.finished()
    return [(sum(journal.charged(r) for r in told if r.id < int(c["at_trial"])),
             " ".join(c.get("updates") or ())) for c in journal.space_changes]


def plot_loss_vs_budget(journal: JournalView, path: Path) -> Path | None:
    """Every finished trial's loss at its budget; promotions joined to their parent."""
    records = journal.finished()
    if not records:
        return None
    by_id = {r.id: r for r in records}
    budgets = sorted({journal.budget_of(r) for r in records})
    multi = len(budgets) > 1
    # A small, fixed jitter separates trials sharing a budget column without a global RNG.
    rng = np.random.default_rng(0)
    jitter = {r.id: float(np.exp(rng.uniform(-0.05, 0.05))) if multi else 1.0 for r in records}
    ok = [r for r in records if r.result is not None and r.result.ok]
    losses = [r.result.loss for r in ok if r.result is not None]
    top = max(losses) if losses else 1.0
    bottom = min(losses) if losses else 0.0
    fail_y = top + 0.08 * (top - bottom or abs(top) or 1.0)
    fig = figure()
    ax = fig.add_subplot()
    brackets = sorted({int(r.trial.info["bracket"]) for r in records
                       if r.trial.info.get("bracket") is not None})
    colors = _palette(len(brackets) or 1)

    def xy(r: TrialRecord) -> tuple[float, float]:
        assert r.result is not None
        return journal.budget_of(r) * jitter[r.id], (r.result.loss if r.result.ok else fail_y)

    promotions = [(xy(by_id[r.trial.parent]), xy(r)) for r in records
                  if r.trial.parent is not None and r.trial.parent in by_id]
    if promotions:
        # One collection, not a line per promotion: thousands of artists take seconds to lay out.
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(promotions, colors="#999999", linewidths=0.8,
                                         alpha=0.7, zorder=1))
    for i, b in enumerate(brackets or [None]):
        group = [r for r in ok if (r.trial.info.get("bracket") is None and b is None)
                 or (b is not None and r.trial.info.get("bracket") == b)]
        if not group:
            continue
        full = [r for r in group if r.status is not TrialStatus.TRUNCATED]
        cut = [r for r in group if r.status is TrialStatus.TRUNCATED]
        label = "trial" if b is None else f"bracket {b}"
        if full:
            pts = [xy(r) for r in full]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=22, color=colors[i],
                       label=label, zorder=2)
        if cut:
            pts = [xy(r) for r in cut]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=22, facecolors="none",
                       edgecolors=colors[i], label=f"{label} (truncated)", zorder=2)
    bad = [r for r in records if r.result is not None and not r.result.ok]
    if bad:
        pts = [xy(r) for r in bad]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker="x", s=36,
                   color=_FAILED_COLOR, label="failed / diverged (no loss)", zorder=3)
        ax.axhline(fail_y, color=_FAILED_COLOR, lw=0.5, ls=":")
    unit = journal.settings.trial_unit.value
    if multi:
        ax.set_xscale("log")
        if len(budgets) <= 12:
            ax.set_xticks(budgets)
            ax.set_xticklabels([amount_text(b, unit) for b in budgets])
            ax.minorticks_off()
    elif budgets:
        ax.set_xticks(budgets)
        ax.set_xticklabels([amount_text(b, unit) for b in budgets])
    if not bad and log_scale_fits(losses):
        ax.set_yscale("log")
    ax.set_xlabel(f"trial budget ({unit})" + (", log scale: one column per rung" if multi
                                               else ""))
    ax.set_ylabel("loss (lower is better)")
    ax.set_title("Every trial's loss at its budget" + (" (lines: promotions)" if any(
        r.trial.parent is not None for r in records) else ""))
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, path)


def plot_budget_per_rung(journal: JournalView, path: Path) -> Path | None:
    """Budget charged per trial budget (rung), stacked by bracket; None for one budget level."""
    groups = budget_groups(journal)
    budgets = sorted({b for _, b in groups})
    brackets = sorted({k for k, _ in groups}, key=lambda k: -1 if k is None else k)
    if len(budgets) < 2:
        return None
    unit, trial_unit = journal.unit.value, journal.settings.trial_unit.value
    has_brackets = brackets != [None]
    fig = figure(10.0 if has_brackets else 7.0, 4.2)
    ax = fig.add_subplot(1, 2 if has_brackets else 1, 1)
    colors = _palette(len(brackets))
    labels = [amount_text(b, trial_unit) for b in budgets]
    bottom = np.zeros(len(budgets))
    for i, k in enumerate(brackets):
        heights = np.array([groups.get((k, b), (0.0, 0))[0] for b in budgets])
        ax.bar(labels, heights, bottom=bottom, color=colors[i],
               label=None if k is None else f"bracket {k}")
        bottom += heights
    counts = [sum(n for (_, b2), (_, n) in groups.items() if b2 == b) for b in budgets]
    for j, (h, n) in enumerate(zip(bottom, counts, strict=True)):
        ax.annotate(f"{n} trials", (j, h), ha="center", va="bottom", fontsize=8)
    ax.set_xlabel(f"trial budget (rung, {trial_unit})")
    ax.set_ylabel(f"budget charged ({unit})")
    ax.set_title("Budget used per rung")
    ax.grid(axis="y", alpha=0.3)
    if has_brackets:
        ax.legend(fontsize=8)
        ax2 = fig.add_subplot(1, 2, 2)
        names = [f"bracket {k}" for k in brackets]
        left = np.zeros(len(brackets))
        shades = _palette(len(budgets), "viridis")
        for j, b in enumerate(budgets):
            heights = np.array([groups.get((k, b), (0.0, 0))[0] for k in brackets])
            ax2.bar(names, heights, bottom=left, color=shades[j], label=labels[j])
            left += heights
        ax2.set_ylabel(f"budget charged ({unit})")
        ax2.set_title("Budget used per bracket (stacked by rung)")
        ax2.legend(title="trial budget", fontsize=8)
        ax2.grid(axis="y", alpha=0.3)
    return save(fig, path)


def plot_importance(result: Importance, path: Path) -> Path | None:
    """Horizontal bars of the R² each hyperparameter's shuffle costs; None without a result."""
    if result.reason is not None or not result.names:
        return None
    n = len(result.names)
    fig = figure(7.0, max(2.5, 0.35 * n + 1.2))
    ax = fig.add_subplot()
    pos = np.arange(n)[::-1]
    ax.barh(pos, result.mean, xerr=result.std, color="#2ca02c", alpha=0.85,
            error_kw={"lw": 1, "capsize": 2})
    ax.set_yticks(pos)
    ax.set_yticklabels(result.names)
    ax.axvline(0, color="#333333", lw=0.8)
    ax.set_xlabel("drop in cross-validated R² when shuffled")
    ax.set_title(f"Hyperparameter importance ({result.n_trials} trials, "
                 f"R² = {result.r2:.2f})")
    ax.grid(axis="x", alpha=0.3)
    return save(fig, path)


def _palette(n: int, name: str = "tab10") -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps[name]
    if name == "tab10":
        return [cmap(i % 10) for i in range(n)]
    return [cmap(x) for x in np.linspace(0.15, 0.85, max(n, 1))]


def plot_regret(path: Path, name: str, max_budget: float,
                curves: Mapping[tuple[str, int], list[tuple[float, float]]],
                searchers: Sequence[str], *, what: str = "regret") -> None:
    """`nas bench`: median regret of each searcher's incumbent against the budget spent (in
    units of `max_budget`), log scale, with interquartile bands; `what` names the regret
    (``"hypervolume regret"`` for a multi-objective problem's incumbent front)."""
    top = max((c[-1][0] for c in curves.values() if c), default=1.0) / max_budget
    grid = np.linspace(0, top, 200)
    fig = figure(6.0, 4.0)
    ax = fig.add_subplot()
    for s in searchers:
        lines = []
        for (searcher, _), curve in curves.items():
            if searcher != s or not curve:
                continue
            spent = np.array([c[0] for c in curve]) / max_budget
            regret = np.array([c[1] for c in curve])
            idx = np.searchsorted(spent, grid, side="right") - 1
            lines.append(np.where(idx >= 0, regret[np.clip(idx, 0, None)], np.nan))
        if not lines:
            continue
        with warnings.catch_warnings():  # no incumbent yet at the very start of a run
            warnings.simplefilter("ignore", RuntimeWarning)
            q25, med, q75 = np.nanpercentile(np.array(lines), [25, 50, 75], axis=0)
        # A log axis cannot show 0: the optimum itself sits at the floor.
        floor = 1e-6
        (line,) = ax.plot(grid, np.maximum(med, floor), label=s)
        ax.fill_between(grid, np.maximum(q25, floor), np.maximum(q75, floor),
                        color=line.get_color(), alpha=0.2)
    ax.set_yscale("log")
    ax.set_title(f"{name}: median {what}, IQR band")
    ax.set_xlabel("budget spent / max_budget")
    ax.set_ylabel(f"{what} of the incumbent")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
