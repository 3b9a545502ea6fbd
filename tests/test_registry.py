"""nas.registry: registration, lookup, descriptions and entry-point plugins."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nas.errors import UserError
from nas.registry import Registry, loose_name

GROUP = "nas.test-registry"


def _plain() -> str:
    """A plain entry.

    More text that describe() leaves out.
    """
    return "plain"


def _other() -> str:
    return "other"


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Fake entry points of `GROUP`: ``plugins(dist, name=("module", source), ...)``.

    Each module is written to a folder on sys.path; discovery goes through
    ``importlib.metadata.entry_points(group=...)``, as the registry calls it.
    """
    points: list[SimpleNamespace] = []
    modules: list[str] = []

    real = importlib.metadata.entry_points  # other groups (torch's own plugins) stay real

    def entry_points(**kw: Any) -> Any:
        if kw.get("group") != GROUP:
            return real(**kw)
        return [p for p in points if p.group == GROUP]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    monkeypatch.syspath_prepend(str(tmp_path))

    def add(dist: str, **entries: tuple[str, str]) -> None:
        for name, (target, source) in entries.items():
            module = target.partition(":")[0]
            (tmp_path / f"{module}.py").write_text(source)
            modules.append(module)
            points.append(SimpleNamespace(name=name, value=target, group=GROUP,
                                          dist=SimpleNamespace(name=dist)))

    yield add
    for module in modules:
        sys.modules.pop(module, None)


def test_register_get_and_describe() -> None:
    reg: Registry[Any] = Registry("thing")
    assert reg.register("plain")(_plain) is _plain  # the decorator hands the object back
    reg.add("other", _other, doc="given words")
    assert reg.get("plain") is _plain and reg.get("other") is _other
    assert reg.available() == ["other", "plain"]
    assert reg.describe() == {"plain": "A plain entry.", "other": "given words"}
    assert "plain" in reg and "nope" not in reg


def test_registration_order_and_loose_names() -> None:
    reg: Registry[Any] = Registry("thing", key=loose_name, sort=False)
    reg.add("zeta", _plain)
    reg.add("alpha-beta", _other)
    assert reg.available() == ["zeta", "alpha-beta"]
    assert list(reg.describe()) == ["zeta", "alpha-beta"]
    assert reg.get(" Alpha_Beta ") is _other and "ALPHA_BETA" in reg
    with pytest.raises(UserError, match=r"^unknown thing 'gamma'; available: zeta, alpha-beta$"):
        reg.get("gamma")


def test_a_name_is_taken_once() -> None:
    reg: Registry[Any] = Registry("thing")
    reg.add("plain", _plain)
    reg.add("plain", _plain)  # the same object again (a module imported twice) is no clash
    with pytest.raises(ValueError, match="thing 'plain' is already registered"):
        reg.register("plain")(_other)
    assert reg.get("plain") is _plain


def test_an_unknown_name_is_a_one_line_user_error_listing_the_names() -> None:
    reg: Registry[Any] = Registry("widget")
    reg.add("b", _plain)
    reg.add("a", _other)
    with pytest.raises(UserError) as info:
        reg.get("c")
    assert str(info.value) == "unknown widget 'c'; available: a, b"


def test_a_plugin_is_listed_without_import_and_loaded_on_get(plugins: Any) -> None:
    plugins("fake-dist", lazy=("regplug_lazy:Thing.make", "class Thing:\n"
                                                          "    @staticmethod\n"
                                                          "    def make():\n"
                                                          "        return 42\n"))
    reg: Registry[Any] = Registry("thing", group=GROUP)
    reg.add("plain", _plain)
    assert reg.available() == ["lazy", "plain"]
    assert reg.describe() == {"plain": "A plain entry.", "lazy": "(plugin: fake-dist)"}
    assert "lazy" in reg
    assert "regplug_lazy" not in sys.modules  # listed, not imported
    make = reg.get("lazy")
    assert "regplug_lazy" in sys.modules and make() == 42
    assert reg.get("lazy") is make  # imported once


def test_a_plugin_does_not_take_a_built_in_name(plugins: Any) -> None:
    plugins("fake-dist", plain=("regplug_clash:VALUE", "VALUE = 1\n"))
    reg: Registry[Any] = Registry("thing", group=GROUP)
    reg.add("plain", _plain)
    assert reg.get("plain") is _plain and reg.available() == ["plain"]
    assert "regplug_clash" not in sys.modules


def test_the_check_turns_what_a_plugin_loads_into_an_entry(plugins: Any) -> None:
    plugins("fake-dist", good=("regplug_checked:VALUE", "VALUE = 3\n"),
            bad=("regplug_unchecked:VALUE", "VALUE = 'three'\n"))

    def check(obj: object) -> int:
        if not isinstance(obj, int):
            raise TypeError(f"expected an int, got {type(obj).__name__}")
        return obj * 2

    reg: Registry[int] = Registry("number", group=GROUP, check=check)
    assert reg.get("good") == 6
    with pytest.raises(UserError) as info:
        reg.get("bad")
    assert str(info.value) == ("number 'bad' from distribution 'fake-dist' "
                               "(regplug_unchecked:VALUE) is unusable: expected an int, got str")


@pytest.mark.parametrize(("target", "source", "error"), [
    ("regplug_raises:VALUE", "raise RuntimeError('no GPU here\\nsecond line')\n",
     "RuntimeError: no GPU here"),
    ("regplug_missing:NOPE", "VALUE = 1\n", "AttributeError: module 'regplug_missing' has no"),
    ("regplug_syntax:VALUE", "VALUE = (\n", "SyntaxError: "),
])
def test_a_broken_plugin_is_a_one_line_user_error(plugins: Any, target: str, source: str,
                                                  error: str) -> None:
    plugins("broken-dist", broken=(target, source))
    reg: Registry[Any] = Registry("thing", group=GROUP)
    assert reg.available() == ["broken"]  # listing it imports nothing, so nothing fails yet
    with pytest.raises(UserError) as info:
        reg.get("broken")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"thing 'broken' from distribution 'broken-dist' ({target}) "
                              f"failed to import: {error}")
