"""The search's arguments, checked, and the searcher and executor they name."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from ConfigSpace import ConfigurationSpace

import searchers as searcher_registry
from nas.budget import Budget, Unit
from nas.engine.seeds import seed_sequences
from nas.errors import UserError
from nas.executors import Executor, make_executor
from nas.executors.threads import ThreadChoice
from nas.trainer import TrainerOptions, resolve_device
from searchers import Searcher


def check_ensemble(size: Any) -> int:
    """The ensemble's candidate count, checked."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise UserError(f"ensemble is a number of candidate trials >= 0, got {size!r}")
    return int(size)


def check_replicas(count: Any, ensemble: int) -> int:
    """The replica count, checked against the ensemble it joins."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise UserError(f"replicas is a number of extra seeds >= 0 or 'auto', got {count!r}")
    if count and ensemble < 2:
        raise UserError("replicas join the final ensemble: they need ensemble >= 2")
    return int(count)


def check_max_failures(count: int) -> None:
    """Refuse a failure limit below one."""
    if count < 1:
        raise UserError(f"max_failures must be at least 1, got {count}")


def check_trial_budget(limit: Budget, per_trial: Budget) -> None:
    """Refuse a trial budget whose unit cannot be charged to `limit`."""
    if per_trial.unit not in (Unit.EPOCHS, Unit.SECONDS):
        raise UserError("--trial-budget is epochs or seconds per trial, e.g. 20ep or 30s")
    if limit.unit is Unit.EPOCHS and per_trial.unit is not Unit.EPOCHS:
        raise UserError("a total budget in epochs needs a trial budget in epochs, e.g. 20ep")
    if limit.unit is per_trial.unit and per_trial.amount > limit.amount:
        raise UserError(f"the trial budget {per_trial} is more than the whole budget {limit}: "
                        "no trial could finish; give a smaller --trial-budget or a larger "
                        "--budget")


#: The longest run name: its journal's file name (plus ".db") must fit any file system.
MAX_NAME = 120


def check_name(name: str | None) -> None:
    """Refuse a run name that is not one plain file name (it names ``runs/<name>.db``)."""
    if name is None:
        return
    if not isinstance(name, str) or not name.strip():
        raise UserError("--name must be a non-empty text")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise UserError(f"--name {name!r} must be a plain name, not a path (use --db for "
                        "a journal elsewhere)")
    if len(name) > MAX_NAME:
        raise UserError(f"--name is {len(name)} characters long; at most {MAX_NAME}")


def make_searcher(searcher: Searcher | str, space: ConfigurationSpace, seed: int,
                   options: Mapping[str, Any] | None, *, min_budget: float, max_budget: float,
                   n_objectives: int = 1) -> tuple[Searcher, np.random.SeedSequence]:
    """The searcher (built from its name if need be) and the seed sequence of the trials.

    A search of several objectives (`n_objectives`) needs a multi-objective searcher."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"a seed is a whole number >= 0, got {seed!r}")
    searcher_seq, trial_seq = seed_sequences(int(seed))
    if not isinstance(searcher, str):
        if options:
            raise UserError("searcher_options apply only when the searcher is given by name")
        if n_objectives > 1 and not searcher.multi_objective:
            raise UserError(f"{type(searcher).__name__} minimises one objective; for "
                            f"{n_objectives} choose a multi-objective searcher")
        return searcher, trial_seq
    opts = dict(options or {})
    cls = searcher_registry.get_class(searcher)
    if "prior" in opts and not cls.takes_prior:
        raise UserError(f"searcher {searcher!r} takes no prior; these do: "
                        f"{', '.join(prior_searchers())}")
    if n_objectives > 1:
        if not cls.multi_objective:
            raise UserError(
                f"searcher {searcher!r} minimises one objective; for {n_objectives} choose one "
                f"of {', '.join(multi_objective_searchers())}")
        opts.setdefault("n_objectives", n_objectives)
    if cls.multi_fidelity:
        opts.setdefault("min_budget", min_budget)
        opts.setdefault("max_budget", max_budget)
    built = searcher_registry.get(searcher, space, seed=int(searcher_seq.generate_state(1)[0]),
                                  **opts)
    return built, trial_seq


def enqueue_all(searcher: Searcher, entries: Sequence[Mapping[str, Any]] | None
                ) -> tuple[dict[str, Any], ...]:
    """Queue `entries` on `searcher`, in order: each a configuration, or ``{"config": ...,
    "budget": ..., "origin": ...}``; the journal form of its whole queue (completed
    configurations, those it held already first). A bad one is one UserError naming it."""
    for k, entry in enumerate(entries or ()):
        wrapped = isinstance(entry, Mapping) and "config" in entry \
            and set(entry) <= {"config", "budget", "origin"}
        config = entry["config"] if wrapped else entry
        budget = entry.get("budget") if wrapped else None
        origin = entry.get("origin", ENQUEUED) if wrapped else ENQUEUED
        try:
            searcher.enqueue(config, budget=budget, origin=origin)
        except (ValueError, TypeError) as exc:
            raise UserError(f"enqueued configuration {k}: {exc}") from None
    return tuple({"config": config, "budget": budget,
                  **({} if origin == ENQUEUED else {"origin": origin})}
                 for config, budget, origin in searcher.enqueued)


#: The origin of a trial the user enqueued (``Trial.info["origin"]``).
ENQUEUED = "enqueued"


def with_prior(options: Mapping[str, Any] | None, prior: Any) -> dict[str, Any] | None:
    """The searcher's options with `prior` among them (None: as they were)."""
    if prior is None:
        return None if options is None else dict(options)
    if options and "prior" in options:
        raise UserError("give the prior once: as prior= or in searcher_options, not both")
    return {**dict(options or {}), "prior": str(prior) if isinstance(prior, os.PathLike)
            else prior}


def prior_searchers() -> list[str]:
    """Names of the available searchers that take a prior (`Searcher.takes_prior`)."""
    return searchers_with("takes_prior")


def multi_objective_searchers() -> list[str]:
    """Names of the available searchers that rank by several objectives."""
    return searchers_with("multi_objective")


def searchers_with(capability: str) -> list[str]:
    """Names of the available searchers whose class has `capability` (a class attribute)."""
    out = []
    for name in searcher_registry.available():
        try:
            if getattr(searcher_registry.get_class(name), capability):
                out.append(name)
        except UserError:  # a peer's adapter whose library is not installed
            continue
    return out


def rebuild_searcher(name: str, space: ConfigurationSpace, seed: int | None,
                     options: Mapping[str, Any]) -> Searcher:
    """The searcher a journal's settings describe: an option the journal predates takes the
    value it had then (`Searcher.legacy_options`), not today's default."""
    legacy = searcher_registry.get_class(name).legacy_options
    return searcher_registry.get(name, space, seed=seed, **{**legacy, **options})


def trainer_options_of(value: TrainerOptions | Mapping[str, Any] | None) -> TrainerOptions:
    """The trainer's options from an object, a mapping or None (the defaults)."""
    if value is None:
        return TrainerOptions()
    if isinstance(value, TrainerOptions):
        return value
    try:
        return TrainerOptions(**value)
    except TypeError as exc:
        raise UserError(f"bad trainer option: {exc}") from None


def executor_for(executor: Executor | str, workers: int | None, scheduler: str | None,
                 device: str, threads: ThreadChoice | None = None,
                 workers_per_device: int | str | None = None) -> tuple[Executor, bool]:
    """The executor to run trials on, and whether the search owns it (and so closes it).

    Local workers on CUDA default to one per GPU, each pinned to its own (`workers_per_device`
    N or "auto": several per GPU, admitted by their estimated memory); Dask trials then ask
    for one ``GPU`` resource each.
    """
    if not isinstance(executor, str):
        if workers is not None or scheduler is not None or workers_per_device is not None:
            raise UserError("workers, workers_per_device and scheduler apply only when the "
                            "executor is given by name")
        return executor, False
    # Whatever the name: "inprocess" with workers becomes local workers inside make_executor.
    gpus: list[int] | None = None
    if device in ("auto", "cuda") and resolve_device(device).type == "cuda":
        gpus = list(range(torch.cuda.device_count()))
    chosen = {} if threads is None else {"threads": threads.threads, "reason": threads.reason,
                                         "measured": threads.measured}
    if workers_per_device is not None:
        if not gpus:
            raise UserError("--workers-per-device packs trials onto GPUs, and none is in use "
                            "(CPU trials share the cores: use --workers)")
        executor = "local"
        chosen["workers_per_device"] = workers_per_device
    return make_executor(executor, workers=workers, scheduler=scheduler, gpus=gpus,
                         **chosen), True
