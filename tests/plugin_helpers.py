"""Targets of the fake `nas.searchers` entry points in test_plugins (imported only through them)."""

from __future__ import annotations

from nas.types import Trial
from searchers import Searcher


class Good(Searcher):
    """A minimal plugin searcher: random samples."""

    def ask(self) -> Trial:
        return self._new_trial(self.space.sample_configuration())


class Abstract(Searcher):
    """Forgets to implement `ask`."""


class NotASearcher:
    """Looks like a searcher class, but is not one."""

    def ask(self) -> None:
        return None


def not_a_searcher() -> None:
    """A function where a class belongs."""
