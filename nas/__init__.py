"""Neural architecture search for PyTorch: spaces, searchers, one trainer, an SQLite journal.

Public API: `search`, `optimize`, `resume`, `Budget`, `Ledger`, `Trial`, `Result`,
`TrialStatus`, `Dataset`, `load_dataset`, `from_arrays`, `Storage`, `JournalView`, `UserError`,
`AutoClassifier`. Heavy modules load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "search": "nas.engine.api",
    "optimize": "nas.engine.api",
    "resume": "nas.engine.resuming",
    "SearchResult": "nas.engine.result",
    "Budget": "nas.budget",
    "Ledger": "nas.engine.ledger",
    "Trial": "nas.types",
    "Result": "nas.types",
    "TrialStatus": "nas.types",
    "Dataset": "nas.data",
    "load_dataset": "nas.data",
    "from_arrays": "nas.data",
    "Storage": "nas.storage",
    "TrainerOptions": "nas.trainer",
    "UserError": "nas.errors",
    "Callback": "nas.engine.callbacks",
    "JournalView": "nas.journal",
    "SearchSettings": "nas.journal",
    "AutoClassifier": "nas.estimator",
}
_RENAMED = {"load_dataset": "load"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
