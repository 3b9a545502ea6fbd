"""The residual conv cell space and its model: stem, stages of residual cells, classifier head.

Every cell of a model has the shape that `spaces.cells.cell_graph` reads from the configuration
and is wrapped as ``x + cell(x)``. Ops are pre-activation (act -> conv -> BN), so the residual
stream stays unactivated until the head's BN -> act. Stages after the first start with a
downsampling transition (act -> conv3x3 stride 2 -> BN) that also sets the stage's channels.
Inputs of shape (C, L) get 1-D layers, (C, H, W) 2-D layers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import reduce
from operator import add
from typing import Any

import networkx as nx
import torch
from ConfigSpace import (
    AndConjunction,
    ConfigurationSpace,
    EqualsCondition,
    GreaterThanCondition,
)
from torch import nn

from nas.errors import UserError
from spaces.cells import (
    ALL_OPS,
    EDGES,
    INPUT,
    MAX_NODES,
    OPS,
    OUTPUT,
    canonical_digest,
    cell_graph,
    cell_hash,
    edge_name,
    topological_nodes,
)
from spaces.mlp import ACTIVATIONS
from spaces.overrides import Param, apply_overrides
from spaces.training import TRAINING_PARAMS

ARCHITECTURE = "residual-conv"
MAX_STAGES = 3
GROWTHS = ("double", "free")
#: Stages downsample while the smallest spatial side is at least this (maps stay >= 2 wide).
MIN_SIDE_TO_DOWNSAMPLE = 4
#: Stem strides: 2 halves every side at once, a quarter of the work of each later layer on
#: 2-D inputs (what a default plan turns to when full-size maps are too slow for the budget).
STEM_STRIDES = (1, 2)

# The default cell is a pre-activation ResNet basic block: input -conv3x3-> 1 -conv3x3-> 2.
_DEFAULT_OPS = {(0, 1): "conv3x3", (1, 2): "conv3x3", (2, 3): "conv3x3", (3, 4): "conv3x3"}


def _conv_params() -> list[Param]:
    arch = [
        Param("architecture", "categorical", ARCHITECTURE, choices=(ARCHITECTURE,),
              allowed=(ARCHITECTURE,)),
        Param("n_stages", "int", 2, low=1, high=MAX_STAGES,
              doc="stages; each after the first halves the spatial size"),
        Param("n_cells", "int", 1, low=1, high=4, doc="residual cells per stage"),
        Param("channels", "int", 16, low=8, high=64, log=True, doc="channels of stage 1"),
        Param("channel_growth", "categorical", "double", choices=GROWTHS, allowed=GROWTHS,
              doc="double: each stage doubles the channels; free: stage<k>_channels"),
        Param("stage2_channels", "int", 32, low=8, high=128, log=True,
              doc="channels of stage 2 under free growth"),
        Param("stage3_channels", "int", 64, low=8, high=256, log=True,
              doc="channels of stage 3 under free growth"),
        Param("n_nodes", "int", 2, low=2, high=MAX_NODES, doc="intermediate nodes of the cell"),
        # Left out unless asked for (``stem_stride=2`` or ``[1, 2]``): spaces stay as they were.
        Param("stem_stride", "ordinal", 1, choices=STEM_STRIDES, allowed=STEM_STRIDES,
              optional=True, doc="stride of the stem's conv: 2 halves each side before stage 1"),
    ]
    arch += [
        Param(edge_name(i, j), "categorical", _DEFAULT_OPS.get((i, j), "none"), choices=OPS,
              allowed=ALL_OPS, doc=f"op on the cell edge from node {i} to node {j}")
        for i, j in EDGES
    ]
    arch.append(Param("activation", "categorical", "relu", choices=tuple(ACTIVATIONS),
                      allowed=tuple(ACTIVATIONS)))
    return arch + list(TRAINING_PARAMS)


def residual_conv(**overrides: Any) -> ConfigurationSpace:
    """The residual conv cell search space, with optional overrides.

    Example: ``residual_conv(n_stages=(1, 2), channels=(8, 32), optimizer="adam")``; the extra
    override ``ops=[...]`` sets the choices of every edge at once (``edge_i_j=...`` for one).
    """
    overrides = dict(overrides)
    params = _conv_params()
    if "ops" in overrides:
        ops = overrides.pop("ops")
        params = [p.with_override(ops) if _edge_target(p.name) else p for p in params]
    params = apply_overrides(params, overrides, hidden={"architecture"})
    by_name = {p.name: p for p in params}
    stages_lo, stages_hi = _int_range(by_name["n_stages"], 1, MAX_STAGES)
    nodes_lo, nodes_hi = _int_range(by_name["n_nodes"], 1, MAX_NODES)
    _int_range(by_name["n_cells"], 1, None)
    growth = by_name["channel_growth"]
    free_possible = "free" in growth.choices
    # Stage channels exist for stages that can exist under free growth; edges for nodes that can.
    params = [
        p for p in params
        if not (_stage_index(p.name) and (_stage_index(p.name) > stages_hi or not free_possible))
        and not _edge_target(p.name) > nodes_hi
    ]
    space = ConfigurationSpace(name=ARCHITECTURE)
    space.add([p.to_hyperparameter() for p in params])
    conditions: list[Any] = []
    for p in params:
        stage, target = _stage_index(p.name), _edge_target(p.name)
        if stage:
            parts = []
            if not growth.fixed:
                parts.append(EqualsCondition(space[p.name], space["channel_growth"], "free"))
            if stage > stages_lo:
                parts.append(GreaterThanCondition(space[p.name], space["n_stages"], stage - 1))
            if len(parts) == 2:
                conditions.append(AndConjunction(*parts))
            elif parts:
                conditions.append(parts[0])
        elif target > nodes_lo:
            conditions.append(GreaterThanCondition(space[p.name], space["n_nodes"], target - 1))
    space.add(conditions)
    return space


def _int_range(param: Param, low: int, high: int | None) -> tuple[int, int]:
    lo, hi = int(param.low), int(param.high)  # type: ignore[arg-type]
    if lo < low or (high is not None and hi > high):
        bound = f"[{low}, {high}]" if high is not None else f"at least {low}"
        raise UserError(f"{param.name} must lie within {bound}, got [{lo}, {hi}]")
    return lo, hi


def _stage_index(name: str) -> int:
    if name.startswith("stage") and name.endswith("_channels"):
        return int(name[5:-9])
    return 0


def _edge_target(name: str) -> int:
    if name.startswith("edge_"):
        return int(name.rsplit("_", 1)[1])
    return 0


def stage_channels(config: Mapping[str, Any]) -> list[int]:
    """Channels of each stage: stage 1 has ``channels``, later ones double it or are set freely."""
    first = int(config["channels"])
    n_stages = int(config["n_stages"])
    if not 1 <= n_stages <= MAX_STAGES:
        raise UserError(f"n_stages must lie within [1, {MAX_STAGES}], got {n_stages}")
    if config.get("channel_growth", "double") != "free":
        return [first * 2 ** s for s in range(n_stages)]
    missing = [f"stage{s}_channels" for s in range(2, n_stages + 1)
               if f"stage{s}_channels" not in config]
    if missing:
        raise UserError(f"free channel growth needs {', '.join(missing)}")
    return [first] + [int(config[f"stage{s}_channels"]) for s in range(2, n_stages + 1)]


def stem_stride(config: Mapping[str, Any]) -> int:
    """The stem's stride (1 when the configuration does not set it)."""
    stride = int(config.get("stem_stride", 1))
    if stride not in STEM_STRIDES:
        raise UserError(f"stem_stride must be one of {STEM_STRIDES}, got {stride}")
    return stride


def conv_architecture_hash(config: Mapping[str, Any]) -> str:
    """Digest of the pruned cell's isomorphism class, the macro shape and the training settings."""
    payload = {
        "architecture": ARCHITECTURE,
        "cell": cell_hash(cell_graph(config)),
        "n_cells": int(config["n_cells"]),
        "stage_channels": stage_channels(config),
        "activation": config["activation"],
        # Only when not 1, so hashes of configurations without it stay equal.
        **({"stem_stride": stem_stride(config)} if stem_stride(config) != 1 else {}),
        # Optional settings count only when set, so hashes of older configurations stay equal.
        "training": {p.name: _training_value(config.get(p.name)) for p in TRAINING_PARAMS
                     if not p.optional or p.name in config},
    }
    return canonical_digest(payload)


def _training_value(value: Any) -> Any:
    # 64 and 64.0 train alike; hand-written configs may spell numbers either way.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value if value is None else str(value)


@dataclass(frozen=True)
class Dims:
    """The layer types of one dimensionality: 1-D for signals (C, L), 2-D for images (C, H, W)."""

    conv: type[nn.Module]
    norm: type[nn.Module]
    avg_pool: type[nn.Module]
    max_pool: type[nn.Module]
    global_pool: type[nn.Module]


DIMS: dict[int, Dims] = {
    1: Dims(nn.Conv1d, nn.BatchNorm1d, nn.AvgPool1d, nn.MaxPool1d, nn.AdaptiveAvgPool1d),
    2: Dims(nn.Conv2d, nn.BatchNorm2d, nn.AvgPool2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d),
}


class EdgeOp(nn.Sequential):
    """The layers of one cell edge, printed under the op's name (e.g. ``conv3x3(...)``)."""

    def __init__(self, op: str, layers: Mapping[str, nn.Module] | None = None) -> None:
        super().__init__(OrderedDict(layers or {}))
        self.op = op

    def _get_name(self) -> str:
        return self.op


OpFactory = Callable[[int, Dims, type[nn.Module]], EdgeOp]


def _conv_op(op: str, kernel: int, *, separable: bool = False) -> OpFactory:
    def make(channels: int, dims: Dims, act_layer: type[nn.Module]) -> EdgeOp:
        layers: dict[str, nn.Module] = {"act": act_layer()}
        if separable:
            layers["depthwise"] = dims.conv(channels, channels, kernel, padding=kernel // 2,
                                            groups=channels, bias=False)
            layers["pointwise"] = dims.conv(channels, channels, 1, bias=False)
        else:
            layers["conv"] = dims.conv(channels, channels, kernel, padding=kernel // 2,
                                       bias=False)
        layers["norm"] = dims.norm(channels)
        return EdgeOp(op, layers)
    return make


#: Op name -> factory(channels, dims, act_layer); every op keeps the shape of its input.
OP_FACTORIES: dict[str, OpFactory] = {
    "skip": lambda c, d, act: EdgeOp("skip"),
    "conv1x1": _conv_op("conv1x1", 1),
    "conv3x3": _conv_op("conv3x3", 3),
    "sep_conv3x3": _conv_op("sep_conv3x3", 3, separable=True),
    "conv5x5": _conv_op("conv5x5", 5),
    "sep_conv5x5": _conv_op("sep_conv5x5", 5, separable=True),
    "avgpool3x3": lambda c, d, act: EdgeOp(
        "avgpool3x3", {"pool": d.avg_pool(3, stride=1, padding=1, count_include_pad=False)}),
    "maxpool3x3": lambda c, d, act: EdgeOp(
        "maxpool3x3", {"pool": d.max_pool(3, stride=1, padding=1)}),
}


class ResidualCell(nn.Module):
    """``x + cell(x)``, built from a cell graph: each node sums its incoming edges' ops."""

    def __init__(self, graph: nx.DiGraph, channels: int, *, dims: Dims,
                 act_layer: type[nn.Module]) -> None:
        super().__init__()
        self.edges = nn.ModuleDict()
        plan = []
        for node in topological_nodes(graph)[1:]:
            inputs = []
            for src in sorted(graph.predecessors(node), key=str):
                name = edge_name(src, node)
                self.edges[name] = OP_FACTORIES[graph.edges[src, node]["op"]](
                    channels, dims, act_layer)
                inputs.append((name, str(src)))
            plan.append((str(node), tuple(inputs)))
        self._plan = tuple(plan)
        self._input, self._output = str(INPUT), str(OUTPUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add the cell's output to its input."""
        states = {self._input: x}
        for node, inputs in self._plan:
            states[node] = reduce(add, (self.edges[name](states[src]) for name, src in inputs))
        return x + states[self._output]


def _transition(c_in: int, c_out: int, stride: int, *, dims: Dims,
                act_layer: type[nn.Module]) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        act=act_layer(),
        conv=dims.conv(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        norm=dims.norm(c_out),
    ))


class ResidualConvNet(nn.Module):
    """Stem (conv3x3 -> BN), stages of residual cells, head (BN -> act -> pool -> linear)."""

    def __init__(self, in_channels: int, num_classes: int, *, graph: nx.DiGraph,
                 stage_channels: list[int], strides: list[int], n_cells: int, dims: Dims,
                 act_layer: type[nn.Module], stem_stride: int = 1) -> None:
        super().__init__()
        first = stage_channels[0]
        self.stem = nn.Sequential(OrderedDict(
            conv=dims.conv(in_channels, first, 3, stride=stem_stride, padding=1, bias=False),
            norm=dims.norm(first),
        ))
        self.stages = nn.Sequential()
        prev = first
        for s, (channels, stride) in enumerate(zip(stage_channels, strides, strict=True),
                                               start=1):
            stage = nn.Sequential()
            if s > 1:
                stage.add_module("downsample", _transition(prev, channels, stride, dims=dims,
                                                           act_layer=act_layer))
            for k in range(1, n_cells + 1):
                stage.add_module(f"cell{k}", ResidualCell(graph, channels, dims=dims,
                                                          act_layer=act_layer))
            self.stages.add_module(f"stage{s}", stage)
            prev = channels
        self.head = nn.Sequential(OrderedDict(
            norm=dims.norm(prev),
            act=act_layer(),
            pool=dims.global_pool(1),
            flatten=nn.Flatten(),
            fc=nn.Linear(prev, num_classes),
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for a batch."""
        return self.head(self.stages(self.stem(x)))


def stage_strides(spatial: tuple[int, ...], n_stages: int) -> list[int]:
    """Stride of each stage's transition: 2 while the map is large enough, else 1 (first: 1)."""
    strides = [1]
    sizes = list(spatial)
    for _ in range(1, n_stages):
        stride = 2 if min(sizes) >= MIN_SIDE_TO_DOWNSAMPLE else 1
        sizes = [(n - 1) // stride + 1 for n in sizes]
        strides.append(stride)
    return strides


def build_residual_conv(config: Mapping[str, Any], input_shape: tuple[int, ...],
                        num_classes: int) -> nn.Module:
    """The residual conv network described by `config`, for (C, L) or (C, H, W) inputs."""
    if len(input_shape) not in (2, 3):
        raise UserError(
            f"{ARCHITECTURE} needs inputs shaped (C, L) or (C, H, W), got {tuple(input_shape)}; "
            "use residual-mlp for flat features"
        )
    channels = stage_channels(config)
    stride = stem_stride(config)
    spatial = tuple((n - 1) // stride + 1 for n in input_shape[1:])  # after the stem
    n_cells = int(config["n_cells"])
    if n_cells < 1:
        raise UserError(f"n_cells must be at least 1, got {n_cells}")
    return ResidualConvNet(
        input_shape[0],
        num_classes,
        graph=cell_graph(config),
        stage_channels=channels,
        strides=stage_strides(spatial, len(channels)),
        n_cells=n_cells,
        dims=DIMS[len(input_shape) - 1],
        act_layer=ACTIVATIONS[config["activation"]],
        stem_stride=stride,
    )
