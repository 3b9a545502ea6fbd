"""The model families: each a search space and the pure mapping configuration -> model, found
through one registry (`FAMILIES`, plugins of entry-point group ``nas.spaces`` included)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from ConfigSpace import ConfigurationSpace
from torch import nn

from nas.errors import UserError
from nas.registry import Registry
from spaces.cells import canonical_digest
from spaces.conv import build_residual_conv, conv_architecture_hash, residual_conv
from spaces.mlp import build_residual_mlp, residual_mlp


@dataclass(frozen=True)
class SpaceFamily:
    """A family of models: its search space (`factory(**overrides)`), the pure mapping
    configuration -> model (`builder(config, input_shape, num_classes)`) and a line about it.

    Register one with ``spaces.FAMILIES.add(name, family)``, or from another distribution with
    an entry point of group ``nas.spaces`` (``name = "module:FAMILY"``). Its configurations
    carry ``architecture = name``.
    """

    factory: Callable[..., ConfigurationSpace]
    builder: Callable[[Mapping[str, Any], tuple[int, ...], int], nn.Module]
    doc: str
    #: Names what a configuration trains; None: the digest of the whole configuration.
    hasher: Callable[[Mapping[str, Any]], str] | None = None
    #: An input shape the family builds for, to check a space read from a file or overridden.
    example_shape: tuple[int, ...] = (8,)


def _family(entry: object) -> SpaceFamily:
    if not isinstance(entry, SpaceFamily):
        raise TypeError(f"it is a {type(entry).__name__}, not a spaces.SpaceFamily")
    return entry


#: The model families `get`, `build_model` and `nas spaces` know, plugins included.
FAMILIES: Registry[SpaceFamily] = Registry("space", group="nas.spaces", check=_family, sort=False)
for _name, _entry in {
    "residual-mlp": SpaceFamily(
        residual_mlp, build_residual_mlp,
        "residual MLP: 1-8 pre-norm residual blocks over a flattened input",
    ),
    "residual-conv": SpaceFamily(
        residual_conv, build_residual_conv,
        "residual conv cells: 1-3 stages of 1-4 searched DAG cells, for 1-D or 2-D inputs",
        conv_architecture_hash,
        example_shape=(1, 16, 16),
    ),
}.items():
    FAMILIES.add(_name, _entry, doc=_entry.doc)


def build_model(config: Mapping[str, Any], input_shape: tuple[int, ...],
                num_classes: int) -> nn.Module:
    """The model a configuration describes; a pure function of its arguments."""
    arch = dict(config).get("architecture")
    if not isinstance(arch, str) or arch not in FAMILIES:
        raise UserError(f"configuration names no known architecture (got {arch!r})")
    return FAMILIES.get(arch).builder(dict(config), tuple(int(d) for d in input_shape),
                                   int(num_classes))


def architecture_hash(config: Mapping[str, Any]) -> str:
    """Hex digest that is equal for configurations that train the same model the same way.

    residual-conv: isomorphic pruned cells, equal macro shape and training settings; any other
    configuration: its canonical JSON.
    """
    values = dict(config)
    arch = str(values.get("architecture"))
    family = FAMILIES.get(arch) if arch in FAMILIES else None
    if family is not None and family.hasher is not None:
        return family.hasher(values)
    return canonical_digest(values)


def model_flops(config: Mapping[str, Any], input_shape: tuple[int, ...],
                num_classes: int) -> float:
    """Floating-point operations of one sample's forward pass through `config`'s model,
    counted on the meta device (nothing is allocated or computed)."""
    return model_size(config, input_shape, num_classes)[1]


def model_size(config: Mapping[str, Any], input_shape: tuple[int, ...],
               num_classes: int, *, flops: bool = True) -> tuple[int, float]:
    """Parameters and forward FLOPs per sample of `config`'s model, on the meta device.

    Counting FLOPs costs tens of milliseconds (torch's counter, not the model), building the
    model a few: with ``flops=False`` the FLOPs are NaN."""
    with torch.device("meta"):
        model = build_model(config, input_shape, num_classes)
        params = sum(p.numel() for p in model.parameters())
        counted = forward_flops(model, torch.empty((1, *input_shape))) if flops else math.nan
        return int(params), counted


#: FLOPs that cost a CPU training step what writing one output element does: with it,
#: `Work.cost` mispredicted sampled models' step times least across four datasets
#: (docs/decisions.md, "FLOPs against output elements").
FLOPS_PER_ELEMENT = 1000.0


@dataclass(frozen=True)
class Work:
    """What one sample's forward pass through a model does: the elements its leaf modules
    write and its FLOPs (`model_work`)."""

    elements: float
    flops: float

    @property
    def cost(self) -> float:
        """A training step's price in elements: what the step writes, plus its arithmetic.

        Small models' steps follow the tensors they write, not their arithmetic: FLOPs alone
        priced a pooling-heavy model at 3.7x the default one, and it ran 54x slower."""
        return self.elements + self.flops / FLOPS_PER_ELEMENT


def model_work(config: Mapping[str, Any], input_shape: tuple[int, ...],
               num_classes: int) -> Work:
    """The elements written and FLOPs done by one sample's forward pass through `config`'s
    model, counted on the meta device (nothing is allocated or computed): one pass of
    `forward_flops`, with the leaf modules' outputs counted as it runs."""
    written = 0.0

    def count(_module: nn.Module, _inputs: Any, output: Any) -> None:
        nonlocal written
        if isinstance(output, torch.Tensor):
            written += output.numel()

    with torch.device("meta"):
        model = build_model(config, input_shape, num_classes)
        hooks = [m.register_forward_hook(count) for m in model.modules()
                 if next(m.children(), None) is None]
        try:
            flops = forward_flops(model, torch.empty((1, *input_shape)))
        finally:
            for hook in hooks:
                hook.remove()
    return Work(written, flops)


def forward_flops(model: torch.nn.Module, batch: torch.Tensor) -> float:
    """Forward FLOPs per sample of `model` on `batch`, counted by torch's `FlopCounterMode`
    (a multiply-add counts 2) in eval mode without gradients; the model's mode is kept."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()  # batch norm on one sample
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(batch)
    finally:
        model.train(was_training)
    return float(counter.get_total_flops()) / max(1, len(batch))
