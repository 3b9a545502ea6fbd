"""The `Searcher` contract: a small ask/tell object that decides and does nothing else."""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
from ConfigSpace import Configuration, ConfigurationSpace

from nas.dominance import non_dominated
from nas.types import Result, Trial, plain
from searchers.proposers import DefaultFirst, Proposer
from searchers.queue import check_budget, complete_config, queue_first
from searchers.rankings import Outcome
from searchers.schedules import Promote, Sample, Schedule


class Searcher(ABC):
    """Proposes trials (`ask`) and learns from their results (`tell`).

    A searcher holds its settings, its model state and its own random generator; it never
    trains, times, stores or touches a device. Same seed + same tells => same asks.
    """

    name: ClassVar[str] = ""
    #: True when the searcher chooses per-trial budgets itself (Hyperband-style schedules);
    #: such a searcher takes keyword arguments ``min_budget`` and ``max_budget``.
    multi_fidelity: ClassVar[bool] = False
    #: True when proposals come from a model of past results (and so should beat random search).
    model_based: ClassVar[bool] = False
    #: An ask takes about a second or more (a Gaussian process): the conformance suite gives
    #: its checks `COSTLY_FACTOR` times the watchdog's limit and marks them `slow`, and the
    #: speed benchmarks leave it out.
    costly_asks: ClassVar[bool] = False
    #: True when `ask` takes ``admissible``, a test of a proposed configuration (a search's
    #: size limits): new configurations are proposed again until one passes.
    filters_proposals: ClassVar[bool] = False
    #: True when it ranks results by several objectives (`Result.objective_values`); such a
    #: searcher takes the keyword argument ``n_objectives`` (how many the search has).
    multi_objective: ClassVar[bool] = False
    #: The distribution an external baseline wraps ("optuna"); `nas bench` records its version.
    library: ClassVar[str] = ""
    #: Options a journal written before they existed implies (their value then), so a resume
    #: rebuilds the searcher that ran rather than one with today's defaults.
    legacy_options: ClassVar[Mapping[str, Any]] = MappingProxyType({})

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0) -> None:
        if not isinstance(space, ConfigurationSpace):
            raise TypeError(f"space must be a ConfigSpace ConfigurationSpace, got {type(space)}")
        self.seed = seed
        self._seq = np.random.SeedSequence(seed)
        self.rng = np.random.default_rng(self._seq.spawn(1)[0])
        # A private copy: sampling from ConfigSpace seeds the space, and the user's must not change.
        self.space = copy.deepcopy(space)
        self.space.seed(int(self.rng.integers(2**31 - 1)))
        self._next_id = 0
        self.pending: dict[int, Trial] = {}
        self.history: list[tuple[Trial, Result]] = []
        #: Configurations (with their budgets) to ask before any proposal: `enqueue`.
        self.enqueued: deque[tuple[dict[str, Any], float | None]] = deque()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Every searcher serves its queue first, whoever wrote its `ask`.
        for name in ("ask", "replay_ask"):
            if name in cls.__dict__:
                setattr(cls, name, queue_first(cls.__dict__[name]))

    def enqueue(self, config: Mapping[str, Any], *, budget: float | None = None) -> None:
        """Ask `config` before any proposal of the searcher's own, at `budget` (None: the
        search's full per-trial budget); left-out hyperparameters take their defaults. An
        invalid configuration is a ValueError saying what is wrong."""
        self.enqueued.append((complete_config(self.space, config), check_budget(budget)))

    def _take_enqueued(self) -> Trial:
        config, budget = self.enqueued.popleft()
        return self._new_trial(config, budget=budget, origin="enqueued")

    @property
    def options(self) -> dict[str, Any]:
        """The searcher's settings, as stored in the journal so a resume can rebuild it."""
        return {}

    @abstractmethod
    def ask(self) -> Trial | None:
        """The next trial to run, or None when nothing can start until a pending trial is told."""

    def tell(self, trial: Trial, result: Result) -> None:
        """Learn from a finished trial; failed results arrive with ``loss = inf``."""
        self.pending.pop(trial.id, None)
        self.history.append((trial, result))

    def front(self) -> list[int]:
        """Ids of told trials on the Pareto front, sorted: the non-dominated usable results
        (`Result.objective_values`) at the highest budget any usable result reached (a
        full-budget trial's counts as highest); of equal results, the earliest."""
        usable = [(trial, values) for trial, result in self.history
                  if (values := result.objective_values()) is not None]
        if not usable:
            return []
        level = max(_level(trial) for trial, _ in usable)
        top = sorted(((trial.id, values) for trial, values in usable
                      if _level(trial) == level), key=lambda pair: pair[0])
        return [top[k][0] for k in non_dominated([values for _, values in top])]

    def continuable(self) -> set[int]:
        """Ids of finished trials that a later trial may still continue (name as `parent`).

        The runner keeps their checkpoints and deletes the rest, so disk stays bounded.
        """
        return set()

    @property
    def next_id(self) -> int:
        """The id its next trial will have."""
        return self._next_id

    def rebudget(self, max_budget: float) -> bool:
        """Let its trials not yet proposed run up to `max_budget` (a search re-planned as real
        trial times came in); False when it cannot (the default)."""
        return False

    # -- fast replay (optional) ---------------------------------------------------------------

    def random_state(self) -> dict[str, Any] | None:
        """The state of every random generator it draws from, as JSON; None when it cannot
        say (then a resume replays every ask)."""
        return None

    def set_random_state(self, state: Mapping[str, Any]) -> None:
        """Put its generators back into a `random_state` it returned."""
        raise NotImplementedError(f"{type(self).__name__} does not restore random states")

    def replay_ask(self, journaled: Trial) -> Trial | None:
        """Take `journaled` as its next ask without proposing it (nothing drawn, no model
        fitted); None when it cannot (then the resume asks for real). After such replays a
        resume restores the generators with `set_random_state`."""
        return None

    # -- helpers for subclasses -------------------------------------------------------------

    def _new_trial(self, config: Configuration | Mapping[str, Any], *, budget: float | None = None,
                   parent: int | None = None, **info: Any) -> Trial:
        """Wrap a configuration into the next numbered trial and mark it pending."""
        trial = Trial(
            id=self._next_id,
            config=plain(dict(config)),
            budget=budget,
            parent=parent,
            info=plain(info),
        )
        self._next_id += 1
        self.pending[trial.id] = trial
        return trial

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}(seed={self.seed!r}{', ' if opts else ''}{opts})"


def _level(trial: Trial) -> float:
    """A trial's budget for `Searcher.front`: the run's own (None) above every number."""
    return math.inf if trial.budget is None else float(trial.budget)


#: Proposals one ask may try before it gives up on `admissible` (the engine then refuses the
#: trial, and the searcher is told a failure).
MAX_PROPOSALS = 32


class ScheduledSearcher(Searcher):
    """A budget schedule composed with a configuration proposer.

    `ask` acts on the schedule's next action (a new configuration from the proposer, a
    promotion, or nothing); `tell` records the result in both. Subclasses choose the two in
    `_make_schedule` and `_make_proposer`, which run once the space and generator exist.
    """

    filters_proposals = True

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0,
                 include_default: bool = False) -> None:
        super().__init__(space, seed=seed)
        self.include_default = bool(include_default)
        self.schedule: Schedule = self._make_schedule()
        proposer = self._make_proposer()
        self.proposer: Proposer = DefaultFirst(proposer, self.space) if self.include_default \
            else proposer

    @abstractmethod
    def _make_schedule(self) -> Schedule:
        """The schedule: which budget each trial gets, which trial moves up."""

    @abstractmethod
    def _make_proposer(self) -> Proposer:
        """The proposer of new configurations (wrapped in `DefaultFirst` by `include_default`)."""

    def ask(self, admissible: Callable[[Mapping[str, Any]], bool] | None = None
            ) -> Trial | None:
        """The trial the schedule's next action starts; None when it waits or is done.

        With `admissible`, a new configuration is proposed again (up to `MAX_PROPOSALS` times)
        until one passes, so that a schedule's slot goes to a configuration that can train.
        """
        action = self.schedule.next(self._next_id)
        if isinstance(action, Promote):
            return self._new_trial(action.config, budget=action.budget, parent=action.trial_id,
                                   **action.info, origin="promoted")
        if isinstance(action, Sample):
            # The running trials, oldest first: a model may steer away from them (TPE's liar).
            pending = [t.config for t in self.pending.values()]
            proposal = self.proposer.propose(action.budget, pending)
            for _ in range(MAX_PROPOSALS - 1):
                if admissible is None or admissible(proposal.config):
                    break
                proposal = self.proposer.propose(action.budget, pending)
            return self._new_trial(proposal.config, budget=action.budget, **action.info,
                                   origin=proposal.origin)
        return None

    def tell(self, trial: Trial, result: Result) -> None:
        """Record the result in the schedule and show it to the proposer (a failure as inf).

        A `multi_objective` searcher passes `Result.objective_values` instead (None: failure).
        """
        super().tell(trial, result)
        loss: Outcome = result.loss if result.ok else math.inf
        if self.multi_objective:
            loss = result.objective_values()
            expected = getattr(self, "n_objectives", None)
            if loss is not None and expected is not None and len(loss) != expected:
                raise ValueError(f"trial {trial.id}: {len(loss)} objective values for a "
                                 f"search of {expected} objectives")
        self.schedule.record(trial.id, trial.config, loss)
        budget = None if trial.budget is None else float(trial.budget)
        self.proposer.observe(trial.config, budget, loss)

    def continuable(self) -> set[int]:
        """What the schedule may still promote."""
        return self.schedule.continuable()

    def random_state(self) -> dict[str, Any] | None:
        """Its own generator's and its space's sampler's states."""
        kind, keys, pos, has_gauss, gauss = self.space.random.get_state()
        return {"rng": plain(self.rng.bit_generator.state),
                "space": [str(kind), [int(k) for k in keys], int(pos), int(has_gauss),
                          float(gauss)]}

    def set_random_state(self, state: Mapping[str, Any]) -> None:
        """Restore both generators from `random_state`'s form."""
        self.rng.bit_generator.state = dict(state["rng"])
        kind, keys, pos, has_gauss, gauss = state["space"]
        self.space.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss,
                                     gauss))

    def replay_ask(self, journaled: Trial) -> Trial | None:
        """The schedule's next action with `journaled`'s configuration for a new sample: the
        proposer is skipped (a default-first proposer notes its default as proposed)."""
        action = self.schedule.next(self._next_id)
        if isinstance(action, Promote):
            return self._new_trial(action.config, budget=action.budget, parent=action.trial_id,
                                   **action.info, origin="promoted")
        if isinstance(action, Sample):
            skip = getattr(self.proposer, "skip", None)
            if skip is not None:
                skip()
            return self._new_trial(journaled.config, budget=action.budget, **action.info,
                                   origin=journaled.info.get("origin"))
        return None
