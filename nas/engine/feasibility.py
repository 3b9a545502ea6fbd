"""A search's limits on its models (`nas.constraints`), applied to its trials.

Before a new configuration trains, its size is counted on the meta device: a searcher that
filters its proposals gets the test with each ask (`admissible`) and proposes again; one over a
limit that still arrives is recorded as infeasible at no charge. After a trial trains, its
footprint is checked again (with the measured latency). An infeasible trial keeps its loss and
footprint in the journal; the searcher is told it as a failure, and it never becomes the best.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from nas.constraints import Constraints
from nas.types import Result, Trial, TrialKind, TrialStatus
from spaces import architecture_hash

#: (configuration, count FLOPs too?) -> (parameters, FLOPs per sample or NaN).
SizeOf = Callable[..., tuple[int, float]]
#: New configurations over a size limit in a row after which a search stops: its limits leave
#: (almost) nothing of the space, and refusals cost no budget, so it would never end.
MAX_REFUSED_IN_A_ROW = 500


class Feasibility:
    """Applies `constraints` to trials; `size_of` counts a configuration's parameters and
    FLOPs per sample without training it (None: nothing to count, no limit applies)."""

    def __init__(self, constraints: Constraints, size_of: SizeOf | None) -> None:
        self.constraints = constraints
        self.size_of = size_of if constraints.active else None
        self.refused_in_a_row = 0
        self._sizes: dict[str, tuple[int, float]] = {}

    @classmethod
    def of(cls, constraints: Mapping[str, Any] | None, objective: object) -> Feasibility:
        """The journaled `constraints` on `objective`'s models (one that trains none, such as
        a function, has no size to count: nothing applies)."""
        return cls(Constraints.from_dict(constraints), getattr(objective, "size_of", None))

    @property
    def active(self) -> bool:
        """Whether any limit applies to this search's models."""
        return self.size_of is not None

    @property
    def admissible(self) -> Callable[[Mapping[str, Any]], bool] | None:
        """A test of a proposed configuration against the size limits, for the searcher's ask;
        None when there are none."""
        if self.size_of is None or (self.constraints.max_params is None
                                    and self.constraints.max_flops is None):
            return None
        return self._fits

    def _fits(self, config: Mapping[str, Any]) -> bool:
        return self.constraints.before_training(*self._size(config)) is None

    def _size(self, config: Mapping[str, Any]) -> tuple[int, float]:
        # A model's size is its architecture's: proposals that differ in training settings
        # alone are counted once.
        key = architecture_hash(config)
        if key not in self._sizes:
            assert self.size_of is not None
            # FLOPs only when limited: counting them costs ten times building the model.
            self._sizes[key] = self.size_of(config, flops=self.constraints.max_flops is not None)
        return self._sizes[key]

    def refusal(self, trial: Trial) -> Result | None:
        """An infeasible result for a new configuration over a size limit, or None (a promotion
        continues a model admitted before; a replica repeats the best, feasible one)."""
        if self.admissible is None or trial.kind is not TrialKind.SEARCH \
                or trial.parent is not None:
            return None
        why = self.constraints.before_training(*self._size(trial.config))
        self.refused_in_a_row = 0 if why is None else self.refused_in_a_row + 1
        return None if why is None else Result.failure(TrialStatus.INFEASIBLE, why)

    def stuck(self) -> str:
        """Why the search must stop (its limits refuse everything it proposes), or ""."""
        if self.refused_in_a_row < MAX_REFUSED_IN_A_ROW:
            return ""
        return (f"{self.refused_in_a_row} configurations in a row broke the limits "
                f"({self.constraints}): widen them, or narrow the space to smaller models "
                "(--set ...)")

    def judge(self, result: Result) -> Result:
        """`result`, marked infeasible (its loss kept) when its trained model breaks a limit."""
        if self.size_of is None or not result.ok:
            return result
        why = self.constraints.after_training(result.footprint)
        if why is None:
            return result
        return dataclasses.replace(result, status=TrialStatus.INFEASIBLE, error=why)
