"""A search's space changed mid-search (`nas resume DB --space-update ...`), and how any later
resume rebuilds its searcher exactly.

A change is journaled as an event (`SpaceChange`: both spaces, the updates, the first trial id
of the rebuilt searcher, its seed) before any trial runs on the new space. From then on every
resume does the same thing, so the first resume after a change and all later ones agree: the
searcher is built on the latest space with the event's seed, numbered from the event's trial
id, and shown (`Searcher.observe`) the warm start's imports and every trial told before the
change whose configuration the new space holds; the trials after it are replayed as usual.
Trials left running or interrupted at the change are not run again: the old searcher asked them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import spaces
from nas.engine.options import enqueue_all, rebuild_searcher
from nas.errors import UserError
from nas.journal import JournalView, SearchSettings, telling_order
from nas.records import MetaKey, TrialRecord
from nas.storage import Storage
from nas.types import TrialKind
from nas.warmstart import WarmStart, tell_imports
from searchers import Searcher
from searchers.queue import translate_config
from spaces.updates import update_space


@dataclass(frozen=True)
class SpaceChange:
    """One change of a search's space: from `old` to `new` (ConfigSpace's JSON) by `updates`,
    before trial `at_trial`, with `spent` of the budget used; the rebuilt searcher's seed."""

    at_trial: int
    updates: tuple[str, ...]
    old: Mapping[str, Any]
    new: Mapping[str, Any]
    searcher_seed: int
    spent: float
    at: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON the journal keeps (`MetaKey.SPACE_CHANGES`)."""
        return {"at_trial": self.at_trial, "updates": list(self.updates), "old": dict(self.old),
                "new": dict(self.new), "searcher_seed": self.searcher_seed,
                "spent": self.spent, "at": self.at}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SpaceChange:
        """Read `to_dict`'s form."""
        return cls(at_trial=int(d["at_trial"]), updates=tuple(d.get("updates") or ()),
                   old=dict(d["old"]), new=dict(d["new"]),
                   searcher_seed=int(d["searcher_seed"]), spent=float(d.get("spent", 0.0)),
                   at=float(d.get("at", 0.0)))


def space_changes(view: JournalView) -> list[SpaceChange]:
    """The journal's space changes, oldest first."""
    return [SpaceChange.from_dict(d) for d in view.space_changes]


def plan_change(view: JournalView, updates: Sequence[str]) -> SpaceChange:
    """The change `updates` make to the space the search searches now (`JournalView.space`;
    a mistake in them is one UserError); `journal_changes` writes it."""
    if not updates:
        raise UserError("give at least one --space-update")
    new = update_space(spaces.space_from_json(view.space), updates)
    # A seed of its own per change: the rebuilt searcher does not repeat the first one's draws.
    n = len(view.space_changes) + 1
    seed = int(np.random.SeedSequence([view.settings.seed, n]).generate_state(1)[0])
    return SpaceChange(at_trial=max((r.id for r in view.records), default=-1) + 1,
                       updates=tuple(updates), old=dict(view.space),
                       new=spaces.space_to_json(new), searcher_seed=seed,
                       spent=float(view.spent or 0.0), at=time.time())


def journal_changes(store: Storage, changes: Sequence[SpaceChange]) -> None:
    """Write the search's space changes (before any trial runs on the latest space)."""
    store.set_meta(MetaKey.SPACE_CHANGES, [c.to_dict() for c in changes])


def rebuild(settings: SearchSettings, records: Sequence[TrialRecord],
            changes: Sequence[SpaceChange]) -> tuple[Searcher, int]:
    """The searcher a resume replays into, and the first trial id it asked (trials before it
    are shown to it, not replayed): see the module docstring."""
    s = settings.searcher
    warm = WarmStart.of(settings)
    if not changes:
        searcher = rebuild_searcher(s.name, spaces.space_from_json(settings.space), s.seed,
                                    s.options)
        # As when it started: the imports told first, the queue asked again first.
        tell_imports(searcher, warm.imported)
        enqueue_all(searcher, settings.enqueued)
        return searcher, 0
    last = changes[-1]
    space = spaces.space_from_json(last.new)
    searcher = rebuild_searcher(s.name, space, last.searcher_seed, s.options)
    searcher.start_at(last.at_trial)
    told = telling_order(r for r in records if r.kind is TrialKind.SEARCH
                         and r.id < last.at_trial)
    earlier = [*((i.config, i.result, i.budget) for i in warm.imported),
               *((r.trial.config, r.result, r.trial.budget) for r in told)]
    for config, result, budget in earlier:
        fitted = translate_config(space, config)[0]
        if fitted is not None and result is not None:
            searcher.observe(fitted, result, budget=budget)
    enqueue_all(searcher, (settings.enqueued or ())[last.at_trial:])
    return searcher, last.at_trial
