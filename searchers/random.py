"""Random search: independent samples from the space, the baseline every searcher must beat."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ConfigSpace import ConfigurationSpace

from searchers.base import ScheduledSearcher
from searchers.priors import Prior
from searchers.proposers import Proposer, RandomProposer
from searchers.registry import register
from searchers.schedules import FullBudget, Schedule


@register("random")
class RandomSearch(ScheduledSearcher):
    """Samples configurations uniformly (in ConfigSpace's sense), optionally the default first;
    with a `prior`, a decaying share of them from the prior instead (`searchers.priors`)."""

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0,
                 include_default: bool = True,
                 prior: Prior | Mapping[str, Any] | str | None = None) -> None:
        super().__init__(space, seed=seed, include_default=include_default, prior=prior)

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {"include_default": self.include_default, **self._prior_options()}

    def _make_schedule(self) -> Schedule:
        return FullBudget()

    def _make_proposer(self) -> Proposer:
        return RandomProposer(self.space)
