"""Configurations <-> numeric vectors for models: continuous dims in [0, 1], categorical indices.

Ordinal, integer and float hyperparameters become one continuous dimension in [0, 1] (ordinal by
its index, so neighbours stay neighbours); categoricals keep their index; constants are dropped.
An inactive (conditional) hyperparameter is NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from ConfigSpace import Configuration, ConfigurationSpace
from ConfigSpace.exceptions import ForbiddenValueError
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    Constant,
    FloatHyperparameter,
    OrdinalHyperparameter,
)
from ConfigSpace.hyperparameters.hp_components import ROUND_PLACES

from nas.types import plain


class SpaceCoder:
    """Encodes configurations of one space as model vectors and decodes vectors back."""

    def __init__(self, space: ConfigurationSpace) -> None:
        self.space = space
        self.hps = list(space.values())
        # Positions in ConfigSpace's own vector (topologically ordered) of the modelled dims.
        self.columns: list[int] = []
        kinds: list[bool] = []
        sizes: list[int] = []
        scales: list[float] = []
        for pos, hp in enumerate(self.hps):
            if isinstance(hp, Constant) or hp.size == 1:
                continue
            self.columns.append(pos)
            if isinstance(hp, CategoricalHyperparameter):
                kinds.append(True)
                sizes.append(int(hp.size))
                scales.append(1.0)
            elif isinstance(hp, OrdinalHyperparameter):
                kinds.append(False)
                sizes.append(int(hp.size))
                scales.append(float(hp.size - 1))
            else:
                kinds.append(False)
                sizes.append(0 if not np.isfinite(hp.size) else int(hp.size))
                scales.append(1.0)
        self.is_categorical = np.array(kinds, dtype=bool)
        self.n_choices = np.array(sizes, dtype=np.int64)
        self._scale = np.array(scales, dtype=np.float64)
        self.dim = len(self.columns)
        self._modelled = [self.hps[pos] for pos in self.columns]
        self._rounded = [isinstance(hp, FloatHyperparameter) for hp in self._modelled]
        self._parents = {hp.name: space.parent_conditions_of[hp.name] for hp in self.hps}
        self._forbidden = bool(space.forbidden_clauses)

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """The model vector of a configuration (NaN where a hyperparameter is inactive).

        Each value is converted by its hyperparameter alone, without building (and checking) a
        Configuration: that took most of a tell. A value outside its range raises ValueError.
        """
        out = np.full(self.dim, np.nan)
        for i, hp in enumerate(self._modelled):
            value = config.get(hp.name)
            if value is not None:
                if not hp.legal_value(value):
                    raise ValueError(f"{hp.name}={value!r} is outside its range")
                if self._rounded[i]:  # as a Configuration rounds it, so vectors match its own
                    value = float(np.round(value, ROUND_PLACES))
                out[i] = hp.to_vector(value)
        return out / self._scale

    def decode(self, vector: np.ndarray, rng: np.random.Generator) -> dict[str, Any] | None:
        """A valid configuration near `vector`, or None if it falls on a forbidden combination.

        Activity is recomputed from the decoded parents: a child that becomes active but is NaN
        in `vector` is drawn uniformly (it has no information), one that becomes inactive is
        dropped.
        """
        full = np.full(len(self.hps), np.nan)
        full[self.columns] = vector * self._scale
        values: dict[str, Any] = {}
        for pos, hp in enumerate(self.hps):
            conditions = self._parents[hp.name]
            if conditions and not all(_satisfied(c, values) for c in conditions):
                continue
            if isinstance(hp, Constant):
                values[hp.name] = hp.value
                continue
            x = full[pos]
            if isinstance(hp, (CategoricalHyperparameter, OrdinalHyperparameter)):
                x = rng.integers(hp.size) if np.isnan(x) else min(max(round(x), 0), hp.size - 1)
            else:
                x = rng.random() if np.isnan(x) else x
                x = min(max(float(x), 0.0), 1.0)
            values[hp.name] = hp.to_value(np.float64(x))
        config = plain(values)
        if self._forbidden:
            try:
                Configuration(self.space, values=config).check_valid_configuration()
            except (ForbiddenValueError, ValueError):
                return None
        return config


def _satisfied(condition: Any, values: Mapping[str, Any]) -> bool:
    # A parent that is itself inactive leaves its children inactive.
    parents = getattr(condition, "parent", None)
    names = [parents.name] if parents is not None else [p.name for p in condition.parents]
    if any(name not in values for name in names):
        return False
    return bool(condition.satisfied_by_value(values))
