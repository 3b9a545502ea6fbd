"""Proposers: which new configuration a trial gets, whatever schedule sets its budget.

`RandomProposer` samples the space, `DefaultFirst` puts the space's default before another
proposer's choices, and `KDEProposer` draws from kernel-density models of good and bad results
(TPE, Bergstra et al. 2011; BOHB, Falkner et al. 2018). TPE and BOHB differ only in settings:
which results form the model (`SingleModel`, `LargestBudget`), how they are split into good and
bad (`GammaSplit`, `TopPercentSplit`), and whether a fraction of proposals is random.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from ConfigSpace import ConfigurationSpace

from searchers._kde import (
    Observations,
    ParzenEstimator,
    check_weighting,
    density_ratio_candidates,
)
from searchers.encoding import SpaceCoder
from searchers.fidelity import FidelityCheck
from searchers.rankings import Outcome


@dataclass(frozen=True)
class Proposal:
    """A proposed configuration and where it came from: "random", "model" or "default"."""

    config: dict[str, Any]
    origin: str


class Proposer(Protocol):
    """Proposes configurations for a budget and learns from results at any budget."""

    def propose(self, budget: float | None,
                pending: Sequence[Mapping[str, Any]] = ()) -> Proposal:
        """A new configuration for `budget` (None: the run's own), given the configurations of
        the trials still running."""

    def observe(self, config: Mapping[str, Any], budget: float | None, loss: Outcome) -> None:
        """A finished trial's result; a failure arrives as ``loss = inf``."""


class RandomProposer:
    """Proposes configurations uniformly (in ConfigSpace's sense) from the space."""

    def __init__(self, space: ConfigurationSpace) -> None:
        self.space = space

    def propose(self, budget: float | None,
                pending: Sequence[Mapping[str, Any]] = ()) -> Proposal:
        """A fresh sample of the space."""
        return Proposal(dict(self.space.sample_configuration()), "random")

    def observe(self, config: Mapping[str, Any], budget: float | None, loss: Outcome) -> None:
        """Random proposals learn nothing."""


class DefaultFirst:
    """Proposes the space's default configuration once, then whatever `proposer` proposes.

    A space's default is usually a known-good setting: evaluating it first (as Syne Tune's
    searchers and SMAC's initial designs do) gives every search one sound candidate.
    """

    def __init__(self, proposer: Proposer, space: ConfigurationSpace) -> None:
        self.proposer = proposer
        self.space = space
        self.proposed_default = False

    def propose(self, budget: float | None,
                pending: Sequence[Mapping[str, Any]] = ()) -> Proposal:
        """The default on the first call, the wrapped proposer's choice after."""
        if not self.proposed_default:
            self.proposed_default = True
            return Proposal(dict(self.space.get_default_configuration()), "default")
        return self.proposer.propose(budget, pending)

    def skip(self) -> None:
        """A proposal replayed from a journal took the place of this one: the default, first,
        counts as proposed."""
        self.proposed_default = True

    def observe(self, config: Mapping[str, Any], budget: float | None, loss: Outcome) -> None:
        """Pass the result on to the wrapped proposer."""
        self.proposer.observe(config, budget, loss)


# -- which results form the model --------------------------------------------------------------

@dataclass(frozen=True)
class SingleModel:
    """TPE's rule: one model of every result, used once it holds `n_startup` of them."""

    n_startup: int

    def key(self, budget: float | None) -> float | None:
        """Every result goes to the one model."""
        return None

    def choose(self, models: Mapping[float | None, Observations]) -> Observations | None:
        """The model, or None (propose at random) during start-up."""
        obs = models.get(None)
        return obs if obs is not None and obs.n >= self.n_startup else None


@dataclass(frozen=True)
class LargestBudget:
    """BOHB's rule: a model per budget; the largest budget with `min_points` + 2 results.

    With a `check`, only budgets it trusts (`FidelityCheck.lowest_trusted`) may be modelled:
    a model of a misleading budget proposes where that budget, not the top one, is good.
    """

    min_points: int
    check: FidelityCheck | None = None

    def key(self, budget: float | None) -> float | None:
        """The result's own budget."""
        return budget

    def choose(self, models: Mapping[float | None, Observations]) -> Observations | None:
        """The model of the largest usable budget, or None (propose at random)."""
        # The paper asks for N_min + 2 points so that both densities have N_min of their own.
        usable = [b for b, o in models.items() if o.n >= self.min_points + 2]
        if self.check is not None and usable:
            budgets = [b for b in models if b is not None]
            floor = self.check.lowest_trusted(budgets) if budgets else 0.0
            usable = [b for b in usable if _budget_order(b) >= floor]
        return models[max(usable, key=_budget_order)] if usable else None


def _budget_order(budget: float | None) -> float:
    # None is the run's own budget, which a multi-fidelity schedule never goes beyond.
    return math.inf if budget is None else budget


# -- how a model's results split into good and bad ---------------------------------------------

@dataclass(frozen=True)
class GammaSplit:
    """TPE's split: the best ceil(gamma * n) results (at least one) are good, the rest bad."""

    gamma: float

    def sizes(self, n: int) -> tuple[int, int | None]:
        """How many good and how many bad (None: all the rest)."""
        return max(1, math.ceil(self.gamma * n)), None


@dataclass(frozen=True)
class TopPercentSplit:
    """BOHB's split: the best and the worst percentages, each at least `min_points` (so the
    two may overlap)."""

    top_n_percent: float
    min_points: int

    def sizes(self, n: int) -> tuple[int, int | None]:
        """How many good and how many bad."""
        return (max(self.min_points, math.floor(self.top_n_percent * n / 100)),
                max(self.min_points, math.floor((100 - self.top_n_percent) * n / 100)))


class KDEProposer:
    """Good/bad kernel densities l and g; proposes the best of `n_candidates` draws from l by
    l(x) / g(x), or a random sample while no model is usable.

    `random_fraction`: None never proposes at random by chance and draws nothing (TPE); a
    number, even 0, costs one draw of the generator per proposal (BOHB). With `constant_liar`,
    trials still running join the bad model for that proposal, so parallel proposals spread
    out. The kernel settings (`multivariate`, `min_bandwidth`, `prior_weight`, `magic_clip`,
    `bandwidth_rule`, `bandwidth_scale`, `categoricals`) are `ParzenEstimator`'s; `weighting`
    (see `WEIGHTINGS`) weighs the good model's observations.
    """

    def __init__(self, coder: SpaceCoder, rng: np.random.Generator, *,
                 models: SingleModel | LargestBudget, split: GammaSplit | TopPercentSplit,
                 n_candidates: int, bandwidth_factor: float = 1.0,
                 random_fraction: float | None = None, constant_liar: bool = False,
                 multivariate: bool = True, min_bandwidth: float = 1e-3,
                 prior_weight: float = 0.0, magic_clip: bool = False,
                 bandwidth_rule: str = "normal", bandwidth_scale: float = 1.0,
                 categoricals: str = "joint", weighting: str = "uniform",
                 observations: Callable[[int], Observations] = Observations) -> None:
        self.coder = coder
        self.space = coder.space
        self.rng = rng
        self.models = models
        self.split = split
        self.n_candidates = n_candidates
        self.bandwidth_factor = bandwidth_factor
        self.random_fraction = random_fraction
        self.constant_liar = constant_liar
        self.multivariate = multivariate
        self.min_bandwidth = min_bandwidth
        self.prior_weight = prior_weight
        self.magic_clip = magic_clip
        self.bandwidth_rule = bandwidth_rule
        self.bandwidth_scale = bandwidth_scale
        self.categoricals = categoricals
        self.weighting = check_weighting(weighting)
        #: Builds a model's store of results from the encoded dimension: `Observations` splits
        #: by loss, `ParetoObservations` (multi-objective) by Pareto rank.
        self.make_observations = observations
        #: Told results, by the model they belong to (`models.key` of their budget).
        self.observations: dict[float | None, Observations] = {}
        #: πBO (`weigh_by_prior`): the prior's log-density on vectors, and β.
        self.log_prior: Callable[[np.ndarray], np.ndarray] | None = None
        self.prior_beta = 0.0

    def weigh_by_prior(self, log_prior: Callable[[np.ndarray], np.ndarray], beta: float) -> None:
        """Weight the acquisition l(x) / g(x) by pi(x)^(beta / n), n the results in the model
        (πBO, Hvarfner et al. 2022): the prior steers early models, the data later ones."""
        self.log_prior = log_prior
        self.prior_beta = float(beta)

    def has_model(self) -> bool:
        """True when a model is usable (proposals then come from it, not at random)."""
        return self.coder.dim > 0 and self.models.choose(self.observations) is not None

    def observe(self, config: Mapping[str, Any], budget: float | None, loss: Outcome) -> None:
        """Add a result to its model (failures count as the worst results)."""
        key = self.models.key(budget)
        obs = self.observations.get(key)
        if obs is None:
            obs = self.observations[key] = self.make_observations(self.coder.dim)
        obs.add(self.coder.encode(config), loss)  # type: ignore[arg-type]

    def propose(self, budget: float | None,
                pending: Sequence[Mapping[str, Any]] = ()) -> Proposal:
        """The best density-ratio draw of the chosen model; random while there is none."""
        if self.coder.dim == 0 or (self.random_fraction is not None
                                   and self.rng.random() < self.random_fraction):
            return self._random()
        obs = self.models.choose(self.observations)
        if obs is None:
            return self._random()
        n_good, n_bad = self.split.sizes(obs.n)
        good, bad = obs.split(n_good, n_bad)
        weights = obs.improvements(n_good) if self.weighting == "ei" else None
        if self.constant_liar and pending:
            # Constant liar, for this proposal only: a running trial is one more observation
            # with the worst loss, so it joins the bad model and draws move away from it. The
            # split's count stays that of the finished trials: counting the liars too would
            # pull a mediocre trial into the good model and undo the spread.
            bad = np.concatenate([bad, np.array([self.coder.encode(c) for c in pending])])
        if len(bad) == 0:
            bad = good
        log_weight = None
        if self.log_prior is not None:
            log_prior, exponent = self.log_prior, self.prior_beta / obs.n

            def log_weight(vectors: np.ndarray) -> np.ndarray:
                return exponent * log_prior(vectors)

        for vector in density_ratio_candidates(self._density(good, weights), self._density(bad),
                                               self.n_candidates, self.rng,
                                               bandwidth_factor=self.bandwidth_factor,
                                               log_weight=log_weight):
            config = self.coder.decode(vector, self.rng)
            if config is not None:
                return Proposal(config, "model")
        # Every candidate was forbidden: fall back to the space's own (valid) sampler.
        return self._random()

    def _density(self, data: np.ndarray, weights: np.ndarray | None = None) -> ParzenEstimator:
        return ParzenEstimator(data, self.coder.is_categorical, self.coder.n_choices,
                               multivariate=self.multivariate, min_bandwidth=self.min_bandwidth,
                               prior_weight=self.prior_weight, magic_clip=self.magic_clip,
                               bandwidth_rule=self.bandwidth_rule,
                               bandwidth_scale=self.bandwidth_scale,
                               categoricals=self.categoricals, weights=weights)

    def _random(self) -> Proposal:
        return Proposal(dict(self.space.sample_configuration()), "random")


class FullBudgetWhenMisled:
    """`proposer`, until the fidelity check finds a budget that misleads: from then on `top`
    (TPE's model of the top budget's results alone) once it holds enough of them, as a
    full-budget search would propose. Both see every result; `top` keeps the top budget's."""

    def __init__(self, proposer: Proposer, top: KDEProposer, check: FidelityCheck,
                 budgets: Callable[[], Sequence[float]]) -> None:
        self.proposer = proposer
        self.top = top
        self.check = check
        self.budgets = budgets

    def propose(self, budget: float | None,
                pending: Sequence[Mapping[str, Any]] = ()) -> Proposal:
        """The top model's choice once a budget misleads and it is fitted, else `proposer`'s."""
        if self._top_leads():
            return self.top.propose(budget, pending)
        return self.proposer.propose(budget, pending)

    def _top_leads(self) -> bool:
        ladder = sorted(self.budgets())
        # A misleading budget taints the models of the budgets next to it too (their own
        # trust may pass): only the top budget's results say where the top is good.
        misled = self.check.lowest_trusted(ladder) > ladder[0] * (1 + 1e-9)
        return misled and self.top.models.choose(self.top.observations) is not None

    def has_model(self) -> bool:
        """True when the proposal would come from a model (the top one's or `proposer`'s)."""
        has_model = getattr(self.proposer, "has_model", None)
        return self._top_leads() or (has_model is not None and bool(has_model()))

    def weigh_by_prior(self, log_prior: Callable[[np.ndarray], np.ndarray], beta: float) -> None:
        """πBO's weight on both models (`KDEProposer.weigh_by_prior`)."""
        self.top.weigh_by_prior(log_prior, beta)
        weigh = getattr(self.proposer, "weigh_by_prior", None)
        if weigh is not None:
            weigh(log_prior, beta)

    def observe(self, config: Mapping[str, Any], budget: float | None, loss: Outcome) -> None:
        """Every result to `proposer`; those at the top budget to `top` as well."""
        self.proposer.observe(config, budget, loss)
        if budget is None or budget >= max(self.budgets()) * (1 - 1e-9):
            self.top.observe(config, None, loss)
