"""`nas report`: how a search went, as PNGs and one self-contained HTML page.

The page embeds its plots as base64 ``data:`` URIs and carries no external CSS, script or font,
so it opens from disk in any browser, with no server. Everything comes from the journal alone.
"""

from __future__ import annotations

import base64
import html
import math
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas.budget import Unit, display_amount
from nas.errors import UserError
from nas.journal import JournalView, RunKind
from nas.reporting.console import trial_label
from nas.reporting.importance import MIN_IMPORTANCE_TRIALS, Importance, importance
from nas.reporting.pareto_plot import plot_pareto
from nas.reporting.plots import (
    amount_text,
    plot_best_so_far,
    plot_budget_per_rung,
    plot_importance,
    plot_loss_vs_budget,
)
from nas.reporting.trial_plots import (
    plot_architecture,
    plot_learning_curves,
    plot_parallel_coordinates,
)
from nas.warmstart import WarmStart

#: Names of the PNGs `write_report` may write (a stale one from an earlier report is removed).
PLOT_FILES = ("best-so-far.png", "loss-vs-budget.png", "budget-per-rung.png", "importance.png",
              "pareto.png", "learning-curves.png", "parallel.png", "architecture.png")


def write_report(journal: str | Path, out: str | Path, *, top_k: int = 10) -> Path:
    """Write the report of `journal` into folder `out`: its PNGs and ``report.html``.

    Returns the HTML file's path. A journal without a finished trial is the user's mistake.
    """
    if top_k < 1:
        raise UserError(f"top_k must be at least 1, got {top_k}")
    data = JournalView.load(journal)
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
        "pareto.png": plot_pareto(data, out / "pareto.png"),
        "learning-curves.png": plot_learning_curves(data, out / "learning-curves.png"),
        "parallel.png": plot_parallel_coordinates(data, out / "parallel.png"),
        "architecture.png": plot_architecture(data, out / "architecture.png"),
    }
    page = out / "report.html"
    page.write_text(_html(data, plots, imp, top_k), encoding="utf-8")
    return page


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.8em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left;
         vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.header th { background: none; font-weight: 600; padding-left: 0; }
figure { margin: 1em 0; } img { width: 100%; height: auto; border: 1px solid #eee; }
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
    "learning-curves.png": "Each trained trial's validation loss (log scale where it spans "
                           "decades) and accuracy after every epoch, as journaled; a promoted "
                           "trial's curve goes on from its parent's epochs.",
    "parallel.png": "One line per configuration across every hyperparameter that differs among "
                    "them, each axis its searched range (log-scaled ones in logs), low at the "
                    "bottom; colour by rank.",
    "architecture.png": "The best trial's model as its configuration builds it.",
    "pareto.png": "Left: each trained trial's objectives (the search's own, else validation "
                  "error against parameters; sizes, FLOPs and latencies on log scales), at "
                  "whatever budget it trained; the front joins the trials no other beats in "
                  "every objective (`nas show DB --pareto`), dashed lines are limits. Right: "
                  "the front's hypervolume as trials were told, every objective scaled to "
                  "[0, 1] (validation error as it is; the others, log10 where they span "
                  "decades, from the smallest seen to the limit, else 1.1 x the largest), "
                  "reference point 1 in each.",
}


def _html(data: JournalView, plots: Mapping[str, Path | None], imp: Importance, top_k: int) -> str:
    name = data.settings.name or data.path.stem
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
        "<h2>Learning curves</h2>", _figure_html(plots, "learning-curves.png", data),
        f"<h2>Top {top_k} configurations</h2>", _top_table(data, top_k),
        "<h2>The best configurations side by side</h2>",
        _figure_html(plots, "parallel.png", data),
        "<h2>The best architecture</h2>", _figure_html(plots, "architecture.png", data),
        *_imported_html(data, top_k),
        "<h2>Pareto front</h2>", _figure_html(plots, "pareto.png", data),
        "<h2>Hyperparameter importance</h2>", _importance_html(imp, plots, data),
        f"<p class=\"note\">Journal: <code>{e(str(data.path))}</code>. Generated by "
        "<code>nas report</code>.</p>",
        f"<script>{_SCRIPT}</script>", "</body>", "</html>",
    ]
    return "\n".join(parts) + "\n"


def _header(data: JournalView) -> list[tuple[str, str]]:
    """(label, HTML) rows describing the search."""
    e = html.escape
    s = data.settings
    rows: list[tuple[str, str]] = []
    rows.append(("kind", e(f"{s.kind.value} ({data.state})")))
    if s.kind is RunKind.OPTIMIZE and s.objective:
        rows.append(("objective", f"<code>{e(str(s.objective))}</code>"))
    rows.append(("space", e(str(s.space_name or "?"))))
    if s.data is not None:
        extra = ", ".join(f"{k} {v}" for k, v in s.data.sizes.items())
        rows.append(("data", e(str(s.data.name)) + (f" ({e(extra)})" if extra else "")))
    options = ", ".join(f"{k}={v}" for k, v in s.searcher.options.items())
    rows.append(("searcher", e(s.searcher.name or "?")
                 + (f" ({e(options)})" if options else "") + f", seed {e(str(s.seed))}"))
    limit = data.limit
    spent = display_amount(data.spent or 0.0, data.unit)
    rows.append(("budget", e(f"{spent} spent of {limit if limit is not None else '?'}")))
    if s.trial_budget is not None:
        rows.append(("per trial", e(str(s.trial_budget))))
    elif s.min_budget is not None and s.max_budget is not None:
        rows.append(("trial budgets", e(f"{s.min_budget:g} to {s.max_budget:g} "
                                        "(the objective's units)")))
    counts = Counter(r.status.value for r in data.records)
    rows.append(("trials", e(f"{len(data.records)}: " + ", ".join(
        f"{n} {st}" for st, n in sorted(counts.items())))))
    warm = WarmStart.of(s)
    if warm.imported or warm.dropped:
        rows.append(("warm start", e(warm.describe() + "; told to the searcher, never trained "
                                     "or charged here")))
    for change in data.space_changes:
        rows.append(("space change", e(f"before trial {change['at_trial']}: "
                                       + " ".join(change.get("updates") or ()))))
    if s.auto:  # what `--space auto` etc. chose, and why
        rows.append(("chosen", "<br>".join(e(str(line)) for line in s.auto)))
    summary = data.summary
    if summary is not None and summary.stopped:
        rows.append(("stopped", e(summary.stopped)))
    ranked = data.ranked()
    if ranked:
        best = ranked[0]
        assert best.result is not None
        text = f"trial {best.id}: loss {best.result.loss:.4g}"
        if best.val_accuracy is not None:
            text += f", val acc {100 * best.val_accuracy:.1f}%"
        if summary is not None and summary.test_accuracy is not None:
            text += f", test acc {100 * float(summary.test_accuracy):.1f}%"
        text += f", at budget {amount_text(data.budget_of(best), s.trial_unit.value)}"
        rows.append(("best", e(text)))
    else:
        rows.append(("best", "no successful trial"))
    rows += _final_rows(data)
    if data.unit is not Unit.SECONDS and data.spent is not None:
        total = sum(data.charged(r) for r in data.finished())
        if not math.isclose(total, float(data.spent), rel_tol=1e-6, abs_tol=1e-6):
            rows.append(("note", e(f"the trials' charges add up to "
                                   f"{display_amount(total, data.unit)}, the ledger says {spent}")))
    return rows


def _final_rows(data: JournalView) -> list[tuple[str, str]]:
    """What the search returns (its ensemble, or a baseline that beat it) and its scores."""
    e = html.escape
    summary = data.summary
    rows: list[tuple[str, str]] = []
    if summary is None:
        return rows
    ensemble = summary.ensemble
    if ensemble:
        members = ", ".join(f"{k} ({100 * float(w):.0f} %)" for k, w in
                            ensemble["weights"].items())
        text = f"trials {members}: val acc {100 * float(ensemble['val_accuracy']):.1f}%"
        if ensemble.get("test_accuracy") is not None:
            text += f", test acc {100 * float(ensemble['test_accuracy']):.1f}%"
        rows.append(("ensemble", e(text)))
    won = summary.baseline_won
    if won:
        rows.append(("result", e(f"the plain {won['name']} baseline (val acc "
                                 f"{100 * float(won['val_accuracy']):.1f}%, test acc "
                                 f"{100 * float(won['test_accuracy'] or 0):.1f}%) beat the "
                                 "search on validation and is what it returns")))
    elif ensemble and len(ensemble["weights"]) > 1:
        rows.append(("result", "the ensemble (`nas export` writes it)"))
    elif summary.best_trial is not None:
        rows.append(("result", e(f"trial {summary.best_trial}")))
    return rows


def _figure_html(plots: Mapping[str, Path | None], key: str, data: JournalView) -> str:
    path = plots.get(key)
    if path is None:
        why = {
            "best-so-far.png": "no successful trial",
            "loss-vs-budget.png": "no finished trial",
            "budget-per-rung.png": "every trial ran at the same budget (no rungs)",
            "pareto.png": "no trial with two objectives (a function of one objective, or no "
                          "trained model with a measured size)",
            "learning-curves.png": "no trial journaled a learning curve (a plain function's "
                                   "trials have none)",
            "parallel.png": "fewer than two successful trials, or no hyperparameter that "
                            "differs among them",
            "architecture.png": "the best configuration is not of a residual MLP or conv "
                                "space",
        }.get(key, "not applicable")
        return f'<p class="note">Not shown: {html.escape(why)}.</p>'
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = _CAPTIONS.get(key, "")
    if key == "budget-per-rung.png" and data.settings.continue_trials:
        caption += " A promoted trial that continued its parent is charged only what it added."
    if key == "best-so-far.png" and data.unit is Unit.SECONDS:
        caption += (" With a time budget the x axis adds up the trials' own seconds; the "
                    "ledger's wall clock also counts the loop between them.")
    alt = html.escape(key.removesuffix(".png").replace("-", " "))
    return (f'<figure><img src="data:image/png;base64,{encoded}" alt="{alt}">'
            f"<figcaption>{html.escape(caption)} (<code>{html.escape(path.name)}</code>)"
            "</figcaption></figure>")


def _top_table(data: JournalView, k: int) -> str:
    ranked = data.ranked()[:k]
    if not ranked:
        return '<p class="note">No successful trial.</p>'
    with_acc = any(r.val_accuracy is not None for r in ranked)
    head = ["rank", "trial", "loss"] + (["val acc"] if with_acc else []) + ["budget", "config"]
    lines = ['<table class="top">', "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for rank, r in enumerate(ranked, start=1):
        assert r.result is not None
        cells = [f'<td class="num">{rank}</td>',
                 f'<td class="num">{html.escape(trial_label(r))}</td>',
                 f'<td class="num">{r.result.loss:.4g}</td>']
        if with_acc:
            acc = r.val_accuracy
            cells.append(f'<td class="num">{"-" if acc is None else f"{100 * acc:.1f}%"}</td>')
        budget = amount_text(data.budget_of(r), data.settings.trial_unit.value)
        cells.append(f'<td class="num">{budget}</td>')
        config = " ".join(f"{key}={_value(v)}" for key, v in sorted(r.trial.config.items())
                          if key != "architecture")
        cells.append(f"<td><code>{html.escape(config)}</code></td>")
        lines.append(f'<tr data-trial="{r.id}">' + "".join(cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _imported_html(data: JournalView, k: int) -> list[str]:
    """The best `k` imported trials (a warm start), marked: the searcher knew them, but they
    were trained by an earlier search."""
    best = WarmStart.of(data.settings).best(k, data.full_budget)
    if not best:
        return []
    e = html.escape
    rows = ['<table class="top">', "<tr><th>trial</th><th>loss</th><th>budget</th>"
            "<th>config</th></tr>"]
    for item in best:
        budget = amount_text(data.full_budget if item.budget is None else item.budget,
                             data.settings.trial_unit.value)
        config = " ".join(f"{key}={_value(v)}" for key, v in sorted(item.config.items())
                          if key != "architecture")
        rows.append(f'<tr class="imported"><td>{e(Path(item.source).name)}#{item.trial_id} '
                    f'(imported)</td><td class="num">{item.result.loss:.4g}</td>'
                    f'<td class="num">{e(budget)}</td><td><code>{e(config)}</code></td></tr>')
    rows.append("</table>")
    return [f"<h2>Best {len(best)} imported trials (warm start, not trained here)</h2>", *rows]


def _value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _importance_html(imp: Importance, plots: Mapping[str, Path | None], data: JournalView) -> str:
    e = html.escape
    where = "" if imp.budget is None else \
        f" at budget {amount_text(imp.budget, data.settings.trial_unit.value)}"
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
