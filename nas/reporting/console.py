"""What a person sees in a terminal: the live progress display, and the tables of
`nas search` / `nas show`."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nas.budget import Unit, display_amount
from nas.constraints import format_count
from nas.engine.callbacks import Callback
from nas.engine.ledger import Ledger
from nas.journal import JournalView, ranked
from nas.pareto import FrontPoint
from nas.types import Result, Trial

if TYPE_CHECKING:
    from nas.engine.costs import Replan
    from nas.engine.result import SearchResult
    from nas.journal import TrialRecord

# Short names and a fixed order keep a configuration readable on one line.
_SHORT = {
    "n_blocks": "blocks", "activation": "act", "dropout": "drop", "optimizer": "opt",
    "weight_decay": "wd", "batch_size": "bs", "lr_schedule": "sched",
}
_ORDER = ["n_blocks", "width", "mults", "n_stages", "n_cells", "channels", "channel_growth",
          "stage2_channels", "stage3_channels", "n_nodes", "activation", "norm", "dropout",
          "optimizer", "lr", "weight_decay", "batch_size", "lr_schedule"]


def format_config(config: Mapping[str, Any], *, width: int | None = None) -> str:
    """A configuration on one line: ``blocks=3 width=128 mults=1,2,0.5 act=gelu lr=0.0012 ...``."""
    values = {k: v for k, v in config.items() if k != "architecture"}
    mults = [k for k in values if k.startswith("block") and k.endswith("_mult")]
    if mults:
        mults.sort(key=lambda k: int(k[5:-5]))
        values["mults"] = ",".join(f"{values.pop(k):g}" for k in mults)
    keys = [k for k in _ORDER if k in values] + sorted(k for k in values if k not in _ORDER)
    parts = []
    for key in keys:
        value = values[key]
        if isinstance(value, float):
            value = f"{value:.3g}"
        parts.append(f"{_SHORT.get(key, key)}={value}")
    text = " ".join(parts)
    if width is not None and len(text) > width:
        text = text[: max(0, width - 1)] + "…"
    return text


def _pct(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


class ProgressBar(Callback):
    """A tqdm bar: trials done, budget spent / total, best validation accuracy, current config."""

    def __init__(self, *, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._bar: Any = None
        self._done = 0
        self._best: float | None = None
        self._trial_started = 0.0
        self._spent = 0.0
        self._unit = Unit.SECONDS
        self._full: float | None = None

    def on_search_start(self, path: Path, settings: Mapping[str, Any], ledger: Ledger) -> None:
        """Open the bar."""
        from tqdm import tqdm

        self._unit = ledger.unit
        from nas.journal import SearchSettings

        read = SearchSettings.from_dict(settings)
        # Epochs of a full trial, when trials count epochs (the bar says "epoch 3/9").
        self._full = read.full_budget if read.trial_unit is Unit.EPOCHS else None
        for line in start_lines(settings):
            print(line, file=self.stream or sys.stderr, flush=True)
        self._bar = tqdm(
            total=ledger.limit.amount, file=self.stream or sys.stderr, dynamic_ncols=True,
            # tqdm puts ", " before the postfix: it reads "[00:12], training blocks=2 ...".
            bar_format="{desc} |{bar:16}| {n:.0f}/{total:.0f} " + ledger.unit.value
            + " [{elapsed}]{postfix}",
        )
        self._describe()

    def on_replan(self, replan: Replan) -> None:
        """Say that the plan changed, and why."""
        self._bar.write(f"replan   at {replan.spent:.1f} s: {replan.reason}")

    def on_trial_start(self, trial: Trial) -> None:
        """Show the configuration that is now training."""
        self._trial_started = time.monotonic()
        self._bar.set_postfix_str("training " + format_config(trial.config, width=90),
                                  refresh=True)

    def on_epoch(self, trial: Trial, point: Mapping[str, float]) -> None:
        """Show the running trial's epochs; advance a time budget's bar while it runs."""
        epochs = trial.budget if trial.budget is not None else self._full
        self._bar.set_postfix_str(
            f"trial {trial.id} epoch {point.get('epoch', 0):.3g}"
            + (f"/{epochs:g}" if epochs else "")
            + f" val {_pct(point.get('val_accuracy'))}", refresh=True)
        if self._unit is Unit.SECONDS:
            self._set(self._spent + time.monotonic() - self._trial_started)

    def on_trial_end(self, trial: Trial, result: Result, best: TrialRecord | None,
                     ledger: Ledger) -> None:
        """Count the trial and move the bar to what the ledger charged."""
        self._done += 1
        self._spent = ledger.spent
        self._best = None if best is None else best.val_accuracy
        self._set(ledger.spent)
        self._describe()

    def on_search_end(self, result: SearchResult | None) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()

    def _set(self, value: float) -> None:
        self._bar.n = min(value, self._bar.total)
        self._bar.refresh()

    def _describe(self) -> str:
        text = f"trials {self._done} | best val {_pct(self._best)}"
        self._bar.set_description_str(text, refresh=True)
        return text


def start_lines(settings: Mapping[str, Any]) -> list[str]:
    """What a search says as it starts: the default plan's warnings, and a warm start."""
    from nas.journal import SearchSettings
    from nas.warmstart import WarmStart

    lines = [str(line) for line in settings.get("auto") or () if str(line).startswith("warning")]
    if settings.get("warm_start"):
        lines.append(WarmStart.of(SearchSettings.from_dict(settings)).describe())
    return lines


class LineReporter(Callback):
    """One line per finished trial, for logs and pipes where a bar would be noise."""

    def __init__(self, *, stream: TextIO | None = None) -> None:
        self.stream = stream

    def on_search_start(self, path: Path, settings: Mapping[str, Any], ledger: Ledger) -> None:
        """Say what the start should know (warnings, a warm start)."""
        for line in start_lines(settings):
            print(line, file=self.stream or sys.stderr, flush=True)

    def on_trial_end(self, trial: Trial, result: Result, best: TrialRecord | None,
                     ledger: Ledger) -> None:
        """Print the trial's outcome and the search's standing."""
        acc = result.metrics.get("val_accuracy")
        print(
            f"trial {trial.id:>4} {result.status.value:<9} val {_pct(acc):>6}  "
            f"best {_pct(None if best is None else best.val_accuracy):>6}  "
            f"spent {ledger}  {format_config(trial.config, width=80)}",
            file=self.stream or sys.stderr, flush=True,
        )


def default_reporter() -> Callback:
    """A progress bar on a terminal, one line per trial otherwise."""
    return ProgressBar() if sys.stderr.isatty() else LineReporter()


def top_table(records: Sequence[TrialRecord], *, k: int = 5, continued: bool = False,
              full: bool = False) -> str:
    """The k best trials as an aligned text table. `continued`: a promoted trial trained on
    from its parent, so its epochs are the lineage's total; `full`: configurations uncut."""
    best = ranked(records)[:k]
    if not best:
        return "no finished trial yet"
    totals = total_epochs(records) if continued else None
    # Trained models carry their footprint (`nas.footprint`); plain functions do not.
    sized = any(r.result is not None and r.result.footprint is not None for r in best)
    status = any(r.status.value != "ok" for r in best)
    header = ["rank", "trial", *(["status"] if status else []), "parent", "val acc",
              "val loss", "epochs", "seconds", "params",
              *(["flops", "latency"] if sized else []), "config"]
    rows = []
    for rank, r in enumerate(best, start=1):
        assert r.result is not None
        m, fp = r.result.metrics, r.result.footprint
        size = [] if not sized else [
            "-" if fp is None else _count(fp.flops_per_sample),
            "-" if fp is None or fp.latency_ms is None
            else f"{fp.latency_ms:.2f}ms/{fp.latency_batch}"]
        epochs = r.result.epochs if totals is None else totals[r.id]
        rows.append([
            str(rank), trial_label(r), *([r.status.value] if status else []),
            "-" if r.trial.parent is None else str(r.trial.parent), _pct(r.val_accuracy),
            f"{m.get('val_loss', math.nan):.4f}", f"{epochs:.3g}",
            # The footprint's count; journals older than footprints have the metric.
            f"{r.result.seconds:.1f}", _count(fp.params if fp else m.get("params")), *size,
            format_config(r.trial.config, width=None if full else 70),
        ])
    return _aligned(header, rows)


def total_epochs(records: Sequence[TrialRecord]) -> dict[int, float]:
    """Each trial's model's epochs in all: its own, and its parent's when it continued it."""
    totals: dict[int, float] = {}
    for r in sorted(records, key=lambda r: r.id):
        if r.result is not None and r.result.reused_from is not None:
            # The same model as an earlier trial's: its epochs, not the none this one ran.
            totals[r.id] = totals.get(r.result.reused_from, 0.0)
            continue
        own = r.result.epochs if r.result is not None else 0.0
        parent = r.trial.parent
        totals[r.id] = own + (totals.get(parent, 0.0) if parent is not None else 0.0)
    return totals


#: Origins a trial's label shows: not the searcher's own proposal.
MARKED_ORIGINS = ("enqueued", "retrained")


def trial_label(record: TrialRecord) -> str:
    """A trial's id, marked when the user enqueued it (or a warm start retrained it) rather
    than the searcher proposing it."""
    origin = record.trial.info.get("origin")
    return f"{record.id} ({origin})" if origin in MARKED_ORIGINS else str(record.id)


def imported_lines(view: JournalView, *, k: int = 5) -> list[str]:
    """A warm-started search's imports: how many, from where, and the best `k`, marked."""
    from nas.warmstart import WarmStart

    warm = WarmStart.of(view.settings)
    if not warm.imported and not warm.dropped:
        return []
    lines = ["", warm.describe() + ": told to the searcher, never trained or charged here"]
    best = warm.best(k, view.full_budget)
    if best:
        rows = [[f"{Path(i.source).name}#{i.trial_id} (imported)",
                 _pct(i.result.metrics.get("val_accuracy")), f"{i.result.loss:.4g}",
                 "full" if i.budget is None else f"{i.budget:.3g}",
                 format_config(i.config, width=70)] for i in best]
        lines.append(_aligned(["trial", "val acc", "loss", "budget", "config"], rows))
    return lines


def _aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in rows]
    return "\n".join(lines)


def _count(n: Any) -> str:
    return "-" if n is None else format_count(float(n))


def summary_text(view: JournalView, *, k: int = 5, full: bool = False) -> str:
    """The report of `nas show` and of the end of `nas search`."""
    from collections import Counter

    settings, records, summary = view.settings, view.records, view.summary
    counts = Counter(r.status.value for r in records)
    status_text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none yet"
    limit = view.limit
    data = None if settings.data is None else settings.data.name
    lines = [
        f"search   {settings.name or view.path.stem}  ({view.state})",
        f"space    {settings.space_name}   data {data}   searcher {settings.searcher.name}"
        f"   seed {settings.seed}",
        f"budget   {display_amount(view.spent or 0.0, view.unit)} spent of {limit}"
        + _trial_budget_note(view),
        f"trials   {len(records)}: {status_text}",
    ]
    if settings.constraints:
        from nas.constraints import Constraints

        lines.append(f"limits   {Constraints.from_dict(settings.constraints)} (infeasible "
                     "trials are never the best)")
    if summary is not None and summary.stopped:
        lines.append(f"stopped  {summary.stopped}")
    lines += ["", top_table(records, k=k, continued=settings.continue_trials, full=full)]
    if summary is not None and summary.best_trial is not None:
        best = next((r for r in records if r.id == summary.best_trial), None)
        lines.append("")
        lines.append(
            f"best     trial {summary.best_trial}: val acc {_pct(best and best.val_accuracy)}, "
            f"test acc {_pct(summary.test_accuracy)}"
        )
    ensemble = None if summary is None else summary.ensemble
    if ensemble:
        members = ", ".join(f"{k} ({w:.0%})" for k, w in ensemble["weights"].items())
        lines.append(f"ensemble of trials {members}: val acc {_pct(ensemble['val_accuracy'])}, "
                     f"test acc {_pct(ensemble['test_accuracy'])}")
    lines += _baseline_lines(view)
    lines += imported_lines(view, k=k)
    lines.append(f"journal  {view.path}")
    return "\n".join(lines)


def _trial_budget_note(view: JournalView) -> str:
    """What a full trial is, and, when none ran that long yet, that none did."""
    per = view.settings.trial_budget
    if per is None:
        return ""
    longest = max((view.budget_of(r) for r in view.records
                   if r.result is not None and r.result.ok), default=None)
    if longest is not None and longest < view.full_budget * (1 - 1e-9):
        unit = view.settings.trial_unit.value
        return f"   (a full trial {per}; the longest so far {longest:g}{unit})"
    return f"   (a full trial {per})"


def _baseline_lines(view: JournalView) -> list[str]:
    """The plain baselines beside the search's result, and which one won, if one did."""
    lines = []
    fitted = [b for b in view.baselines if b.get("val_accuracy") is not None]
    if fitted:
        lines.append("baseline " + "; ".join(
            f"{_baseline_name(b)} val acc {_pct(b['val_accuracy'])}, test acc "
            f"{_pct(b.get('test_accuracy'))} ({b.get('seconds', 0.0):.1f} s)" for b in fitted))
    won = None if view.summary is None else view.summary.baseline_won
    if won is not None:
        lines.append(f"result   the {won['name']} baseline: it beat the search's model on "
                     f"validation ({_pct(won['val_accuracy'])} against "
                     f"{_pct(won.get('search_val_accuracy'))}), so it is what the search "
                     "returns (SearchResult.load_final_model)")
    for replan in view.replans:
        lines.append(f"replan   at {replan['spent']:.1f} s: {replan['reason']}")
    return lines


def _baseline_name(baseline: Mapping[str, Any]) -> str:
    """A journaled baseline's name, with the pooling its images had (if any)."""
    pool = int(baseline.get("pool") or 1)
    return baseline["name"] if pool == 1 else f"{baseline['name']} ({pool}x{pool}-pooled)"


def _general(value: float) -> str:
    return f"{value:.4g}"


def _front_budget(record: TrialRecord) -> str:
    """Epochs a trained model had, else the trial's budget in the objective's own units."""
    result = record.result
    if result is not None and result.epochs > 0:
        return f"{result.epochs:.3g}ep"
    return "full" if record.trial.budget is None else f"{record.trial.budget:.3g}"


def front_table(points: Sequence[FrontPoint], objectives: Sequence[str]) -> str:
    """A Pareto front as an aligned text table: trial, each objective, budget, config."""
    if not points:
        return "no trained trial with these objectives yet"
    shown = {"val_error": lambda v: f"{100 * v:.2f}%", "params": _count, "flops": _count,
             "latency": lambda v: f"{v:.3g}ms"}
    header = ["#", "trial", *objectives, "budget", "config"]
    rows = [[str(k), str(p.record.id), *(shown.get(n, _general)(v) for n, v in zip(
                objectives, p.values, strict=True)),
             _front_budget(p.record),
             format_config(p.record.trial.config, width=70)] for k, p in enumerate(points)]
    return _aligned(header, rows)
