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
from searchers.encoding import SpaceCoder
from searchers.priors import (
    PIBO_BETA,
    Prior,
    PriorDistribution,
    PriorEvidence,
    PriorMixture,
    parse_prior,
)
from searchers.proposers import DefaultFirst, Proposal, Proposer
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
    #: True when it takes keyword ``prior`` (a `searchers.priors.Prior` or a form `parse_prior`
    #: reads): its new configurations lean towards the user's preferred values.
    takes_prior: ClassVar[bool] = False
    #: Options a journal written before they existed implies (their value then), so a resume
    #: rebuilds the searcher that ran rather than one with today's defaults.
    legacy_options: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    #: True when `observe` shows an earlier search's results to its proposals (a warm start);
    #: False: it keeps them (`imported`) but proposes as if it had none.
    learns_imports: ClassVar[bool] = False

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
        self.enqueued: deque[tuple[dict[str, Any], float | None, str]] = deque()
        #: Results of trials it never asked (an earlier search's), as `observe` got them.
        self.imported: list[tuple[dict[str, Any], float | None, Result]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Every searcher serves its queue first, whoever wrote its `ask`.
        for name in ("ask", "replay_ask"):
            if name in cls.__dict__:
                setattr(cls, name, queue_first(cls.__dict__[name]))

    def enqueue(self, config: Mapping[str, Any], *, budget: float | None = None,
                origin: str = "enqueued") -> None:
        """Ask `config` before any proposal of the searcher's own, at `budget` (None: the
        search's full per-trial budget); left-out hyperparameters take their defaults. An
        invalid configuration is a ValueError saying what is wrong. `origin` marks the trial
        (``info["origin"]``): "enqueued", or "retrained" for an imported trial trained again."""
        self.enqueued.append((complete_config(self.space, config), check_budget(budget),
                              str(origin)))

    def _take_enqueued(self) -> Trial:
        config, budget, origin = self.enqueued.popleft()
        return self._new_trial(config, budget=budget, origin=origin)

    def observe(self, config: Mapping[str, Any], result: Result, *,
                budget: float | None = None) -> None:
        """Learn from a result it never asked for (an earlier search's trial, at `budget`;
        None: the full budget): never pending, never promoted. The base class only keeps it;
        a `learns_imports` searcher also shows it to its model."""
        self.imported.append((complete_config(self.space, config), check_budget(budget),
                              result))

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

    def start_at(self, trial_id: int) -> None:
        """Number its trials from `trial_id` (a searcher rebuilt mid-journal, after a change
        of the space, goes on after the trials of the one before); only before its first ask."""
        if self._next_id or self.pending or self.history:
            raise RuntimeError("start_at is for a searcher that has asked nothing yet")
        self._next_id = int(trial_id)

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
    learns_imports = True
    takes_prior = True

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0,
                 include_default: bool = False,
                 prior: Prior | Mapping[str, Any] | str | None = None) -> None:
        """`prior`: the user's preferred values (`searchers.priors`); new configurations come
        from it with a share that decays as results come in, faster when its samples do worse
        than uniform ones, and a model's acquisition is weighted by it (πBO)."""
        super().__init__(space, seed=seed)
        self.include_default = bool(include_default)
        self.prior = None if prior is None else parse_prior(prior, self.space)
        #: What told results say of the prior (None without one).
        self.prior_evidence: PriorEvidence | None = None
        # The sample each trial started from, by trial id: a promotion is credited to it.
        self._sample_origins: dict[int, str | None] = {}
        self.schedule: Schedule = self._make_schedule()
        proposer = self._make_proposer()
        if self.prior is not None:
            proposer = self._with_prior(proposer, self.prior)
        self.proposer: Proposer = DefaultFirst(proposer, self.space) if self.include_default \
            else proposer

    def _with_prior(self, proposer: Proposer, prior: Prior) -> Proposer:
        """`proposer` drawing from `prior` too (`PriorMixture`), its model weighted by it."""
        distribution = PriorDistribution(prior, SpaceCoder(self.space))
        # A multi-fidelity searcher's results weigh by their share of its full budget.
        self.prior_evidence = PriorEvidence(getattr(self, "max_budget", None))
        mixture = PriorMixture(proposer, distribution, self.rng, self.prior_evidence)
        weigh = getattr(proposer, "weigh_by_prior", None)
        if weigh is not None:
            weigh(mixture.log_prior, PIBO_BETA)
        return mixture

    def _prior_options(self) -> dict[str, Any]:
        """``{"prior": ...}`` with a prior, else nothing: options of searches without one stay
        as they were."""
        return {} if self.prior is None else {"prior": self.prior.to_dict()}

    @abstractmethod
    def _make_schedule(self) -> Schedule:
        """The schedule: which budget each trial gets, which trial moves up."""

    @abstractmethod
    def _make_proposer(self) -> Proposer:
        """The proposer of new configurations (wrapped in `DefaultFirst` by `include_default`)."""

    def ask(self, admissible: Callable[[Mapping[str, Any]], bool] | None = None
            ) -> Trial | None:
        """The trial the schedule's next action starts; None when it waits or is done.

        With `admissible`, a new configuration is proposed again (up to `MAX_PROPOSALS` times,
        the second half drawn from the whole space) until one passes, so that a schedule's slot
        goes to a configuration that can train.
        """
        action = self.schedule.next(self._next_id)
        if isinstance(action, Promote):
            return self._new_trial(action.config, budget=action.budget, parent=action.trial_id,
                                   **action.info, origin="promoted")
        if isinstance(action, Sample):
            # The running trials, oldest first: a model may steer away from them (TPE's liar).
            pending = [t.config for t in self.pending.values()]
            proposal = self.proposer.propose(action.budget, pending)
            for k in range(1, MAX_PROPOSALS):
                if admissible is None or admissible(proposal.config):
                    break
                # A model sure of a region the filter shuts out proposes there every time:
                # after half the tries, samples of the whole space take over.
                proposal = self.proposer.propose(action.budget, pending) \
                    if k < MAX_PROPOSALS // 2 \
                    else Proposal(dict(self.space.sample_configuration()), "random")
            return self._new_trial(proposal.config, budget=action.budget, **action.info,
                                   origin=proposal.origin)
        return None

    def tell(self, trial: Trial, result: Result) -> None:
        """Record the result in the schedule and show it to the proposer (a failure as inf).

        A `multi_objective` searcher passes `Result.objective_values` instead (None: failure).
        """
        super().tell(trial, result)
        loss = self._outcome(trial.id, result)
        self.schedule.record(trial.id, trial.config, loss)
        budget = None if trial.budget is None else float(trial.budget)
        self.proposer.observe(trial.config, budget, loss)
        if self.prior_evidence is not None:
            origin = trial.info.get("origin")
            if origin == "promoted" and trial.parent is not None:
                origin = self._sample_origins.get(trial.parent)
            self._sample_origins[trial.id] = origin
            self.prior_evidence.record(origin, budget, loss)

    def observe(self, config: Mapping[str, Any], result: Result, *,
                budget: float | None = None) -> None:
        """Show an imported result to the proposer (the schedule never sees it: it has no
        checkpoint here to promote)."""
        super().observe(config, result, budget=budget)
        config, budget, _ = self.imported[-1]
        self.proposer.observe(config, budget, self._outcome(None, result))

    def continuable(self) -> set[int]:
        """What the schedule may still promote."""
        return self.schedule.continuable()

    def _outcome(self, trial_id: int | None, result: Result) -> Outcome:
        """What the schedule and proposer rank: the loss (a failure: inf), or a
        `multi_objective` searcher's `Result.objective_values` (a failure: None)."""
        if not self.multi_objective:
            return result.loss if result.ok else math.inf
        values = result.objective_values()
        expected = getattr(self, "n_objectives", None)
        if values is not None and expected is not None and len(values) != expected:
            which = "an imported result" if trial_id is None else f"trial {trial_id}"
            raise ValueError(f"{which}: {len(values)} objective values for a search of "
                             f"{expected} objectives")
        return values

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
