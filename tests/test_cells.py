from __future__ import annotations

import itertools
import random

import networkx as nx
import pytest
from ConfigSpace import Configuration

import spaces
from nas.errors import UserError
from spaces.cells import EDGES, OPS, OUTPUT, canonical_form, cell_hash


def conv_config(n_nodes: int, **edges: str) -> dict:
    """The default residual-conv configuration with a cell of `n_nodes` and only `edges` set."""
    config = dict(spaces.residual_conv().get_default_configuration())
    config = {k: v for k, v in config.items() if not k.startswith("edge_")}
    config["n_nodes"] = n_nodes
    for i, j in EDGES:
        if j <= n_nodes:
            config[f"edge_{i}_{j}"] = edges.get(f"edge_{i}_{j}", "none")
    return config


def edge_ops(graph: nx.DiGraph) -> dict:
    return {(u, v): op for u, v, op in graph.edges(data="op")}


def test_graph_carries_roles_and_ops_and_leaves_out_none_edges() -> None:
    config = conv_config(3, edge_0_1="conv3x3", edge_0_2="sep_conv3x3", edge_1_3="maxpool3x3",
                         edge_2_3="skip", edge_1_2="none", edge_0_3="none")
    graph = spaces.cell_graph(config)
    assert dict(graph.nodes(data="role")) == {0: "input", 1: "intermediate", 2: "intermediate",
                                              3: "intermediate", OUTPUT: "output"}
    assert edge_ops(graph) == {(0, 1): "conv3x3", (0, 2): "sep_conv3x3", (1, 3): "maxpool3x3",
                               (2, 3): "skip", (3, OUTPUT): "skip"}
    assert graph.graph == {"n_nodes": 3, "repaired": False}


def test_output_sums_the_loose_ends() -> None:
    # Nodes 2 and 3 feed no other node, so both feed the output.
    graph = spaces.cell_graph(conv_config(3, edge_0_1="conv3x3", edge_0_2="conv1x1",
                                          edge_1_3="skip"))
    assert sorted(graph.predecessors(OUTPUT)) == [2, 3]
    assert all(graph.edges[v, OUTPUT]["op"] == "skip" for v in (2, 3))


def test_node_the_input_cannot_reach_is_pruned_with_its_edges() -> None:
    config = conv_config(3, edge_0_1="conv3x3", edge_1_3="conv1x1", edge_2_3="sep_conv3x3")
    graph = spaces.cell_graph(config)
    assert set(graph) == {0, 1, 3, OUTPUT}
    assert edge_ops(graph) == {(0, 1): "conv3x3", (1, 3): "conv1x1", (3, OUTPUT): "skip"}


@pytest.mark.parametrize("edges", [{}, {"edge_1_2": "conv3x3", "edge_2_3": "skip"}])
def test_cell_without_an_input_output_path_is_repaired_to_the_identity_cell(edges) -> None:
    graph = spaces.cell_graph(conv_config(3, **edges))
    assert graph.graph["repaired"]
    assert set(graph) == {0, OUTPUT}
    assert edge_ops(graph) == {(0, OUTPUT): "skip"}


@pytest.mark.parametrize("seed", range(4))
def test_sampled_cells_are_valid_pruned_dags(seed: int) -> None:
    space = spaces.residual_conv()
    space.seed(seed)
    for config in space.sample_configuration(25):
        values = dict(config)
        graph = spaces.cell_graph(values)
        assert nx.is_directed_acyclic_graph(graph)
        for node in graph:
            assert nx.has_path(graph, 0, node) and nx.has_path(graph, node, OUTPUT)
        for u, v, op in graph.edges(data="op"):
            assert op in OPS and op != "none"
            if v != OUTPUT:
                assert values[f"edge_{u}_{v}"] == op
        for i, j in EDGES:
            if j <= values["n_nodes"] and values[f"edge_{i}_{j}"] == "none":
                assert not graph.has_edge(i, j)


def test_cell_graph_rejects_broken_configs() -> None:
    with pytest.raises(UserError, match="edge_0_1"):
        spaces.cell_graph(conv_config(2, edge_0_1="conv7x7"))
    with pytest.raises(UserError, match="n_nodes"):
        spaces.cell_graph({"edge_0_1": "skip"})
    with pytest.raises(UserError, match="n_nodes"):
        spaces.cell_graph(conv_config(2) | {"n_nodes": 5})


# --- architecture hash -------------------------------------------------------------------------

def test_relabelled_intermediate_nodes_hash_equal() -> None:
    a = conv_config(3, edge_0_1="conv3x3", edge_0_2="maxpool3x3", edge_1_3="skip",
                    edge_2_3="conv1x1")
    b = conv_config(3, edge_0_1="maxpool3x3", edge_0_2="conv3x3", edge_2_3="skip",
                    edge_1_3="conv1x1")
    assert a != b
    assert spaces.architecture_hash(a) == spaces.architecture_hash(b)


def test_edges_of_pruned_nodes_do_not_change_the_hash() -> None:
    # Node 1 is unreachable in both: what it would feed is pruned, leaving 0 -> 2 -> 3.
    a = conv_config(3, edge_0_2="conv3x3", edge_2_3="conv3x3", edge_1_2="conv1x1",
                    edge_1_3="maxpool3x3")
    b = conv_config(3, edge_0_2="conv3x3", edge_2_3="conv3x3", edge_1_3="skip")
    # ... which is the default two-node cell, relabelled, plus an isolated fourth node.
    c = conv_config(2, edge_0_1="conv3x3", edge_1_2="conv3x3")
    d = conv_config(4, edge_0_1="conv3x3", edge_1_2="conv3x3")
    hashes = {spaces.architecture_hash(x) for x in (a, b, c, d)}
    assert len(hashes) == 1
    assert hashes == {spaces.architecture_hash(spaces.residual_conv().get_default_configuration())}


def test_all_repaired_cells_hash_alike_and_unlike_real_cells() -> None:
    a = spaces.architecture_hash(conv_config(2))
    b = spaces.architecture_hash(conv_config(4, edge_1_2="conv3x3", edge_3_4="skip"))
    c = spaces.architecture_hash(conv_config(2, edge_0_1="skip"))
    assert a == b != c


def test_different_ops_macro_or_training_settings_hash_differently() -> None:
    base = conv_config(2, edge_0_1="conv3x3", edge_1_2="conv3x3")
    h = spaces.architecture_hash(base)
    for change in [{"edge_1_2": "sep_conv3x3"}, {"edge_0_2": "skip"}, {"n_cells": 2},
                   {"channels": 24}, {"n_stages": 3}, {"activation": "gelu"},
                   {"lr": 0.002}, {"optimizer": "sgd"}, {"batch_size": 128},
                   {"weight_decay": 0.01}, {"lr_schedule": "constant"}]:
        assert spaces.architecture_hash(base | change) != h, change
    # ... but a number spelled differently is the same setting.
    assert spaces.architecture_hash(base | {"batch_size": 64.0, "lr": 1e-3}) == h


def test_hash_ignores_how_stage_channels_are_spelled() -> None:
    double = conv_config(2, edge_0_1="conv3x3") | {"n_stages": 3, "channels": 16}
    free = double | {"channel_growth": "free", "stage2_channels": 32, "stage3_channels": 64}
    assert spaces.architecture_hash(double) == spaces.architecture_hash(free)
    assert spaces.architecture_hash(free | {"stage3_channels": 48}) != \
        spaces.architecture_hash(double)


def test_hash_is_equal_exactly_for_isomorphic_cells() -> None:
    # Random cells against networkx's exact isomorphism test, with a small op set for many ties.
    rng = random.Random(0)
    ops = ["none", "skip", "conv3x3", "maxpool3x3"]
    graphs = []
    for _ in range(150):
        n = rng.choice([2, 3, 4])
        edges = {f"edge_{i}_{j}": rng.choice(ops) for i, j in EDGES if j <= n}
        graphs.append(spaces.cell_graph(conv_config(n, **edges)))
    ties = 0
    for g, h in itertools.combinations(graphs, 2):
        iso = nx.is_isomorphic(g, h, node_match=lambda a, b: a["role"] == b["role"],
                               edge_match=lambda a, b: a["op"] == b["op"])
        assert (cell_hash(g) == cell_hash(h)) == iso
        ties += iso
    assert ties > 20  # the check saw isomorphic pairs, not only distinct ones


def test_cells_that_weisfeiler_lehman_confuses_hash_differently() -> None:
    # networkx's directed WL hash (3.6) gives these two cells one hash at any iteration count:
    # node 3 is conv1x1(node 1) + avgpool(node 2) in one and the other way round in the other.
    common = {"edge_0_1": "skip", "edge_0_2": "skip", "edge_1_2": "conv3x3"}
    a = spaces.cell_graph(conv_config(3, **common, edge_1_3="conv1x1", edge_2_3="avgpool3x3"))
    b = spaces.cell_graph(conv_config(3, **common, edge_1_3="avgpool3x3", edge_2_3="conv1x1"))
    assert not nx.is_isomorphic(a, b, edge_match=lambda x, y: x["op"] == y["op"])
    assert canonical_form(a) != canonical_form(b)
    assert cell_hash(a) != cell_hash(b)


def test_hash_is_stable_across_versions_and_input_types() -> None:
    # Journals keep these digests: a change here must be deliberate.
    space = spaces.residual_conv()
    default = space.get_default_configuration()
    h = spaces.architecture_hash(default)
    assert h == spaces.architecture_hash(dict(reversed(list(dict(default).items()))))
    assert h == spaces.architecture_hash(Configuration(space, values=dict(default)))
    assert len(h) == 64 and int(h, 16) >= 0
    assert h == "733e0929ca9436d5659bc6814feb51c5ccea2533e0ae5f4e7a38f4999d911bbd"


def test_mlp_and_other_configs_hash_by_content() -> None:
    space = spaces.residual_mlp()
    config = dict(space.get_default_configuration())
    h = spaces.architecture_hash(config)
    assert h == spaces.architecture_hash(dict(sorted(config.items(), reverse=True)))
    assert h != spaces.architecture_hash(config | {"dropout": 0.2})
    # Even an inactive-looking difference counts: without a graph, content is all there is.
    assert h != spaces.architecture_hash(config | {"block8_mult": 2.0})
    plain = {"x": 0.5, "y": 3}
    assert spaces.architecture_hash(plain) == spaces.architecture_hash({"y": 3, "x": 0.5})
    assert spaces.architecture_hash(plain) != spaces.architecture_hash({"x": 0.5, "y": 4})
