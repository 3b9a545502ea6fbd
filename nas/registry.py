"""One registry pattern for named parts: a decorator to add, `get`, `available`, `describe`.

Datasets, problems and executors each keep one `Registry`; searchers keep theirs in
`searchers.registry`, which adds lazily imported baselines; the model families of `spaces` stay
a plain table (`spaces.load_model` imports nothing of `nas` beyond its errors). A registry given
an entry-point `group` also lists what installed distributions add there
(``name = "module:attribute"``), without importing them until one is asked for by name.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from nas.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class Plugin:
    """An entry that an installed distribution adds through the registry's entry-point group."""

    name: str
    target: str  # "module:attribute", as the entry point reads
    dist: str  # the distribution that declares it


class Registry(Generic[T]):
    """Named entries of one kind; plugins of entry-point `group` are read on first use."""

    def __init__(self, kind: str, *, group: str | None = None,
                 check: Callable[[object], T] | None = None,
                 key: Callable[[str], str] | None = None, sort: bool = True) -> None:
        self.kind = kind
        self.group = group
        # Turns what a plugin's entry point loads into an entry, or raises naming what is wrong.
        self._check = check
        # Turns a name as typed into the registered spelling (see `loose_name`).
        self._key = key
        # False: `available` keeps registration order, e.g. the simplest datasets first.
        self._sort = sort
        self._entries: dict[str, T] = {}
        self._docs: dict[str, str] = {}
        self._plugins: dict[str, Plugin] | None = None

    def register(self, name: str, *, doc: str | None = None) -> Callable[[T], T]:
        """Decorator: add the decorated object as `name` (its docstring's first line is `doc`)."""

        def deco(entry: T) -> T:
            self.add(name, entry, doc=doc)
            return entry

        return deco

    def add(self, name: str, entry: T, *, doc: str | None = None) -> None:
        """Add `entry` as `name`; a name is taken once."""
        if name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        self._docs[name] = doc if doc is not None else _first_line(entry)

    def available(self) -> list[str]:
        """Names of the registered entries and the installed plugins, sorted.

        With ``sort=False``: the entries in registration order, then the plugins, sorted."""
        if self._sort:
            return sorted({*self._entries, *self._discover()})
        return [*self._entries, *sorted(set(self._discover()) - set(self._entries))]

    def describe(self) -> dict[str, str]:
        """Name -> one line about it, in registration order (plugins last, unimported)."""
        out = dict(self._docs)
        for name, plugin in self._discover().items():
            out.setdefault(name, f"(plugin: {plugin.dist})")
        return out

    def __contains__(self, name: object) -> bool:
        """Whether `name` (as `get` would read it) is registered or an installed plugin."""
        if self._key is not None and isinstance(name, str):
            name = self._key(name)
        return name in self._entries or name in self._discover()

    def get(self, name: str) -> T:
        """The entry registered as `name`; a plugin is imported now; unknown: a `UserError`."""
        key = name if self._key is None else self._key(name)
        if key in self._entries:
            return self._entries[key]
        plugin = self._discover().get(key)
        if plugin is None:
            raise UserError(f"unknown {self.kind} {name!r}; available: "
                            f"{', '.join(self.available())}")
        return self._load(plugin)

    def _load(self, plugin: Plugin) -> T:
        where = f"{self.kind} {plugin.name!r} from distribution {plugin.dist!r} ({plugin.target})"
        obj = load_target(plugin.target, where)
        try:
            entry = self._check(obj) if self._check is not None else obj
        except (TypeError, ValueError) as exc:
            raise UserError(f"{where} is unusable: {exc}") from None
        self.add(plugin.name, entry)  # type: ignore[arg-type]
        return entry  # type: ignore[return-value]

    def _discover(self) -> dict[str, Plugin]:
        """Read the entry points of `group` once; nothing is imported."""
        if self._plugins is not None:
            return self._plugins
        found: dict[str, Plugin] = {}
        if self.group is not None:
            for entry in importlib.metadata.entry_points(group=self.group):
                if entry.name in self._entries:
                    continue  # a built-in keeps its name
                dist = getattr(getattr(entry, "dist", None), "name", None) or "unknown"
                found.setdefault(entry.name, Plugin(entry.name, entry.value, dist))
        self._plugins = found
        return found


def loose_name(name: str) -> str:
    """`name` as registered names are spelt: trimmed, lower case, ``-`` for ``_``."""
    return str(name).strip().lower().replace("_", "-")


def load_target(target: str, where: str) -> object:
    """Import ``module:attribute`` (dotted attributes too) for the plugin described by `where`;
    any failure of third-party code while importing it is one line naming the plugin."""
    module, _, attr = target.partition(":")
    try:
        obj: object = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # any import-time failure of third-party code is the plugin's
        lines = str(exc).strip().splitlines()
        raise UserError(f"{where} failed to import: {type(exc).__name__}"
                        f"{': ' + lines[0] if lines else ''}") from None
    return obj


def _first_line(entry: object) -> str:
    doc = (getattr(entry, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""
