"""The report's views of single trials: learning curves, parallel coordinates of the best
configurations, and the best architecture drawn. Like the rest of the report they read the
journal's JSON alone (no torch, no ConfigSpace)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.journal import JournalView, TrialRecord
from nas.reporting.plots import figure, log_scale_fits, save

#: Trials drawn in colour (the best); the rest are grey.
CURVES_IN_COLOUR = 10
#: Trials on the parallel coordinates plot (the best by loss).
PARALLEL_TRIALS = 20


def plot_learning_curves(journal: JournalView, path: Path) -> Path | None:
    """Validation loss per epoch of every trained trial (the best in colour); None when no
    trial journaled a curve (a plain function's trials have none)."""
    with_curves = [r for r in journal.records if r.result is not None and r.result.curve]
    if not with_curves:
        return None
    best = {r.id: k for k, r in enumerate(journal.ranked()[:CURVES_IN_COLOUR])}
    fig = figure(10.0, 4.2)
    ax_loss, ax_acc = fig.subplots(1, 2)
    losses: list[float] = []
    for record in sorted(with_curves, key=lambda r: -best.get(r.id, -1)):
        assert record.result is not None
        points = [p for p in record.result.curve if "epoch" in p]
        xs = [float(p["epoch"]) for p in points]
        loss = [float(p.get("val_loss", math.nan)) for p in points]
        acc = [100 * float(p.get("val_accuracy", math.nan)) for p in points]
        losses += [v for v in loss if math.isfinite(v)]
        rank = best.get(record.id)
        style: dict[str, Any] = ({"color": "#bbbbbb", "lw": 0.8, "alpha": 0.6} if rank is None
                                 else {"lw": 1.8, "label": f"trial {record.id}"})
        ax_loss.plot(xs, loss, marker="." if len(xs) < 3 else None, **style)
        ax_acc.plot(xs, acc, marker="." if len(xs) < 3 else None, **style)
    if log_scale_fits(losses):
        ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("validation loss")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation accuracy (%)")
    ax_loss.set_title("Learning curves (the best in colour)")
    ax_acc.legend(loc="lower right", fontsize=7, ncol=2)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    return save(fig, path)


def plot_parallel_coordinates(journal: JournalView, path: Path) -> Path | None:
    """The best trials' configurations, one line each across the space's searched
    hyperparameters scaled to [0, 1] (log-scaled ones in logs), coloured by loss; None with
    fewer than two successful trials or nothing that varies."""
    top = journal.ranked()[:PARALLEL_TRIALS]
    axes = _axes(journal.space, top)
    if len(top) < 2 or not axes:
        return None
    from matplotlib import colormaps

    fig = figure(10.0, 4.6)
    ax = fig.add_subplot()
    cmap = colormaps["viridis"]
    for k, record in reversed(list(enumerate(top))):  # the best drawn last, on top
        ys = [scale(record.trial.config.get(name)) for name, scale, _ in axes]
        ax.plot(range(len(axes)), ys, color=cmap(k / max(1, len(top) - 1)),
                lw=2.2 if k == 0 else 1.2, alpha=0.9, marker="o", ms=3,
                label=f"best: trial {record.id}" if k == 0 else None)
    ax.set_xticks(range(len(axes)))
    ax.set_xticklabels([name for name, _, _ in axes], rotation=35, ha="right", fontsize=8)
    for x, (_, _, ends) in enumerate(axes):
        ax.annotate(ends[0], (x, -0.04), ha="center", va="top", fontsize=6, color="#666")
        ax.annotate(ends[1], (x, 1.04), ha="center", va="bottom", fontsize=6, color="#666")
    ax.set_ylim(-0.12, 1.12)
    ax.set_yticks([])
    ax.set_title(f"The {len(top)} best configurations (dark: lower loss); a gap: inactive")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return save(fig, path)


def plot_architecture(journal: JournalView, path: Path) -> Path | None:
    """The best trial's model: its cell's graph with each edge's op (conv spaces), or its
    chain of blocks with their widths (MLP spaces); None for other configurations."""
    ranked = journal.ranked()
    if not ranked:
        return None
    config = dict(ranked[0].trial.config)
    if any(k.startswith("edge_") for k in config):
        return _draw_cell(config, ranked[0], path)
    if "width" in config and "n_blocks" in config:
        return _draw_blocks(config, ranked[0], path)
    return None


def _draw_cell(config: Mapping[str, Any], best: TrialRecord, path: Path) -> Path:
    import networkx as nx

    n = int(config.get("n_nodes", 2))
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n + 1))
    for key, op in config.items():
        if key.startswith("edge_") and op != "none":
            i, j = (int(v) for v in key.split("_")[1:3])
            if j <= n:
                graph.add_edge(i, j, op=str(op))
    # Nodes no edge leaves feed the output, as the model sums them there.
    ends = [v for v in range(1, n + 1) if graph.in_degree(v) and not graph.out_degree(v)]
    graph.add_node("out")
    for v in ends or [0]:
        graph.add_edge(v, "out", op="skip")
    layers = {v: (i if v != "out" else n + 1) for i, v in enumerate([*range(n + 1), "out"])}
    nx.set_node_attributes(graph, layers, "layer")
    pos = nx.multipartite_layout(graph, subset_key="layer")
    fig = figure(10.0, 3.8)
    ax = fig.add_subplot()
    nx.draw_networkx(graph, pos, ax=ax, node_color="#cfe2f3", node_size=900, font_size=9,
                     arrowsize=14, labels={v: "in" if v == 0 else str(v) for v in graph})
    nx.draw_networkx_edge_labels(graph, pos, ax=ax, font_size=8,
                                 edge_labels=nx.get_edge_attributes(graph, "op"))
    stages = ", ".join(f"{k}={config[k]}" for k in ("n_stages", "n_cells", "channels",
                                                     "channel_growth") if k in config)
    ax.set_title(f"Trial {best.id}'s cell ({stages})", fontsize=10)
    ax.axis("off")
    return save(fig, path)


def _draw_blocks(config: Mapping[str, Any], best: TrialRecord, path: Path) -> Path:
    blocks = int(config["n_blocks"])
    width = float(config["width"])
    names = ["input"] + [f"block {b}\n{round(width * float(config.get(f'block{b}_mult', 1)))}"
                         for b in range(1, blocks + 1)] + ["classes"]
    fig = figure(10.0, 2.6)
    ax = fig.add_subplot()
    for x, name in enumerate(names):
        ax.annotate(name, (x, 0), ha="center", va="center", fontsize=9,
                    bbox={"boxstyle": "round", "fc": "#cfe2f3", "ec": "#6f8fb0"})
        if x:
            ax.annotate("", (x - 0.28, 0), (x - 0.72, 0), arrowprops={"arrowstyle": "->"})
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(-1, 1)
    ax.axis("off")
    extra = ", ".join(f"{k}={config[k]}" for k in ("activation", "norm", "dropout")
                      if k in config)
    ax.set_title(f"Trial {best.id}'s residual MLP ({extra}); each block adds its input back",
                 fontsize=10)
    return save(fig, path)


def _axes(space: Mapping[str, Any], top: Sequence[TrialRecord]
          ) -> list[tuple[str, Any, tuple[str, str]]]:
    """(name, value -> [0, 1] or NaN, (low, high) labels) of each hyperparameter of the stored
    space that varies among `top`."""
    out = []
    for hp in space.get("hyperparameters") or []:
        name, kind = hp.get("name"), hp.get("type")
        values = {repr(r.trial.config.get(name)) for r in top}
        if len(values) < 2:
            continue
        if kind in ("uniform_int", "uniform_float", "normal_int", "normal_float"):
            low, high, log = float(hp["lower"]), float(hp["upper"]), bool(hp.get("log"))
            out.append((name, _numeric(low, high, log), (f"{low:g}", f"{high:g}")))
        elif kind in ("categorical", "ordinal"):
            choices = list(hp.get("choices" if kind == "categorical" else "sequence") or [])
            out.append((name, _choice(choices), (str(choices[0]), str(choices[-1]))))
    return out


def _numeric(low: float, high: float, log: bool) -> Any:
    def scale(value: Any) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return math.nan
        if log and low > 0 and value > 0:
            return (math.log(value) - math.log(low)) / max(1e-12, math.log(high / low))
        return (float(value) - low) / max(1e-12, high - low)
    return scale


def _choice(choices: list[Any]) -> Any:
    def scale(value: Any) -> float:
        return choices.index(value) / max(1, len(choices) - 1) if value in choices else math.nan
    return scale
