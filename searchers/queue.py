"""Enqueued configurations: what a user asks a searcher to try before it proposes anything.

`Searcher.enqueue` checks a configuration against the searcher's space (hyperparameters it
leaves out take their defaults; ones its values switch off are dropped) and queues it; every
searcher's `ask` (and `replay_ask`) serves the queue first, whatever the subclass, because
`Searcher.__init_subclass__` wraps them with `queue_first`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ConfigSpace import Configuration, ConfigurationSpace
from ConfigSpace.util import deactivate_inactive_hyperparameters

from nas.types import plain

F = TypeVar("F", bound=Callable[..., Any])


def complete_config(space: ConfigurationSpace, config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` as a valid configuration of `space`: left-out hyperparameters at their
    defaults, inactive ones dropped; a ValueError saying what is wrong otherwise."""
    if not isinstance(config, Mapping):
        raise ValueError(f"a configuration is a mapping of hyperparameter names to values, "
                         f"got {type(config).__name__}")
    unknown = sorted(set(config) - set(space))
    if unknown:
        raise ValueError(f"the space has no hyperparameter {', '.join(map(repr, unknown))}")
    values = {name: hp.default_value for name, hp in space.items()}
    values.update(plain(dict(config)))
    try:
        completed = deactivate_inactive_hyperparameters(values, space)
        Configuration(space, values=dict(completed)).check_valid_configuration()
    except Exception as exc:  # ConfigSpace raises several kinds, each with a clear message
        raise ValueError(" ".join(str(exc).split())) from None
    return dict(completed)


def check_budget(budget: float | None) -> float | None:
    """A positive, finite budget, or None (the full per-trial budget)."""
    if budget is None:
        return None
    value = float(budget)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"an enqueued trial's budget must be a positive number, got {budget!r}")
    return value


def queue_first(method: F) -> F:
    """`method` (a searcher's `ask` or `replay_ask`), answering with the next enqueued trial
    while there is one."""
    if getattr(method, "_queue_first", False):
        return method

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(self, "enqueued", None):
            return self._take_enqueued()
        return method(self, *args, **kwargs)

    wrapper._queue_first = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def translate_config(space: ConfigurationSpace, config: Mapping[str, Any]
                     ) -> tuple[dict[str, Any] | None, str]:
    """Another space's configuration in `space`: hyperparameters `space` lacks dropped, new
    ones at their defaults; ``(None, why)`` when a value lies outside `space` (a narrowed
    range, a removed choice) or breaks one of its rules."""
    try:
        return complete_config(space, {k: v for k, v in config.items() if k in space}), ""
    except ValueError as exc:
        return None, str(exc)
