"""TensorBoard logging of a search: each trial's learning curve, and the search's progress.

Needs the optional ``tensorboard`` package (``pip install 'nas-engine[tensorboard]'``).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.engine.callbacks import Callback
from nas.engine.ledger import Ledger
from nas.errors import UserError
from nas.journal import telling_order
from nas.reporting.console import format_config
from nas.types import Result, Trial

if TYPE_CHECKING:
    from nas.engine.result import SearchResult
    from nas.journal import TrialRecord

INSTALL_HINT = "pip install 'nas-engine[tensorboard]'"
#: Curve entries that are the x axis or bookkeeping, not a scalar to plot.
_NOT_SCALARS = frozenset({"epoch", "seconds"})


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package is importable (without importing it)."""
    return importlib.util.find_spec("tensorboard") is not None


class TensorBoardLogger(Callback):
    """Writes each finished trial's curve to ``<log_dir>/trial-NNNN`` and the search's losses
    in tell order to ``<log_dir>/search``; view them with ``tensorboard --logdir <log_dir>``.
    """

    def __init__(self, log_dir: str | Path) -> None:
        if not tensorboard_available():
            raise UserError(f"--tensorboard needs the tensorboard package: {INSTALL_HINT}")
        self.log_dir = Path(log_dir)
        # The folder is made when the search starts; whatever stands in its way is refused now.
        existing = next(p for p in (self.log_dir, *self.log_dir.parents) if p.exists())
        if not existing.is_dir():
            raise UserError(f"--tensorboard {self.log_dir}: {existing} is a file, not a folder")
        if not os.access(existing, os.W_OK):
            raise UserError(f"--tensorboard {self.log_dir}: {existing} cannot be written")
        self._search: Any = None
        self._told = 0
        self._best = math.inf

    def on_search_start(self, path: Path, settings: Mapping[str, Any], ledger: Ledger) -> None:
        """Go on counting after the trials a resumed journal already holds."""
        from nas.journal import JournalView

        self._told, self._best = 0, math.inf
        if Path(path).is_file():
            for record in telling_order(JournalView.load(path).records):
                if record.tell_seq is not None:
                    self._told += 1
                    if record.result is not None and record.result.ok:
                        self._best = min(self._best, record.result.loss)

    def on_trial_end(self, trial: Trial, result: Result, best: TrialRecord | None,
                     ledger: Ledger) -> None:
        """Write the trial's curve (one run per trial) and its loss under ``search``."""
        step = self._told
        self._told += 1
        if result.curve:
            writer = self._writer(self.log_dir / f"trial-{trial.id:04d}")
            try:
                writer.add_text("config", format_config(trial.config), 0)
                for i, point in enumerate(result.curve):
                    epoch = round(float(point.get("epoch", i + 1)))
                    for key, value in point.items():
                        if key in _NOT_SCALARS or not _finite(value):
                            continue
                        writer.add_scalar(key, float(value), epoch)
            finally:
                writer.close()  # the trial is over: its run is complete
        if self._search is None:
            self._search = self._writer(self.log_dir / "search")
        if result.ok:
            self._best = min(self._best, result.loss)
            self._search.add_scalar("loss", result.loss, step)
        if math.isfinite(self._best):
            self._search.add_scalar("best_loss", self._best, step)
        self._search.add_scalar("spent", ledger.spent, step)
        self._search.flush()

    def on_search_end(self, result: SearchResult | None) -> None:
        """Close the search's writer."""
        if self._search is not None:
            self._search.close()
            self._search = None

    @staticmethod
    def _writer(folder: Path) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(folder))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)
