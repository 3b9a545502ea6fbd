"""Search spaces (ConfigSpace) and the pure mapping configuration -> PyTorch model."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from ConfigSpace import ConfigurationSpace
from torch import nn

from nas.errors import UserError
from spaces.cells import canonical_digest, cell_graph
from spaces.conv import build_residual_conv, conv_architecture_hash, residual_conv
from spaces.mlp import build_residual_mlp, residual_mlp
from spaces.overrides import parse_assignment

__all__ = [
    "Standardize",
    "architecture_hash",
    "available",
    "build_model",
    "cell_graph",
    "describe",
    "get",
    "load_model",
    "parse_assignment",
    "residual_conv",
    "residual_mlp",
    "space_from_json",
    "space_to_json",
]


@dataclass(frozen=True)
class _Family:
    factory: Callable[..., ConfigurationSpace]
    builder: Callable[[Mapping[str, Any], tuple[int, ...], int], nn.Module]
    doc: str
    # Names what a configuration trains; None: the digest of the whole configuration.
    hasher: Callable[[Mapping[str, Any]], str] | None = None


_FAMILIES: dict[str, _Family] = {
    "residual-mlp": _Family(
        residual_mlp, build_residual_mlp,
        "residual MLP: 1-8 pre-norm residual blocks over a flattened input",
    ),
    "residual-conv": _Family(
        residual_conv, build_residual_conv,
        "residual conv cells: 1-3 stages of 1-4 searched DAG cells, for 1-D or 2-D inputs",
        conv_architecture_hash,
    ),
}


def available() -> dict[str, str]:
    """Space names and a one-line description of each."""
    return {name: fam.doc for name, fam in _FAMILIES.items()}


def get(name: str, **overrides: Any) -> ConfigurationSpace:
    """The space registered as `name`, with overrides (see `spaces.residual_mlp`)."""
    try:
        family = _FAMILIES[name]
    except KeyError:
        raise UserError(f"unknown space {name!r}; available: {', '.join(_FAMILIES)}") from None
    return family.factory(**overrides)


def build_model(config: Mapping[str, Any], input_shape: tuple[int, ...],
                num_classes: int) -> nn.Module:
    """The model a configuration describes; a pure function of its arguments."""
    arch = dict(config).get("architecture")
    if arch not in _FAMILIES:
        raise UserError(f"configuration names no known architecture (got {arch!r})")
    return _FAMILIES[arch].builder(dict(config), tuple(int(d) for d in input_shape),
                                   int(num_classes))


def architecture_hash(config: Mapping[str, Any]) -> str:
    """Hex digest that is equal for configurations that train the same model the same way.

    residual-conv: isomorphic pruned cells, equal macro shape and training settings; any other
    configuration: its canonical JSON.
    """
    values = dict(config)
    family = _FAMILIES.get(str(values.get("architecture")))
    if family is not None and family.hasher is not None:
        return family.hasher(values)
    return canonical_digest(values)


def describe(space: ConfigurationSpace) -> str:
    """A readable listing of a space: one line per hyperparameter, then its conditions."""
    lines = [f"space {space.name!r}: {len(space)} hyperparameters"]
    for hp in space.values():
        lines.append("  " + _describe_hp(hp))
    if space.conditions:
        lines.append("conditions:")
        lines += [f"  {c}" for c in space.conditions]
    if space.forbidden_clauses:
        lines.append("forbidden:")
        lines += [f"  {f}" for f in space.forbidden_clauses]
    return "\n".join(lines)


def _describe_hp(hp: Any) -> str:
    kind = type(hp).__name__.replace("Hyperparameter", "").replace("Uniform", "").lower()
    if hasattr(hp, "choices"):
        what = "{" + ", ".join(str(c) for c in hp.choices) + "}"
    elif hasattr(hp, "sequence"):
        what = "{" + ", ".join(str(c) for c in hp.sequence) + "}"
    elif hasattr(hp, "lower"):
        what = f"[{hp.lower:g}, {hp.upper:g}]" + (" log" if hp.log else "")
    else:
        what = f"= {hp.value!r}"
    default = getattr(hp, "default_value", getattr(hp, "value", None))
    return f"{hp.name:<16} {kind:<12} {what:<34} default {default!r}"


def space_to_json(space: ConfigurationSpace) -> dict[str, Any]:
    """ConfigSpace's own serialisation of a space (a JSON-ready dict)."""
    return space.to_serialized_dict()


def space_from_json(data: Mapping[str, Any]) -> ConfigurationSpace:
    """Inverse of `space_to_json`."""
    return ConfigurationSpace.from_serialized_dict(dict(data))


class Standardize(nn.Module):
    """Subtract the training mean and divide by the training std, so a model takes raw inputs."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised input."""
        return (x - self.mean) / self.std


def load_model(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
               ) -> nn.Module:
    """Load a model written by ``nas export``: standardisation + the trained network, in eval mode.

    The file also holds ``config``, ``space``, ``input_shape`` and ``num_classes`` for inspection.
    """
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    net = build_model(ckpt["config"], tuple(ckpt["input_shape"]), int(ckpt["num_classes"]))
    net.load_state_dict(ckpt["state_dict"])
    model = nn.Sequential()
    model.add_module("standardize", Standardize(ckpt["mean"], ckpt["std"]))
    model.add_module("net", net)
    return model.eval()
