"""Tree-structured Parzen Estimator (Bergstra et al. 2011), multivariate as in Falkner et al.
2018 and Watanabe 2023: model the good and the bad trials with kernel densities l and g, draw
candidates from l, propose the one maximising l(x) / g(x).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace

from nas.types import Result, Trial
from searchers._kde import Observations, ParzenEstimator, density_ratio_candidates
from searchers._vector import SpaceCoder
from searchers.base import Searcher
from searchers.registry import register


@register("tpe")
class TPE(Searcher):
    """TPE over any ConfigSpace space; full-budget (every trial at the run's trial budget).

    `gamma` is the fraction of trials modelled as good; the first `n_startup` trials are random.
    With `constant_liar`, trials still running count as bad ones, so parallel asks spread out.
    """

    model_based = True

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0, n_startup: int = 10,
                 gamma: float = 0.15, n_candidates: int = 24, multivariate: bool = True,
                 prior_weight: float = 1.0, bandwidth_factor: float = 1.0,
                 min_bandwidth: float = 1e-3, constant_liar: bool = True) -> None:
        super().__init__(space, seed=seed)
        if n_startup < 1 or n_candidates < 1:
            raise ValueError("n_startup and n_candidates must be at least 1")
        if not 0 < gamma < 1:
            raise ValueError("gamma must lie in (0, 1)")
        if prior_weight < 0 or bandwidth_factor <= 0 or min_bandwidth <= 0:
            raise ValueError("prior_weight must be >= 0, bandwidths positive")
        self.n_startup = int(n_startup)
        self.gamma = float(gamma)
        self.n_candidates = int(n_candidates)
        self.multivariate = bool(multivariate)
        self.prior_weight = float(prior_weight)
        self.bandwidth_factor = float(bandwidth_factor)
        self.min_bandwidth = float(min_bandwidth)
        self.constant_liar = bool(constant_liar)
        self.coder = SpaceCoder(self.space)
        self.observations = Observations(self.coder.dim)

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {"n_startup": self.n_startup, "gamma": self.gamma,
                "n_candidates": self.n_candidates, "multivariate": self.multivariate,
                "prior_weight": self.prior_weight, "bandwidth_factor": self.bandwidth_factor,
                "min_bandwidth": self.min_bandwidth, "constant_liar": self.constant_liar}

    def ask(self) -> Trial:
        """A random configuration during start-up, then the best of the density-ratio draws."""
        obs = self.observations
        if obs.n < self.n_startup or self.coder.dim == 0:
            return self._new_trial(self.space.sample_configuration(), origin="random")
        n_good = max(1, math.ceil(self.gamma * obs.n))
        good, bad = obs.split(n_good)
        if self.constant_liar and self.pending:
            # Constant liar, for this ask only: a running trial is one more observation with the
            # worst loss seen so far, so it joins the bad model and draws move away from it.
            # Gamma's count stays that of the finished trials: counting the liars too would
            # pull a mediocre trial into the good model and undo the spread.
            lies = [self.coder.encode(t.config) for t in self.pending.values()]
            bad = np.concatenate([bad, np.array(lies)])
        if len(bad) == 0:
            bad = good
        kde = {"multivariate": self.multivariate, "min_bandwidth": self.min_bandwidth,
               "prior_weight": self.prior_weight, "magic_clip": True}
        l_model = ParzenEstimator(good, self.coder.is_categorical, self.coder.n_choices, **kde)
        g_model = ParzenEstimator(bad, self.coder.is_categorical, self.coder.n_choices, **kde)
        for vector in density_ratio_candidates(l_model, g_model, self.n_candidates, self.rng,
                                               bandwidth_factor=self.bandwidth_factor):
            config = self.coder.decode(vector, self.rng)
            if config is not None:
                return self._new_trial(config, origin="model")
        # Every candidate was forbidden: fall back to the space's own (valid) sampler.
        return self._new_trial(self.space.sample_configuration(), origin="random")

    def tell(self, trial: Trial, result: Result) -> None:
        """Add the trial to the model (failures count as the worst trials)."""
        super().tell(trial, result)
        loss = result.loss if result.ok else math.inf
        self.observations.add(self.coder.encode(trial.config), loss)
