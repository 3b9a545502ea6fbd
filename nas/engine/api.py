"""`search`, `optimize` and `resume`: check what the user gave, write the settings, run the loop.

`search` runs the loop over trained models, `optimize` over any Python function; `resume`
rebuilds either from its journal alone.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from ConfigSpace import ConfigurationSpace

import spaces
from nas.budget import Budget, Unit
from nas.constraints import Constraints
from nas.data import Dataset
from nas.data import load as load_dataset
from nas.data.dataset import LOCATION_OPTIONS
from nas.data.files import source as data_source
from nas.engine.callbacks import Callback
from nas.engine.costs import CostModel, CostPlan
from nas.engine.failfast import Catch, FailFast
from nas.engine.ledger import Ledger
from nas.engine.loop import Loop
from nas.engine.options import (
    check_ensemble,
    check_max_failures,
    check_name,
    check_replicas,
    check_trial_budget,
    executor_for,
    make_searcher,
    trainer_options_of,
    with_prior,
)
from nas.engine.reopen import existing_journal, journal_path
from nas.engine.result import SearchResult
from nas.engine.resuming import (
    cost_model_of,
    horizon_of,
    resume,
    with_progress,
)
from nas.errors import UserError
from nas.executors import Executor
from nas.executors.threads import planning_threads
from nas.executors.threads import release as release_threads
from nas.journal import (
    MAX_CONSECUTIVE_FAILURES,
    DataSpec,
    MetaKey,
    RunKind,
    SearcherSpec,
    SearchSettings,
)
from nas.objective import FunctionObjective, Objective, TrainingObjective
from nas.objectives import parse_objectives
from nas.storage import JournalExists, Storage
from nas.trainer import TrainerOptions, resolve_device
from nas.types import plain
from nas.warmstart import warm_start_search
from searchers import Searcher

if TYPE_CHECKING:
    from nas.defaults import Plan

#: Best trials whose checkpoints a search keeps as candidates of its final ensemble.
DEFAULT_ENSEMBLE = 10


def search(
    space: ConfigurationSpace | str = "auto",
    data: Dataset | str | os.PathLike[str] = "digits",
    searcher: Searcher | str = "auto",
    budget: Budget | str = "10m",
    *,
    trial_budget: Budget | str = "auto",
    space_overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    storage: str | os.PathLike[str] | None = None,
    name: str | None = None,
    searcher_options: Mapping[str, Any] | None = None,
    trainer_options: TrainerOptions | Mapping[str, Any] | None = None,
    data_options: Mapping[str, Any] | None = None,
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
    continue_trials: bool = True,
    dedup: bool = True,
    max_failures: int = MAX_CONSECUTIVE_FAILURES,
    executor: Executor | str = "inprocess",
    workers: int | None = None,
    scheduler: str | None = None,
    workers_per_device: int | str | None = None,
    ensemble: int = DEFAULT_ENSEMBLE,
    replicas: int | str = "auto",
    baselines: bool = True,
    started_at: float | None = None,
    constraints: Constraints | Mapping[str, Any] | None = None,
    objectives: str | Sequence[str] | None = None,
    enqueue: Sequence[Mapping[str, Any]] | None = None,
    warm_start: Sequence[str | os.PathLike[str]] | None = None,
    warm_start_retrain: int = 0,
    prior: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    catch: Catch = (),
    load_if_exists: bool = False,
) -> SearchResult:
    """Search `space` for the best model on `data` within `budget`; everything lands in SQLite.

    `space`, `data` and `searcher` are objects or registered names (`data` may also be the path
    of a .npz file, a .csv file with ``data_options={"target": COLUMN}``, or a folder of
    images with one sub-folder per class: see `nas.data.files`); `budget` is the total
    (``"10m"``, ``"300ep"``, ``"50trials"``), `trial_budget` what one full candidate trains for.
    ``"auto"`` (the default) space, searcher and trial budget are chosen from the data's shape
    and size and the budget (`nas.defaults`); `space_overrides` narrow a space given by name.
    A multi-fidelity searcher given by name runs from `trial_budget` / 9 up to `trial_budget`;
    a promoted trial continues its parent's checkpoint (unless `continue_trials` is False).
    With `dedup`, a candidate whose architecture hash was already trained at the same budget
    reuses that result and is charged nothing. `executor` runs trials in this process
    (``"inprocess"``), in `workers` local processes (``"local"``, one per GPU by default;
    `workers_per_device` N or ``"auto"``: several per GPU, admitted by their estimated memory)
    or on Dask (``"dask"``: a running cluster at `scheduler`, or a local one of `workers`). The
    checkpoints of the `ensemble` best trials are kept, and at the end a greedy ensemble of
    them is chosen on the validation split (`SearchResult.ensemble`, `load_ensemble`). The last
    of the budget trains `replicas` more copies of the best full-budget configuration with new
    seeds; the ensemble starts from them (``"auto"``: the default plan's number with the
    default searcher, else none). With `baselines`, the plain models a user would try first
    (`nas.baselines`: logistic regression, RBF SVM, k-NN) are fitted on the same split within a
    few seconds of the budget; one that beats the search's model on validation becomes the
    result (`SearchResult.baseline_won`). A time budget is wall-clock time from `started_at` (a
    ``time.monotonic()``; default: this call), loading the data, planning and the final
    scoring included. `constraints` (`nas.constraints.Constraints`, or a dict of its
    ``Constraints.parse`` keywords: ``{"max_params": "50k", "max_latency": "2ms"}``) limit the
    models: infeasible ones are recorded but never returned; with any limit the result is the
    best feasible single model (no ensemble, no baselines: neither is one such model).
    `objectives` (``"val_error,params"``; also ``flops``, ``latency``: `nas.objectives`), each
    minimised, make it a multi-objective search (``"auto"`` searcher: `DEFAULT_MO_SEARCHER`) of
    their Pareto front (`SearchResult.pareto_front`); the result is its most accurate model.
    `enqueue`: configurations to try before the searcher's own proposals, in order (each a
    dict of hyperparameters, the rest at their defaults, or ``{"config": ..., "budget": ...}``).
    `warm_start`: journals of earlier searches whose trials that fit this space are told to the
    searcher first (`nas.warmstart`): never trained, charged or returned, unless
    `warm_start_retrain` K > 0 trains the best K of them first at the full budget. `prior`
    (``"default"``, a JSON file, or ``{"lr": 0.01}``: `searchers.priors.parse_prior`) makes
    the searcher favour those values early, less as results come in. When the first trials
    all fail with the same exception, the search stops and raises `nas.errors.ObjectiveError`
    unless `catch` (True, or exception classes) says to record such failures and go on.
    With `load_if_exists`, a journal already at `storage` (or ``runs/<name>.db``) is continued
    as `resume` does, its own settings ruling (Optuna's ``load_if_exists``).
    """
    # A time budget counts from the call: the imports below are the search's time too.
    started_at = time.monotonic() if started_at is None else started_at
    from nas.defaults import baseline_seconds, multi_objective_default, resolve

    existing = existing_journal(storage, name) if load_if_exists else None
    if existing is not None:
        return resume(existing, data=None if isinstance(data, (str, os.PathLike)) else data,
                      progress=progress, callbacks=callbacks, executor=executor,
                      workers=workers, scheduler=scheduler)

    searcher_options = with_prior(searcher_options, prior)

    limit = Budget.parse(budget)
    if limit.unit is Unit.UNITS:
        raise UserError("a search's budget is epochs, seconds or trials, e.g. 300ep, 10m")
    if trial_budget != "auto":
        check_trial_budget(limit, Budget.parse(trial_budget))
    limits = Constraints.of(constraints)
    names = parse_objectives(objectives)
    if limits.active or names:
        ensemble, baselines = 1, False
    ensemble = check_ensemble(ensemble)
    if replicas != "auto":
        replicas = check_replicas(replicas, ensemble)
    check_max_failures(max_failures)
    check_name(name)
    options = trainer_options_of(trainer_options)
    device = resolve_device(options.device)  # a wrong device is the user's mistake: say so now

    if isinstance(data, (str, os.PathLike)):
        dataset = load_dataset(data, **dict(data_options or {}))
        # A path is journaled absolute, with a fingerprint: resume reloads the same contents.
        data_name, stored_options = data_source(data, data_options) \
            or (dataset.name, dict(data_options or {}))
        # Where the data was read from is the caller's to say again on resume (see `resume`).
        stored_options = {k: v for k, v in stored_options.items() if k not in LOCATION_OPTIONS}
    else:
        dataset, data_name, stored_options = data, data.name, dict(data_options or {})
    # The baselines' time cap: kept out of what the plan may use, then given to them.
    baseline_cap = baseline_seconds(limit) if baselines else None
    if isinstance(searcher, str) and searcher != "auto":
        # A mistake in the searcher's options is said before minutes of planning, not after.
        # (A prior names the real space's hyperparameters: it is checked when that exists.)
        make_searcher(searcher, _any_space(space, space_overrides), seed,
                      {k: v for k, v in (searcher_options or {}).items() if k != "prior"},
                      min_budget=1.0, max_budget=9.0,
                      n_objectives=1 if names is None else len(names))
    # Planning, trials and the final scoring all run with the threads measured fastest here
    # (on a busy machine one thread can be many times faster than two).
    with planning_threads(device.type) as threads:
        # "auto" space, searcher or trial budget: chosen from the data and the budget.
        chosen = resolve(space, dataset, searcher, limit, trial_budget, searcher_options,
                         device=str(device), space_overrides=dict(space_overrides or {}),
                         started_at=started_at, reserve=baseline_cap or 0.0,
                         # The timing takes seconds to minutes on a slow machine: say so.
                         announce=(lambda text: print(text, file=sys.stderr, flush=True))
                         if progress else None)
        limit, per_trial = chosen.budget, chosen.trial_budget
        if replicas == "auto":
            replicas = chosen.replicas if ensemble >= 2 else 0
        check_trial_budget(limit, per_trial)
        space_obj = spaces.get(chosen.space, **dict(space_overrides or {})) \
            if isinstance(chosen.space, str) else chosen.space
        searcher_name, searcher_opts = (chosen.searcher, chosen.searcher_options) \
            if not (names and searcher == "auto") else multi_objective_default(chosen)
        searcher_obj, trial_seq = make_searcher(
            searcher_name, space_obj, seed, searcher_opts, min_budget=per_trial.amount / 9,
            max_budget=per_trial.amount, n_objectives=1 if names is None else len(names))
        planned = () if chosen.plan is None else chosen.plan.enqueue
        warm, queued = warm_start_search(searcher_obj, warm_start, warm_start_retrain,
                                          [*planned, *(enqueue or ())] or None, space_obj,
                                          per_trial, names)
        objective = TrainingObjective(dataset, per_trial, options, horizon=horizon_of(searcher_obj))
        # A space that cannot fit the data is the user's mistake: say so before any journal exists.
        with torch.device("meta"):
            spaces.build_model(dict(space_obj.get_default_configuration()), dataset.input_shape,
                               dataset.num_classes)
        run_name = name or f"{chosen.space_name}-{dataset.name}-{searcher_obj.name}-{_stamp()}"
        settings = SearchSettings(
            name=run_name, kind=RunKind.SEARCH, space_name=chosen.space_name,
            space=spaces.space_to_json(space_obj), searcher=_spec(searcher_obj), seed=seed,
            budget=str(limit), trial_budget=str(per_trial),
            data=DataSpec(data_name, stored_options, dataset.sizes, dataset.class_names),
            trainer=options.to_dict(), continue_trials=continue_trials, dedup=dedup,
            max_failures=max_failures, ensemble=ensemble, replicas=int(replicas),
            auto=None if chosen.plan is None else tuple(chosen.plan.reasons),
            constraints=limits.to_dict() or None, objectives=names, enqueued=queued or None,
            warm_start=warm)
        costs = _cost_model(chosen.plan, space_obj, dataset, per_trial, limit)
        return _run(storage, settings, searcher_obj, objective, trial_seq,
                    [FailFast(catch), *with_progress(callbacks, progress)],
                    executor_for(executor, workers, scheduler, options.device, threads,
                                 workers_per_device),
                    since=started_at, costs=costs,
                    baseline_cap=baseline_cap,
                    closed="" if chosen.plan is None or chosen.plan.trains else
                    "the budget was spent before the first trial", named=name is not None)


def optimize(
    objective: Callable[..., float | Mapping[str, Any]],
    space: ConfigurationSpace,
    searcher: Searcher | str = "random",
    budget: Budget | str | float = "100trials",
    *,
    min_budget: float | None = None,
    max_budget: float | None = None,
    seed: int = 0,
    storage: str | os.PathLike[str] | None = None,
    name: str | None = None,
    searcher_options: Mapping[str, Any] | None = None,
    progress: bool = False,
    callbacks: Sequence[Callback] = (),
    executor: Executor | str = "inprocess",
    workers: int | None = None,
    scheduler: str | None = None,
    objectives: Sequence[str] | None = None,
    enqueue: Sequence[Mapping[str, Any]] | None = None,
    warm_start: Sequence[str | os.PathLike[str]] | None = None,
    warm_start_retrain: int = 0,
    prior: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    catch: Catch = (),
    load_if_exists: bool = False,
) -> SearchResult:
    """Minimise ``objective(config: dict, budget: float) -> float | dict`` over `space`.

    `budget` is the total: ``"50trials"``, a time (``"10m"``) or a number of the objective's own
    budget units (``2000`` or ``"2000u"``: the sum of the trials' budgets). Multi-fidelity
    searchers run between `min_budget` and `max_budget`; full-budget trials get `max_budget`
    (default 1). `storage` defaults to ``runs/<name>.db``; ``":memory:"`` keeps nothing.
    With another `executor` than ``"inprocess"`` the objective must be picklable (defined at
    module level) and runs in worker processes. A dict result holds ``loss`` and may hold
    ``cost`` (budget spent) and ``tiebreak_loss`` (orders equal losses); the rest are metrics.
    With `objectives` (their names) the function returns that many values (a tuple, or a dict
    whose ``loss`` is one), all minimised, and a multi-objective searcher (`searcher`:
    ``mo-random``, ``motpe``, ...) searches their Pareto front (`SearchResult.pareto_front`).
    `enqueue`: configurations evaluated first, and `warm_start` / `warm_start_retrain`: earlier
    runs' results told to the searcher first, `prior` and `catch`, as in `search`: by
    default the objective's exception, raised in each of the first trials, stops the run
    (`nas.errors.ObjectiveError`, with its traceback). `load_if_exists` continues a journal
    already at `storage`, as in `search`.
    """
    existing = existing_journal(storage, name) if load_if_exists else None
    if existing is not None:
        return resume(existing, objective=objective, progress=progress, callbacks=callbacks,
                      executor=executor, workers=workers, scheduler=scheduler)
    if not callable(objective):
        raise UserError("objective must be a function objective(config, budget)")
    names = parse_objectives(objectives, measured=False)
    searcher_options = with_prior(searcher_options, prior)
    check_name(name)
    limit = Budget.parse(budget)
    if limit.unit is Unit.EPOCHS:
        limit = Budget(limit.amount, Unit.UNITS)  # epochs are the objective's own units here
    top = 1.0 if max_budget is None else float(max_budget)
    low = top if min_budget is None else float(min_budget)
    if not 0 < low <= top:
        raise UserError(f"need 0 < min_budget <= max_budget, got {low} and {top}")
    searcher_obj, trial_seq = make_searcher(searcher, space, seed, searcher_options,
                                             min_budget=low, max_budget=top,
                                             n_objectives=1 if names is None else len(names))
    warm, queued = warm_start_search(searcher_obj, warm_start, warm_start_retrain, enqueue,
                                      space, Budget(top, Unit.UNITS), names)
    label = getattr(objective, "__qualname__", type(objective).__name__)
    run_name = name or f"{label}-{searcher_obj.name}-{_stamp()}".replace("<", "").replace(">", "")
    settings = SearchSettings(
        name=run_name, kind=RunKind.OPTIMIZE,
        objective=f"{getattr(objective, '__module__', '?')}.{label}",
        space_name=space.name or "custom", space=spaces.space_to_json(space),
        searcher=_spec(searcher_obj), seed=seed, budget=str(limit), min_budget=low,
        max_budget=top, objectives=names, enqueued=queued or None, warm_start=warm)
    return _run(storage, settings, searcher_obj, FunctionObjective(objective, top), trial_seq,
                [FailFast(catch), *with_progress(callbacks, progress)],
                executor_for(executor, workers, scheduler, "cpu"), named=name is not None)


#: When no network trains (a short budget), the share of what is left that the plain baselines
#: leave for the end (the journal, the summary, the process's exit); they get the rest.
CLOSED_END_SHARE = 0.15


#: A name the search made up gets a suffix up to this number when its journal exists already.
MAX_NAME_SUFFIX = 99


def _create(storage: str | os.PathLike[str] | None, settings: SearchSettings, named: bool
            ) -> tuple[Storage, SearchSettings]:
    """The new journal, and its settings: a made-up name (`named` False, no `storage`) taken
    by another search started the same second gets the first free suffix -2, -3, ..."""
    if named or storage is not None:
        return Storage.create(journal_path(storage, settings.name), settings.to_dict()), settings
    for n in range(1, MAX_NAME_SUFFIX + 1):
        chosen = settings if n == 1 else dataclasses.replace(settings,
                                                             name=f"{settings.name}-{n}")
        try:
            return Storage.create(journal_path(None, chosen.name), chosen.to_dict()), chosen
        except JournalExists:
            continue
    raise UserError(f"{journal_path(None, settings.name)} and {MAX_NAME_SUFFIX - 1} suffixed "
                    "names exist already; name the search (--name, --db; name=, storage=)")


def _run(storage: str | os.PathLike[str] | None, settings: SearchSettings, searcher: Searcher,
         objective: Objective, trial_seq: np.random.SeedSequence, callbacks: list[Callback],
         executor: tuple[Executor, bool], *, since: float | None = None,
         costs: CostModel | None = None, baseline_cap: float | None = None,
         closed: str = "", named: bool = True) -> SearchResult:
    store, settings = _create(storage, settings, named)
    try:
        runner, owns = executor
        limit = settings.limit
        assert limit is not None
        if costs is not None:
            store.set_meta(MetaKey.COST_PLAN, costs.plan.to_dict())
        ledger = Ledger.for_budget(limit, since=since)
        if baseline_cap is not None and isinstance(objective, TrainingObjective):
            from nas.baselines import fit_baselines

            ledger.tick()
            # A slow start leaves less than the cap: the baselines get what is left (the
            # cheapest is fitted whatever is left, on a small sample if need be). When no
            # network will train, they are the result: they get all of it but the end's share.
            cap = baseline_cap
            if limit.unit is Unit.SECONDS:
                left = max(0.0, ledger.remaining)
                cap = max(cap, (1 - CLOSED_END_SHARE) * left) if closed else cap
                cap = min(cap, left)
            fitted = fit_baselines(objective.data, seconds=cap, seed=settings.seed)
            store.set_meta(MetaKey.BASELINES, [{**b.to_dict(), "cap": cap} for b in fitted])
        return Loop(store, searcher, objective, ledger, trial_seq, callbacks, runner,
                    owns_executor=owns, settings=settings, costs=costs, closed=closed).run()
    finally:
        store.close()
        release_threads()  # the cores this search held are free for the searches beside it


def _cost_model(plan: Plan | None, space: ConfigurationSpace, data: Dataset, per_trial: Budget,
                limit: Budget) -> CostModel | None:
    """The default plan's cost model of a time budget (`nas.engine.costs`), else None."""
    if plan is None or plan.epoch_seconds is None or limit.unit is not Unit.SECONDS \
            or per_trial.unit is not Unit.EPOCHS:
        return None
    from nas.defaults import MAX_TRIAL_SHARE, MIN_AUGMENTED_EPOCHS, MIN_TRIAL_EPOCHS, augmented

    reference = plain(dict(space.get_default_configuration()))
    floor = MIN_AUGMENTED_EPOCHS if augmented(space) else MIN_TRIAL_EPOCHS
    return cost_model_of(CostPlan(reference, plan.epoch_seconds, per_trial.amount, limit.amount,
                           MAX_TRIAL_SHARE, floor), data)


def _any_space(space: ConfigurationSpace | str, overrides: Mapping[str, Any] | None
               ) -> ConfigurationSpace:
    """The space a searcher's options may be checked on before planning: the one given, else
    (chosen later from the data) one float."""
    if isinstance(space, ConfigurationSpace):
        return space
    if space != "auto":
        return spaces.get(space, **dict(overrides or {}))
    return ConfigurationSpace({"x": (0.0, 1.0)})


def _stamp() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}"


def _spec(searcher: Searcher) -> SearcherSpec:
    return SearcherSpec(searcher.name, searcher.options, searcher.seed)


