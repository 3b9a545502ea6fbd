"""One registry of searchers: `register`, `get`, `available`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ConfigSpace import ConfigurationSpace

from nas.errors import UserError
from searchers.base import Searcher

_REGISTRY: dict[str, type[Searcher]] = {}
S = TypeVar("S", bound=type[Searcher])


def register(name: str) -> Callable[[S], S]:
    """Class decorator: make a searcher available as ``searchers.get(name, ...)``."""

    def deco(cls: S) -> S:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"searcher {name!r} is already registered by {_REGISTRY[name]}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def available() -> list[str]:
    """Names of the registered searchers."""
    return sorted(_REGISTRY)


def get_class(name: str) -> type[Searcher]:
    """The searcher class registered as `name`."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(
            f"unknown searcher {name!r}; available: {', '.join(available())}"
        ) from None


def get(name: str, space: ConfigurationSpace, *, seed: int | None = 0, **options: Any) -> Searcher:
    """Build the searcher registered as `name` over `space`."""
    cls = get_class(name)
    try:
        return cls(space, seed=seed, **options)
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad options for searcher {name!r}: {exc}") from None
