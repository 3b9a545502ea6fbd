"""Search algorithms: ask/tell objects over a ConfigSpace space, found through one registry."""

from __future__ import annotations

from searchers.asha import ASHA
from searchers.base import Searcher
from searchers.bohb import BOHB
from searchers.hyperband import Bracket, Hyperband, Rung, hyperband_layout
from searchers.random import RandomSearch
from searchers.registry import available, get, get_class, register, register_lazy
from searchers.tpe import TPE

# External baselines (`pip install 'nas-engine[compare]'`): listed only when Optuna is installed
# and imported on first use, so importing `searchers` stays fast.
register_lazy("optuna-tpe", "searchers.optuna_adapters:OptunaTPE",
              requires="optuna", extra="compare")
register_lazy("optuna-tpe-hyperband", "searchers.optuna_adapters:OptunaTPEHyperband",
              requires="optuna", extra="compare")

__all__ = [
    "ASHA",
    "BOHB",
    "TPE",
    "Bracket",
    "Hyperband",
    "RandomSearch",
    "Rung",
    "Searcher",
    "available",
    "get",
    "get_class",
    "hyperband_layout",
    "register",
    "register_lazy",
]
