"""Search algorithms: ask/tell objects over a ConfigSpace space, found through one registry."""

from __future__ import annotations

from searchers.asha import ASHA
from searchers.base import Searcher
from searchers.bohb import BOHB
from searchers.hyperband import Bracket, Hyperband, Rung, hyperband_layout
from searchers.random import RandomSearch
from searchers.registry import available, get, get_class, register
from searchers.tpe import TPE

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
]
