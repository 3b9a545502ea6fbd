"""Tree-structured Parzen Estimator (Bergstra et al. 2011), multivariate as in Falkner et al.
2018 and Watanabe 2023: model the good and the bad trials with kernel densities l and g, draw
candidates from l, propose the one maximising l(x) / g(x).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace

from searchers._kde import BANDWIDTH_RULES, check_categoricals, check_weighting
from searchers.base import ScheduledSearcher
from searchers.encoding import SpaceCoder
from searchers.priors import Prior
from searchers.proposers import GammaSplit, KDEProposer, Proposer, SingleModel
from searchers.registry import register
from searchers.schedules import FullBudget, Schedule

#: TPE's continuous kernels at this share of the normal-reference width: with the few full-budget
#: results TPE models, tighter densities found better configurations on the continuous problems
#: at no loss on the mixed ones (docs/decisions.md, "TPE's kernel width").
BANDWIDTH_SCALE = 0.55
#: Each categorical parameter with a density of its own beside the continuous ones' joint one:
#: at or below one joint product kernel on every problem measured, better on the mixed ones
#: (docs/decisions.md, "TPE's categorical densities").
CATEGORICALS = "independent"
#: How the good model weighs its observations (see `searchers._kde.WEIGHTINGS`).
WEIGHTING = "uniform"


@register("tpe")
class TPE(ScheduledSearcher):
    """TPE over any ConfigSpace space; full-budget (every trial at the run's trial budget).

    `gamma` is the fraction of trials modelled as good; the first `n_startup` trials are random.
    With `constant_liar`, trials still running count as bad ones, so parallel asks spread out.
    `bandwidth_scale` narrows the continuous kernels below the normal-reference rule's width.
    `categoricals="independent"` models each categorical parameter with a density of its own,
    beside the joint one of the continuous parameters ("joint": all in one product kernel).
    `weighting="ei"` weighs each good trial by how far its loss lies below the best of the rest
    (past any tied with the worst good one).
    With a `prior`, start-up trials come from it and the model's choice is weighted by it (πBO).
    """

    model_based = True
    # Journals written before these options existed ran with the rule's own widths and one
    # product kernel over every parameter.
    legacy_options = MappingProxyType({"bandwidth_scale": 1.0, "categoricals": "joint"})

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0, n_startup: int = 10,
                 gamma: float = 0.15, n_candidates: int = 24, multivariate: bool = True,
                 prior_weight: float = 1.0, bandwidth_factor: float = 1.0,
                 min_bandwidth: float = 1e-3, constant_liar: bool = True,
                 bandwidth_rule: str = "normal", bandwidth_scale: float = BANDWIDTH_SCALE,
                 categoricals: str = CATEGORICALS, weighting: str = WEIGHTING,
                 prior: Prior | Mapping[str, Any] | str | None = None) -> None:
        if n_startup < 1 or n_candidates < 1:
            raise ValueError("n_startup and n_candidates must be at least 1")
        if not 0 < gamma < 1:
            raise ValueError("gamma must lie in (0, 1)")
        if prior_weight < 0 or bandwidth_factor <= 0 or min_bandwidth <= 0 \
                or not bandwidth_scale > 0:
            raise ValueError("prior_weight must be >= 0, bandwidths positive")
        if bandwidth_rule not in BANDWIDTH_RULES:
            raise ValueError(f"bandwidth_rule must be one of {', '.join(BANDWIDTH_RULES)}")
        self.n_startup = int(n_startup)
        self.gamma = float(gamma)
        self.n_candidates = int(n_candidates)
        self.multivariate = bool(multivariate)
        self.prior_weight = float(prior_weight)
        self.bandwidth_factor = float(bandwidth_factor)
        self.min_bandwidth = float(min_bandwidth)
        self.constant_liar = bool(constant_liar)
        self.bandwidth_rule = str(bandwidth_rule)
        self.bandwidth_scale = float(bandwidth_scale)
        self.categoricals = check_categoricals(str(categoricals))
        self.weighting = check_weighting(str(weighting))
        super().__init__(space, seed=seed, prior=prior)

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {"n_startup": self.n_startup, "gamma": self.gamma,
                "n_candidates": self.n_candidates, "multivariate": self.multivariate,
                "prior_weight": self.prior_weight, "bandwidth_factor": self.bandwidth_factor,
                "min_bandwidth": self.min_bandwidth, "constant_liar": self.constant_liar,
                "bandwidth_rule": self.bandwidth_rule, "bandwidth_scale": self.bandwidth_scale,
                "categoricals": self.categoricals, "weighting": self.weighting,
                **self._prior_options()}

    def _make_schedule(self) -> Schedule:
        return FullBudget()

    def _make_proposer(self) -> Proposer:
        return self.proposer_on(SpaceCoder(self.space), self.rng)

    def proposer_on(self, coder: SpaceCoder, rng: np.random.Generator) -> KDEProposer:
        """This TPE's proposer over `coder`'s space, drawing from `rng` (a checked BOHB borrows
        one, with its own generator, for its full-budget proposals)."""
        # Bergstra et al.'s bandwidth floor ("magic clip") keeps TPE's early models broad.
        return KDEProposer(
            coder, rng, models=SingleModel(self.n_startup),
            split=GammaSplit(self.gamma), n_candidates=self.n_candidates,
            bandwidth_factor=self.bandwidth_factor, constant_liar=self.constant_liar,
            multivariate=self.multivariate, min_bandwidth=self.min_bandwidth,
            prior_weight=self.prior_weight, magic_clip=True, bandwidth_rule=self.bandwidth_rule,
            bandwidth_scale=self.bandwidth_scale, categoricals=self.categoricals,
            weighting=self.weighting,
        )
