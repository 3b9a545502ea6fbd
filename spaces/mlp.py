"""The residual MLP space and its model: stem, pre-norm residual blocks, classifier head."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from ConfigSpace import ConfigurationSpace, GreaterThanCondition
from torch import nn

from nas.errors import UserError
from spaces.overrides import Param, apply_overrides
from spaces.training import TRAINING_PARAMS

ARCHITECTURE = "residual-mlp"
MAX_BLOCKS = 8
MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}
NORMS_1D: dict[str, type[nn.Module] | None] = {
    "batchnorm": nn.BatchNorm1d,
    "layernorm": nn.LayerNorm,
    "none": None,
}

def _mlp_params() -> list[Param]:
    arch = [
        Param("architecture", "categorical", ARCHITECTURE, choices=(ARCHITECTURE,),
              allowed=(ARCHITECTURE,)),
        Param("n_blocks", "int", 2, low=1, high=MAX_BLOCKS, doc="residual blocks"),
        Param("width", "int", 128, low=16, high=1024, log=True, doc="residual stream width"),
    ]
    arch += [
        Param(f"block{i}_mult", "ordinal", 1.0, choices=MULTIPLIERS, allowed=MULTIPLIERS,
              doc=f"hidden width of block {i} as a multiple of width")
        for i in range(1, MAX_BLOCKS + 1)
    ]
    arch += [
        Param("activation", "categorical", "relu", choices=tuple(ACTIVATIONS),
              allowed=tuple(ACTIVATIONS)),
        Param("norm", "categorical", "batchnorm", choices=tuple(NORMS_1D), allowed=tuple(NORMS_1D)),
        Param("dropout", "float", 0.1, low=0.0, high=0.5),
    ]
    return arch + list(TRAINING_PARAMS)


def residual_mlp(**overrides: Any) -> ConfigurationSpace:
    """The residual MLP search space, with optional overrides.

    Example: ``residual_mlp(width=(32, 256), n_blocks=(1, 4), optimizer="adam")``.
    """
    hidden = {"architecture"}
    params = apply_overrides(_mlp_params(), overrides, hidden=hidden)
    by_name = {p.name: p for p in params}
    n_blocks = by_name["n_blocks"]
    lo, hi = int(n_blocks.low), int(n_blocks.high)
    if lo < 1 or hi > MAX_BLOCKS:
        raise UserError(f"n_blocks must lie within [1, {MAX_BLOCKS}], got [{lo}, {hi}]")
    # Blocks beyond the largest possible depth do not exist, so their multipliers are dropped.
    params = [p for p in params if not _block_index(p.name) or _block_index(p.name) <= hi]
    space = ConfigurationSpace(name=ARCHITECTURE)
    space.add([p.to_hyperparameter() for p in params])
    # A block's multiplier is active only when the block exists (always, up to the minimum depth).
    space.add([
        GreaterThanCondition(space[p.name], space["n_blocks"], _block_index(p.name) - 1)
        for p in params
        if _block_index(p.name) and _block_index(p.name) > lo
    ])
    return space


def _block_index(name: str) -> int:
    if name.startswith("block") and name.endswith("_mult"):
        return int(name[5:-5])
    return 0


class ResidualBlock(nn.Module):
    """Pre-norm residual MLP block: ``x + fc2(drop(act(fc1(norm(x)))))``."""

    def __init__(self, dim: int, hidden: int, *, act_layer: type[nn.Module],
                 norm_layer: type[nn.Module] | None, dropout: float) -> None:
        super().__init__()
        self.norm = norm_layer(dim) if norm_layer else nn.Identity()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = act_layer()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add the block's residual branch to its input."""
        return x + self.fc2(self.drop(self.act(self.fc1(self.norm(x)))))


class ResidualMLP(nn.Module):
    """Flatten, project to the residual width, a stack of residual blocks, normalise, classify."""

    def __init__(self, in_features: int, num_classes: int, *, width: int,
                 hidden: list[int], act_layer: type[nn.Module],
                 norm_layer: type[nn.Module] | None, dropout: float) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width))
        self.blocks = nn.Sequential()
        for i, h in enumerate(hidden, start=1):
            self.blocks.add_module(
                f"block{i}",
                ResidualBlock(width, h, act_layer=act_layer, norm_layer=norm_layer,
                              dropout=dropout),
            )
        self.head = nn.Sequential(
            norm_layer(width) if norm_layer else nn.Identity(),
            act_layer(),
            nn.Linear(width, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for a batch."""
        return self.head(self.blocks(self.stem(x)))


def build_residual_mlp(config: Mapping[str, Any], input_shape: tuple[int, ...],
                       num_classes: int) -> nn.Module:
    """The residual MLP described by `config`."""
    width = int(config["width"])
    n_blocks = int(config["n_blocks"])
    hidden = [max(1, round(width * float(config.get(f"block{i}_mult", 1.0))))
              for i in range(1, n_blocks + 1)]
    return ResidualMLP(
        math.prod(input_shape),
        num_classes,
        width=width,
        hidden=hidden,
        act_layer=ACTIVATIONS[config["activation"]],
        norm_layer=NORMS_1D[config["norm"]],
        dropout=float(config["dropout"]),
    )
