"""Search spaces (ConfigSpace) and the pure mapping configuration -> PyTorch model."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ConfigSpace import Configuration, ConfigurationSpace
from ConfigSpace.util import change_hp_value

from nas.errors import UserError
from spaces.cells import cell_graph
from spaces.checkpoint import Standardize, load_model
from spaces.conv import residual_conv
from spaces.families import (
    FAMILIES,
    FLOPS_PER_ELEMENT,
    SpaceFamily,
    Work,
    architecture_hash,
    build_model,
    model_flops,
    model_size,
    model_work,
)
from spaces.mlp import residual_mlp
from spaces.overrides import parse_assignment
from spaces.training import TrainSettings

__all__ = [
    "FAMILIES",
    "FLOPS_PER_ELEMENT",
    "DescribedSpace",
    "SpaceFamily",
    "Standardize",
    "Work",
    "architecture_hash",
    "available",
    "build_model",
    "cell_graph",
    "describe",
    "described",
    "get",
    "load_model",
    "model_flops",
    "model_size",
    "model_work",
    "parse_assignment",
    "residual_conv",
    "residual_mlp",
    "space_from_json",
    "space_to_json",
]


# Configurations besides the default that a space from a file or with overrides must build.
_CHECK_SAMPLES = 8
# (space name, overrides) that passed that check in this process.
_USABLE: set[tuple[str, str]] = set()


def available() -> dict[str, str]:
    """Space names and a one-line description of each (plugins too, not imported)."""
    return FAMILIES.describe()


def get(name: str | os.PathLike[str], **overrides: Any) -> ConfigurationSpace:
    """The space registered as `name`, with overrides (see `spaces.residual_mlp`).

    A path ending in ``.json`` is read as ConfigSpace JSON (``nas spaces NAME --json``).
    """
    if isinstance(name, os.PathLike) or str(name).lower().endswith(".json"):
        return _space_file(Path(name), overrides)
    if not isinstance(name, str) or name not in FAMILIES:
        raise UserError(
            f"unknown space {name!r}; available: {', '.join(FAMILIES.available())} or a "
            ".json file"
        )
    family = FAMILIES.get(name)
    space = family.factory(**overrides)
    # Overrides may leave values the models or the trainer refuse (dropout=2, lr=0): say so
    # before a search starts, not as a failure of every trial. The check builds ~50 models
    # (0.3 s); a search's planning asks for the same overrides again, so a pass is remembered.
    key = (name, repr(sorted(overrides.items())))
    reason = _unusable(space) if overrides and key not in _USABLE else None
    if reason:
        given = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
        raise UserError(f"{name} with {given} cannot be searched: {reason}")
    if overrides:
        _USABLE.add(key)
    return space


def _space_file(path: Path, overrides: Mapping[str, Any]) -> ConfigurationSpace:
    """A space read from ConfigSpace JSON, checked to build models of a known family."""
    if overrides:
        raise UserError(
            f"{path}: overrides ({', '.join(overrides)}) apply to built-in spaces only; "
            "edit the ranges in the file instead"
        )
    hint = "write one with `nas spaces NAME --json > FILE.json`"
    if not path.is_file():
        what = "is a folder, not" if path.is_dir() else "does not exist; expected"
        raise UserError(f"space file {path} {what} a ConfigSpace JSON file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read space file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"space file {path} is not JSON text (not UTF-8); {hint}") from None
    except json.JSONDecodeError as exc:
        raise UserError(
            f"space file {path} is not JSON ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno}); {hint}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("hyperparameters"), list):
        raise UserError(
            f"space file {path} is JSON but not a ConfigSpace space (no 'hyperparameters' "
            f"list); {hint}"
        )
    try:
        space = space_from_json(data)
    except Exception as exc:  # ConfigSpace reports a bad entry with any exception type
        raise UserError(
            f"space file {path} is not a valid ConfigSpace space ({_one_line(exc)}); {hint}"
        ) from None
    reason = _unusable(space)
    if reason:
        raise UserError(f"space file {path} is incompatible: {reason}")
    return space


def _unusable(space: ConfigurationSpace) -> str | None:
    """Why a search over `space` could not train its configurations, or None when it can."""
    known = ", ".join(FAMILIES.available())
    if "architecture" not in space:
        return f"it has no 'architecture' constant naming the model family ({known})"
    hp = space["architecture"]
    values = list(getattr(hp, "choices", getattr(hp, "sequence", [getattr(hp, "value", None)])))
    unknown = [v for v in values if v not in FAMILIES]
    if unknown:
        return f"architecture {unknown[0]!r} is not a known model family ({known})"
    probe = copy.deepcopy(space)  # sampling advances a space's generator; leave the user's be
    probe.seed(0)
    try:
        configs = [probe.get_default_configuration()]
        configs += list(probe.sample_configuration(_CHECK_SAMPLES))
    except Exception as exc:  # inconsistent conditions or forbiddens surface only when sampling
        return f"cannot sample it ({_one_line(exc)})"
    # Also every choice of every categorical, each set in the default configuration: a value
    # the model code does not know would otherwise only fail the trials that happen to draw it.
    configs += _choice_variants(probe, configs[0])
    for config in configs:
        values = dict(config)
        shape = FAMILIES.get(values["architecture"]).example_shape
        try:
            TrainSettings.from_config(values)
            # The meta device builds the layers without allocating or initialising weights.
            with torch.device("meta"):
                build_model(values, shape, 2)
        except Exception as exc:
            return f"a {values['architecture']} configuration cannot be trained ({_one_line(exc)})"
    return None


def _choice_variants(space: ConfigurationSpace, base: Configuration) -> list[Configuration]:
    """`base` with one categorical or ordinal value changed, for every such value of `space`."""
    variants = []
    for hp in space.values():
        if hp.name == "architecture" or base.get(hp.name) is None:
            continue
        for choice in getattr(hp, "choices", getattr(hp, "sequence", ())):
            try:
                # change_hp_value activates (at their defaults) what the new value conditions.
                vector = change_hp_value(space, base.get_array().copy(), hp.name,
                                         hp.to_vector(choice), space.index_of[hp.name])
                variants.append(Configuration(space, vector=vector))
            except ValueError:  # ForbiddenValueError among them
                continue  # a forbidden combination: no trial can draw it
    return variants


def _one_line(exc: BaseException, limit: int = 160) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return f"unknown or missing {str(exc.args[0])!r}"
    text = " ".join(str(exc).split())
    if not isinstance(exc, UserError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


class DescribedSpace(ConfigurationSpace):
    """A ConfigurationSpace that prints as `describe` lists it, one line per hyperparameter
    (ConfigSpace's own print is one long dump)."""

    def __str__(self) -> str:
        return describe(self)

    __repr__ = __str__


def described(space: ConfigurationSpace) -> DescribedSpace:
    """A copy of `space` that prints readably (`DescribedSpace`); `space` is left as it was."""
    out = copy.deepcopy(space)
    out.__class__ = DescribedSpace
    return out  # type: ignore[return-value]


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
    """Inverse of `space_to_json` (`data` is left as it was: ConfigSpace's reader pops keys)."""
    return ConfigurationSpace.from_serialized_dict(copy.deepcopy(dict(data)))


