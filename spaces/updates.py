"""Space updates: a search's space widened, narrowed or given new choices mid-search.

`update_space` applies updates such as ``width=16:512`` (a numeric range), ``optimizer=adam,sgd``
(the choices), ``ops+=sep_conv5x5`` (choices added) or ``ops-=maxpool3x3`` (removed) to a
ConfigurationSpace, through its serialised form so that conditions and forbidden clauses come
along; ``ops`` names every cell edge at once. The result is checked like a space given by name
(every choice trainable), so a mistake is one clear line before the search goes on.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from ConfigSpace import ConfigurationSpace

from nas.errors import UserError
from spaces.overrides import parse_assignment

#: How an update changes a hyperparameter: set, add choices, remove choices.
SET, ADD, REMOVE = "=", "+=", "-="


def parse_update(text: str) -> tuple[str, str, Any]:
    """``NAME=VALUE`` / ``NAME=LOW:HIGH`` / ``NAME=A,B`` / ``NAME+=A,B`` / ``NAME-=A``:
    (name, how, value); the value read as `spaces.overrides.parse_assignment` reads it."""
    name, sep, _ = str(text).partition("=")
    how = SET
    if name.endswith(("+", "-")):
        how, name = name[-1] + "=", name[:-1]
    if not sep:
        raise UserError(f"cannot read space update {text!r}: write NAME=LOW:HIGH, NAME=A,B, "
                        "NAME+=A or NAME-=A")
    _, value = parse_assignment(f"{name.strip()}={str(text).partition('=')[2]}")
    return name.strip(), how, value


def update_space(space: ConfigurationSpace, updates: Sequence[str]) -> ConfigurationSpace:
    """`space` with `updates` applied (a new space; `space` is left as it was)."""
    data = copy.deepcopy(space.to_serialized_dict())
    hps = {h["name"]: h for h in data["hyperparameters"]}
    for text in updates:
        name, how, value = parse_update(text)
        targets = [n for n in hps if n.startswith("edge_")] if name == "ops" \
            and "ops" not in hps else [name]
        if not targets or targets[0] not in hps:
            raise UserError(f"space update {text!r}: the space has no hyperparameter {name!r}; "
                            f"it has {', '.join(sorted(hps))}")
        for target in targets:
            hps[target] = _updated(hps[target], how, value, text)
    data["hyperparameters"] = [hps[h["name"]] for h in data["hyperparameters"]]
    try:
        updated = ConfigurationSpace.from_serialized_dict(data)
    except Exception as exc:  # ConfigSpace raises several kinds, each with a message
        raise UserError(f"space update: the new space is inconsistent ({_line(exc)})") from None
    if "architecture" in updated:
        from spaces import _unusable

        reason = _unusable(updated)
        if reason:
            raise UserError(f"space update: the new space cannot be searched: {reason}")
    return updated


def _updated(hp: dict[str, Any], how: str, value: Any, text: str) -> dict[str, Any]:
    """One serialised hyperparameter with one update applied."""
    kind, name = hp["type"], hp["name"]
    values = list(value) if isinstance(value, list) else [value]
    if kind in ("uniform_int", "uniform_float", "normal_int", "normal_float"):
        if how != SET:
            raise UserError(f"space update {text!r}: {name} is numeric: give a range "
                            f"{name}=LOW:HIGH, not {how}")
        low, high = value if isinstance(value, tuple) else (value, value)
        if not all(isinstance(v, (int, float)) for v in (low, high)) or low > high:
            raise UserError(f"space update {text!r}: give {name}=LOW:HIGH with LOW <= HIGH")
        if low == high:
            return {"type": "constant", "name": name, "value": _cast(kind, low), "meta": None}
        if hp.get("log") and low <= 0:
            raise UserError(f"space update {text!r}: {name} is log-scaled: its range must be "
                            "positive")
        out = {**hp, "lower": _cast(kind, low), "upper": _cast(kind, high)}
        default = hp["default_value"]
        if not low <= default <= high:
            default = math.sqrt(low * high) if hp.get("log") else (low + high) / 2
        out["default_value"] = _cast(kind, default)
        return out
    if kind in ("categorical", "ordinal"):
        key = "choices" if kind == "categorical" else "sequence"
        current = list(hp[key])
        if isinstance(value, tuple):
            raise UserError(f"space update {text!r}: {name} has choices: give {name}=A,B, "
                            f"{name}+=A or {name}-=A")
        if how == SET:
            chosen = values
        elif how == ADD:
            chosen = current + [v for v in values if v not in current]
        else:
            missing = [v for v in values if v not in current]
            if missing:
                raise UserError(f"space update {text!r}: {name} has no choice "
                                f"{missing[0]!r}; it has {', '.join(map(str, current))}")
            chosen = [c for c in current if c not in values]
        if not chosen:
            raise UserError(f"space update {text!r}: {name} would have no choice left")
        if kind == "ordinal":
            chosen = sorted(chosen)
        default = hp["default_value"] if hp["default_value"] in chosen else chosen[0]
        out = {**hp, key: chosen, "default_value": default}
        if kind == "categorical":
            out["weights"] = None
        return out
    if kind == "constant":
        fixed = hp["value"]
        if isinstance(value, tuple) and how == SET:
            ints = all(isinstance(v, int) for v in (*value, fixed))
            return _updated({"type": "uniform_int" if ints else "uniform_float", "name": name,
                             "lower": fixed, "upper": fixed, "default_value": fixed,
                             "log": False, "meta": None}, how, value, text)
        choices = values if how == SET else [fixed]
        return _updated({"type": "categorical", "name": name, "choices": [fixed],
                         "weights": None, "default_value": fixed, "meta": None},
                        how, choices if how == SET else value, text)
    raise UserError(f"space update {text!r}: {name} is a {kind} hyperparameter, which cannot "
                    "be updated")


def _cast(kind: str, value: float) -> int | float:
    return round(value) if kind.endswith("_int") else float(value)


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160]
