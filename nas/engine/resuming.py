"""`resume`: a search rebuilt from its journal alone and run on; and what `search` and
`optimize` share with it (the objective's horizon, the progress display, the cost model)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import spaces
from nas.budget import Budget
from nas.data import Dataset
from nas.data import load as load_dataset
from nas.data.dataset import LOCATION_OPTIONS
from nas.engine.callbacks import Callback
from nas.engine.costs import CostModel, CostPlan, Replan
from nas.engine.ledger import Ledger
from nas.engine.loop import Loop
from nas.engine.options import executor_for
from nas.engine.reopen import extend_budget
from nas.engine.result import SearchResult
from nas.engine.seeds import seed_sequences
from nas.errors import UserError
from nas.executors import Executor
from nas.journal import JournalView, MetaKey, RunKind, SearchSettings, SearchState
from nas.objective import FunctionObjective, Objective, TrainingObjective
from nas.spacechange import journal_changes, plan_change, rebuild, space_changes
from nas.storage import Storage
from nas.trainer import TrainerOptions
from searchers import Searcher


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
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    space_update: Sequence[str] = (),
    budget: Budget | str | None = None,
    workers_per_device: int | str | None = None,
) -> SearchResult:
    """Continue a search that stopped (killed, interrupted, crashed) from its journal.

    Finished trials are kept, the searcher is rebuilt by replaying them, trials that were
    running are run again and the ledger goes on from what was spent. A search whose data
    was given as arrays needs `data` again; an `optimize` run needs its `objective`.
    Any executor may continue it, whichever ran it before. Where a named dataset is read from
    (`data_root`) and whether it may be downloaded come from the caller, never the journal.
    `space_update` (``["width=16:512", "ops+=sep_conv5x5"]``: `spaces.updates`) changes its
    space first: the searcher is rebuilt on the new space and shown every earlier trial that
    fits it (`nas.spacechange`); the journal records the change, so later resumes are exact.
    `budget`, a new total in the search's unit, extends it, finished or not (`extend_budget`).
    """
    store = Storage.open(path)
    try:
        store.lock()
        view = JournalView.of(store)
        if budget is not None:
            extend_budget(store, view, budget)
            view = JournalView.of(store)
        if view.finished_search:
            if space_update:
                raise UserError(f"{store.path}: the search finished and spent its budget; a "
                                "space update continues a search that was stopped or killed")
            return SearchResult.of(view)
        edited = store.edited_settings()
        if edited:
            raise UserError(f"cannot resume {store.path}: its settings were changed since the "
                            f"search started ({', '.join(edited)}); later trials would not be "
                            "comparable with the earlier ones: start a new search instead")
        settings, changes = view.settings, space_changes(view)
        if space_update:
            changes.append(plan_change(view, space_update))
        searcher, cut = rebuild(settings, view.records, changes)
        _, trial_seq = seed_sequences(settings.seed)
        obj = _objective_of(settings, store.path, data, objective, searcher,
                            location={"root": data_root, "download": download})
        limit = view.limit
        if limit is None:
            raise UserError(f"{store.path} records no budget that can be read: it is not a "
                            "search journal, or it was damaged")
        device = (settings.trainer or {}).get("device", "cpu")
        runner, owns = executor_for(executor, workers, scheduler, device,
                                    workers_per_device=workers_per_device)
        if space_update:
            journal_changes(store, changes)
        loop = Loop(store, searcher, obj, Ledger.for_budget(limit, spent=float(view.spent or 0)),
                    trial_seq, with_progress(callbacks, progress), runner, owns_executor=owns,
                    settings=settings, costs=_resumed_costs(store, obj))
        rerun = loop.replay(view.records, cut=cut)
        return loop.run(rerun)
    finally:
        store.close()


def _objective_of(settings: SearchSettings, path: Path, data: Dataset | None,
                  objective: Callable[..., Any] | None, searcher: Searcher,
                  location: Mapping[str, Any] | None = None) -> Objective:
    """The objective a journal was run with, rebuilt from its settings; a named dataset is
    read from the caller's `location` (root, download), whatever the journal says."""
    if settings.kind is RunKind.OPTIMIZE:
        if objective is None:
            raise UserError(f"{path} is an optimize run: resume it from Python with "
                            "nas.resume(path, objective=your_function)")
        return FunctionObjective(objective, settings.full_budget)
    if data is None:
        spec = settings.data
        try:
            if spec is None:
                raise UserError("the journal names no data")
            # A journal is untrusted: it must not choose a folder to create or download into.
            options = {k: v for k, v in spec.options.items() if k not in LOCATION_OPTIONS}
            data = load_dataset(spec.name, **options, **dict(location or {}))
        except UserError as exc:
            raise UserError(f"cannot reload the data of {path}: {exc}; restore it, or pass "
                            "the data from Python: nas.resume(path, data=...)") from None
    recorded = dict(settings.data.sizes) if settings.data is not None else {}
    if recorded and {k: int(v) for k, v in recorded.items()} != dict(data.sizes):
        raise UserError(f"cannot resume {path}: its data no longer matches the journal (splits "
                        f"of {dict(data.sizes)} samples, journaled {recorded}); restore the "
                        "data the search started with")
    return TrainingObjective(data, Budget.parse(settings.trial_budget or ""),
                             TrainerOptions(**dict(settings.trainer or {})),
                             horizon=horizon_of(searcher))


def cost_model_of(plan: CostPlan, data: Dataset) -> CostModel:
    """The cost model of `plan` for models of `data`'s shape."""
    from nas.defaults import replanned_epochs

    return CostModel(plan, lambda config: spaces.model_work(config, data.input_shape,
                                                            data.num_classes),
                     spaces.architecture_hash, replanned_epochs)


def _resumed_costs(store: Storage, objective: Objective) -> CostModel | None:
    """The cost model a search journaled, at the scale of its last re-plan."""
    journaled = store.meta(MetaKey.COST_PLAN)
    if journaled is None or not isinstance(objective, TrainingObjective):
        return None
    costs = cost_model_of(CostPlan.from_dict(journaled), objective.data)
    costs.resume([Replan.from_dict(r) for r in store.meta(MetaKey.REPLANS, [])])
    return costs


def finished(path: str | os.PathLike[str]) -> bool:
    """Whether the search journaled at `path` has finished."""
    with Storage.open(path) as store:
        return store.meta(MetaKey.STATE) == SearchState.FINISHED.value


def with_progress(callbacks: Sequence[Callback], progress: bool) -> list[Callback]:
    """`callbacks`, and the progress display (a bar on a terminal) when `progress`."""
    if not progress:
        return list(callbacks)
    from nas.reporting.console import default_reporter

    return [*callbacks, default_reporter()]


def horizon_of(searcher: Searcher) -> float | None:
    """Epochs the lr schedule spans: a multi-fidelity searcher's max budget, else per trial."""
    return getattr(searcher, "max_budget", None) if searcher.multi_fidelity else None
