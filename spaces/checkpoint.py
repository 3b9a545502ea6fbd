"""The model file: a configuration, its trained weights and the input standardisation; and
`load_model`, which needs torch and `spaces` alone.

A search's checkpoints and `nas export` files share this format; `read` is the one place that
loads one (``weights_only``: a file cannot run code) and checks its version, so a file of
another version is refused by name, not by a failing key lookup.
"""

from __future__ import annotations

import io
import math
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


class InputShape(nn.Module):
    """Checks that samples have the shape the model was trained on; flat samples with as many
    values (scikit-learn's (n, 64) for 8x8 images) are reshaped, anything else is one error."""

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(int(d) for d in shape)
        self.size = math.prod(self.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` as a batch of samples of `shape`."""
        if tuple(x.shape[1:]) == self.shape:
            return x
        if x.dim() >= 1 and len(x) and x[0].numel() == self.size:
            return x.reshape(len(x), *self.shape)
        raise UserError(f"the model takes samples of shape {self.shape} ({self.size} values, "
                        f"in a batch: (n, {', '.join(map(str, self.shape))})); got a batch "
                        f"of shape {tuple(x.shape)}")

    def extra_repr(self) -> str:
        """How it prints: the shape it takes."""
        return f"shape={self.shape}"


class Ensemble(nn.Module):
    """Weighted average of its members' class probabilities; returns log-probabilities, so
    ``argmax`` and ``softmax`` of the output work as they do on one model's logits."""

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float]) -> None:
        super().__init__()
        if len(members) != len(weights) or not members:
            raise ValueError("an ensemble needs one weight per member, and a member")
        self.members = nn.ModuleList(members)
        w = torch.tensor([float(x) for x in weights], dtype=torch.float32)
        self.register_buffer("weights", w / w.sum())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log of the weighted mean of the members' softmax outputs."""
        probs = sum(w * torch.softmax(m(x).float(), dim=1)
                    for w, m in zip(self.weights, self.members, strict=True))
        return torch.log(probs.clamp_min(1e-12))  # type: ignore[union-attr]


def ensemble_payload(members: Sequence[Mapping[str, Any]], weights: Sequence[float],
                     **extra: Any) -> dict[str, Any]:
    """A model file holding an ensemble: its members' model files and their weights."""
    first = members[0]
    return {**extra, "format": FORMAT, "members": [dict(m) for m in members],
            "weights": [float(w) for w in weights], "input_shape": list(first["input_shape"]),
            "num_classes": int(first["num_classes"])}


def load_model(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
               ) -> nn.Module:
    """Load a model written by ``nas export``, in eval mode, taking raw inputs: the input check
    (`InputShape`), then standardisation + the trained network, or an `Ensemble` of such.

    The model's ``input_shape`` (and ``classes``, when the file names them) say what it takes
    and returns; the file also holds ``config``, ``space`` and ``num_classes``.
    """
    try:
        ckpt = read(path, map_location=map_location)
    except FileNotFoundError:
        raise UserError(f"no model file at {path}") from None
    except (ValueError, RuntimeError, EOFError, OSError) as exc:
        raise UserError(f"cannot load {path}: {' '.join(str(exc).split())[:160]}") from None
    model = nn.Sequential()
    model.add_module("input", InputShape(ckpt["input_shape"]))
    if "members" in ckpt:
        model.add_module("ensemble", Ensemble([_standardized(m) for m in ckpt["members"]],
                                              ckpt["weights"]))
    else:
        model.add_module("standardize", Standardize(ckpt["mean"], ckpt["std"]))
        model.add_module("net", network(ckpt))
    model.input_shape = tuple(int(d) for d in ckpt["input_shape"])  # type: ignore[assignment]
    model.classes = ckpt.get("classes")  # type: ignore[assignment]
    return model.eval()


def _standardized(ckpt: Mapping[str, Any]) -> nn.Module:
    return nn.Sequential(Standardize(ckpt["mean"], ckpt["std"]), network(ckpt))
