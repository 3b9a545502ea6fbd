"""Search algorithms: ask/tell objects over a ConfigSpace space, found through one registry."""

from __future__ import annotations

from searchers.base import Searcher
from searchers.random import RandomSearch
from searchers.registry import available, get, get_class, register

__all__ = ["RandomSearch", "Searcher", "available", "get", "get_class", "register"]
