"""Conv cells as networkx graphs: the single source of truth for a cell's model and hash.

A cell is a DAG over the input node ``0``, intermediate nodes ``1..n_nodes`` and the output node
``"out"``. Every node but the input is the sum, over its incoming edges, of the edge's op applied
to the source node. ``edge_i_j`` (``0 <= i < j <= n_nodes``) names the op on edge ``i -> j``;
``none`` means no edge. The output node sums the cell's loose ends: each live intermediate node
that feeds no other node reaches ``out`` through a ``skip`` edge, so nothing computed is wasted.

Nodes the input cannot reach compute from nothing: they are pruned with their edges. A cell left
without any input -> output path is repaired to the identity cell (one ``skip`` edge from input
to output), marked by ``graph.graph["repaired"]``. `cell_hash` names a cell's isomorphism class
exactly (a canonical form over relabellings of the intermediate nodes).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping
from typing import Any

import networkx as nx

from nas.errors import UserError

#: Edge operations a default space searches; ``none`` is the absence of an edge.
OPS: tuple[str, ...] = (
    "none", "skip", "conv1x1", "conv3x3", "sep_conv3x3", "avgpool3x3", "maxpool3x3",
)
#: Every edge operation the model code builds: `OPS` and those a user may add
#: (``--set ops=...``, ``nas resume --space-update ops+=sep_conv5x5``).
ALL_OPS: tuple[str, ...] = (*OPS, "sep_conv5x5", "conv5x5")
MAX_NODES = 4
INPUT: int = 0
OUTPUT: str = "out"
#: Every possible edge of the largest cell, ordered by target node then source node.
EDGES: tuple[tuple[int, int], ...] = tuple(
    (i, j) for j in range(1, MAX_NODES + 1) for i in range(j)
)


def edge_name(i: int | str, j: int | str) -> str:
    """The configuration name of edge ``i -> j`` (also its module name in the model)."""
    return f"edge_{i}_{j}"


def cell_graph(config: Mapping[str, Any]) -> nx.DiGraph:
    """The pruned cell a configuration describes.

    Nodes carry ``role`` (input, intermediate, output), edges carry ``op``; the graph is acyclic
    and every node lies on an input -> output path. Missing (inactive) edges count as ``none``.
    """
    values = dict(config)
    n_nodes = _n_nodes(values)
    graph = nx.DiGraph(n_nodes=n_nodes, repaired=False)
    graph.add_node(INPUT, role="input")
    graph.add_nodes_from(range(1, n_nodes + 1), role="intermediate")
    for i, j in EDGES:
        if j > n_nodes:
            continue
        op = values.get(edge_name(i, j), "none")
        if op not in ALL_OPS:
            raise UserError(f"{edge_name(i, j)} cannot be {op!r}; ops: {', '.join(ALL_OPS)}")
        if op != "none":
            graph.add_edge(i, j, op=str(op))
    live = nx.descendants(graph, INPUT)
    graph.remove_nodes_from([v for v in range(1, n_nodes + 1) if v not in live])
    # A reachable node's successors are reachable too, so pruning leaves loose ends unchanged.
    loose_ends = [v for v in range(1, n_nodes + 1) if v in graph and graph.out_degree(v) == 0]
    graph.add_node(OUTPUT, role="output")
    graph.add_edges_from(((v, OUTPUT) for v in loose_ends), op="skip")
    if not loose_ends:
        graph.add_edge(INPUT, OUTPUT, op="skip")
        graph.graph["repaired"] = True
    _validate(graph)
    return graph


def topological_nodes(graph: nx.DiGraph) -> list[int | str]:
    """The cell's nodes in the order the model computes them: input first, output last."""
    return list(nx.lexicographical_topological_sort(graph, key=str))


def canonical_form(graph: nx.DiGraph) -> tuple[int, tuple[tuple[int, int, str], ...]]:
    """A label of the cell's isomorphism class: the smallest sorted edge list over relabellings.

    The input is 0, the output ``k + 1`` and the ``k`` intermediate nodes take every order of
    ``1..k`` (at most 4! = 24); isomorphic cells, and only they, share the result.
    """
    inner = [v for v in graph if graph.nodes[v]["role"] == "intermediate"]
    k = len(inner)
    edges = [(u, v, str(op)) for u, v, op in graph.edges(data="op")]
    best: tuple[tuple[int, int, str], ...] | None = None
    for order in itertools.permutations(range(1, k + 1)):
        label = {INPUT: 0, OUTPUT: k + 1, **dict(zip(inner, order, strict=True))}
        key = tuple(sorted((label[u], label[v], op) for u, v, op in edges))
        if best is None or key < best:
            best = key
    assert best is not None
    return k, best


def cell_hash(graph: nx.DiGraph) -> str:
    """Hex digest of the cell's `canonical_form`: equal exactly for isomorphic cells."""
    return canonical_digest(canonical_form(graph))


def canonical_digest(payload: Any) -> str:
    """SHA-256 hex digest of `payload` as canonical JSON (sorted keys, numpy scalars as Python)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy and torch scalars
        return value.item()
    raise TypeError(f"cannot hash a value of type {type(value).__name__}: {value!r}")


def _n_nodes(values: Mapping[str, Any]) -> int:
    raw = values.get("n_nodes")
    try:
        n = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError(f"a conv cell needs n_nodes (1-{MAX_NODES}), got {raw!r}") from None
    if not 1 <= n <= MAX_NODES or n != raw:
        raise UserError(f"n_nodes must be a whole number in [1, {MAX_NODES}], got {raw!r}")
    return n


def _validate(graph: nx.DiGraph) -> None:
    # Holds by construction; checked because a broken cell must never become a model.
    if not nx.is_directed_acyclic_graph(graph):
        raise ValueError("cell graph has a cycle")
    reach_out = nx.ancestors(graph, OUTPUT) | {OUTPUT}
    reached = nx.descendants(graph, INPUT) | {INPUT}
    dead = set(graph) - (reach_out & reached)
    if dead:
        raise ValueError(f"cell nodes off every input -> output path: {sorted(map(str, dead))}")
