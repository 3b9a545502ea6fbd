"""Regularized evolution (Real et al. 2019), the standard NAS baseline, as a `nas` plugin."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from ConfigSpace import Configuration, ConfigurationSpace
from ConfigSpace.util import get_one_exchange_neighbourhood

from nas.types import Result, Trial
from searchers import Searcher


class RegularizedEvolution(Searcher):
    """Aging evolution: mutate the best of a random sample, drop the oldest (Real et al. 2019)."""

    name = "regularized-evolution"  # the registry sets it too, from the entry point's name

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0,
                 population_size: int = 20, sample_size: int = 5) -> None:
        super().__init__(space, seed=seed)
        if not 1 <= int(sample_size) <= int(population_size):
            raise ValueError(f"need 1 <= sample_size <= population_size, got {sample_size} "
                             f"and {population_size}")
        self.population_size, self.sample_size = int(population_size), int(sample_size)
        # (config, loss) of the newest finished trials; appending beyond maxlen ages out the oldest.
        self.population: deque[tuple[dict[str, Any], float]] = deque(maxlen=self.population_size)

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {"population_size": self.population_size, "sample_size": self.sample_size}

    def ask(self) -> Trial:
        """Random until the population is seeded, then the mutated winner of a tournament."""
        if self._next_id < self.population_size or not self.population:
            return self._new_trial(self.space.sample_configuration(), origin="random")
        picked = self.rng.choice(len(self.population), replace=False,
                                 size=min(self.sample_size, len(self.population)))
        parent, _ = min((self.population[i] for i in picked), key=lambda member: member[1])
        return self._new_trial(self._mutate(parent), origin="mutation")

    def tell(self, trial: Trial, result: Result) -> None:
        """Add the finished trial to the population; a failed one counts as loss inf."""
        super().tell(trial, result)
        self.population.append((dict(trial.config), result.loss if result.ok else math.inf))

    def _mutate(self, parent: dict[str, Any]) -> Configuration:
        """Change one active hyperparameter, keeping conditions and forbiddens valid."""
        seed = int(self.rng.integers(2**31 - 1))
        neighbours = get_one_exchange_neighbourhood(Configuration(self.space, values=parent), seed)
        child = next(neighbours, None)  # None when no valid neighbour exists (only constants)
        return self.space.sample_configuration() if child is None else child
