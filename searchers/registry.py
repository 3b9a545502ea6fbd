"""One registry of searchers: `register`, `register_lazy`, `get`, `available`.

Installed distributions add searchers through entry points of group ``nas.searchers``
(``name = "module:Class"``): listed by `available`, imported only when used.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ConfigSpace import ConfigurationSpace

from nas.errors import UserError
from nas.registry import load_target
from searchers.base import Searcher

_REGISTRY: dict[str, type[Searcher]] = {}
S = TypeVar("S", bound=type[Searcher])


@dataclass(frozen=True)
class _Lazy:
    """A searcher whose module is imported on first use, and only if `requires` is installed."""

    target: str  # "package.module:ClassName"
    requires: str  # the top-level module it needs, e.g. "optuna"
    extra: str  # the pip extra that installs it, e.g. "compare"
    install: str = ""  # the command that installs it, where no extra can


_LAZY: dict[str, _Lazy] = {}

#: The entry-point group through which an installed distribution adds searchers.
ENTRY_POINT_GROUP = "nas.searchers"


@dataclass(frozen=True)
class Plugin:
    """A searcher that an installed distribution adds through a ``nas.searchers`` entry point."""

    name: str
    target: str  # "module:Class", as the entry point reads
    dist: str  # the distribution that declares it
    #: Why it cannot be used, known without importing it (a name clash, a malformed target).
    error: str | None = None


# Discovered on the first `available()` or lookup of a name that is not built in, never at
# `import searchers`: scanning the installed distributions is work an import must not do.
_PLUGINS: dict[str, Plugin] | None = None  # by name: those `available` lists
_IGNORED: list[Plugin] = []  # named like a built-in: the built-in keeps the name
_LOADED: dict[str, type[Searcher]] = {}  # plugins imported so far (they are in _REGISTRY too)


def register(name: str) -> Callable[[S], S]:
    """Class decorator: make a searcher available as ``searchers.get(name, ...)``."""

    def deco(cls: S) -> S:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"searcher {name!r} is already registered by {_REGISTRY[name]}")
        target = f"{cls.__module__}:{cls.__qualname__}"
        lazy = _LAZY.get(name)
        if lazy is not None and lazy.target != target:
            raise ValueError(f"searcher {name!r} is already registered lazily as {lazy.target}")
        plugin = (_PLUGINS or {}).get(name)
        if plugin is not None and plugin.target != target:
            raise ValueError(f"{_from(name, plugin.dist)} is already installed as {name!r}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def register_lazy(name: str, target: str, *, requires: str, extra: str = "",
                  install: str = "") -> None:
    """Register `name` without importing it: ``target`` ("module:Class") is imported on first
    use, and the name is listed by `available` only while the module `requires` is installed.

    `extra` names the pip extra that installs `requires`, or `install` the whole command where
    no extra can (for the error message).
    """
    if bool(extra) == bool(install):
        raise ValueError("name either the pip extra or the install command")
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise ValueError(f"target must read 'module:Class', got {target!r}")
    entry = _Lazy(target, requires, extra, install)
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
    """Names of the registered searchers (lazy ones only when what they need is installed).

    Plugins are listed without being imported, so a broken one shows only when it is used.
    """
    eager = (name for name in _REGISTRY if name not in _LAZY)
    lazy = (name for name, entry in _LAZY.items() if _installed(entry.requires))
    return sorted({*eager, *lazy, *_discover()})


def plugins() -> list[Plugin]:
    """The searchers installed distributions add, by name; none of them is imported here."""
    return [_discover()[name] for name in sorted(_discover())]


def ignored_plugins() -> list[Plugin]:
    """Plugin entry points that are not used because a built-in searcher has their name."""
    _discover()
    return list(_IGNORED)


def get_class(name: str) -> type[Searcher]:
    """The searcher class registered as `name`; a lazy one or a plugin is imported now."""
    lazy = _LAZY.get(name)
    if lazy is not None:
        return _load(name, lazy)
    if name in _REGISTRY:
        return _REGISTRY[name]
    plugin = _discover().get(name)
    if plugin is not None:
        return _load_plugin(plugin)
    raise UserError(f"unknown searcher {name!r}; available: {', '.join(available())}")


def _load(name: str, lazy: _Lazy) -> type[Searcher]:
    missing = UserError(f"searcher {name!r} needs {lazy.requires}: "
                        + (lazy.install or f"pip install 'nas-engine[{lazy.extra}]'"))
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


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    """The installed entry points of group ``nas.searchers`` (a seam for tests)."""
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _dist_name(entry: importlib.metadata.EntryPoint) -> str:
    dist = getattr(entry, "dist", None)  # None for an EntryPoint built by hand
    return getattr(dist, "name", None) or "unknown"


def _from(name: str, dist: str) -> str:
    """How messages name a plugin: its searcher name and the distribution to fix or remove."""
    where = "an unknown distribution" if dist == "unknown" else f"distribution {dist!r}"
    return f"searcher {name!r} from {where}"


def _discover() -> dict[str, Plugin]:
    """Read the ``nas.searchers`` entry points once; nothing is imported."""
    global _PLUGINS
    if _PLUGINS is not None:
        return _PLUGINS
    found: dict[str, list[Plugin]] = {}
    ignored: list[Plugin] = []
    for entry in _entry_points():
        name, target, dist = entry.name, entry.value, _dist_name(entry)
        match = entry.pattern.match(target)  # the parse EntryPoint.load() does
        error = None
        if match is None or not match.group("attr"):
            error = (f"{_from(name, dist)}: its {ENTRY_POINT_GROUP} entry point must read "
                     f"'module:Class', got {target!r}")
        else:
            target = f"{match.group('module')}:{match.group('attr')}"  # extras dropped
        if name in _LAZY or (name in _REGISTRY and name not in _LOADED):
            ignored.append(Plugin(name, target, dist, (
                f"{_from(name, dist)} is ignored: {name!r} is a built-in searcher "
                "(rename its entry point)")))
            continue
        found.setdefault(name, []).append(Plugin(name, target, dist, error))
    plugins_: dict[str, Plugin] = {}
    for name, same in found.items():
        dists = sorted({p.dist for p in same})
        if len(dists) > 1:
            # Neither wins: which one a search ran must not depend on the install order.
            same = [Plugin(name, same[0].target, ", ".join(dists), (
                f"searcher {name!r} is provided by more than one distribution "
                f"({', '.join(dists)}); uninstall all but one"))]
        plugins_[name] = same[0]
    _IGNORED[:] = ignored
    _PLUGINS = plugins_
    return plugins_


def _load_plugin(plugin: Plugin) -> type[Searcher]:
    """Import a plugin's class, check it is a `Searcher` and register it under its name."""
    if plugin.error is not None:
        raise UserError(plugin.error)
    where = f"{_from(plugin.name, plugin.dist)} ({plugin.target})"
    obj: Any = load_target(plugin.target, where)
    if not (isinstance(obj, type) and issubclass(obj, Searcher)):
        what = f"the class {obj.__name__}" if isinstance(obj, type) else \
            f"a {type(obj).__name__}"
        raise UserError(f"{where} is {what}, not a subclass of searchers.Searcher")
    if obj.__abstractmethods__:
        raise UserError(f"{where} does not implement {', '.join(sorted(obj.__abstractmethods__))}")
    # Not `register`: the class may be re-exported, so its module path need not be the target.
    obj.name = plugin.name
    _REGISTRY[plugin.name] = _LOADED[plugin.name] = obj
    return obj


def get(name: str, space: ConfigurationSpace, *, seed: int | None = 0, **options: Any) -> Searcher:
    """Build the searcher registered as `name` over `space`."""
    cls = get_class(name)
    try:
        return cls(space, seed=seed, **options)
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad options for searcher {name!r}: {exc}") from None
