"""Optuna's TPE sampler, alone and with its Hyperband pruner, as external baselines.

`optuna-tpe` and `optuna-tpe-hyperband` run the most used HPO library through the same problems,
runner and journal as our own searchers (``nas bench --searchers tpe,optuna-tpe``). Install
with ``pip install 'nas-engine[compare]'``; this module imports optuna, so the registry loads it
only on first use.

Each searcher drives a private in-memory Optuna study with the ask-and-tell interface. The
ConfigSpace space is walked define-by-run, parents before children, and a hyperparameter is
suggested only while its conditions hold, so Optuna sees exactly the active parameters
(``group=True`` lets multivariate TPE model each set of co-occurring parameters). Optuna knows
no forbidden clauses: a forbidden draw is told to Optuna as PRUNED (ranked with the worst trials)
and drawn again. Optuna's TPE is deterministic given its seed and the sequence of asks and tells,
and that seed comes from the searcher's own generator, so a journal replay rebuilds it exactly.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from ConfigSpace import Configuration, ConfigurationSpace, Constant, OrdinalHyperparameter
from ConfigSpace.exceptions import ForbiddenValueError
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    FloatHyperparameter,
    Hyperparameter,
    IntegerHyperparameter,
)
from ConfigSpace.types import NotSet
from optuna.trial import TrialState

from nas.types import Result, Trial, plain
from searchers.base import Searcher
from searchers.registry import register
from searchers.schedules import hyperband_layout

__all__ = ["OptunaTPE", "OptunaTPEHyperband"]

#: Fixed: Optuna's Hyperband pruner hashes the study name with the trial number to pick a
#: trial's bracket, and a random (uuid) name would make the brackets differ on every run.
_STUDY_NAME = "nas-optuna"
#: Forbidden draws in a row before an ask falls back to the space's own (valid) sampler.
MAX_REJECTED = 20

_PLAIN = (str, int, float, bool)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Optuna's log records below ERROR and its ExperimentalWarnings off for one call.

    The "optuna" logger's level is put back afterwards, so the user's own Optuna use (and
    `optuna.logging.set_verbosity`) is left as it was.
    """
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        logger.setLevel(level)


class _Chosen(dict):  # type: ignore[type-arg]
    """The values chosen so far; an inactive (not yet chosen) parent reads as ConfigSpace's
    NotSet, which no condition is satisfied by."""

    def __missing__(self, key: str) -> Any:
        return NotSet


def _by_value(choices: tuple[Any, ...]) -> bool:
    """True when Optuna can take the categorical's choices as they are (plain, finite, distinct
    even under ``==``, where True == 1 == 1.0); otherwise they are suggested by index."""
    return (all(type(c) in _PLAIN for c in choices)
            and all(math.isfinite(c) for c in choices if type(c) is float)
            and len(set(choices)) == len(choices))


class _Codec:
    """The space in define-by-run form: suggest a configuration on an Optuna trial, and turn a
    configuration into Optuna's parameters (to enqueue a fallback configuration)."""

    def __init__(self, space: ConfigurationSpace) -> None:
        self.space = space
        # ConfigSpace keeps hyperparameters in topological order: parents before children.
        self.hps: list[Hyperparameter] = list(space.values())
        self.conditions = {hp.name: list(space.parent_conditions_of[hp.name]) for hp in self.hps}
        self.by_value: dict[str, bool] = {}
        for hp in self.hps:
            if isinstance(hp, CategoricalHyperparameter):
                self.by_value[hp.name] = _by_value(tuple(hp.choices))
            elif not isinstance(hp, (Constant, FloatHyperparameter, IntegerHyperparameter,
                                     OrdinalHyperparameter)):
                raise ValueError(f"hyperparameter {hp.name!r} of type {type(hp).__name__} is "
                                 "not supported by the Optuna adapters")

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """A configuration chosen by `trial`: active hyperparameters only, plain values."""
        values = _Chosen()
        for hp in self.hps:
            if all(cond.satisfied_by_value(values) for cond in self.conditions[hp.name]):
                values[hp.name] = self._suggest_one(trial, hp)
        return dict(values)

    def _suggest_one(self, trial: optuna.Trial, hp: Hyperparameter) -> Any:
        name = hp.name
        if isinstance(hp, Constant):
            return hp.value  # nothing to choose: Optuna never sees it
        if isinstance(hp, FloatHyperparameter):
            return float(trial.suggest_float(name, float(hp.lower), float(hp.upper),
                                              log=bool(hp.log)))
        if isinstance(hp, IntegerHyperparameter):
            return int(trial.suggest_int(name, int(hp.lower), int(hp.upper), log=bool(hp.log)))
        if isinstance(hp, OrdinalHyperparameter):
            # Ordered: an integer index keeps neighbours close in TPE's kernels.
            return hp.sequence[trial.suggest_int(name, 0, len(hp.sequence) - 1)]
        assert isinstance(hp, CategoricalHyperparameter)
        choices = tuple(hp.choices)
        if self.by_value[name]:
            return trial.suggest_categorical(name, choices)
        return choices[trial.suggest_categorical(name, tuple(range(len(choices))))]

    def to_optuna(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The Optuna parameters that make `suggest` give `config` back."""
        params: dict[str, Any] = {}
        for name, value in config.items():
            hp = self.space[name]
            if isinstance(hp, Constant):
                continue
            if isinstance(hp, OrdinalHyperparameter):
                params[name] = _index(hp.sequence, value)
            elif isinstance(hp, CategoricalHyperparameter) and not self.by_value[name]:
                params[name] = _index(hp.choices, value)
            else:
                params[name] = value
        return params


def _index(choices: Any, value: Any) -> int:
    """Where the plain `value` sits among `choices`, comparing types too (True is not 1)."""
    return next(i for i, c in enumerate(map(plain, choices))
                if type(c) is type(value) and c == value)


class _OptunaSearcher(Searcher):
    """What the adapters share: the study, its sampler, and asking a valid configuration."""

    model_based = True
    library = "optuna"
    learns_imports = True

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0,
                 n_startup_trials: int = 10, multivariate: bool = True, group: bool = True,
                 constant_liar: bool = True) -> None:
        super().__init__(space, seed=seed)
        if isinstance(n_startup_trials, bool) or int(n_startup_trials) != n_startup_trials \
                or n_startup_trials < 0:
            raise ValueError(f"n_startup_trials must be a whole number >= 0, got "
                             f"{n_startup_trials!r}")
        if group and not multivariate:
            raise ValueError("group=True needs multivariate=True")
        self.n_startup_trials = int(n_startup_trials)
        self.multivariate = bool(multivariate)
        self.group = bool(group)
        self.constant_liar = bool(constant_liar)
        self.codec = _Codec(self.space)
        # Drawn from the searcher's own generator: same seed, same sampler.
        self.sampler_seed = int(self.rng.integers(2**31 - 1))
        with _quiet():
            self.study = optuna.create_study(study_name=_STUDY_NAME,
                                             directions=self._directions(),
                                             sampler=self._make_sampler(),
                                             pruner=self._make_pruner())

    def _directions(self) -> list[str]:
        """Every objective is minimised: one, unless a subclass searches several."""
        return ["minimize"]

    def _make_sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(
            seed=self.sampler_seed, n_startup_trials=self.n_startup_trials,
            multivariate=self.multivariate, group=self.group, constant_liar=self.constant_liar)

    def _make_pruner(self) -> optuna.pruners.BasePruner:
        return optuna.pruners.NopPruner()

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {"n_startup_trials": self.n_startup_trials, "multivariate": self.multivariate,
                "group": self.group, "constant_liar": self.constant_liar}

    def _ask_optuna(self) -> tuple[optuna.Trial, dict[str, Any], dict[str, Any]]:
        """A new running Optuna trial, its (valid) configuration and the trial's info.

        A forbidden draw is told to Optuna as PRUNED (what an Optuna user's objective does for
        an invalid combination: ``raise optuna.TrialPruned()``), so TPE ranks it among the worst
        trials and draws there less; told FAILED it would be ignored and, unseen by the model of
        bad trials, drawn ever more often. After MAX_REJECTED forbidden draws in a row, a valid
        configuration from the space's sampler is enqueued and the Optuna trial takes it.
        """
        with _quiet():
            for rejected in range(MAX_REJECTED):
                trial = self.study.ask()
                config = self.codec.suggest(trial)
                if self._allowed(config):
                    info: dict[str, Any] = {"origin": "optuna", "optuna_trial": trial.number}
                    if rejected:
                        info["rejected"] = rejected
                    return trial, config, info
                self._reject(trial)
            config = plain(dict(self.space.sample_configuration()))
            self.study.enqueue_trial(self.codec.to_optuna(config))
            trial = self.study.ask()
            self.codec.suggest(trial)  # records the enqueued parameters on the trial
            return trial, config, {"origin": "fallback", "rejected": MAX_REJECTED,
                                   "optuna_trial": trial.number}

    def observe(self, config: Mapping[str, Any], result: Result, *,
                budget: float | None = None) -> None:
        """A full-budget imported result becomes a finished trial of the study (as Optuna's
        ``enqueue_trial`` then ``tell``); other budgets and failures teach its TPE nothing."""
        super().observe(config, result, budget=budget)
        values = result.objective_values() if self.multi_objective else \
            (float(result.loss) if result.ok else None)
        if budget is not None or values is None:
            return
        config = self.imported[-1][0]
        with _quiet():
            self.study.enqueue_trial(self.codec.to_optuna(config))
            trial = self.study.ask()
            self.codec.suggest(trial)
            self.study.tell(trial, list(values) if isinstance(values, tuple) else values)

    def _reject(self, trial: optuna.Trial) -> None:
        """Tell Optuna a forbidden draw (inside `_quiet`): PRUNED."""
        self.study.tell(trial, state=TrialState.PRUNED)

    def _allowed(self, values: Mapping[str, Any]) -> bool:
        try:
            Configuration(self.space, values=dict(values))
        except ForbiddenValueError:
            return False
        return True

    def _finish(self, trial: optuna.Trial, loss: float | None,
                state: TrialState | None = None) -> None:
        with _quiet():
            self.study.tell(trial, loss, state=state)


@register("optuna-tpe")
class OptunaTPE(_OptunaSearcher):
    """Optuna's TPESampler (multivariate, grouped), full budget; needs the `compare` extra.

    Options are the sampler's: `n_startup_trials` random trials first, `multivariate`, `group`
    (model co-occurring conditional parameters together) and `constant_liar` (running trials
    count as bad ones, so parallel asks spread out).
    """

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0,
                 n_startup_trials: int = 10, multivariate: bool = True, group: bool = True,
                 constant_liar: bool = True) -> None:
        super().__init__(space, seed=seed, n_startup_trials=n_startup_trials,
                         multivariate=multivariate, group=group, constant_liar=constant_liar)
        self._running: dict[int, optuna.Trial] = {}

    def ask(self) -> Trial:
        """The configuration of a new Optuna trial."""
        otrial, config, info = self._ask_optuna()
        trial = self._new_trial(config, **info)
        self._running[trial.id] = otrial
        return trial

    def tell(self, trial: Trial, result: Result) -> None:
        """COMPLETE with the loss for a usable result, FAIL otherwise."""
        super().tell(trial, result)
        otrial = self._running.pop(trial.id, None)
        if otrial is None:
            return  # not asked here, or told twice
        if result.ok:
            self._finish(otrial, float(result.loss))
        else:
            self._finish(otrial, None, TrialState.FAIL)


@dataclass(frozen=True)
class _Promotion:
    """An Optuna trial that survived rung `rung - 1` (as trial `parent`) and waits to go on."""

    optuna_trial: optuna.Trial
    rung: int
    parent: int
    config: dict[str, Any]


@register("optuna-tpe-hyperband")
class OptunaTPEHyperband(_OptunaSearcher):
    """Optuna's TPESampler with its HyperbandPruner, in ask/tell form; needs `compare`.

    Each Optuna trial climbs the rung budgets of Hyperband's most exploratory bracket
    (min_budget * eta^k up to max_budget); after each rung the result is reported to Optuna at
    step eta^k and, unless the pruner stops it, the same configuration is asked again at the
    next budget, continuing the finished trial (its `parent`). Optuna's pruner puts each trial
    in one of its brackets, which only prune from their own first rung on.
    """

    multi_fidelity = True

    def __init__(self, space: ConfigurationSpace, *, min_budget: float, max_budget: float,
                 eta: int = 3, seed: int | None = 0, n_startup_trials: int = 10,
                 multivariate: bool = True, group: bool = True,
                 constant_liar: bool = True) -> None:
        if isinstance(eta, bool) or not float(eta).is_integer():
            raise ValueError(f"eta must be a whole number (Optuna's reduction_factor), got {eta!r}")
        layout = hyperband_layout(float(min_budget), float(max_budget), eta)
        self.min_budget = float(min_budget)
        self.max_budget = float(max_budget)
        self.eta = int(eta)
        #: Budget of each rung, lowest first, ending at max_budget.
        self.budgets: tuple[float, ...] = tuple(r.budget for r in layout[0].rungs)
        #: The step each rung reports at: its budget in units of the lowest rung's.
        self.steps: tuple[int, ...] = tuple(self.eta**k for k in range(len(self.budgets)))
        super().__init__(space, seed=seed, n_startup_trials=n_startup_trials,
                         multivariate=multivariate, group=group, constant_liar=constant_liar)
        self._running: dict[int, tuple[optuna.Trial, int]] = {}
        self._queue: list[_Promotion] = []

    def _make_pruner(self) -> optuna.pruners.BasePruner:
        # max_resource only sets how many brackets Optuna makes: floor(log_eta(max / min)) + 1.
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=self.steps[-1],
                                              reduction_factor=self.eta)

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {"min_budget": self.min_budget, "max_budget": self.max_budget, "eta": self.eta,
                **super().options}

    def ask(self) -> Trial:
        """A waiting promotion (highest rung first, then oldest), else a new Optuna trial at
        the lowest budget."""
        if self._queue:
            top = max(p.rung for p in self._queue)
            promotion = next(p for p in self._queue if p.rung == top)
            self._queue.remove(promotion)
            return self._new_at(promotion.optuna_trial, promotion.rung, promotion.config,
                                parent=promotion.parent, origin="promoted",
                                optuna_trial=promotion.optuna_trial.number)
        otrial, config, info = self._ask_optuna()
        return self._new_at(otrial, 0, config, parent=None, **info)

    def tell(self, trial: Trial, result: Result) -> None:
        """Report the rung's loss; the pruner decides whether the Optuna trial goes on."""
        super().tell(trial, result)
        entry = self._running.pop(trial.id, None)
        if entry is None:
            return  # not asked here, or told twice
        otrial, k = entry
        if not result.ok:
            self._finish(otrial, None, TrialState.FAIL)
            return
        loss = float(result.loss)
        with _quiet():
            otrial.report(loss, step=self.steps[k])
            if k + 1 == len(self.budgets):
                self.study.tell(otrial, loss)
            elif otrial.should_prune():
                self.study.tell(otrial, state=TrialState.PRUNED)
            else:
                self._queue.append(_Promotion(otrial, k + 1, trial.id, dict(trial.config)))

    def observe(self, config: Mapping[str, Any], result: Result, *,
                budget: float | None = None) -> None:
        """An imported result becomes an Optuna trial reported at its rung's step: finished
        at the top rung, pruned below it (how Optuna's TPE ranks a stopped trial)."""
        Searcher.observe(self, config, result, budget=budget)
        level = self.max_budget if budget is None else float(budget)
        rungs = [k for k, b in enumerate(self.budgets) if b <= level * (1 + 1e-9)]
        if not rungs or not result.ok:
            return
        k, loss = rungs[-1], float(result.loss)
        with _quiet():
            self.study.enqueue_trial(self.codec.to_optuna(self.imported[-1][0]))
            otrial = self.study.ask()
            self.codec.suggest(otrial)
            otrial.report(loss, step=self.steps[k])
            if k + 1 == len(self.budgets):
                self.study.tell(otrial, loss)
            else:
                self.study.tell(otrial, state=TrialState.PRUNED)

    def continuable(self) -> set[int]:
        """Finished trials whose Optuna trial was let through and waits to be continued."""
        return {p.parent for p in self._queue}

    def _new_at(self, otrial: optuna.Trial, k: int, config: dict[str, Any], *,
                parent: int | None, **info: Any) -> Trial:
        trial = self._new_trial(config, budget=self.budgets[k], parent=parent, rung=k, **info)
        self._running[trial.id] = (otrial, k)
        return trial
