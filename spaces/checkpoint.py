"""The model file: a configuration, its trained weights and the input standardisation; and
`load_model`, which needs torch and `spaces` alone.

A search's checkpoints and `nas export` files share this format; `read` is the one place that
loads one (``weights_only``: a file cannot run code) and checks its version, so a file of
another version is refused by name, not by a failing key lookup.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nas.errors import UserError
from spaces.families import build_model

#: The format (and version) written into every model file.
FORMAT = "nas-model/1"


def payload(config: Mapping[str, Any], input_shape: Sequence[int], num_classes: int,
            mean: torch.Tensor, std: torch.Tensor, model: nn.Module,
            **extra: Any) -> dict[str, Any]:
    """What a model file holds, on the CPU; `extra` (trial id, training state) goes along."""
    return {
        **extra,
        "format": FORMAT,
        "config": dict(config),
        "input_shape": list(input_shape),
        "num_classes": int(num_classes),
        "mean": mean.detach().cpu(),
        "std": std.detach().cpu(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def read(source: str | os.PathLike[str] | bytes, *,
         map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A model file's contents (a path, or the file's bytes from a remote worker).

    Raises ValueError for a file of another format or version.
    """
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    ckpt = torch.load(handle, map_location=map_location, weights_only=True)
    found = ckpt.get("format") if isinstance(ckpt, dict) else None
    if found != FORMAT:
        where = "the checkpoint" if isinstance(source, bytes) else str(source)
        raise ValueError(f"{where} is not a model file of format {FORMAT} (it holds "
                         f"{found!r}); was it written by another version of nas?")
    return ckpt


def network(ckpt: Mapping[str, Any]) -> nn.Module:
    """The trained network a model file holds (without standardisation), on the CPU."""
    net = build_model(ckpt["config"], tuple(ckpt["input_shape"]), int(ckpt["num_classes"]))
    net.load_state_dict(ckpt["state_dict"])
    return net


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
    try:
        ckpt = read(path, map_location=map_location)
    except FileNotFoundError:
        raise UserError(f"no model file at {path}") from None
    except (ValueError, RuntimeError, EOFError, OSError) as exc:
        raise UserError(f"cannot load {path}: {' '.join(str(exc).split())[:160]}") from None
    net = network(ckpt)
    model = nn.Sequential()
    model.add_module("standardize", Standardize(ckpt["mean"], ckpt["std"]))
    model.add_module("net", net)
    return model.eval()
