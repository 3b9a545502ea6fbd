"""The one ask/tell loop: ask the searcher, charge the ledger, run the trial, journal, tell.

`search` runs it over trained models; `optimize` over any Python function. Both share the loop,
the ledger and the SQLite journal.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from ConfigSpace import ConfigurationSpace

import searchers as searcher_registry
import spaces
from nas import replicas as replica_rules
from nas.budget import Budget, Ledger, Unit, charge
from nas.data import Dataset
from nas.data import load as load_dataset
from nas.errors import UserError
from nas.executors import Executor, InProcessExecutor, WorkerLost, make_executor
from nas.objective import Evaluation, FunctionObjective, TrainingObjective, evaluate_trial
from nas.report import Callback, default_reporter
from nas.storage import Storage, TrialRecord
from nas.trainer import TrainerOptions, TrainOutcome, resolve_device
from nas.types import Result, Trial, TrialStatus
from searchers import Searcher

MAX_CONSECUTIVE_FAILURES = 10
#: Best trials whose checkpoints a search keeps as candidates of its final ensemble.
DEFAULT_ENSEMBLE = 10
#: Why a search's searcher stopped proposing once replicas were due.
KEPT_FOR_REPLICAS = "the rest of the budget is kept for replicas"
#: Times a trial whose worker died is run again before it is marked failed.
MAX_WORKER_RETRIES = 2


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a search; its journal is consistent and `nas resume` continues it."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


class Objective(Protocol):
    """What the loop evaluates: a trial in, a `TrainOutcome` out, never an exception."""

    @property
    def max_budget(self) -> float:
        """Budget of a full-budget trial."""

    @property
    def device(self) -> str:
        """Where trials run."""

    def __call__(self, trial: Trial, *, seed: int, deadline: float | None = None,
                 on_epoch: Callable[[Mapping[str, float]], None] | None = None) -> TrainOutcome:
        """Evaluate one trial."""


@dataclass(frozen=True)
class SearchResult:
    """What a finished search leaves: its journal, its trials and its best trial."""

    path: Path
    trials: tuple[TrialRecord, ...]
    best: TrialRecord | None
    test_accuracy: float | None
    spent: float
    limit: Budget
    stopped: str
    #: The greedy ensemble of the best trials (weights by trial id, val/test accuracy), if any.
    ensemble: Mapping[str, Any] | None = None

    @property
    def best_config(self) -> dict[str, Any] | None:
        """The best trial's configuration."""
        return None if self.best is None else dict(self.best.trial.config)

    @property
    def best_loss(self) -> float | None:
        """The best trial's loss."""
        return None if self.best is None or self.best.result is None else self.best.result.loss

    def top(self, k: int = 5) -> list[TrialRecord]:
        """The k best trials with a usable result."""
        ok = [r for r in self.trials if r.result is not None and r.result.ok]
        return sorted(ok, key=TrialRecord.rank_key)[:k]

    def load_best_model(self) -> torch.nn.Module:
        """The best trial's trained model (standardisation included), in eval mode, on the CPU."""
        with Storage.open(self.path) as store:
            paths = store.checkpoints()
        if self.best is None or self.best.id not in paths:
            raise UserError(f"{self.path} holds no checkpoint of a best trial")
        return spaces.load_model(paths[self.best.id])

    def load_ensemble(self) -> torch.nn.Module:
        """The ensemble of the best trials (`nas.ensemble.Ensemble`), in eval mode, on the CPU."""
        from nas.ensemble import load_ensemble

        if not self.ensemble:
            raise UserError(f"{self.path} holds no ensemble (fewer than two usable trials, or "
                            "ensemble=0)")
        with Storage.open(self.path) as store:
            paths = store.checkpoints()
        return load_ensemble(self.ensemble["weights"], paths)


def search(
    space: ConfigurationSpace | str = "auto",
    data: Dataset | str = "digits",
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
    ensemble: int = DEFAULT_ENSEMBLE,
    replicas: int | str = "auto",
) -> SearchResult:
    """Search `space` for the best model on `data` within `budget`; everything lands in SQLite.

    `space`, `data` and `searcher` are objects or registered names; `budget` is the total
    (``"10m"``, ``"300ep"``, ``"50trials"``), `trial_budget` what one full candidate trains for.
    ``"auto"`` (the default) space, searcher and trial budget are chosen from the data's shape
    and size and the budget (`nas.defaults`); `space_overrides` narrow a space given by name.
    A multi-fidelity searcher given by name runs from `trial_budget` / 9 up to `trial_budget`;
    a promoted trial continues its parent's checkpoint (unless `continue_trials` is False).
    With `dedup`, a candidate whose architecture hash was already trained at the same budget
    reuses that result and is charged nothing. `executor` runs trials in this process
    (``"inprocess"``), in `workers` local processes (``"local"``, one per GPU by default) or on
    Dask (``"dask"``: a running cluster at `scheduler`, or a local one of `workers`). The
    checkpoints of the `ensemble` best trials are kept, and at the end a greedy ensemble of
    them is chosen on the validation split (`SearchResult.ensemble`, `load_ensemble`). The last
    of the budget trains `replicas` more copies of the best full-budget configuration with new
    seeds; the ensemble starts from them (``"auto"``: the default plan's number with the
    default searcher, else none).
    """
    from nas.defaults import resolve

    limit = Budget.parse(budget)
    if limit.unit is Unit.UNITS:
        raise UserError("a search's budget is epochs, seconds or trials, e.g. 300ep, 10m")
    if trial_budget != "auto":
        _check_trial_budget(limit, Budget.parse(trial_budget))
    ensemble = _check_ensemble(ensemble)
    if replicas != "auto":
        replicas = _check_replicas(replicas, ensemble)
    options = _trainer_options(trainer_options)
    device = resolve_device(options.device)  # a wrong device is the user's mistake: say so now

    dataset = load_dataset(data, **dict(data_options or {})) if isinstance(data, str) else data
    # "auto" space, searcher or trial budget: chosen from the data and the budget.
    chosen = resolve(space, dataset, searcher, limit, trial_budget, searcher_options,
                     device=str(device), space_overrides=dict(space_overrides or {}))
    limit, per_trial, space_name = chosen.budget, chosen.trial_budget, chosen.space_name
    if replicas == "auto":
        replicas = chosen.replicas if ensemble >= 2 else 0
    _check_trial_budget(limit, per_trial)
    space_obj = spaces.get(chosen.space, **dict(space_overrides or {})) \
        if isinstance(chosen.space, str) else chosen.space
    searcher_obj, trial_seq = _make_searcher(
        chosen.searcher, space_obj, seed, chosen.searcher_options,
        min_budget=per_trial.amount / 9, max_budget=per_trial.amount,
    )
    objective = TrainingObjective(dataset, per_trial, options, horizon=_horizon(searcher_obj))
    # A space that cannot fit the data is the user's mistake: say so before any journal exists.
    with torch.device("meta"):
        spaces.build_model(dict(space_obj.get_default_configuration()), dataset.input_shape,
                           dataset.num_classes)
    run_name = name or f"{space_name}-{dataset.name}-{searcher_obj.name}-{_stamp()}"
    settings = {
        "name": run_name,
        "kind": "search",
        "space_name": space_name,
        "space": spaces.space_to_json(space_obj),
        "searcher": _searcher_settings(searcher_obj),
        "seed": seed,
        "budget": str(limit),
        "trial_budget": str(per_trial),
        "data": {"name": dataset.name, "options": dict(data_options or {}),
                 "sizes": dataset.sizes},
        "trainer": options.to_dict(),
        "continue_trials": continue_trials,
        "dedup": dedup,
        "max_failures": max_failures,
        "ensemble": ensemble,
        "replicas": replicas,
    }
    if chosen.plan is not None:
        settings["auto"] = list(chosen.plan.reasons)
    path = Path(storage) if storage is not None else Path("runs") / f"{run_name}.db"
    runner = _executor(executor, workers, scheduler, options.device)
    return _run(path, settings, searcher_obj, objective, Ledger(limit), trial_seq,
                list(callbacks) + ([default_reporter()] if progress else []),
                continue_trials=continue_trials, dedup=dedup, max_failures=max_failures,
                executor=runner, ensemble=ensemble, replicas=int(replicas))


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
) -> SearchResult:
    """Minimise ``objective(config: dict, budget: float) -> float | dict`` over `space`.

    `budget` is the total: ``"50trials"``, a time (``"10m"``) or a number of the objective's own
    budget units (``2000`` or ``"2000u"``: the sum of the trials' budgets). Multi-fidelity
    searchers run between `min_budget` and `max_budget`; full-budget trials get `max_budget`
    (default 1). `storage` defaults to ``runs/<name>.db``; ``":memory:"`` keeps nothing.
    With another `executor` than ``"inprocess"`` the objective must be picklable (defined at
    module level) and runs in worker processes.
    """
    if not callable(objective):
        raise UserError("objective must be a function objective(config, budget)")
    limit = Budget.parse(budget)
    if limit.unit is Unit.EPOCHS:
        limit = Budget(limit.amount, Unit.UNITS)  # epochs are the objective's own units here
    top = 1.0 if max_budget is None else float(max_budget)
    low = top if min_budget is None else float(min_budget)
    if not 0 < low <= top:
        raise UserError(f"need 0 < min_budget <= max_budget, got {low} and {top}")
    searcher_obj, trial_seq = _make_searcher(searcher, space, seed, searcher_options,
                                             min_budget=low, max_budget=top)
    label = getattr(objective, "__qualname__", type(objective).__name__)
    run_name = name or f"{label}-{searcher_obj.name}-{_stamp()}".replace("<", "").replace(">", "")
    settings = {
        "name": run_name,
        "kind": "optimize",
        "objective": f"{getattr(objective, '__module__', '?')}.{label}",
        "space_name": space.name or "custom",
        "space": spaces.space_to_json(space),
        "searcher": _searcher_settings(searcher_obj),
        "seed": seed,
        "budget": str(limit),
        "min_budget": low,
        "max_budget": top,
    }
    path = Path(storage) if storage is not None else Path("runs") / f"{run_name}.db"
    runner = _executor(executor, workers, scheduler, "cpu")
    return _run(path, settings, searcher_obj, FunctionObjective(objective, top), Ledger(limit),
                trial_seq, list(callbacks) + ([default_reporter()] if progress else []),
                executor=runner)


def resume(
    path: str | os.PathLike[str],
    *,
    data: Dataset | None = None,
    objective: Callable[..., float | Mapping[str, Any]] | None = None,
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
    executor: Executor | str = "inprocess",
    workers: int | None = None,
    scheduler: str | None = None,
) -> SearchResult:
    """Continue a search that stopped (killed, interrupted, crashed) from its journal.

    Finished trials are kept, the searcher is rebuilt by replaying them, trials that were
    running are run again and the ledger goes on from what was spent. A search whose data
    was given as arrays needs `data` again; an `optimize` run needs its `objective`.
    Any executor may continue it, whichever ran it before.
    """
    store = Storage.open(path)
    try:
        store.lock()
        settings = store.settings
        if store.meta("state") == "finished":
            return _result_of(store)
        space = spaces.space_from_json(settings["space"])
        s = settings["searcher"]
        searcher = searcher_registry.get(s["name"], space, seed=s["seed"], **s["options"])
        _, trial_seq = _seed_sequences(int(settings["seed"]))
        ledger = Ledger(Budget.parse(settings["budget"]), spent=float(store.meta("spent", 0.0)))
        obj: Objective
        if settings.get("kind") == "optimize":
            if objective is None:
                raise UserError(f"{store.path} is an optimize run: resume it from Python with "
                                "nas.resume(path, objective=your_function)")
            obj = FunctionObjective(objective, float(settings["max_budget"]))
        else:
            if data is None:
                try:
                    data = load_dataset(settings["data"]["name"],
                                        **settings["data"].get("options", {}))
                except UserError as exc:
                    raise UserError(f"cannot reload the data of {store.path} ({exc}); pass it "
                                    "again: nas.resume(path, data=...)") from None
            obj = TrainingObjective(data, Budget.parse(settings["trial_budget"]),
                                    TrainerOptions(**settings["trainer"]),
                                    horizon=_horizon(searcher))
        device = settings.get("trainer", {}).get("device", "cpu")
        runner, owns = _executor(executor, workers, scheduler, device)
        loop = _Loop(store, searcher, obj, ledger, trial_seq,
                     list(callbacks) + ([default_reporter()] if progress else []),
                     continue_trials=bool(settings.get("continue_trials")),
                     dedup=bool(settings.get("dedup")),
                     max_failures=int(settings.get("max_failures", MAX_CONSECUTIVE_FAILURES)),
                     executor=runner, owns_executor=owns,
                     ensemble=int(settings.get("ensemble", 0)),
                     replicas=int(settings.get("replicas", 0)))
        rerun = loop.replay(store.trials())
        return loop.run(rerun)
    finally:
        store.close()


def _result_of(store: Storage) -> SearchResult:
    """The `SearchResult` of a finished journal."""
    summary = store.meta("summary") or {}
    ranked = store.ranked()
    return SearchResult(
        path=store.path, trials=tuple(store.trials()), best=ranked[0] if ranked else None,
        test_accuracy=summary.get("test_accuracy"), spent=float(store.meta("spent", 0.0)),
        limit=Budget.parse(store.settings["budget"]), stopped=summary.get("stopped", ""),
        ensemble=summary.get("ensemble"),
    )


def _stamp() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}"


def _searcher_settings(searcher: Searcher) -> dict[str, Any]:
    return {"name": searcher.name, "options": searcher.options, "seed": searcher.seed}


def _seed_sequences(seed: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """The searcher's and the trials' seeds, both derived from the master seed.

    `search`, `optimize` and `resume` must derive them alike, or a resume would diverge.
    """
    searcher_seq, trial_seq = np.random.SeedSequence(seed).spawn(2)
    return searcher_seq, trial_seq


def _horizon(searcher: Searcher) -> float | None:
    """Epochs the lr schedule spans: a multi-fidelity searcher's max budget, else per trial."""
    return getattr(searcher, "max_budget", None) if searcher.multi_fidelity else None


def _check_ensemble(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise UserError(f"ensemble is a number of candidate trials >= 0, got {size!r}")
    return int(size)


def _check_replicas(count: Any, ensemble: int) -> int:
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise UserError(f"replicas is a number of extra seeds >= 0 or 'auto', got {count!r}")
    if count and ensemble < 2:
        raise UserError("replicas join the final ensemble: they need ensemble >= 2")
    return int(count)


def _check_trial_budget(limit: Budget, per_trial: Budget) -> None:
    if per_trial.unit not in (Unit.EPOCHS, Unit.SECONDS):
        raise UserError("--trial-budget is epochs or seconds per trial, e.g. 20ep or 30s")
    if limit.unit is Unit.EPOCHS and per_trial.unit is not Unit.EPOCHS:
        raise UserError("a total budget in epochs needs a trial budget in epochs, e.g. 20ep")


def _make_searcher(searcher: Searcher | str, space: ConfigurationSpace, seed: int,
                   options: Mapping[str, Any] | None, *, min_budget: float, max_budget: float,
                   ) -> tuple[Searcher, np.random.SeedSequence]:
    """The searcher (built from its name if need be) and the seed sequence of the trials."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"a seed is a whole number >= 0, got {seed!r}")
    searcher_seq, trial_seq = _seed_sequences(int(seed))
    if not isinstance(searcher, str):
        if options:
            raise UserError("searcher_options apply only when the searcher is given by name")
        return searcher, trial_seq
    opts = dict(options or {})
    if searcher_registry.get_class(searcher).multi_fidelity:
        opts.setdefault("min_budget", min_budget)
        opts.setdefault("max_budget", max_budget)
    built = searcher_registry.get(searcher, space, seed=int(searcher_seq.generate_state(1)[0]),
                                  **opts)
    return built, trial_seq


def _trainer_options(value: TrainerOptions | Mapping[str, Any] | None) -> TrainerOptions:
    if value is None:
        return TrainerOptions()
    if isinstance(value, TrainerOptions):
        return value
    try:
        return TrainerOptions(**value)
    except TypeError as exc:
        raise UserError(f"bad trainer option: {exc}") from None


def _executor(executor: Executor | str, workers: int | None, scheduler: str | None,
              device: str) -> tuple[Executor, bool]:
    """The executor to run trials on, and whether the search owns it (and so closes it).

    Local workers on CUDA default to one per GPU, each pinned to its own; Dask trials then ask
    for one ``GPU`` resource each.
    """
    if not isinstance(executor, str):
        if workers is not None or scheduler is not None:
            raise UserError("workers and scheduler apply only when the executor is given by name")
        return executor, False
    # Whatever the name: "inprocess" with workers becomes local workers inside make_executor.
    gpus: list[int] | None = None
    if device in ("auto", "cuda") and resolve_device(device).type == "cuda":
        gpus = list(range(torch.cuda.device_count()))
    return make_executor(executor, workers=workers, scheduler=scheduler, gpus=gpus), True


def _run(path: Path, settings: Mapping[str, Any], searcher: Searcher, objective: Objective,
         ledger: Ledger, trial_seq: np.random.SeedSequence, callbacks: Sequence[Callback],
         *, continue_trials: bool = False, dedup: bool = False,
         max_failures: int = MAX_CONSECUTIVE_FAILURES,
         executor: tuple[Executor, bool] | None = None, ensemble: int = 0,
         replicas: int = 0) -> SearchResult:
    if max_failures < 1:
        raise UserError(f"max_failures must be at least 1, got {max_failures}")
    store = Storage.create(path, settings)
    try:
        runner, owns = executor or (InProcessExecutor(), True)
        return _Loop(store, searcher, objective, ledger, trial_seq, callbacks,
                     continue_trials=continue_trials, dedup=dedup,
                     max_failures=max_failures, executor=runner, owns_executor=owns,
                     ensemble=ensemble, replicas=replicas).run()
    finally:
        store.close()


@dataclass(frozen=True)
class _Plan:
    """How a trial will run, decided once before it starts."""

    original: int | None  # an earlier trial of the same architecture and budget, to reuse
    parent: tuple[Path, float] | None  # the checkpoint to continue and its budget


@dataclass
class _Running:
    """A journaled trial that a worker is (or is about to be) running."""

    trial: Trial
    plan: _Plan
    cost: float  # planned, in the ledger's unit
    attempts: int = 0
    future: Future[Evaluation] | None = None


class _Loop:
    """State of one running search; `run` is the ask/tell loop."""

    def __init__(self, store: Storage, searcher: Searcher, objective: Objective,
                 ledger: Ledger, trial_seq: np.random.SeedSequence,
                 callbacks: Sequence[Callback], *, continue_trials: bool = False,
                 dedup: bool = False, max_failures: int = MAX_CONSECUTIVE_FAILURES,
                 executor: Executor | None = None, owns_executor: bool = True,
                 ensemble: int = 0, replicas: int = 0) -> None:
        self.store = store
        self.searcher = searcher
        self.objective = objective
        self.ledger = ledger
        self.trial_seq = trial_seq
        self.callbacks = callbacks
        self.max_failures = max_failures
        self.executor: Executor = executor or InProcessExecutor()
        self.owns_executor = owns_executor
        self.running: dict[int, _Running] = {}
        # Position of the latest ask or tell, and of asks not yet journaled.
        self.seq = -1
        self.ask_seq: dict[int, int] = {}
        self._clock = (time.monotonic(), ledger.spent)
        self.best: TrialRecord | None = None
        self.durations: list[float] = []
        training = isinstance(objective, TrainingObjective)
        self.continue_trials = continue_trials and training and objective.can_continue
        self.dedup = dedup and training
        # (architecture hash, budget) -> the trial that trained it.
        self.trained: dict[tuple[str, float], int] = {}
        # A reused trial's id -> the trial whose result and checkpoint it shares.
        self.alias: dict[int, int] = {}
        # The best `ensemble` trials, best first: their checkpoints are the ensemble's candidates.
        self.ensemble = ensemble if training else 0
        self.top: list[TrialRecord] = []
        # Replicas: once the searcher's share is spent (or it has nothing more), `replicas`
        # copies of the best full-budget configuration train with new seeds.
        self.replicas = replicas if self.ensemble >= 2 else 0
        self.replicating = False
        self.replica_plan: replica_rules.ReplicaPlan | None = None
        self.replica_ids: list[int] = []
        self.lineage: dict[int, float] = {}  # trial id -> seconds its checkpoint took, parents too
        self.last_id = -1
        # Why the searcher's phase ended, once it has; why no replica was trained, if so.
        self.searcher_done = ""
        self.replicas_dropped = ""

    def run(self, rerun: Sequence[Trial] = ()) -> SearchResult:
        """Run trials until the budget or the searcher is spent; `rerun` go first.

        Up to `executor.workers` trials run at once: the searcher is asked whenever a worker is
        free and told in the order trials finish. With one worker every tell comes before the
        next ask, as in a plain sequential loop.
        """
        for cb in self.callbacks:
            cb.on_search_start(self.store.path, self.store.settings, self.ledger)
        self.store.set_meta("state", "running")
        executor = self.executor
        queue = deque(rerun)
        failures: list[Result] = []
        stopped = ""
        self._clock = (time.monotonic(), self.ledger.spent)
        try:
            executor.start()
            self.store.set_meta("executor", {"name": executor.name,
                                             "workers": executor.workers})
            shared = executor.share(self.objective)
            while True:
                self._tick()
                while not stopped and len(self.running) < executor.workers:
                    stopped = self._cannot_start() or ""
                    if stopped:
                        stopped = self._replica_summary() or stopped
                        break
                    trial = queue.popleft() if queue else self._next_trial()
                    if trial is None:
                        if not self.running:
                            stopped = self._replica_summary() or self.searcher_done
                        break  # a running trial's result may let the searcher go on
                    plan = self._plan(trial)
                    cost = self._planned_cost(trial, plan)
                    if not self.ledger.can_afford(cost + self._committed() + self._reserve()):
                        if self.running:
                            # Running trials may cost less than planned (diverged, truncated).
                            queue.appendleft(trial)
                            break
                        # Not journaled: it never ran, and replaying the searcher asks it again
                        # (in the replicas' phase the searcher is never asked again).
                        if self.replicas and not self.replicating:
                            if self._reserve() and not self._replicas_fit():
                                # The reserve was for a cheaper best; the trial may fit without.
                                self._drop_replicas()
                                queue.appendleft(trial)
                                continue
                            self._end_searcher(
                                KEPT_FOR_REPLICAS if self._reserve()
                                else "too little budget left for the next trial")
                            continue
                        stopped = self._replica_summary() \
                            or "too little budget left for the next trial"
                        break
                    if plan.original is not None:
                        self._start(trial, plan, cost)
                        self._complete(trial, Evaluation(_reused(
                            self.store.trial(plan.original))))
                        continue
                    self._submit(shared, self._start(trial, plan, cost))
                if not self.running:
                    break
                waiting = {r.future: r for r in self.running.values() if r.future is not None}
                done, _ = wait(list(waiting), return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: waiting[f].trial.id):
                    result = self._collect(shared, waiting[future])
                    if result is None:
                        continue  # its worker was lost: running again
                    failures = [] if result.ok else [*failures, result]
                    if len(failures) >= self.max_failures and not stopped:
                        stopped = likely_cause(failures)
        except KeyboardInterrupt:
            for running in list(self.running.values()):
                self.store.interrupt_trial(running.trial.id, spent=self.ledger.spent)
            self.running.clear()
            self.store.set_meta("state", "interrupted")
            self._close_executor()
            for cb in self.callbacks:
                cb.on_search_end(None)
            raise SearchInterrupted(self.store.path) from None
        except BaseException:
            self._close_executor()
            raise
        self._close_executor()
        return self._finish(stopped)

    def _close_executor(self) -> None:
        if self.owns_executor:
            self.executor.close()

    def _ask(self) -> Trial | None:
        """Ask the searcher, noting where the ask falls among the search's events."""
        trial = self.searcher.ask()
        if trial is not None:
            self.ask_seq[trial.id] = self._next_seq()
            self.last_id = max(self.last_id, trial.id)
        return trial

    def _next_trial(self) -> Trial | None:
        """The searcher's next trial, or once its share of the budget is spent, a replica; None
        to wait for running trials (or when nothing is left to run)."""
        if not self.replicating:
            if self.replicas and self._reserve() and self._searcher_share_spent():
                self._end_searcher(KEPT_FOR_REPLICAS)
            else:
                trial = self._ask()
                if trial is not None or self.running:
                    return trial
                self._end_searcher("the searcher has nothing more to propose")
                if not self.replicas:
                    return None
        if any(replica_rules.KEY not in r.trial.info for r in self.running.values()):
            return None  # the best configuration may still change
        if self.replica_plan is None and not self._replicas_fit():
            self._drop_replicas()
            if not self.replicating:
                return self._next_trial()  # the searcher gets the rest of the budget
            return None
        return self._replica()

    def _replicas_fit(self) -> bool:
        """Whether at least one replica of the best full-budget trial fits in what is left."""
        self._tick()
        plan = self._plan_replicas(self.ledger.remaining - self._committed())
        return plan is not None and plan.count > 0

    def _drop_replicas(self) -> None:
        """No replica fits (the best became a costlier configuration, or none trained in full):
        this search trains none, and a searcher stopped only for them goes on."""
        target = self._replica_target()
        self.replicas_dropped = ("no trial trained to the full budget" if target is None else
                                 f"trial {target.id}'s training does not fit in what is left")
        self.replicas = 0
        if self.searcher_done == KEPT_FOR_REPLICAS:
            # Safe to ask again: no replica was journaled, and the ask that did not fit went
            # back to the queue, so the journal's asks stay the searcher's asks in order.
            self.replicating = False
            self.searcher_done = ""

    def _end_searcher(self, why: str) -> None:
        if not self.replicating and self.replicas:
            self.store.set_meta("searcher_done", why)  # a resume among the replicas says it too
        self.searcher_done = why
        self.replicating = True

    def _searcher_share_spent(self) -> bool:
        """Whether what is left after the replicas' reserve is too little for a searcher trial."""
        room = self.ledger.remaining - self._committed() - self._reserve()
        if self.ledger.unit is Unit.SECONDS:
            typical = statistics.median(self.durations) if self.durations else 0.0
            return room < 0.5 * typical
        return room <= 0

    def _reserve(self) -> float:
        """What the searcher's phase leaves to the replicas, in the ledger's unit."""
        if not self.replicas or self.replicating:
            return 0.0
        plan = self._plan_replicas(replica_rules.SHARE * self.ledger.limit.amount, padded=True)
        unit = self.ledger.unit
        return 0.0 if plan is None else plan.count * replica_rules.padded(plan.cost, unit)

    def _plan_replicas(self, room: float, *, padded: bool = False
                       ) -> replica_rules.ReplicaPlan | None:
        """Replicas of the best full-budget trial so far, as many as fit in `room` (with the
        reserve's margin when `padded`)."""
        target = self._replica_target()
        if target is None:
            return None
        each = replica_rules.cost(target, self.ledger.unit, self._lineage_seconds(target.id),
                                  self._budget(target.trial))
        room_each = replica_rules.padded(each, self.ledger.unit) if padded else each
        return replica_rules.ReplicaPlan(
            target.id, replica_rules.fit(self.replicas, room, room_each), each)

    def _replica_target(self) -> TrialRecord | None:
        """The best searcher trial so far trained to the full budget (what replicas repeat)."""
        return replica_rules.target(
            self.top, lambda r: self._budget(r.trial) >= self.objective.max_budget)

    def _lineage_seconds(self, trial_id: int) -> float:
        """Seconds the trial's model took to train, its parents' training included."""
        if trial_id not in self.lineage:
            record = self.store.trial(trial_id)
            own = record.result.seconds if record.result is not None else 0.0
            parent = record.trial.parent
            self.lineage[trial_id] = own + (
                self._lineage_seconds(self.alias.get(parent, parent)) if parent is not None
                else 0.0)
        return self.lineage[trial_id]

    def _replica(self) -> Trial | None:
        """The next replica to train, None once the planned ones are under way or done."""
        if self.replica_plan is None:
            # Fixed once: replicas all repeat one configuration, however many fit.
            self._tick()
            plan = self._plan_replicas(self.ledger.remaining)
            if plan is None:
                return None
            self.replica_plan = plan
        plan = self.replica_plan
        if len(self.replica_ids) >= plan.count:
            return None
        self._tick()
        if self.ledger.unit is Unit.SECONDS and self.ledger.remaining < plan.cost:
            return None  # it would be cut short: an undertrained replica only dilutes
        source = self.store.trial(plan.target).trial
        self.last_id += 1
        trial = Trial(id=self.last_id, config=source.config, budget=source.budget,
                      info={replica_rules.KEY: plan.target, "replicas": plan.count})
        self.replica_ids.append(trial.id)
        self.ask_seq[trial.id] = self._next_seq()
        return trial

    def _replica_summary(self) -> str:
        """Why the search stopped once it trained replicas ("" when it trained none)."""
        if not self.replica_ids or self.replica_plan is None:
            return ""
        n = len(self.replica_ids)
        return (f"{self.searcher_done}; then {n} replica{'s' * (n != 1)} of trial "
                f"{self.replica_plan.target} trained with new seeds")

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _committed(self) -> float:
        """Planned cost of the trials running now (already promised to them)."""
        return sum(r.cost for r in self.running.values())

    def _tick(self) -> None:
        """A time budget is wall-clock time: charge what passed since the last look."""
        if self.ledger.unit is Unit.SECONDS:
            start, spent = self._clock
            now = spent + time.monotonic() - start
            if now > self.ledger.spent:
                self.ledger.charge(now - self.ledger.spent)

    def _start(self, trial: Trial, plan: _Plan, cost: float) -> _Running:
        """Journal `trial` as running and tell the callbacks."""
        # Listed as running before it is journaled: a Ctrl-C in between still marks it.
        running = self.running[trial.id] = _Running(trial, plan, cost)
        self.store.add_trial(trial, seq=self.ask_seq.pop(trial.id, None))
        self.store.start_trial(trial.id, device=self.objective.device)
        for cb in self.callbacks:
            cb.on_trial_start(trial)
        return running

    def _submit(self, shared: Any, running: _Running) -> None:
        """Hand a journaled trial to the executor."""
        trial, parent = running.trial, running.plan.parent
        self._tick()
        # A searcher's trial stops where the replicas' reserve starts. A replica starts only when
        # its estimate fits, and one cut short is of no use: it gets OVERRUN times its estimate.
        deadline = None
        if self.ledger.unit is Unit.SECONDS:
            room = self.ledger.remaining - self._reserve()
            if replica_rules.KEY in trial.info and self.replica_plan is not None:
                room = max(room, replica_rules.OVERRUN * self.replica_plan.cost)
            deadline = time.time() + room
        seed = int(np.random.SeedSequence(
            self.trial_seq.entropy, spawn_key=(*self.trial_seq.spawn_key, trial.id),
        ).generate_state(1)[0])
        source: Path | bytes | None = None
        if parent is not None:
            # Without a shared disk the checkpoint travels with the task.
            source = parent[0] if self.executor.shared_filesystem else parent[0].read_bytes()
        hook = None
        if self.executor.in_process and self.callbacks:
            def hook(point: Mapping[str, float]) -> None:
                for cb in self.callbacks:
                    cb.on_epoch(trial, point)
        running.attempts += 1
        running.future = self.executor.submit(
            evaluate_trial, shared, trial, seed=seed, deadline_at=deadline, parent=source,
            with_state=self.continue_trials, on_epoch=hook,
        )

    def _collect(self, shared: Any, running: _Running) -> Result | None:
        """Finish a trial whose future is done; None when it runs again on another worker."""
        assert running.future is not None
        try:
            evaluation = running.future.result()
        except WorkerLost as exc:
            if running.attempts <= MAX_WORKER_RETRIES:
                self.store.start_trial(running.trial.id, device=self.objective.device)
                self._submit(shared, running)
                return None
            evaluation = Evaluation(Result.failure(
                TrialStatus.FAILED, f"worker lost ({running.attempts} attempts): {exc}"))
        except UserError:
            raise
        except Exception as exc:  # the executor itself failed on this trial
            evaluation = Evaluation(Result.failure(
                TrialStatus.FAILED, f"{type(exc).__name__}: {exc}"))
        if running.attempts > 1:  # say so in the journal: it ran more than once
            result = evaluation.result
            evaluation = dataclasses.replace(evaluation, result=dataclasses.replace(
                result, metrics={**result.metrics, "attempts": running.attempts}))
        return self._complete(running.trial, evaluation)

    def _cannot_start(self) -> str | None:
        """Why no further trial may start, whatever it is, or None."""
        ledger = self.ledger
        if ledger.exhausted:
            return "budget spent"
        # A time budget: every trial stops at the search's deadline anyway, so this only avoids
        # starting one that would almost surely be cut short.
        if ledger.unit is Unit.SECONDS and self.durations and not self.replicating \
                and ledger.remaining < 0.5 * statistics.median(self.durations):
            return "too little time left for another trial"
        return None

    def _budget(self, trial: Trial) -> float:
        return self.objective.max_budget if trial.budget is None else float(trial.budget)

    def _plan(self, trial: Trial) -> _Plan:
        """How `trial` will run: reusing an earlier result, continuing a parent, or afresh."""
        if replica_rules.KEY in trial.info:
            return _Plan(original=None, parent=None)  # a new seed, trained from scratch
        return _Plan(original=self._duplicate_of(trial), parent=self._parent(trial))

    def _planned_cost(self, trial: Trial, plan: _Plan) -> float:
        """What `trial` will cost in the ledger's unit, as far as it is known before it runs."""
        unit = self.ledger.unit
        if unit is Unit.SECONDS or plan.original is not None:
            return 0.0  # time is bounded by the deadline instead; a duplicate costs nothing
        if unit is Unit.TRIALS:
            return 1.0
        # A continued trial pays only the increment over its parent.
        return self._budget(trial) - (0.0 if plan.parent is None else plan.parent[1])

    def _cost(self, result: Result) -> float:
        return charge(result, self.ledger.unit)

    def _parent(self, trial: Trial) -> tuple[Path, float] | None:
        """The checkpoint `trial` continues and the budget it was trained to, if usable."""
        if not self.continue_trials or trial.parent is None:
            return None
        source = self.alias.get(trial.parent, trial.parent)
        path = self.store.checkpoints().get(source)
        if path is None or not path.is_file():
            return None
        budget = self._budget(self.store.trial(source).trial)
        return (path, budget) if budget < self._budget(trial) else None

    def _hash_key(self, trial: Trial) -> tuple[str, float]:
        return spaces.architecture_hash(trial.config), self._budget(trial)

    def _duplicate_of(self, trial: Trial) -> int | None:
        """An earlier trial that trained the same architecture at the same budget."""
        return self.trained.get(self._hash_key(trial)) if self.dedup else None

    def _complete(self, trial: Trial, evaluation: Evaluation) -> Result:
        """Charge, tell the searcher, keep the checkpoint if needed, journal: one finished trial."""
        store, ledger = self.store, self.ledger
        result = evaluation.result
        if ledger.unit is Unit.SECONDS:
            self._tick()
        else:
            ledger.charge(self._cost(result))
        self._learn(trial, result)
        seq = self._next_seq()
        # The checkpoint file is written before the result is journaled, and its row goes in
        # the same transaction: a kill never leaves a finished trial without its checkpoint
        # (only, at worst, an orphan file, which a resume removes).
        keep = self._checkpoints_to_keep()
        path = None
        if evaluation.checkpoint is not None and trial.id in keep:
            path = self._write_checkpoint(trial.id, evaluation.checkpoint)
        store.finish_trial(trial.id, result, spent=ledger.spent, checkpoint=path, seq=seq,
                           worker=evaluation.worker or None)
        self.running.pop(trial.id, None)  # only now: until journaled, a Ctrl-C marks it
        if self.best is not None and self.best.id == trial.id:
            self.best = store.trial(trial.id)
        self._drop_checkpoints(keep)
        for cb in self.callbacks:
            cb.on_trial_end(trial, result, self.best, ledger)
        return result

    def _learn(self, trial: Trial, result: Result) -> None:
        """Update the loop's memory and the searcher with a finished trial (live or replayed)."""
        reused = result.metrics.get("reused_from")
        replica = replica_rules.KEY in trial.info
        if replica:
            pass  # not the searcher's: its time and architecture say nothing of the searcher's
        elif reused is not None:
            self.alias[trial.id] = self.alias.get(int(reused), int(reused))
        else:
            self.durations.append(result.seconds)
            if result.ok and self.dedup:
                self.trained[self._hash_key(trial)] = trial.id
        if result.ok:
            record = TrialRecord(trial, result.status, result, 0.0, None, None, None)
            if self.best is None or record.rank_key() < self.best.rank_key():
                self.best = record
            if self.ensemble and reused is None:
                self.top = sorted([*self.top, record], key=self._candidate_key)[:self.ensemble]
        if not replica:
            self.searcher.tell(trial, result)

    def _candidate_key(self, record: TrialRecord) -> tuple[float, float, float]:
        """Ensemble candidates: the highest budget first, then the best loss. Low-budget models
        are undertrained, yet their flat probabilities can win a cross-entropy vote."""
        budget = self.objective.max_budget if record.trial.budget is None else record.trial.budget
        return (-float(budget), *record.rank_key())

    def replay(self, records: Sequence[TrialRecord]) -> list[Trial]:
        """Rebuild the searcher and the loop from the journal; return the trials to run again.

        The journal's asks and tells are replayed in the order they happened (an asynchronous
        search told trials while others ran): the searcher must ask the same thing at each ask
        (same seed, same tells before it) and is told each stored result. Trials that were
        running or interrupted when the search stopped are run again.
        """
        events: list[tuple[int, int, TrialRecord]] = []
        replicas = [r for r in records if replica_rules.is_replica(r)]
        for record in records:
            self.last_id = max(self.last_id, record.id)
            if replica_rules.is_replica(record):
                continue
            events.append((record.ask_order, 0, record))
            usable = record.result is not None and record.status not in (
                TrialStatus.PENDING, TrialStatus.RUNNING, TrialStatus.INTERRUPTED)
            if usable:
                events.append((record.tell_order, 1, record))
        events.sort(key=lambda e: (e[0], e[1], e[2].id))
        asked: dict[int, Trial] = {}
        for _, kind, record in events:
            if kind == 0:
                trial = self.searcher.ask()
                if trial is None or trial.to_dict() != record.trial.to_dict():
                    raise UserError(
                        f"cannot resume {self.store.path}: the searcher no longer asks trial "
                        f"{record.id} as journaled (was the code or a setting changed?)"
                    )
                asked[record.id] = trial
            else:
                assert record.result is not None
                self._learn(asked.pop(record.id), record.result)
        # Replicas come after every searcher trial: the search was in their phase.
        for record in replicas:
            if not self.replicating:
                self.searcher_done = self.store.meta("searcher_done", KEPT_FOR_REPLICAS)
                self.replicating = True
                target = self.store.trial(int(record.trial.info[replica_rules.KEY]))
                self.replica_plan = replica_rules.ReplicaPlan(
                    target.id, int(record.trial.info.get("replicas", len(replicas))),
                    replica_rules.cost(target, self.ledger.unit,
                                       self._lineage_seconds(target.id),
                                       self._budget(target.trial)))
            self.replica_ids.append(record.id)
            if record.result is not None and record.status not in (
                    TrialStatus.PENDING, TrialStatus.RUNNING, TrialStatus.INTERRUPTED):
                self._learn(record.trial, record.result)
            else:
                asked[record.id] = record.trial
        self.seq = max([e[0] for e in events]
                       + [r.tell_order if r.tell_seq is not None else r.ask_order
                          for r in replicas], default=-1)
        if self.best is not None:
            self.best = self.store.trial(self.best.id)
        # Files a kill left between writing and journaling belong to nothing.
        known = {p.name for p in self.store.checkpoints().values()}
        for orphan in self.store.checkpoint_dir.glob("*.pt*"):
            if orphan.name not in known:
                orphan.unlink(missing_ok=True)
        return [asked[i] for i in sorted(asked)]

    def _checkpoints_to_keep(self) -> set[int]:
        """The best trial's and those a later trial may continue (through aliases)."""
        ids = set(self.searcher.continuable()) if self.continue_trials else set()
        if self.continue_trials:
            # A running trial reads its parent when it starts (again, if its worker is lost).
            ids |= {r.trial.parent for r in self.running.values() if r.trial.parent is not None}
        if self.best is not None:
            ids.add(self.best.id)
        ids |= {r.id for r in self.top}
        ids |= set(self.replica_ids)
        if self.replica_plan is not None:
            ids.add(self.replica_plan.target)
        return {self.alias.get(i, i) for i in ids}

    def _write_checkpoint(self, trial_id: int, payload: Mapping[str, Any]) -> Path:
        folder = self.store.checkpoint_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"trial-{trial_id}.pt"
        save_atomic(payload, path)
        return path

    def _drop_checkpoints(self, keep: set[int]) -> None:
        """Delete checkpoints nothing can use any more, so disk stays bounded."""
        for trial_id, path in self.store.checkpoints().items():
            if trial_id not in keep:
                self.store.remove_checkpoint(trial_id)  # journal first: never a dangling row
                path.unlink(missing_ok=True)

    def _replica_group(self) -> list[int]:
        """The replicas' original and the replicas that trained in full (none: empty)."""
        if self.replica_plan is None:
            return []
        done = [self.store.trial(i) for i in self.replica_ids]
        full = [r.id for r in done if r.status is TrialStatus.OK]
        return [self.replica_plan.target, *full] if full else []

    def _finish(self, stopped: str) -> SearchResult:
        if self.replicas_dropped:
            stopped = f"{stopped} (no replicas: {self.replicas_dropped})"
        test_accuracy = None
        ranked = self.store.ranked()
        best = ranked[0] if ranked else None
        if best is not None and isinstance(self.objective, TrainingObjective) \
                and self.objective.data.has_test_split:
            path = self.store.checkpoints().get(self.alias.get(best.id, best.id))
            if path is not None:
                test_accuracy = self.objective.test_accuracy(path)
        ensemble = None
        if self.ensemble >= 2 and isinstance(self.objective, TrainingObjective):
            paths = self.store.checkpoints()
            # Only models trained as long as the longest-trained candidates.
            top_budget = self._candidate_key(self.top[0])[0] if self.top else 0.0
            chosen = [r for r in self.top if self._candidate_key(r)[0] == top_budget]
            # The best trial always competes, so the ensemble is never worse on validation.
            if best is not None and all(r.id != best.id for r in chosen):
                chosen.insert(0, best)
            candidates = {r.id: paths[r.id] for r in chosen if r.id in paths}
            # Replicas and their original start the ensemble: seeds of one configuration are
            # interchangeable, so their plain average is not fitted to the validation split.
            group = self._replica_group()
            candidates.update({i: paths[i] for i in group if i in paths})
            summary_of = self.objective.ensemble(candidates, initial=group)
            ensemble = None if summary_of is None else summary_of.to_dict()
        summary = {
            "stopped": stopped,
            "best_trial": None if best is None else best.id,
            "test_accuracy": test_accuracy,
            "ensemble": ensemble,
            "replicas": {"of": self.replica_plan.target, "trials": list(self.replica_ids)}
            if self.replica_plan is not None
            else {"dropped": self.replicas_dropped} if self.replicas_dropped else None,
            "spent": self.ledger.spent,
            "finished_at": time.time(),
        }
        self.store.set_meta("summary", summary)
        self.store.set_meta("state", "finished")
        result = SearchResult(
            path=self.store.path,
            trials=tuple(self.store.trials()),
            best=best,
            test_accuracy=test_accuracy,
            spent=self.ledger.spent,
            limit=self.ledger.limit,
            stopped=stopped,
            ensemble=ensemble,
        )
        for cb in self.callbacks:
            cb.on_search_end(result)
        return result


def likely_cause(failures: Sequence[Result]) -> str:
    """Why a run of failed trials stopped the search, with the likely cause and what to do."""
    head = f"{len(failures)} trials in a row failed"
    errors = [(r.error or r.status.value).splitlines()[0] for r in failures]
    if all(r.status is TrialStatus.DIVERGED for r in failures):
        return (f"{head}: every one diverged (loss became NaN/inf); the learning rates are "
                "likely too high: narrow them, e.g. --set lr=0.0001:0.01")
    if all(e == "out of memory" for e in errors):
        return (f"{head}: every one ran out of memory; narrow the model sizes or batch_size "
                "(--set ...) or use a device with more memory")
    if len(set(errors)) == 1:
        return (f"{head}, each with the same error, likely a bug in the objective or the "
                f"data rather than in the candidates: {errors[-1]}")
    return f"{head}; the last error: {errors[-1]}"


def _reused(original: TrialRecord) -> Result:
    """The result of an identical architecture trained before, marked and free of charge."""
    assert original.result is not None
    metrics = {**original.result.metrics, "reused_from": original.id}
    return dataclasses.replace(original.result, epochs=0.0, seconds=0.0, cost=0.0,
                               metrics=metrics)


def save_atomic(payload: Mapping[str, Any], path: Path) -> None:
    """Write a torch file so a reader never sees half of it (write aside, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(dict(payload), tmp)
    os.replace(tmp, path)
