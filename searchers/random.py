"""Random search: independent samples from the space, the baseline every searcher must beat."""

from __future__ import annotations

from typing import Any

from ConfigSpace import ConfigurationSpace

from nas.types import Trial
from searchers.base import Searcher
from searchers.registry import register


@register("random")
class RandomSearch(Searcher):
    """Samples configurations uniformly (in ConfigSpace's sense), optionally the default first."""

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0,
                 include_default: bool = True) -> None:
        super().__init__(space, seed=seed)
        self.include_default = bool(include_default)

    @property
    def options(self) -> dict[str, Any]:
        """Settings stored in the journal."""
        return {"include_default": self.include_default}

    def ask(self) -> Trial:
        """A fresh random configuration (the space's default on the first ask, if enabled)."""
        if self._next_id == 0 and self.include_default:
            return self._new_trial(self.space.get_default_configuration(), origin="default")
        return self._new_trial(self.space.sample_configuration(), origin="random")
