"""Every registered searcher runs the whole conformance suite of `nas.testing`."""

from __future__ import annotations

from collections.abc import Callable

import searchers
from nas.testing import parametrize_with_checks
from searchers import Searcher


@parametrize_with_checks([searchers.get_class(name) for name in searchers.available()])
def test_conformance(cls: type[Searcher], check: Callable[[type[Searcher]], None]) -> None:
    check(cls)
