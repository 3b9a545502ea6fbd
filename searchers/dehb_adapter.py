"""DEHB (Awad, Mallik and Hutter 2021) as an external multi-fidelity baseline: `dehb`.

DEHB 0.1.2 pins ``numpy<2`` but runs with numpy 2, so it is not in an extra (pip would
downgrade numpy): ``pip install --no-deps "dehb==0.1.2" loguru`` (it also imports pandas and
dask.distributed). This module imports dehb, so the registry loads it only on first use.

DEHB is driven through its own ask/tell interface with one worker, in process. Left to itself
it would write history, incumbent, state and log files into its `output_path` (the working
directory by default) and replace the handlers of loguru's global logger; `_PrivateDEHB` turns
all of that off, so nothing is written and the user's loguru setup is left as it was.
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace
from ConfigSpace.exceptions import ForbiddenValueError
from dehb import DEHB

from nas.types import Result, Trial, plain
from searchers.base import Searcher
from searchers.registry import register
from searchers.schedules import hyperband_layout

__all__ = ["DEHBSearcher"]

#: What a failed trial is told as: worse than any loss, yet finite, because DEHB reads an
#: infinite fitness as "not evaluated yet" and, when a whole rung failed, has nothing to promote
#: and fails (IndexError) on its next ask.
FAILED_FITNESS = sys.float_info.max
#: Forbidden mutants drawn again before the next one is replaced by a valid sample of the space.
MAX_REJECTED = 20
#: DE's mutation and crossover strategies (`strategy` reads "<mutation>_<crossover>").
MUTATIONS = ("rand1", "rand2", "rand2dir", "best1", "best2", "currenttobest1", "randtobest1")
CROSSOVERS = ("bin", "exp")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """DEHB calls ConfigSpace's deprecated getters on every ask: hide those warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


class _Silent:
    """Stands in for DEHB's loguru logger: every logging call does nothing."""

    def _drop(self, *args: Any, **kwargs: Any) -> None:
        """Ignore one log record."""

    trace = debug = info = success = warning = error = critical = exception = log = _drop


class _PrivateDEHB(DEHB):  # type: ignore[misc]
    """DEHB that writes no file, configures no logging and asks no forbidden configuration."""

    rejected = 0  # forbidden mutants replaced while acquiring the last configuration
    fallback = False  # whether the last configuration is a sample in place of DEHB's pick

    def _setup_logger(self, resume: bool, kwargs: dict[str, Any]) -> None:
        # DEHB's own version calls loguru's global `logger.configure` (dropping the user's
        # handlers) and adds a log file; the DE subpopulations create `output_path`.
        self.output_path = Path(kwargs["output_path"])
        self.logger = _Silent()
        self.log_filename = ""

    def __setstate__(self, state: dict[str, Any]) -> None:
        # DEHB's __getstate__ drops the logger, so copies and unpickled ones get a new one.
        self.__dict__.update(state)
        self.logger = _Silent()

    def save(self) -> None:
        """Nothing: DEHB saves its history and state files at the end of `run` (never called)
        and on `tell`, which ``save_freq="end"`` already stops."""

    def _acquire_config(self, bracket: Any, fidelity: float) -> tuple[np.ndarray, int, int]:
        # DE's mutants can break forbidden clauses, and converting one to a Configuration
        # raises; so draw again (each draw takes the next parent), and past MAX_REJECTED put a
        # valid sample of DEHB's own seeded space in the repository slot of the last mutant.
        self.rejected, self.fallback = 0, False
        while True:
            vector, config_id, parent_id = super()._acquire_config(bracket, fidelity)
            try:
                self.vector_to_configspace(vector)
            except ForbiddenValueError:
                self.rejected += 1
                if self.rejected > MAX_REJECTED:
                    break
                continue
            return vector, config_id, parent_id
        vector = self.configspace_to_vector(self.cs.sample_configuration())
        self.config_repository.configs[config_id].config = vector
        self.fallback = True
        return vector, config_id, parent_id


@register("dehb")
class DEHBSearcher(Searcher):
    """DEHB: Hyperband's brackets with differential evolution per budget; not in an extra.

    Budgets are DEHB's fidelities, max_budget * eta^-k for k = 0, 1, ... down to min_budget.
    Every trial trains from scratch (`parent` is None): DEHB promotes a configuration by
    evaluating it again at the next fidelity. A failed trial is told as the worst fitness.
    """

    multi_fidelity = True
    model_based = True
    library = "dehb"

    def __init__(self, space: ConfigurationSpace, *, min_budget: float, max_budget: float,
                 eta: float = 3, seed: int | None = 0, mutation_factor: float = 0.5,
                 crossover_prob: float = 0.5, strategy: str = "rand1_bin") -> None:
        """`mutation_factor`, `crossover_prob` and `strategy` are DE's (DEHB's defaults)."""
        super().__init__(space, seed=seed)
        hyperband_layout(float(min_budget), float(max_budget), float(eta))  # validates them
        if not float(min_budget) < float(max_budget):
            raise ValueError(f"DEHB needs min_budget < max_budget, got {min_budget:g}, "
                             f"{max_budget:g}")
        if not 0 < mutation_factor < math.inf:
            raise ValueError(f"mutation_factor must be positive, got {mutation_factor!r}")
        if not 0 <= crossover_prob <= 1:
            raise ValueError(f"crossover_prob must be in [0, 1], got {crossover_prob!r}")
        mutation, _, crossover = str(strategy).partition("_")
        if mutation not in MUTATIONS or crossover not in CROSSOVERS:
            raise ValueError(f"strategy must read '<{'|'.join(MUTATIONS)}>_<bin|exp>', got "
                             f"{strategy!r}")
        self.min_budget = float(min_budget)
        self.max_budget = float(max_budget)
        self.eta = float(eta)
        self.mutation_factor = float(mutation_factor)
        self.crossover_prob = float(crossover_prob)
        self.strategy = str(strategy)
        #: Drawn from the searcher's own generator: same seed, same DEHB.
        self.dehb_seed = int(self.rng.integers(2**32 - 1))
        # DEHB counts its rungs as int(log(min / max) / log(eta)), which drops one when the
        # ratio is an exact power of eta that the log rounds short (1 to 243 with eta 3): a
        # min_fidelity a hair below min_budget keeps it, as our `hyperband_layout` does. The
        # DE subpopulations create `output_path`: a private folder, gone once DEHB is built.
        with tempfile.TemporaryDirectory(prefix="nas-dehb-") as private, _quiet():
            self.dehb = _PrivateDEHB(
                cs=copy.deepcopy(self.space), min_fidelity=self.min_budget * (1 - 1e-9),
                max_fidelity=self.max_budget, eta=self.eta, seed=self.dehb_seed, n_workers=1,
                mutation_factor=self.mutation_factor, crossover_prob=self.crossover_prob,
                strategy=self.strategy, save_freq="end", output_path=private)
        #: DEHB's fidelities, lowest first: the budgets its trials get.
        self.budgets: tuple[float, ...] = tuple(self._budget(f) for f in self.dehb.fidelities)
        self._running: dict[int, dict[str, Any]] = {}

    def _budget(self, fidelity: float) -> float:
        """DEHB's fidelity as a trial budget: float noise rounded off, within the budgets."""
        return min(max(float(f"{float(fidelity):.12g}"), self.min_budget), self.max_budget)

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {"min_budget": self.min_budget, "max_budget": self.max_budget, "eta": self.eta,
                "mutation_factor": self.mutation_factor, "crossover_prob": self.crossover_prob,
                "strategy": self.strategy}

    def ask(self) -> Trial:
        """DEHB's next job: a configuration at one of its fidelities (it never waits)."""
        with _quiet():
            job = self.dehb.ask()
        fidelity = float(job["fidelity"])
        info: dict[str, Any] = {
            "origin": "fallback" if self.dehb.fallback else "dehb",
            "dehb_config": int(job["config_id"]), "bracket": int(job["bracket_id"]),
            "rung": self.dehb.fidelities.tolist().index(fidelity)}
        if self.dehb.rejected:
            info["rejected"] = self.dehb.rejected
        trial = self._new_trial(plain(dict(job["config"])), budget=self._budget(fidelity),
                                **info)
        self._running[trial.id] = job
        return trial

    def tell(self, trial: Trial, result: Result) -> None:
        """The loss as DEHB's fitness (FAILED_FITNESS when unusable), its seconds as cost."""
        super().tell(trial, result)
        job = self._running.pop(trial.id, None)
        if job is None:
            return  # not asked here, or told twice
        fitness = float(result.loss) if result.ok else FAILED_FITNESS
        with _quiet():
            self.dehb.tell(job, {"fitness": fitness, "cost": float(result.seconds)})
            # What DEHB's own `run` loop does after each result: forget finished brackets,
            # which every later ask would otherwise scan.
            self.dehb._clean_inactive_brackets()
