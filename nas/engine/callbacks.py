"""Hooks a search calls as it proceeds; the progress bar, the per-trial lines and TensorBoard
are callbacks, so the loop never imports a view."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.engine.ledger import Ledger
from nas.types import Result, Trial

if TYPE_CHECKING:
    from nas.engine.costs import Replan
    from nas.engine.result import SearchResult
    from nas.journal import TrialRecord


class Callback:
    """Hooks the loop calls as a search proceeds; all do nothing by default."""

    def on_search_start(self, path: Path, settings: Mapping[str, Any], ledger: Ledger) -> None:
        """The journal exists and the first trial is about to be asked."""

    def on_trial_start(self, trial: Trial) -> None:
        """A trial is about to run."""

    def on_epoch(self, trial: Trial, point: Mapping[str, float]) -> None:
        """A trial finished an epoch (`point` is one entry of its learning curve)."""

    def on_trial_end(self, trial: Trial, result: Result, best: TrialRecord | None,
                     ledger: Ledger) -> None:
        """A trial's result is journaled and charged."""

    def on_replan(self, replan: Replan) -> None:
        """The plan was revised while the search ran (`nas.engine.costs`)."""

    def on_search_end(self, result: SearchResult | None) -> None:
        """The search finished (`result`) or was interrupted (None)."""
