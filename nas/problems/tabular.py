"""Tabular NAS benchmarks of our own space: real learning curves, looked up in milliseconds.

`tab-mlp-digits` and `tab-mlp-mnist1d` hold a few hundred sampled configurations of the
`residual-mlp` space (width 16-256, 1-4 blocks, every training hyperparameter), each trained once
per seed (three seeds) for 27 epochs through the project's trainer, with the validation accuracy
and loss recorded after every epoch (`benchmarks/make_tabular.py` builds them). The loss at a
budget of b epochs is 1 - the validation accuracy after epoch round(b) of the run of that seed:
the curve a continued trial follows (its learning-rate schedule spans the 27 epochs), as LCBench
and NAS-Bench-201 record theirs. A diverged run scores loss 1 from the epoch it diverged on.

**A configuration outside the table is answered by its nearest neighbour in the table**: the
space's encoded hyperparameters (numbers in [0, 1], log-scaled where the space is), squared
differences summed, a categorical mismatch or an active/inactive mismatch counting 1. Searchers
therefore see a piecewise-constant landscape over the whole space with the table's points as
its values; the result says which table entry answered (`table_index`) and whether it was exact.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace

from nas.problems.core import PROBLEMS, Problem

#: Epochs every run of a table trained (and the problems' max budget).
EPOCHS = 27
_FOLDER = Path(__file__).with_name("tables")
#: The shipped table of each dataset.
TABLES: dict[str, Path] = {name: _FOLDER / f"tab-mlp-{name}.npz" for name in ("digits", "mnist1d")}
#: The space the tables sample (the generator's; the problems read the one stored in the table).
SPACE_OVERRIDES: dict[str, Any] = {"width": (16, 256), "n_blocks": (1, 4)}


def space_for(dataset: str) -> ConfigurationSpace:
    """The space a table of `dataset` samples (imports torch, through `spaces`)."""
    from spaces import residual_mlp

    del dataset  # one space for every table, so that their results compare
    return residual_mlp(**SPACE_OVERRIDES)


@dataclass(frozen=True)
class Table:
    """One dataset's table: configurations and [configuration, seed, epoch] curves."""

    space_json: str
    configs: tuple[Mapping[str, Any], ...]
    accuracy: np.ndarray
    loss: np.ndarray
    seconds: np.ndarray
    params: np.ndarray

    @classmethod
    def load(cls, path: Path) -> Table:
        """Read a table written by `benchmarks/make_tabular.py`."""
        with np.load(path, allow_pickle=False) as data:
            return cls(str(data["space"]), tuple(json.loads(str(data["configs"]))),
                       data["accuracy"], data["loss"], data["seconds"], data["params"])

    def new_space(self) -> ConfigurationSpace:
        """A fresh copy of the table's space (no torch needed): a caller may seed or change it."""
        return ConfigurationSpace.from_serialized_dict(json.loads(self.space_json))

    @functools.cached_property
    def _coder(self) -> Any:
        from searchers.encoding import SpaceCoder

        return SpaceCoder(self.new_space())

    @functools.cached_property
    def _vectors(self) -> np.ndarray:
        return np.stack([self._coder.encode(c) for c in self.configs])

    @functools.cached_property
    def final_losses(self) -> np.ndarray:
        """Each configuration's loss after the last epoch, averaged over seeds (diverged: 1)."""
        last = np.nan_to_num(self.accuracy[:, :, -1], nan=0.0)
        return 1.0 - last.mean(axis=1)

    def nearest(self, config: Mapping[str, Any]) -> tuple[int, bool]:
        """The table entry answering `config`, and whether it is `config` itself."""
        query = self._coder.encode(config)
        table = self._vectors
        cat = self._coder.is_categorical
        both = ~np.isnan(table) & ~np.isnan(query)
        one = np.isnan(table) != np.isnan(query)
        diff = np.where(cat, table != query, (table - query) ** 2)
        distance = np.where(both, diff, 0.0).sum(axis=1) + one.sum(axis=1)
        index = int(np.argmin(distance))
        return index, bool(distance[index] == 0.0)

    def lookup(self, index: int, epochs: float, seed: int) -> dict[str, Any]:
        """The run of `seed` (modulo the seeds held) of entry `index` after round(`epochs`)."""
        epoch = min(max(round(epochs), 1), EPOCHS) - 1
        run = seed % self.accuracy.shape[1]
        accuracy = float(self.accuracy[index, run, epoch])
        if not np.isfinite(accuracy):  # diverged on or before this epoch
            return {"loss": 1.0, "val_accuracy": None, "val_loss": None}
        spent = float(np.nansum(self.seconds[index, run, :epoch + 1]))
        return {"loss": 1.0 - accuracy, "tiebreak_loss": float(self.loss[index, run, epoch]),
                "val_accuracy": accuracy, "val_loss": float(self.loss[index, run, epoch]),
                "train_seconds": spent}


@functools.cache
def table(dataset: str) -> Table:
    """The shipped table of `dataset`, read once per process."""
    return Table.load(TABLES[dataset])


def _evaluate(dataset: str, config: Mapping[str, Any], budget: float, seed: int
              ) -> dict[str, Any]:
    """Look `config` up (its nearest neighbour) at `budget` epochs, run `seed`."""
    held = table(dataset)
    index, exact = held.nearest(config)
    return {**held.lookup(index, budget, seed), "table_index": index, "exact": exact,
            "params": int(held.params[index])}


def _true_loss(dataset: str, config: Mapping[str, Any]) -> float:
    """The nearest entry's loss after the last epoch, averaged over the seeds."""
    held = table(dataset)
    return float(held.final_losses[held.nearest(config)[0]])


def _space_of(dataset: str) -> ConfigurationSpace:
    """A fresh copy of `dataset`'s table's space."""
    return table(dataset).new_space()


def _tabular_problem(dataset: str) -> Problem:
    held = table(dataset)
    best = int(np.argmin(held.final_losses))
    runs = held.accuracy.shape[0]
    return Problem(
        name=f"tab-mlp-{dataset}",
        description=(f"residual MLP learning curves on {dataset}, {runs} configurations x "
                     f"{held.accuracy.shape[1]} seeds x {EPOCHS} epochs, nearest neighbour "
                     "outside the table; loss 1 - val acc"),
        min_budget=1.0, max_budget=float(EPOCHS), budget_unit="ep",
        optimum=float(held.final_losses[best]),
        _space=functools.partial(_space_of, dataset),
        _evaluate=functools.partial(_evaluate, dataset),
        _true_loss=functools.partial(_true_loss, dataset),
        best_config=dict(held.configs[best]),
    )


@PROBLEMS.register("tab-mlp-digits")
def _tab_digits() -> Problem:
    return _tabular_problem("digits")


@PROBLEMS.register("tab-mlp-mnist1d")
def _tab_mnist1d() -> Problem:
    return _tabular_problem("mnist1d")
