"""Random search: independent samples from the space, the baseline every searcher must beat."""

from __future__ import annotations

from typing import Any

from ConfigSpace import ConfigurationSpace

from searchers.base import ScheduledSearcher
from searchers.proposers import Proposer, RandomProposer
from searchers.registry import register
from searchers.schedules import FullBudget, Schedule


@register("random")
class RandomSearch(ScheduledSearcher):
    """Samples configurations uniformly (in ConfigSpace's sense), optionally the default first."""

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0,
                 include_default: bool = True) -> None:
        super().__init__(space, seed=seed, include_default=include_default)

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {"include_default": self.include_default}

    def _make_schedule(self) -> Schedule:
        return FullBudget()

    def _make_proposer(self) -> Proposer:
        return RandomProposer(self.space)
