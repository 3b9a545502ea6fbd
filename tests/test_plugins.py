"""Searchers from other distributions (entry points `nas.searchers`) and `check_searcher`."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from ConfigSpace import ConfigurationSpace, Float

import searchers
from nas.cli import main
from nas.errors import UserError
from nas.testing import check_searcher
from nas.types import Trial
from searchers import RandomSearch, registry

HELPERS = "tests.plugin_helpers"
Install = Callable[..., None]


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Install:
    """Install fake distributions (a .dist-info folder on sys.path each) with entry points.

    The real discovery reads them; the registry's state is restored afterwards.
    """
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_LOADED", dict(registry._LOADED))
    monkeypatch.setattr(registry, "_PLUGINS", None)
    monkeypatch.setattr(registry, "_IGNORED", [])
    monkeypatch.delitem(sys.modules, HELPERS, raising=False)  # so a test sees when it is imported
    monkeypatch.syspath_prepend(str(tmp_path))

    def add(dist: str, **entries: str) -> None:
        info = tmp_path / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = [f"{name} = {target}" for name, target in entries.items()]
        (info / "entry_points.txt").write_text("[nas.searchers]\n" + "\n".join(lines) + "\n")
        monkeypatch.setattr(registry, "_PLUGINS", None)  # as in a new process

    return add


def _space() -> ConfigurationSpace:
    space = ConfigurationSpace()
    space.add(Float("x", (0.0, 1.0)))
    return space


def test_a_plugin_is_listed_without_import_and_used_by_name(install: Install, capsys) -> None:
    install("nas-fake-plugins", **{"fake-good": f"{HELPERS}:Good"})
    assert "fake-good" in searchers.available()
    assert [(p.name, p.dist, p.error) for p in registry.plugins() if p.name == "fake-good"] == [
        ("fake-good", "nas-fake-plugins", None)]
    assert HELPERS not in sys.modules  # listed, not imported
    with pytest.raises(ValueError, match="from distribution 'nas-fake-plugins'"):
        registry.register("fake-good")(Careless)  # the name is the plugin's
    cls = searchers.get_class("fake-good")
    assert cls is sys.modules[HELPERS].Good and cls.name == "fake-good"
    trial = searchers.get("fake-good", _space(), seed=0).ask()
    assert isinstance(trial, Trial) and 0.0 <= trial.config["x"] <= 1.0
    assert main(["searchers"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("fake-good "))
    assert row.endswith("A minimal plugin searcher: random samples. (plugin: nas-fake-plugins)")


def test_import_searchers_does_not_look_for_plugins() -> None:
    code = ("import importlib.metadata as m; calls = []; real = m.entry_points\n"
            "m.entry_points = lambda **kw: calls.append(kw) or real(**kw)\n"
            "import searchers; searchers.get_class('tpe'); assert not calls, calls\n"
            "searchers.available(); assert calls == [{'group': 'nas.searchers'}], calls\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   cwd=Path(__file__).resolve().parents[1])


@pytest.mark.parametrize(("target", "why"), [
    ("tests.no_such_module_for_tests:Cls",
     "failed to import: ModuleNotFoundError: No module named 'tests.no_such_module_for_tests'"),
    (f"{HELPERS}:Missing", "failed to import: AttributeError: module"),
    (f"{HELPERS}:not_a_searcher", "is a function, not a subclass of searchers.Searcher"),
    (f"{HELPERS}:NotASearcher",
     "is the class NotASearcher, not a subclass of searchers.Searcher"),
    (f"{HELPERS}:Abstract", "does not implement ask"),
    (HELPERS, "its nas.searchers entry point must read 'module:Class', got 'tests.plugin_helpers'"),
])
def test_a_broken_plugin_is_a_one_line_error_naming_its_distribution(
        install: Install, capsys, target: str, why: str) -> None:
    install("nas-broken-plugin", **{"fake-broken": target})
    install("nas-fake-plugins", **{"fake-good": f"{HELPERS}:Good"})
    assert {"fake-broken", "fake-good"} <= set(searchers.available())
    for call in (lambda: searchers.get_class("fake-broken"),
                 lambda: searchers.get("fake-broken", _space())):
        with pytest.raises(UserError) as info:
            call()
        message = str(info.value)
        assert message.startswith("searcher 'fake-broken' from distribution 'nas-broken-plugin'")
        assert why in message and "\n" not in message
    # The listing goes on: the broken one says why, the others are listed as usual.
    assert main(["searchers"]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("fake-broken ") and why in line for line in out.splitlines())
    assert any(line.startswith("fake-good ") for line in out.splitlines())
    assert main(["search", "--data", "digits", "--searcher", "fake-broken", "--budget",
                 "1trials"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nas: error: searcher 'fake-broken'") and "\n" not in err


def test_a_plugin_named_like_a_builtin_is_ignored_with_a_warning(install: Install,
                                                                 capsys) -> None:
    install("nas-evil-plugin", random=f"{HELPERS}:Good")
    assert searchers.get_class("random") is RandomSearch  # the built-in keeps its name
    assert searchers.available().count("random") == 1
    [ignored] = registry.ignored_plugins()
    assert (ignored.name, ignored.dist) == ("random", "nas-evil-plugin")
    assert ignored.error == ("searcher 'random' from distribution 'nas-evil-plugin' is ignored: "
                             "'random' is a built-in searcher (rename its entry point)")
    assert main(["searchers"]) == 0
    out, err = capsys.readouterr()
    row = next(line for line in out.splitlines() if line.startswith("random "))
    assert "Samples configurations" in row and "(plugin:" not in row
    assert err == f"nas: warning: {ignored.error}\n"
    assert HELPERS not in sys.modules


def test_two_distributions_with_one_name_are_refused(install: Install) -> None:
    install("nas-plugin-a", **{"fake-twice": f"{HELPERS}:Good"})
    install("nas-plugin-b", **{"fake-twice": f"{HELPERS}:Good"})
    assert "fake-twice" in searchers.available()
    with pytest.raises(UserError, match=r"more than one distribution \(nas-plugin-a, "
                                        r"nas-plugin-b\); uninstall all but one"):
        searchers.get_class("fake-twice")


# -- check_searcher --------------------------------------------------------------------------------

class Careless(RandomSearch):
    """Ignores its seed: draws its sampler seeds from Python's global `random`."""

    name = "careless"

    def ask(self) -> Trial:
        self.space.seed(random.randrange(2**31 - 1))
        return super().ask()


def test_check_searcher_passes_a_conforming_searcher() -> None:
    check_searcher("random")
    check_searcher(RandomSearch)


def test_check_searcher_names_every_failing_check() -> None:
    state = random.getstate()
    try:
        with pytest.raises(AssertionError) as info:
            check_searcher(Careless)
    finally:
        random.setstate(state)
    message = str(info.value)
    assert message.startswith("careless fails ")
    failing = {line[2:].split(":")[0] for line in message.splitlines()[1:]}
    assert {"check_deterministic", "check_global_rng_untouched", "check_replay",
            "check_in_flight"} <= failing
    assert "check_valid_configs" not in failing and "check_tiny_space" not in failing
    assert "draw from self.rng instead" in message  # each check's own message is kept


def test_check_searcher_refuses_what_is_not_a_searcher() -> None:
    with pytest.raises(TypeError, match="Searcher subclass"):
        check_searcher(int)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="unknown searcher 'no-such-searcher'"):
        check_searcher("no-such-searcher")
