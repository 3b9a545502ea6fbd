"""Multi-objective searchers: they rank results by `Result.objective_values` (all minimised).

`mo-random` samples at random; `motpe` is TPE whose good/bad split is by Pareto rank (Ozaki et
al. 2020, 2022); `moasha` is ASHA promoting by Pareto rank (Schmucker et al. 2021); `mobohb` is
Hyperband promoting by Pareto rank with MOTPE's proposer on BOHB's largest-budget model; and
`hyperband-rw` is the scalarising baseline: Hyperband ranking each bracket by a randomly
weighted augmented Chebyshev scalarisation (ParEGO, Knowles 2006). `Searcher.front` gives the
Pareto front of what each was told.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from ConfigSpace import ConfigurationSpace

from searchers._kde import ParetoObservations
from searchers.asha import ASHA
from searchers.encoding import SpaceCoder
from searchers.hyperband import Hyperband
from searchers.priors import Prior
from searchers.proposers import GammaSplit, KDEProposer, LargestBudget, Proposer
from searchers.random import RandomSearch
from searchers.rankings import ChebyshevRanking, ParetoRanking
from searchers.registry import register
from searchers.schedules import ASHASchedule, HyperbandSchedule, Schedule
from searchers.tpe import BANDWIDTH_SCALE, TPE


def pareto_ranking(_: int) -> ParetoRanking:
    """A `RankingFactory` of `ParetoRanking`s."""
    return ParetoRanking()


class MultiObjective:
    """What every multi-objective searcher adds: `n_objectives` (journaled); its Pareto front
    is `Searcher.front`.

    Mixed in before a `Searcher` class, whose constructor receives the other arguments.
    """

    multi_objective: ClassVar[bool] = True

    def __init__(self, space: ConfigurationSpace, *, n_objectives: int = 2,
                 **options: Any) -> None:
        if int(n_objectives) < 1:
            raise ValueError(f"n_objectives must be at least 1, got {n_objectives!r}")
        if options.get("check_fidelity") or options.get("ladders"):
            # The fidelity check compares scalar losses across budgets.
            raise ValueError("a multi-objective searcher cannot check fidelities")
        self.n_objectives = int(n_objectives)
        super().__init__(space, **options)  # type: ignore[call-arg]

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal, `n_objectives` among them."""
        return {**super().options, "n_objectives": self.n_objectives}  # type: ignore[misc]


@register("mo-random")
class MORandomSearch(MultiObjective, RandomSearch):
    """Random search (the default configuration first) reporting its Pareto front."""


@register("motpe")
class MOTPE(MultiObjective, TPE):
    """Multi-objective TPE: full-budget; the good model holds the best `gamma` share of the
    results by non-dominated rank, a partly included front filled by hypervolume contribution.
    With no one loss to measure from, its good trials weigh alike whatever `weighting` says."""

    def proposer_on(self, coder: SpaceCoder, rng: np.random.Generator) -> KDEProposer:
        """TPE's proposer, splitting its results by Pareto rank."""
        proposer = super().proposer_on(coder, rng)
        proposer.make_observations = ParetoObservations
        return proposer


@register("moasha")
class MOASHA(MultiObjective, ASHA):
    """ASHA promoting the best by Pareto rank (ties by hypervolume contribution) within the top
    1/eta of a rung; random proposals, a promotion continues its parent."""

    def _make_schedule(self) -> Schedule:
        return ASHASchedule(self.budgets, self.eta, ranking=pareto_ranking)


@register("mobohb")
class MOBOHB(MultiObjective, Hyperband):
    """Hyperband promoting by Pareto rank, proposing with MOTPE's Pareto split fitted on the
    largest budget with `min_points_in_model` + 2 results (BOHB's rule); a `random_fraction`
    of proposals is random. `gamma` and `n_candidates` are MOTPE's."""

    model_based = True

    def __init__(self, space: ConfigurationSpace, *, min_budget: float, max_budget: float,
                 eta: float = 3, seed: int | None = 0, n_objectives: int = 2,
                 gamma: float = 0.15, n_candidates: int = 24, random_fraction: float = 1 / 3,
                 min_points_in_model: int | None = None, include_default: bool = False,
                 full_first: bool = False,
                 prior: Prior | Mapping[str, Any] | str | None = None) -> None:
        if not 0 < gamma < 1 or not 0 <= random_fraction <= 1 or n_candidates < 1:
            raise ValueError("need 0 < gamma < 1, 0 <= random_fraction <= 1, n_candidates >= 1")
        self.gamma = float(gamma)
        self.n_candidates = int(n_candidates)
        self.random_fraction = float(random_fraction)
        self.min_points_in_model = min_points_in_model
        super().__init__(space, n_objectives=n_objectives, min_budget=min_budget,
                         max_budget=max_budget, eta=eta, seed=seed,
                         include_default=include_default, full_first=full_first, prior=prior)

    def _make_schedule(self) -> Schedule:
        return HyperbandSchedule(self.layout, ranking=pareto_ranking)

    def _make_proposer(self) -> Proposer:
        coder = SpaceCoder(self.space)
        min_points = coder.dim + 1 if self.min_points_in_model is None \
            else int(self.min_points_in_model)
        # TPE's kernels (a uniform prior, the magic clip, narrowed widths) on BOHB's choice of
        # model and random share: the model sees few points per budget, as TPE's does.
        return KDEProposer(
            coder, self.rng, models=LargestBudget(min_points), split=GammaSplit(self.gamma),
            n_candidates=self.n_candidates, random_fraction=self.random_fraction,
            prior_weight=1.0, magic_clip=True, bandwidth_scale=BANDWIDTH_SCALE,
            observations=ParetoObservations)

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {**super().options, "gamma": self.gamma, "n_candidates": self.n_candidates,
                "random_fraction": self.random_fraction,
                "min_points_in_model": self.min_points_in_model}


#: Spawn-key prefix of the scalarisation weights' generators: apart from the base class's
#: children of the seed (spawn keys (0,), (1,), ...), whatever they draw.
_WEIGHTS_KEY = 2**20


@register("hyperband-rw")
class HyperbandRandomWeights(MultiObjective, Hyperband):
    """Hyperband whose brackets each rank their rungs by an augmented Chebyshev scalarisation
    with random weights (ParEGO-style), objectives normalised to the rung's observed range."""

    def weights(self, bracket: int) -> np.ndarray:
        """The weights of bracket number `bracket`: uniform on the simplex, drawn from a
        generator of the seed and the bracket alone, so a replay skipping asks draws the same."""
        seq = np.random.SeedSequence(self._seq.entropy, spawn_key=(_WEIGHTS_KEY, bracket))
        return np.random.default_rng(seq).dirichlet(np.ones(self.n_objectives))

    def _make_schedule(self) -> Schedule:
        return HyperbandSchedule(self.layout,
                                 ranking=lambda bracket: ChebyshevRanking(self.weights(bracket)))
