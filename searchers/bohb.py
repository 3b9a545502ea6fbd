"""BOHB (Falkner, Klein, Hutter, ICML 2018): Hyperband's schedule with new configurations
proposed by kernel-density models, one per budget, fitted on the largest budget that has enough
results.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ConfigSpace import ConfigurationSpace

from searchers._kde import Observations, ParzenEstimator, density_ratio_candidates
from searchers._vector import SpaceCoder
from searchers.hyperband import Hyperband
from searchers.registry import register


class KDEProposer:
    """BOHB's proposer: per-budget good/bad densities; a `random_fraction` of draws is random."""

    def __init__(self, space: ConfigurationSpace, rng: Any, *, random_fraction: float,
                 top_n_percent: float, n_samples: int, bandwidth_factor: float,
                 min_bandwidth: float, min_points_in_model: int | None) -> None:
        self.space = space
        self.rng = rng
        self.coder = SpaceCoder(space)
        self.random_fraction = random_fraction
        self.top_n_percent = top_n_percent
        self.n_samples = n_samples
        self.bandwidth_factor = bandwidth_factor
        self.min_bandwidth = min_bandwidth
        self.min_points = (self.coder.dim + 1) if min_points_in_model is None \
            else int(min_points_in_model)
        self.by_budget: dict[float, Observations] = {}

    def observe(self, config: Mapping[str, Any], budget: float, loss: float) -> None:
        """Add a result to the model of its budget."""
        obs = self.by_budget.setdefault(budget, Observations(self.coder.dim))
        obs.add(self.coder.encode(config), loss)

    def propose(self, budget: float) -> tuple[dict[str, Any], str]:
        """A configuration from the model of the largest budget with enough points."""
        if self.coder.dim == 0 or self.rng.random() < self.random_fraction:
            return dict(self.space.sample_configuration()), "random"
        # The paper asks for N_min + 2 points so that both densities have N_min of their own.
        usable = [b for b, o in self.by_budget.items() if o.n >= self.min_points + 2]
        if not usable:
            return dict(self.space.sample_configuration()), "random"
        obs = self.by_budget[max(usable)]
        n_good = max(self.min_points, math.floor(self.top_n_percent * obs.n / 100))
        n_bad = max(self.min_points, math.floor((100 - self.top_n_percent) * obs.n / 100))
        good, bad = obs.split(n_good, n_bad)
        kde = {"min_bandwidth": self.min_bandwidth}
        l_model = ParzenEstimator(good, self.coder.is_categorical, self.coder.n_choices, **kde)
        g_model = ParzenEstimator(bad, self.coder.is_categorical, self.coder.n_choices, **kde)
        for vector in density_ratio_candidates(l_model, g_model, self.n_samples, self.rng,
                                               bandwidth_factor=self.bandwidth_factor):
            config = self.coder.decode(vector, self.rng)
            if config is not None:
                return config, "model"
        return dict(self.space.sample_configuration()), "random"


@register("bohb")
class BOHB(Hyperband):
    """Hyperband whose new configurations come from BOHB's per-budget kernel-density model."""

    model_based = True

    def __init__(self, space: ConfigurationSpace, *, min_budget: float, max_budget: float,
                 eta: float = 3, seed: int | None = 0, random_fraction: float = 1 / 3,
                 top_n_percent: float = 15, n_samples: int = 64, bandwidth_factor: float = 3,
                 min_bandwidth: float = 1e-3, min_points_in_model: int | None = None,
                 include_default: bool = False) -> None:
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
        super().__init__(space, min_budget=min_budget, max_budget=max_budget, eta=eta, seed=seed,
                         include_default=include_default)

    def _make_proposer(self) -> KDEProposer:
        return KDEProposer(
            self.space, self.rng, random_fraction=self.random_fraction,
            top_n_percent=self.top_n_percent, n_samples=self.n_samples,
            bandwidth_factor=self.bandwidth_factor, min_bandwidth=self.min_bandwidth,
            min_points_in_model=self.min_points_in_model,
        )

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {**super().options, "random_fraction": self.random_fraction,
                "top_n_percent": self.top_n_percent, "n_samples": self.n_samples,
                "bandwidth_factor": self.bandwidth_factor, "min_bandwidth": self.min_bandwidth,
                "min_points_in_model": self.min_points_in_model}
