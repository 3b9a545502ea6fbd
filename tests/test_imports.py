"""The import contract: which package may import which, and no import circle.

Read from the source (every import statement, those inside functions included; only imports
under ``if TYPE_CHECKING:`` are left out, as they never run), so a forbidden import fails here
whether or not a test happens to execute it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("nas", "searchers", "spaces")
#: The light layer every reader and searcher may use: typed data, budgets, errors, registries.
_ENGINE = ("nas.engine", "nas.cli", "nas.bench", "nas.defaults", "nas.estimator")
CONTRACT: dict[str, tuple[str, ...]] = {
    # Searchers decide and do nothing else: no torch, trainer, storage, engine or data.
    "searchers": ("torch", "spaces", "nas.trainer", "nas.objective", "nas.storage",
                  "nas.journal", "nas.records", "nas.executors", "nas.data", "nas.reporting",
                  *_ENGINE),
    # A space maps a configuration to a model; it knows nothing of search or its bookkeeping.
    "spaces": ("searchers", "nas.trainer", "nas.objective", "nas.storage", "nas.journal",
               "nas.records", "nas.executors", "nas.data", "nas.reporting", "nas.problems",
               "nas.testing", *_ENGINE),
    # The trainer trains: it never sees the search, its searcher or its journal.
    "nas.trainer": ("searchers", "nas.storage", "nas.journal", "nas.executors",
                    "nas.reporting", *_ENGINE),
    # The journal's model and storage are read by every view: no torch, no engine.
    "nas.journal": ("torch", "spaces", "searchers", "nas.trainer", "nas.reporting", *_ENGINE),
    "nas.records": ("torch", "spaces", "searchers", "nas.storage", "nas.trainer", *_ENGINE),
    "nas.storage": ("torch", "spaces", "searchers", "nas.trainer", "nas.reporting", *_ENGINE),
    "nas.types": ("torch", "spaces", "searchers", "nas.storage", *_ENGINE),
    # Baselines fit scikit-learn models on a Dataset: the engine uses them, never the reverse.
    "nas.baselines": ("spaces", "searchers", "nas.trainer", "nas.objective", "nas.storage",
                      "nas.journal", "nas.records", "nas.executors", "nas.reporting", *_ENGINE),
    # The conformance suite runs without torch, for plugin authors.
    "nas.testing": ("torch", "spaces", "nas.trainer", "nas.objective", "nas.engine",
                    "nas.reporting", "nas.cli"),
}
#: The loop never imports a view: only `search` and friends add the default progress display.
ENGINE_VIEWS = ("nas.reporting", "nas.cli")
ENGINE_MAY_SHOW = ("nas.engine.api", "nas.engine.resuming")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports (absolute names), except under ``if TYPE_CHECKING:``."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if full in MODULES else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return names


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations() -> list[str]:
    """Every import that breaks the contract, as ``module imports name``."""
    found = []
    for module, path in MODULES.items():
        imported = imports_of(path)
        for owner, forbidden in CONTRACT.items():
            if not _within(module, owner):
                continue
            found += [f"{module} imports {name}" for name in sorted(imported)
                      if any(_within(name, f) for f in forbidden)]
        if _within(module, "nas.engine") and module not in ENGINE_MAY_SHOW:
            found += [f"{module} imports {name}" for name in sorted(imported)
                      if any(_within(name, v) for v in ENGINE_VIEWS)]
    return found


def circles() -> list[list[str]]:
    """Groups of the project's modules that import each other (strongly connected)."""
    graph = {m: sorted(i for i in imports_of(p) if i in MODULES and i != m)
             for m, p in MODULES.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def strong(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            strong(v)
    return found


def test_the_modules_were_found() -> None:
    assert {"nas.engine.loop", "searchers.base", "spaces.families", "nas.journal"} <= set(MODULES)
    assert "torch" in imports_of(MODULES["nas.trainer"])  # the reader sees real imports


def test_no_package_imports_what_the_contract_forbids() -> None:
    assert violations() == []


def test_no_import_circle() -> None:
    assert circles() == []


@pytest.mark.parametrize(("module", "line", "expected"), [
    ("searchers.random", "import torch", "searchers.random imports torch"),
    ("spaces.mlp", "from nas.storage import Storage", "spaces.mlp imports nas.storage"),
    ("nas.engine.loop", "from nas.reporting.console import default_reporter",
     "nas.engine.loop imports nas.reporting.console"),
    ("nas.baselines", "from nas.engine import api", "nas.baselines imports nas.engine.api"),
])
def test_one_forbidden_import_is_caught(module, line, expected, monkeypatch, tmp_path) -> None:
    # The same file with one forbidden import added inside a function, where only a test
    # that called it would notice.
    source = MODULES[module].read_text(encoding="utf-8")
    planted = tmp_path / "planted.py"
    planted.write_text(f"{source}\n\ndef _planted() -> None:\n    {line}\n", encoding="utf-8")
    monkeypatch.setitem(MODULES, module, planted)
    assert expected in violations()
