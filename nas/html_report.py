"""`nas report`: how a search went, as PNGs and one self-contained HTML page.

The page embeds its plots as base64 ``data:`` URIs and carries no external CSS, script or font,
so it opens from disk in any browser, with no server. Everything comes from the journal alone.
"""

from __future__ import annotations

import base64
import html
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.budget import Budget, Unit, charge, display_amount
from nas.errors import UserError
from nas.storage import Storage, TrialRecord, ranked
from nas.types import TrialStatus

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Fewest successful trials at one budget before hyperparameter importance is estimated.
MIN_IMPORTANCE_TRIALS = 10
#: Names of the PNGs `write_report` may write (a stale one from an earlier report is removed).
PLOT_FILES = ("best-so-far.png", "loss-vs-budget.png", "budget-per-rung.png", "importance.png")
IMPORTANCE_METHOD = (
    "permutation importance of a random forest (64 trees) fitted on configuration → loss, "
    "measured out of fold: the drop in cross-validated R² when one hyperparameter's values "
    "are shuffled across trials (mean and spread over 10 shuffles)"
)
_FAILED_COLOR = "#d62728"


@dataclass(frozen=True)
class Journal:
    """What a report reads from a journal: its settings, trials and the ledger's figures."""

    path: Path
    settings: Mapping[str, Any]
    records: tuple[TrialRecord, ...]
    state: str
    spent: float | None
    summary: Mapping[str, Any]

    @property
    def limit(self) -> Budget | None:
        """The search's total budget (None when the settings do not say)."""
        try:
            return Budget.parse(self.settings["budget"])
        except (KeyError, UserError):
            return None

    @property
    def unit(self) -> Unit:
        """The unit the ledger charged in."""
        limit = self.limit
        return Unit.TRIALS if limit is None else limit.unit

    @property
    def max_budget(self) -> float:
        """Budget of a full-budget trial (a trial whose budget is None), in the trial unit."""
        if "max_budget" in self.settings:
            return float(self.settings["max_budget"])
        try:
            return Budget.parse(self.settings["trial_budget"]).amount
        except (KeyError, UserError):
            return 1.0

    @property
    def trial_unit(self) -> str:
        """Unit of a trial's budget: ``ep`` or ``s`` for a search, ``u`` for `nas.optimize`."""
        try:
            return Budget.parse(self.settings["trial_budget"]).unit.value
        except (KeyError, UserError):
            return Unit.UNITS.value

    def budget_of(self, record: TrialRecord) -> float:
        """A trial's fidelity, in the trial unit."""
        return self.max_budget if record.trial.budget is None else float(record.trial.budget)

    def finished(self) -> list[TrialRecord]:
        """Trials with a result the searcher was told (interrupted ones were not), in tell order."""
        done = [r for r in self.records if r.result is not None and r.status.finished
                and r.status is not TrialStatus.INTERRUPTED]
        return sorted(done, key=lambda r: (r.tell_order, r.id))

    def ranked(self) -> list[TrialRecord]:
        """Successful trials, best first (the order of `nas show`)."""
        return ranked(self.records)


def load_journal(path: str | Path) -> Journal:
    """Read a journal for a report; a file that is not one is the user's mistake."""
    with Storage.open(path) as store:
        return Journal(path=Path(path), settings=store.settings,
                       records=tuple(store.trials()), state=str(store.meta("state", "unknown")),
                       spent=store.meta("spent"), summary=dict(store.meta("summary") or {}))


def spend_curve(journal: Journal) -> list[tuple[TrialRecord, float, float]]:
    """Per told trial, in tell order: (record, cumulative budget charged, best loss so far)."""
    spent, best = 0.0, math.inf
    out = []
    for record in journal.finished():
        assert record.result is not None
        spent += charge(record.result, journal.unit)
        if record.result.ok:
            best = min(best, record.result.loss)
        out.append((record, spent, best))
    return out


def budget_groups(journal: Journal) -> dict[tuple[int | None, float], tuple[float, int]]:
    """(bracket or None, trial budget) -> (budget charged, number of trials)."""
    groups: dict[tuple[int | None, float], tuple[float, int]] = {}
    for record in journal.finished():
        assert record.result is not None
        bracket = record.trial.info.get("bracket")
        key = (None if bracket is None else int(bracket), journal.budget_of(record))
        cost, n = groups.get(key, (0.0, 0))
        groups[key] = (cost + charge(record.result, journal.unit), n + 1)
    return groups


@dataclass(frozen=True)
class Importance:
    """Hyperparameter importance, or why there is none (`reason`)."""

    method: str
    n_trials: int
    budget: float | None = None
    r2: float | None = None
    names: tuple[str, ...] = ()
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    constant: tuple[str, ...] = ()
    reason: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def importance(journal: Journal, *, seed: int = 0, repeats: int = 10) -> Importance:
    """Permutation importance of each hyperparameter for the loss at one budget.

    Uses the successful trials of the highest budget that has at least `MIN_IMPORTANCE_TRIALS`
    of them. Inactive (conditional) hyperparameters are encoded as -1, categoricals by index.
    """
    ok = [r for r in journal.finished() if r.result is not None and r.result.ok]
    by_budget = Counter(journal.budget_of(r) for r in ok)
    usable = [b for b, n in by_budget.items() if n >= MIN_IMPORTANCE_TRIALS]
    if not usable:
        most = max(by_budget.values(), default=0)
        return Importance(IMPORTANCE_METHOD, most, reason=(
            f"not enough trials: {most} successful at any one budget, need at least "
            f"{MIN_IMPORTANCE_TRIALS} to tell importance from noise"))
    budget = max(usable)
    rows = [r for r in ok if journal.budget_of(r) == budget]
    try:
        from searchers._vector import SpaceCoder
        from spaces import space_from_json

        coder = SpaceCoder(space_from_json(journal.settings["space"]))
    except Exception:  # a journal without a readable space: no importance, the rest stands
        return Importance(IMPORTANCE_METHOD, len(rows), budget,
                          reason="the journal's search space could not be rebuilt")
    names = [coder.hps[c].name for c in coder.columns]
    vectors, losses = [], []
    for record in rows:
        assert record.result is not None
        try:
            vectors.append(coder.encode(record.trial.config))
        except Exception:  # a configuration the stored space rejects says nothing about it
            continue
        losses.append(record.result.loss)
    if len(vectors) < MIN_IMPORTANCE_TRIALS or not names:
        return Importance(IMPORTANCE_METHOD, len(vectors), budget, reason=(
            f"not enough trials: {len(vectors)} configurations readable in the stored space"))
    x = np.nan_to_num(np.array(vectors, dtype=np.float64), nan=-1.0)
    y = np.array(losses, dtype=np.float64)
    varies = np.array([np.unique(x[:, j]).size > 1 for j in range(x.shape[1])])
    constant = tuple(n for n, v in zip(names, varies, strict=True) if not v)
    names = [n for n, v in zip(names, varies, strict=True) if v]
    x = x[:, varies]
    if np.ptp(y) == 0 or not names:
        return Importance(IMPORTANCE_METHOD, len(y), budget, constant=constant,
                          reason="every trial had the same loss, or no hyperparameter varied")
    r2, drops = _permutation_importance(x, y, np.random.default_rng(seed), repeats)
    if r2 <= 0:
        return Importance(IMPORTANCE_METHOD, len(y), budget, r2=r2, constant=constant, reason=(
            f"the forest does not predict held-out losses better than their mean "
            f"(cross-validated R² = {r2:.2f} on {len(y)} trials): importances would be noise"))
    order = np.argsort(-drops.mean(axis=1))
    return Importance(
        IMPORTANCE_METHOD, len(y), budget, r2=r2, names=tuple(names[i] for i in order),
        mean=tuple(float(drops[i].mean()) for i in order),
        std=tuple(float(drops[i].std()) for i in order), constant=constant)


def _permutation_importance(x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                            repeats: int) -> tuple[float, np.ndarray]:
    """Out-of-fold R² of a random forest, and per column and shuffle the R² lost.

    Every trial is predicted by a forest that never saw it; a shuffle permutes one column over
    all trials, so even a small fold sees values from the whole sample.
    """
    from sklearn.ensemble import RandomForestRegressor

    n, d = x.shape
    k = min(5, n)
    folds = np.array_split(rng.permutation(n), k)
    shuffles = [rng.permutation(n) for _ in range(repeats)]
    base = np.empty(n)
    shuffled = np.empty((d, repeats, n))
    for i, test in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != i])
        forest = RandomForestRegressor(n_estimators=64, random_state=int(rng.integers(2**31)),
                                       n_jobs=1)
        forest.fit(x[train], y[train])
        base[test] = forest.predict(x[test])
        # One predict call for every (column, shuffle) variant of this fold: far faster.
        variants = np.repeat(x[test][None, None], d, axis=0).repeat(repeats, axis=1)
        for j in range(d):
            for r, perm in enumerate(shuffles):
                variants[j, r, :, j] = x[perm[test], j]
        pred = forest.predict(variants.reshape(-1, d)).reshape(d, repeats, len(test))
        shuffled[:, :, test] = pred
    r2 = _r2(y, base)
    drops = np.array([[r2 - _r2(y, shuffled[j, r]) for r in range(repeats)] for j in range(d)])
    return r2, drops


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    total = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / total if total > 0 else 0.0


# -- plots ---------------------------------------------------------------------------------------

def _figure(width: float = 7.0, height: float = 4.2) -> Figure:
    # The object API with an explicit Agg canvas: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    return path


def _log_scale_fits(values: Sequence[float]) -> bool:
    """A log axis only for positive values spanning more than two decades."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 100


def _amount(amount: float, unit: str) -> str:
    return display_amount(amount, Unit(unit))


def plot_best_so_far(journal: Journal, path: Path) -> Path | None:
    """Best loss so far against the budget charged, in tell order; None without a success."""
    curve = spend_curve(journal)
    if not any(math.isfinite(best) for _, _, best in curve):
        return None
    fig = _figure()
    ax = fig.add_subplot()
    xs = [0.0] + [spent for _, spent, _ in curve]
    ys = [math.nan] + [best if math.isfinite(best) else math.nan for _, _, best in curve]
    ax.step(xs, ys, where="post", color="#1f77b4", lw=2, label="best so far")
    done = [(spent, r.result.loss) for r, spent, _ in curve
            if r.result is not None and r.result.ok]
    ax.scatter([d[0] for d in done], [d[1] for d in done], s=12, color="#7f7f7f", alpha=0.5,
               label="each trial")
    limit = journal.limit
    if limit is not None and limit.unit is not Unit.SECONDS:
        ax.axvline(limit.amount, color="#333333", ls="--", lw=1, label=f"budget {limit}")
    if _log_scale_fits([d[1] for d in done]):
        ax.set_yscale("log")
    unit = journal.unit.value
    what = "trial seconds (sum)" if journal.unit is Unit.SECONDS else f"budget charged ({unit})"
    ax.set_xlabel(what)
    ax.set_ylabel("loss (lower is better)")
    ax.set_title("Best loss so far vs budget spent")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_loss_vs_budget(journal: Journal, path: Path) -> Path | None:
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
    fig = _figure()
    ax = fig.add_subplot()
    brackets = sorted({int(r.trial.info["bracket"]) for r in records
                       if r.trial.info.get("bracket") is not None})
    colors = _palette(len(brackets) or 1)

    def xy(r: TrialRecord) -> tuple[float, float]:
        assert r.result is not None
        return journal.budget_of(r) * jitter[r.id], (r.result.loss if r.result.ok else fail_y)

    for r in records:
        parent = by_id.get(r.trial.parent) if r.trial.parent is not None else None
        if parent is not None:
            (x0, y0), (x1, y1) = xy(parent), xy(r)
            ax.plot([x0, x1], [y0, y1], color="#999999", lw=0.8, alpha=0.7, zorder=1)
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
    unit = journal.trial_unit
    if multi:
        ax.set_xscale("log")
        if len(budgets) <= 12:
            ax.set_xticks(budgets)
            ax.set_xticklabels([_amount(b, unit) for b in budgets])
            ax.minorticks_off()
    elif budgets:
        ax.set_xticks(budgets)
        ax.set_xticklabels([_amount(b, unit) for b in budgets])
    if not bad and _log_scale_fits(losses):
        ax.set_yscale("log")
    ax.set_xlabel(f"trial budget ({unit})" + (", log scale: one column per rung" if multi
                                               else ""))
    ax.set_ylabel("loss (lower is better)")
    ax.set_title("Every trial's loss at its budget" + (" (lines: promotions)" if any(
        r.trial.parent is not None for r in records) else ""))
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_budget_per_rung(journal: Journal, path: Path) -> Path | None:
    """Budget charged per trial budget (rung), stacked by bracket; None for one budget level."""
    groups = budget_groups(journal)
    budgets = sorted({b for _, b in groups})
    brackets = sorted({k for k, _ in groups}, key=lambda k: -1 if k is None else k)
    if len(budgets) < 2:
        return None
    unit, trial_unit = journal.unit.value, journal.trial_unit
    has_brackets = brackets != [None]
    fig = _figure(10.0 if has_brackets else 7.0, 4.2)
    ax = fig.add_subplot(1, 2 if has_brackets else 1, 1)
    colors = _palette(len(brackets))
    labels = [_amount(b, trial_unit) for b in budgets]
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
    return _save(fig, path)


def plot_importance(result: Importance, path: Path) -> Path | None:
    """Horizontal bars of the R² each hyperparameter's shuffle costs; None without a result."""
    if result.reason is not None or not result.names:
        return None
    n = len(result.names)
    fig = _figure(7.0, max(2.5, 0.35 * n + 1.2))
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
    return _save(fig, path)


def _palette(n: int, name: str = "tab10") -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps[name]
    if name == "tab10":
        return [cmap(i % 10) for i in range(n)]
    return [cmap(x) for x in np.linspace(0.15, 0.85, max(n, 1))]


# -- the page ------------------------------------------------------------------------------------

def write_report(journal: str | Path, out: str | Path, *, top_k: int = 10) -> Path:
    """Write the report of `journal` into folder `out`: its PNGs and ``report.html``.

    Returns the HTML file's path. A journal without a finished trial is the user's mistake.
    """
    if top_k < 1:
        raise UserError(f"top_k must be at least 1, got {top_k}")
    data = load_journal(journal)
    if not data.finished():
        raise UserError(f"{journal} holds no finished trial yet; nothing to report")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out}: {exc}") from None
    for name in PLOT_FILES:  # a plot that does not apply any more must not linger
        (out / name).unlink(missing_ok=True)
    imp = importance(data)
    plots = {
        "best-so-far.png": plot_best_so_far(data, out / "best-so-far.png"),
        "loss-vs-budget.png": plot_loss_vs_budget(data, out / "loss-vs-budget.png"),
        "budget-per-rung.png": plot_budget_per_rung(data, out / "budget-per-rung.png"),
        "importance.png": plot_importance(imp, out / "importance.png"),
    }
    page = out / "report.html"
    page.write_text(_html(data, plots, imp, top_k), encoding="utf-8")
    return page


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.8em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left;
         vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.header th { background: none; font-weight: 600; padding-left: 0; }
figure { margin: 1em 0; } img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: 0.9em; } code { font-size: 0.85em; }
"""

# Tells a headless browser (and its test) that every plot decoded: data-plots-loaded="<n>".
_SCRIPT = """
(function () {
  var imgs = Array.prototype.slice.call(document.images);
  function check() {
    var n = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
    if (n === imgs.length) { document.body.dataset.plotsLoaded = String(n); }
  }
  imgs.forEach(function (i) { i.addEventListener("load", check); });
  window.addEventListener("load", check);
  check();
})();
"""

_CAPTIONS = {
    "best-so-far.png": "Best loss so far against the budget the ledger charged, trials in the "
                       "order the searcher was told their results.",
    "loss-vs-budget.png": "Every finished trial's loss at its budget. Grey lines join a promoted "
                          "trial to its parent; red crosses are trials without a loss.",
    "budget-per-rung.png": "Budget charged per trial budget (rung), and per bracket where the "
                           "searcher has brackets.",
    "importance.png": "",
}


def _html(data: Journal, plots: Mapping[str, Path | None], imp: Importance, top_k: int) -> str:
    s = data.settings
    name = str(s.get("name", data.path.stem))
    e = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>nas report: {e(name)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<h1>Search report: {e(name)}</h1>",
        '<table class="header">',
        *(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in _header(data)),
        "</table>",
        "<h2>Best loss so far</h2>", _figure_html(plots, "best-so-far.png", data),
        "<h2>Every trial's loss vs its budget</h2>",
        _figure_html(plots, "loss-vs-budget.png", data),
        "<h2>Budget per rung and bracket</h2>", _figure_html(plots, "budget-per-rung.png", data),
        f"<h2>Top {top_k} configurations</h2>", _top_table(data, top_k),
        "<h2>Hyperparameter importance</h2>", _importance_html(imp, plots, data),
        f"<p class=\"note\">Journal: <code>{e(str(data.path))}</code>. Generated by "
        "<code>nas report</code>.</p>",
        f"<script>{_SCRIPT}</script>", "</body>", "</html>",
    ]
    return "\n".join(parts) + "\n"


def _header(data: Journal) -> list[tuple[str, str]]:
    """(label, HTML) rows describing the search."""
    e = html.escape
    s = data.settings
    rows: list[tuple[str, str]] = []
    kind = s.get("kind", "search")
    rows.append(("kind", e(f"{kind} ({data.state})")))
    if kind == "optimize" and s.get("objective"):
        rows.append(("objective", f"<code>{e(str(s['objective']))}</code>"))
    rows.append(("space", e(str(s.get("space_name", "?")))))
    if isinstance(s.get("data"), Mapping):
        d = s["data"]
        sizes = d.get("sizes") or {}
        extra = ", ".join(f"{k} {v}" for k, v in sizes.items())
        rows.append(("data", e(str(d.get("name"))) + (f" ({e(extra)})" if extra else "")))
    searcher = s.get("searcher") or {}
    options = ", ".join(f"{k}={v}" for k, v in (searcher.get("options") or {}).items())
    rows.append(("searcher", e(str(searcher.get("name", "?")))
                 + (f" ({e(options)})" if options else "") + f", seed {e(str(s.get('seed')))}"))
    limit = data.limit
    spent = display_amount(data.spent or 0.0, data.unit)
    rows.append(("budget", e(f"{spent} spent of {limit if limit is not None else '?'}")))
    if "trial_budget" in s:
        rows.append(("per trial", e(str(s["trial_budget"]))))
    elif "min_budget" in s:
        rows.append(("trial budgets", e(f"{s['min_budget']:g} to {s['max_budget']:g} "
                                        "(the objective's units)")))
    counts = Counter(r.status.value for r in data.records)
    rows.append(("trials", e(f"{len(data.records)}: " + ", ".join(
        f"{n} {st}" for st, n in sorted(counts.items())))))
    if isinstance(s.get("auto"), list) and s["auto"]:  # what `--space auto` etc. chose, and why
        rows.append(("chosen", "<br>".join(e(str(line)) for line in s["auto"])))
    if data.summary.get("stopped"):
        rows.append(("stopped", e(str(data.summary["stopped"]))))
    ranked = data.ranked()
    if ranked:
        best = ranked[0]
        assert best.result is not None
        text = f"trial {best.id}: loss {best.result.loss:.4g}"
        if best.val_accuracy is not None:
            text += f", val acc {100 * best.val_accuracy:.1f}%"
        if data.summary.get("test_accuracy") is not None:
            text += f", test acc {100 * float(data.summary['test_accuracy']):.1f}%"
        text += f", at budget {_amount(data.budget_of(best), data.trial_unit)}"
        rows.append(("best", e(text)))
    else:
        rows.append(("best", "no successful trial"))
    if data.unit is not Unit.SECONDS and data.spent is not None:
        total = sum(charge(r.result, data.unit) for r in data.finished() if r.result)
        if not math.isclose(total, float(data.spent), rel_tol=1e-6, abs_tol=1e-6):
            rows.append(("note", e(f"the trials' charges add up to "
                                   f"{display_amount(total, data.unit)}, the ledger says {spent}")))
    return rows


def _figure_html(plots: Mapping[str, Path | None], key: str, data: Journal) -> str:
    path = plots.get(key)
    if path is None:
        why = {
            "best-so-far.png": "no successful trial",
            "loss-vs-budget.png": "no finished trial",
            "budget-per-rung.png": "every trial ran at the same budget (no rungs)",
        }.get(key, "not applicable")
        return f'<p class="note">Not shown: {html.escape(why)}.</p>'
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = _CAPTIONS.get(key, "")
    if key == "budget-per-rung.png" and data.settings.get("continue_trials"):
        caption += " A promoted trial that continued its parent is charged only what it added."
    if key == "best-so-far.png" and data.unit is Unit.SECONDS:
        caption += (" With a time budget the x axis adds up the trials' own seconds; the "
                    "ledger's wall clock also counts the loop between them.")
    alt = html.escape(key.removesuffix(".png").replace("-", " "))
    return (f'<figure><img src="data:image/png;base64,{encoded}" alt="{alt}">'
            f"<figcaption>{html.escape(caption)} (<code>{html.escape(path.name)}</code>)"
            "</figcaption></figure>")


def _top_table(data: Journal, k: int) -> str:
    ranked = data.ranked()[:k]
    if not ranked:
        return '<p class="note">No successful trial.</p>'
    with_acc = any(r.val_accuracy is not None for r in ranked)
    head = ["rank", "trial", "loss"] + (["val acc"] if with_acc else []) + ["budget", "config"]
    lines = ['<table class="top">', "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for rank, r in enumerate(ranked, start=1):
        assert r.result is not None
        cells = [f'<td class="num">{rank}</td>', f'<td class="num">{r.id}</td>',
                 f'<td class="num">{r.result.loss:.4g}</td>']
        if with_acc:
            acc = r.val_accuracy
            cells.append(f'<td class="num">{"-" if acc is None else f"{100 * acc:.1f}%"}</td>')
        cells.append(f'<td class="num">{_amount(data.budget_of(r), data.trial_unit)}</td>')
        config = " ".join(f"{key}={_value(v)}" for key, v in sorted(r.trial.config.items())
                          if key != "architecture")
        cells.append(f"<td><code>{html.escape(config)}</code></td>")
        lines.append(f'<tr data-trial="{r.id}">' + "".join(cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _importance_html(imp: Importance, plots: Mapping[str, Path | None], data: Journal) -> str:
    e = html.escape
    where = "" if imp.budget is None else \
        f" at budget {_amount(imp.budget, data.trial_unit)}"
    parts = [f'<p class="method">Method: {e(imp.method)}. Trials used: {imp.n_trials}'
             f"{e(where)} (successful trials of the highest budget with at least "
             f"{MIN_IMPORTANCE_TRIALS}). Inactive conditional hyperparameters count as one "
             "extra value, categoricals by their index; correlated hyperparameters share "
             "their importance, and a promoted rung holds only the configurations that did "
             "well below it.</p>"]
    if imp.reason is not None:
        parts.append(f'<p class="note importance-missing">No importance shown: {e(imp.reason)}.'
                     "</p>")
    else:
        parts.append(_figure_html(plots, "importance.png", data))
        rows = "".join(f'<tr><td>{e(n)}</td><td class="num">{m:.3f}</td>'
                       f'<td class="num">{sd:.3f}</td></tr>'
                       for n, m, sd in zip(imp.names, imp.mean, imp.std, strict=True))
        parts.append('<table class="importance"><tr><th>hyperparameter</th>'
                     "<th>R² lost</th><th>± sd</th></tr>" + rows + "</table>")
    if imp.constant:
        parts.append(f'<p class="note">Did not vary among these trials: '
                     f"{e(', '.join(imp.constant))}.</p>")
    return "\n".join(parts)
