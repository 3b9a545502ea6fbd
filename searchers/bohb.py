"""BOHB (Falkner, Klein, Hutter, ICML 2018): Hyperband's schedule with new configurations
proposed by kernel-density models, one per budget, fitted on the largest budget that has enough
results; and the same proposer on ASHA's asynchronous schedule.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ConfigSpace import ConfigurationSpace

from searchers._kde import check_categoricals
from searchers.asha import ASHA
from searchers.encoding import SpaceCoder
from searchers.fidelity import FidelityCheck
from searchers.hyperband import Hyperband, SuccessiveHalving
from searchers.ladders import layout_pool
from searchers.priors import Prior
from searchers.proposers import (
    FullBudgetWhenMisled,
    KDEProposer,
    LargestBudget,
    Proposer,
    TopPercentSplit,
)
from searchers.registry import register
from searchers.schedules import hyperband_layout
from searchers.tpe import TPE

#: With `check_fidelity`, the top budget's results that TPE's model of them needs before it
#: proposes, once a low budget misleads (docs/decisions.md, "The top model starts sooner").
TOP_STARTUP = 5
#: The narrowest kernel of BOHB's densities, in the encoded [0, 1] space: at HpBandSter's 1e-3
#: the good model's kernels collapsed onto a few points and BOHB stalled near them
#: (docs/decisions.md, "BOHB's narrowest kernel").
MIN_BANDWIDTH = 0.01


class _BOHBProposals(SuccessiveHalving):
    """BOHB's proposer settings, for any successive-halving schedule.

    A `random_fraction` of proposals is random; the model splits the results of its budget
    into the best `top_n_percent` and the rest, each with at least `min_points_in_model`
    (default: modelled dimensions + 1), and proposes the best of `n_samples` draws. With a
    `prior`, start-up trials come from it and the model's choice is weighted by it (πBO).
    With `check_fidelity`, once a low budget misleads, TPE's model of the top budget's results
    proposes as soon as it holds `top_startup` of them. `categoricals` is the kernel's (TPE's
    option; "joint", one product kernel over all parameters, unless set), for both models.
    """

    model_based = True
    #: Journals written before `top_startup` existed started the top model after 10 results.
    legacy_options = MappingProxyType({"top_startup": 10})

    def __init__(self, space: ConfigurationSpace, *, min_budget: float, max_budget: float,
                 eta: float = 3, seed: int | None = 0, random_fraction: float = 1 / 3,
                 top_n_percent: float = 15, n_samples: int = 64, bandwidth_factor: float = 3,
                 min_bandwidth: float = MIN_BANDWIDTH, min_points_in_model: int | None = None,
                 include_default: bool = False, full_first: bool = False,
                 check_fidelity: bool = False, ladders: int = 0, ladder_pool: int = 1,
                 min_trust: float = FidelityCheck.min_trust, top_startup: int = TOP_STARTUP,
                 categoricals: str = "joint",
                 prior: Prior | Mapping[str, Any] | str | None = None) -> None:
        if not 0 <= random_fraction <= 1:
            raise ValueError("random_fraction must lie in [0, 1]")
        if not 0 < top_n_percent < 100:
            raise ValueError("top_n_percent must lie in (0, 100)")
        if n_samples < 1 or bandwidth_factor <= 0 or min_bandwidth <= 0:
            raise ValueError("n_samples, bandwidth_factor and min_bandwidth must be positive")
        self.random_fraction = float(random_fraction)
        self.top_n_percent = float(top_n_percent)
        self.n_samples = int(n_samples)
        self.bandwidth_factor = float(bandwidth_factor)
        self.min_bandwidth = float(min_bandwidth)
        self.min_points_in_model = min_points_in_model
        if top_startup < 1:
            raise ValueError("top_startup must be at least 1")
        self.top_startup = int(top_startup)
        self.categoricals = check_categoricals(str(categoricals))
        super().__init__(space, min_budget=min_budget, max_budget=max_budget, eta=eta, seed=seed,
                         include_default=include_default, full_first=full_first,
                         check_fidelity=check_fidelity, ladders=ladders,
                         ladder_pool=ladder_pool, min_trust=min_trust, prior=prior)

    def _make_proposer(self) -> Proposer:
        coder = SpaceCoder(self.space)
        min_points = coder.dim + 1 if self.min_points_in_model is None \
            else int(self.min_points_in_model)
        bohb = KDEProposer(
            coder, self.rng, models=LargestBudget(min_points, self.fidelity),
            split=TopPercentSplit(self.top_n_percent, min_points), n_candidates=self.n_samples,
            bandwidth_factor=self.bandwidth_factor, random_fraction=self.random_fraction,
            min_bandwidth=self.min_bandwidth, categoricals=self.categoricals,
        )
        if self.fidelity is None:
            return bohb
        # Where only the top budget ranks as the top does, BOHB's per-budget models have no
        # use: propose as full-budget TPE does, from the top budget's results.
        # Uniform weights, as measured for BOHB (TPE's own default may differ).
        top = TPE(self.space, seed=None, n_startup=self.top_startup,
                  categoricals=self.categoricals, weighting="uniform").proposer_on(coder, self.rng)
        return FullBudgetWhenMisled(bohb, top, self.fidelity, lambda: self.budgets)

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {**super().options, "random_fraction": self.random_fraction,
                "top_n_percent": self.top_n_percent, "n_samples": self.n_samples,
                "bandwidth_factor": self.bandwidth_factor, "min_bandwidth": self.min_bandwidth,
                "min_points_in_model": self.min_points_in_model,
                "top_startup": self.top_startup, "categoricals": self.categoricals}


@register("bohb")
class BOHB(_BOHBProposals, Hyperband):
    """Hyperband whose new configurations come from BOHB's per-budget kernel-density model."""


@register("async-bohb")
class AsyncBOHB(_BOHBProposals, ASHA):
    """ASHA whose new configurations come from BOHB's per-budget kernel-density model."""


@register("bohb-checked")
class CheckedBOHB(BOHB):
    """BOHB that checks its low budgets against the top one before trusting them.

    Three to six configurations first climb every rung (`ladders`), each picked at a spread
    rank of `ladder_pool` sampled at the lowest budget; budgets whose ranking the top does not
    keep start no bracket, and once one misleads, new configurations come from TPE's model of
    the top budget's results (docs/decisions.md, "Misleading low budgets"). Its models give each
    categorical parameter a density of its own (`categoricals`, "independent" unless set).
    """

    #: Journals written before the pool came in climbed every sampled ladder; those written
    #: before `categoricals` modelled all parameters with one product kernel.
    legacy_options = MappingProxyType({"ladder_pool": 1, "top_startup": 10,
                                       "categoricals": "joint"})

    def __init__(self, space: ConfigurationSpace, *, min_budget: float, max_budget: float,
                 eta: float = 3, seed: int | None = 0, ladders: int = 6,
                 ladder_pool: int | None = None, **options: Any) -> None:
        """`ladder_pool` None: the first round of ladders samples as many configurations as
        Hyperband's most exploratory bracket's first rung (`searchers.ladders.layout_pool`)."""
        options.setdefault("check_fidelity", True)
        # Below the joint kernel's median on counting-ones and both mixed problems at 50 and
        # 100 seeds (docs/decisions.md, "TPE's categorical densities"); plain BOHB was level.
        options.setdefault("categoricals", "independent")
        if ladder_pool is None:
            ladder_pool = layout_pool(hyperband_layout(min_budget, max_budget, eta), ladders)
        super().__init__(space, min_budget=min_budget, max_budget=max_budget, eta=eta,
                         seed=seed, ladders=ladders, ladder_pool=ladder_pool, **options)
