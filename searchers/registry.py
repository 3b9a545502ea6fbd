"""One registry of searchers: `register`, `register_lazy`, `get`, `available`."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ConfigSpace import ConfigurationSpace

from nas.errors import UserError
from searchers.base import Searcher

_REGISTRY: dict[str, type[Searcher]] = {}
S = TypeVar("S", bound=type[Searcher])


@dataclass(frozen=True)
class _Lazy:
    """A searcher whose module is imported on first use, and only if `requires` is installed."""

    target: str  # "package.module:ClassName"
    requires: str  # the top-level module it needs, e.g. "optuna"
    extra: str  # the pip extra that installs it, e.g. "compare"


_LAZY: dict[str, _Lazy] = {}


def register(name: str) -> Callable[[S], S]:
    """Class decorator: make a searcher available as ``searchers.get(name, ...)``."""

    def deco(cls: S) -> S:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"searcher {name!r} is already registered by {_REGISTRY[name]}")
        lazy = _LAZY.get(name)
        if lazy is not None and lazy.target != f"{cls.__module__}:{cls.__qualname__}":
            raise ValueError(f"searcher {name!r} is already registered lazily as {lazy.target}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def register_lazy(name: str, target: str, *, requires: str, extra: str) -> None:
    """Register `name` without importing it: ``target`` ("module:Class") is imported on first
    use, and the name is listed by `available` only while the module `requires` is installed.

    `extra` names the pip extra that installs `requires` (for the error message).
    """
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise ValueError(f"target must read 'module:Class', got {target!r}")
    entry = _Lazy(target, requires, extra)
    if name in _REGISTRY or _LAZY.get(name, entry) != entry:
        raise ValueError(f"searcher {name!r} is already registered")
    _LAZY[name] = entry


def _installed(module: str) -> bool:
    """True when `module` can be imported; finds it without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken sys.modules entry
        return False


def available() -> list[str]:
    """Names of the registered searchers (lazy ones only when what they need is installed)."""
    eager = (name for name in _REGISTRY if name not in _LAZY)
    return sorted({*eager, *(name for name, lazy in _LAZY.items() if _installed(lazy.requires))})


def get_class(name: str) -> type[Searcher]:
    """The searcher class registered as `name`; a lazy one is imported now."""
    lazy = _LAZY.get(name)
    if lazy is not None:
        return _load(name, lazy)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(
            f"unknown searcher {name!r}; available: {', '.join(available())}"
        ) from None


def _load(name: str, lazy: _Lazy) -> type[Searcher]:
    missing = UserError(f"searcher {name!r} needs {lazy.requires}: "
                        f"pip install 'nas-engine[{lazy.extra}]'")
    if not _installed(lazy.requires):
        raise missing
    cls = _REGISTRY.get(name)
    if cls is None:
        module, _, attr = lazy.target.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except ImportError as exc:  # installed but broken, or too old for the module
            raise UserError(f"{missing} (importing it failed: {exc})") from None
        register(name)(cls)
    return cls


def get(name: str, space: ConfigurationSpace, *, seed: int | None = 0, **options: Any) -> Searcher:
    """Build the searcher registered as `name` over `space`."""
    cls = get_class(name)
    try:
        return cls(space, seed=seed, **options)
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad options for searcher {name!r}: {exc}") from None
