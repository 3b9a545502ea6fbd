"""SMAC3's multi-fidelity facade as an external baseline: `smac-hyperband` (extra `compare`).

``pip install "smac>=2.4"`` (SMAC 2.4 runs with numpy 2; its random forest is scikit-learn's,
pyrfr is not needed). This module imports smac, so the registry loads it only on first use.

SMAC's `MultiFidelityFacade` is driven through its own ask/tell interface, in process: its
Hyperband intensifier picks each trial's configuration and budget, its random forest (fitted on
the highest budget with enough results) proposes new configurations after a random initial
design. Left to itself SMAC would look for an earlier run to continue in ``smac3_output/`` (and
ask on stdin when it differs), save its scenario, run history and intensifier there on every
tell, and replace the root logger's handlers; `_PrivateSMBO` reads and writes no file, the
facade is built with ``logging_level=False`` and SMAC's log records below ERROR are dropped.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ConfigSpace import Configuration, ConfigurationSpace
from smac import MultiFidelityFacade, Scenario
from smac.acquisition.maximizer.local_and_random_search import LocalAndSortedRandomSearch
from smac.acquisition.maximizer.local_search import LocalSearch
from smac.intensifier.hyperband import Hyperband
from smac.main.exceptions import ConfigurationSpaceExhaustedException
from smac.main.smbo import SMBO
from smac.runhistory.dataclasses import TrialInfo, TrialValue
from smac.runhistory.enumerations import StatusType

from nas.types import Result, Trial, plain
from searchers.base import Searcher
from searchers.registry import register
from searchers.schedules import hyperband_layout

__all__ = ["SMACHyperband"]

#: SMAC's trial limit: the facade needs one, and our ledger stops the search long before. SMAC
#: caps its random initial design (10 configurations a hyperparameter) at a quarter of it.
N_TRIALS = 2**31 - 1


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """SMAC's log records below ERROR and its NumPy RuntimeWarnings off for one call (it logs
    at INFO as it goes).

    The "smac" logger's level is put back afterwards, so the user's own logging setup (and any
    SMAC they run themselves) is left as it was.
    """
    logger = logging.getLogger("smac")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        # Its forest's imputation of inactive conditional values averages empty slices on some
        # long runs (mixed-20d, trial ~200): NumPy's RuntimeWarnings, one line each, no error.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            yield
    finally:
        logger.setLevel(level)


class _PrivateSMBO(SMBO):
    """SMAC's optimizer loop without its files: no earlier run is loaded, nothing is saved."""

    def _initialize_state(self) -> None:
        # SMAC's own continues a run found in `output_directory` (asking on stdin when the
        # scenario differs) and then saves the scenario and an empty run history there.
        pass

    def save(self) -> None:
        """Nothing: SMAC saves its stats, run history and intensifier on every tell."""


class _OrderedLocalSearch(LocalSearch):
    """SMAC's local search, starting from the same points in an order that every process shares.

    SMAC drops repeated start points through a set, so their order follows the configurations'
    string hashes, which Python salts anew in each process (PYTHONHASHSEED): a journal replayed
    by a resume in another process would get other asks from the same seed and tells.
    """

    def _get_init_points_from_previous_configs(
            self, previous_configs: list[Configuration], n_points: int,
            additional_start_points: list[tuple[float, Configuration]] | None,
    ) -> list[Configuration]:
        points = super()._get_init_points_from_previous_configs(
            previous_configs, n_points, additional_start_points)
        return sorted(points, key=str)


class _PrivateFacade(MultiFidelityFacade):
    """The multi-fidelity facade, with SMAC's components as it makes them, over `_PrivateSMBO`
    and with `_OrderedLocalSearch`."""

    @staticmethod
    def get_acquisition_maximizer(scenario: Scenario) -> LocalAndSortedRandomSearch:
        """SMAC's own, its local search made `_OrderedLocalSearch` (a method differs, no state)."""
        maximizer = MultiFidelityFacade.get_acquisition_maximizer(scenario)
        maximizer._local_search.__class__ = _OrderedLocalSearch
        return maximizer

    def _get_optimizer(self) -> SMBO:
        return _PrivateSMBO(scenario=self._scenario, runner=self._runner,
                            runhistory=self._runhistory, intensifier=self._intensifier,
                            overwrite=True)


@register("smac-hyperband")
class SMACHyperband(Searcher):
    """SMAC3's MultiFidelityFacade: Hyperband brackets, random-forest BO proposals; `compare`.

    Budgets are SMAC's, max_budget * eta^-k down to min_budget. Every trial trains from scratch
    (`parent` is None): SMAC promotes a configuration by evaluating it again at the next budget.
    A failed trial is told as CRASHED with a cost above every loss told so far (kept so).
    """

    multi_fidelity = True
    model_based = True
    learns_imports = True
    #: Every 8th new configuration SMAC refits its forest (1.7 s on one core: scikit-learn's
    #: builder sets aside room for SMAC's 2**20 leaves a tree) and searches EI (about 1 s).
    costly_asks = True
    library = "smac"

    def __init__(self, space: ConfigurationSpace, *, min_budget: float, max_budget: float,
                 eta: float = 3, seed: int | None = 0) -> None:
        """SMAC's own defaults for everything else (initial design, forest, EI, intensifier)."""
        super().__init__(space, seed=seed)
        hyperband_layout(float(min_budget), float(max_budget), float(eta))  # validates them
        if not float(min_budget) < float(max_budget):
            raise ValueError(f"SMAC needs min_budget < max_budget, got {min_budget:g}, "
                             f"{max_budget:g}")
        self.min_budget = float(min_budget)
        self.max_budget = float(max_budget)
        self.eta = float(eta)
        #: Drawn from the searcher's own generator: same seed, same SMAC.
        self.smac_seed = int(self.rng.integers(2**31 - 1))
        # SMAC counts its rungs as floor(log(max / min) / log(eta)), which drops one when the
        # ratio is an exact power of eta that the log rounds short (1 to 243 with eta 3): a
        # min_budget a hair below ours keeps it, as our `hyperband_layout` does. Its output
        # folder is never written (`_PrivateSMBO`); a private one, gone once SMAC is built.
        with tempfile.TemporaryDirectory(prefix="nas-smac-") as private, _quiet():
            scenario = Scenario(
                copy.deepcopy(self.space), name="nas-smac", output_directory=Path(private),
                n_trials=N_TRIALS, min_budget=self.min_budget * (1 - 1e-9),
                max_budget=self.max_budget, seed=self.smac_seed)
            eta_ = int(self.eta) if self.eta.is_integer() else self.eta
            self.smac = _PrivateFacade(
                scenario, intensifier=MultiFidelityFacade.get_intensifier(scenario, eta=eta_),
                logging_level=False, overwrite=True)
        # SMAC's budgets, as its intensifier computes them once asked first.
        low, high = scenario.min_budget, scenario.max_budget
        s_max = Hyperband._get_max_iterations(eta_, high, low)
        ladder, _ = Hyperband._compute_configs_and_budgets_for_stages(eta_, high, s_max)
        #: SMAC's budgets, lowest first: the budgets its trials get.
        self.budgets: tuple[float, ...] = tuple(self._budget(b) for b in ladder)
        self._running: dict[int, TrialInfo] = {}
        self._done = False  # SMAC has nothing more to ask
        self._worst = -math.inf  # the highest loss told so far
        self._failed: list[tuple[TrialInfo, float]] = []  # failed trials and their seconds
        self._failed_at = self._failed_cost()

    def _budget(self, budget: float) -> float:
        """SMAC's budget as a trial budget: float noise rounded off, within the budgets."""
        return min(max(float(f"{float(budget):.12g}"), self.min_budget), self.max_budget)

    def _failed_cost(self) -> float:
        """What a failed trial costs SMAC: the worst loss told so far plus its size (at least 1).

        Finite, because SMAC's random forest refuses an infinite cost (its own crash cost) and
        a huge one overflows its log expected improvement; above every loss, so that successive
        halving never promotes a failure over a trial that ran.
        """
        worst = 0.0 if self._worst == -math.inf else self._worst
        return min(worst + max(abs(worst), 1.0), sys.float_info.max)

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {"min_budget": self.min_budget, "max_budget": self.max_budget, "eta": self.eta}

    def ask(self) -> Trial | None:
        """SMAC's next trial: a configuration at one of its budgets; None once SMAC has ended."""
        if self._done:
            return None
        try:
            with _quiet():
                info = self.smac.ask()
        except (StopIteration, ConfigurationSpaceExhaustedException):
            # SMAC found no new configuration (a small space used up): its intensifier ends.
            self._done = True
            return None
        budget = self._budget(float(info.budget))
        trial = self._new_trial(
            plain(dict(info.config)), budget=budget, origin="smac",
            smac_origin=str(info.config.origin), smac_config=int(info.config.config_id),
            rung=self.budgets.index(budget))
        self._running[trial.id] = info
        return trial

    def tell(self, trial: Trial, result: Result) -> None:
        """The loss as SMAC's cost (a failure CRASHED at `_failed_cost`), its seconds as time."""
        super().tell(trial, result)
        info = self._running.pop(trial.id, None)
        if info is None:
            return  # not asked here, or told twice
        seconds = float(result.seconds) if math.isfinite(result.seconds) else 0.0
        with _quiet():
            if result.ok and math.isfinite(result.loss):
                loss = float(result.loss)
                self.smac.tell(info, TrialValue(cost=loss, time=seconds), save=False)
                self._worst = max(self._worst, loss)
                self._recost_failures()
            else:
                self._failed.append((info, seconds))
                self.smac.tell(info, TrialValue(cost=self._failed_at, time=seconds,
                                                status=StatusType.CRASHED), save=False)

    def observe(self, config: Mapping[str, Any], result: Result, *,
                budget: float | None = None) -> None:
        """An imported result joins SMAC's run history at the highest of its budgets it
        reached (its forest learns from it; its intensifier never runs it); failures do not."""
        super().observe(config, result, budget=budget)
        level = self.max_budget if budget is None else float(budget)
        rungs = [b for b in self.budgets if b <= level * (1 + 1e-9)]
        if not rungs or not result.ok or not math.isfinite(result.loss):
            return
        values = self.imported[-1][0]
        with _quiet():
            self.smac.runhistory.add(config=Configuration(self.space, values=values),
                                     cost=float(result.loss), time=0.0,
                                     status=StatusType.SUCCESS, budget=rungs[-1], seed=0)
        self._worst = max(self._worst, float(result.loss))

    def _recost_failures(self) -> None:
        """Raise the failed trials' cost in SMAC's run history above a new worst loss."""
        cost = self._failed_cost()
        if cost == self._failed_at:
            return
        self._failed_at = cost
        history = self.smac.runhistory
        for info, seconds in self._failed:
            # What SMAC's own tell records, over the earlier entry; the intensifier compares
            # configurations and the forest learns from these costs when they next need them.
            history.add(config=info.config, cost=cost, time=seconds, status=StatusType.CRASHED,
                        instance=info.instance, seed=info.seed, budget=info.budget,
                        force_update=True)
