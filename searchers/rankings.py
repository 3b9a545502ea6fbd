"""Promotion rules: a rung's finished trials in the order they move up.

`RungRanking` ranks by loss (Hyperband's and ASHA's rule). For objective vectors,
`ParetoRanking` ranks by non-dominated front (MOASHA, Schmucker et al. 2021) and
`ChebyshevRanking` by a randomly weighted scalarisation (ParEGO, Knowles 2006); both keep
`RungRanking`'s interface, so a schedule takes any of them through a `RankingFactory`.
"""

from __future__ import annotations

import itertools
import math
from bisect import insort
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeAlias

import numpy as np

from nas.dominance import hypervolume_contributions, nondominated_sort, normalise

#: What a finished trial reports to a schedule: a loss (inf for a failure), or in a
#: multi-objective search its objective values (None for a failure).
Outcome: TypeAlias = float | tuple[float, ...] | None


class Ranking(Protocol):
    """The finished trials of one rung in promotion order (`RungRanking` is the reference)."""

    def __len__(self) -> int:
        """How many results it holds."""

    def add(self, trial_id: int, loss: Any, config: Mapping[str, Any] | None) -> None:
        """Rank a result; `config` is kept for a promotion (None: this rung promotes nothing)."""

    def candidates(self, limit: int) -> Iterator[int]:
        """Ids among the best `limit` results not yet promoted, best first, failures never."""

    def loss(self, trial_id: int) -> Any:
        """What a ranked trial reported."""

    def promote(self, trial_id: int) -> Mapping[str, Any]:
        """Mark a candidate as moved up; its configuration."""


#: Builds an empty ranking for a rung; called with the bracket's number (Hyperband) or the
#: rung's index (ASHA), so a ranking may depend on it (random scalarisation weights).
RankingFactory: TypeAlias = Callable[[int], Ranking]


class RungRanking:
    """The finished trials of one rung, ranked: the promotion rule of Hyperband and ASHA.

    Lower loss ranks higher and equal losses go to the earlier trial; failures (inf) rank last
    and never move up. A trial moves up once at most.
    """

    def __init__(self) -> None:
        # (loss, id) kept sorted as results arrive, so no ask has to sort.
        self._ranked: list[tuple[float, int]] = []
        self._configs: dict[int, Mapping[str, Any]] = {}
        self._promoted: set[int] = set()

    def __len__(self) -> int:
        return len(self._ranked)

    def add(self, trial_id: int, loss: float, config: Mapping[str, Any] | None) -> None:
        """Rank a result; `config` is kept for a promotion (None: this rung promotes nothing)."""
        loss = loss if math.isfinite(loss) else math.inf
        insort(self._ranked, (loss, trial_id))
        if config is not None and math.isfinite(loss):
            self._configs[trial_id] = dict(config)

    def candidates(self, limit: int) -> Iterator[int]:
        """Ids among the best `limit` results not yet promoted, best first, failures never."""
        for loss, tid in itertools.islice(self._ranked, limit):
            if not math.isfinite(loss):
                return
            if tid not in self._promoted:
                yield tid

    def loss(self, trial_id: int) -> float:
        """The loss a ranked trial reported."""
        return next(loss for loss, tid in self._ranked if tid == trial_id)

    def promote(self, trial_id: int) -> Mapping[str, Any]:
        """Mark a candidate as moved up; its configuration."""
        self._promoted.add(trial_id)
        return self._configs.pop(trial_id)


def rung_ranking(_: int) -> RungRanking:
    """The default `RankingFactory`: rank by loss."""
    return RungRanking()



#: The reference point of normalised objectives (each in [0, 1]): a little beyond the worst
#: observed value, so the extreme points of a front still contribute some volume.
REFERENCE = 1.1
#: The augmented Chebyshev scalarisation's linear share (ParEGO's rho): it separates points
#: the max term alone would tie.
RHO = 0.05


def _vector(loss: Any) -> tuple[float, ...] | None:
    """A usable objective vector, or None for a failure (None, or any non-finite value)."""
    if loss is None:
        return None
    values = (float(loss),) if isinstance(loss, (int, float)) else tuple(float(v) for v in loss)
    return values if values and all(math.isfinite(v) for v in values) else None


def pareto_order(vectors: Sequence[tuple[float, ...]]) -> list[int]:
    """Indices best first: by non-dominated front, within a front by hypervolume contribution
    (objectives normalised to the observed range), then the earlier."""
    if not vectors:
        return []
    points = np.asarray(vectors, dtype=float)
    # Hypervolume contribution rather than crowding distance: crowding ranks every extreme
    # point first whatever it adds, whereas the contribution is the share of the measure a
    # search is judged by (hypervolume) that the point alone holds, as in SMS-EMOA and MOTPE.
    scaled = normalise(points, points.min(axis=0), points.max(axis=0))
    order: list[int] = []
    for front in nondominated_sort(scaled):
        front = np.sort(front)
        gain = hypervolume_contributions(scaled[front], np.full(points.shape[1], REFERENCE))
        order.extend(int(front[k]) for k in np.lexsort((front, -gain)))
    return order


class _VectorRanking:
    """What the vector rankings share: results in arrival order, an order computed lazily
    (a rung's order changes with every result), failures last and never promoted."""

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._values: dict[int, tuple[float, ...] | None] = {}
        self._configs: dict[int, Mapping[str, Any]] = {}
        self._promoted: set[int] = set()
        self._order: list[int] | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, trial_id: int, loss: Any, config: Mapping[str, Any] | None) -> None:
        """Rank a result; `config` is kept for a promotion (None: this rung promotes nothing)."""
        values = _vector(loss)
        self._ids.append(trial_id)
        self._values[trial_id] = values
        if config is not None and values is not None:
            self._configs[trial_id] = dict(config)
        self._order = None

    def candidates(self, limit: int) -> Iterator[int]:
        """Ids among the best `limit` results not yet promoted, best first, failures never."""
        if self._order is None:
            usable = [i for i in self._ids if self._values[i] is not None]
            self._order = [usable[k] for k in self._rank([self._values[i] for i in usable])]
        for tid in itertools.islice(self._order, limit):
            if tid not in self._promoted:
                yield tid

    def loss(self, trial_id: int) -> tuple[float, ...] | float:
        """The objective values a ranked trial reported (inf for a failure)."""
        values = self._values[trial_id]
        return math.inf if values is None else values

    def promote(self, trial_id: int) -> Mapping[str, Any]:
        """Mark a candidate as moved up; its configuration."""
        self._promoted.add(trial_id)
        return self._configs.pop(trial_id)

    def _rank(self, vectors: list[Any]) -> list[int]:
        raise NotImplementedError


class ParetoRanking(_VectorRanking):
    """A rung's results by non-dominated rank, ties by hypervolume contribution (`pareto_order`).

    With one objective it orders as `RungRanking` does: lower first, equal ones by arrival.
    """

    def _rank(self, vectors: list[Any]) -> list[int]:
        return pareto_order(vectors)


def chebyshev(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ParEGO's augmented Chebyshev scalarisation of normalised points (lower is better)."""
    weighted = points * weights
    return weighted.max(axis=1) + RHO * weighted.sum(axis=1)


class ChebyshevRanking(_VectorRanking):
    """A rung's results by the augmented Chebyshev scalarisation with `weights`, objectives
    normalised to the rung's observed range; equal scores by arrival."""

    def __init__(self, weights: Sequence[float]) -> None:
        super().__init__()
        self.weights = np.asarray(weights, dtype=float)

    def _rank(self, vectors: list[Any]) -> list[int]:
        if not vectors:
            return []
        points = np.asarray(vectors, dtype=float)
        scaled = normalise(points, points.min(axis=0), points.max(axis=0))
        return [int(k) for k in np.argsort(chebyshev(scaled, self.weights), kind="stable")]
