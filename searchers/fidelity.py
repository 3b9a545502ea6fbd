"""Do low budgets rank configurations as higher ones do? Measured on a search's own promotions.

Each promoted trial gives a pair: its parent's loss at one rung's budget and its own at the
next. Over the pairs of two consecutive budgets, Kendall's tau says how far the lower budget
orders the configurations it promotes as the higher one then does. Few configurations reach
the top budget from a low one, so a budget's agreement with the top is estimated as the
product of the steps' taus on the way up (`FidelityCheck.trust`): each step keeps only part of
the order. A budget whose trust is at most `min_trust` misleads, and so does every budget
below it: a schedule then starts no new bracket there (`FidelityCheck.lowest_trusted`).

A low budget that ranks like the next one but not like the top shows up only in the product:
on `mixed-10d` the steps 1->3->9 agree (tau 0.9, 0.6) and 9->27->81 far less (0.3-0.6), a
product of 0.1-0.2; on the informative problems the product stays above 0.4
(docs/decisions.md, "Misleading low budgets").
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

# Budgets of one ladder computed two ways may differ in the last bits.
_RTOL = 1e-9


def kendall_tau(pairs: Iterable[tuple[float, float]]) -> float:
    """Kendall's tau-a of (x, y) pairs: concordant minus discordant over all pairs of pairs;
    ties count neither way. 0 for fewer than two pairs."""
    points = list(pairs)
    n = len(points)
    if n < 2:
        return 0.0
    total = sum(_sign(xj - xi) * _sign(yj - yi)
                for i, (xi, yi) in enumerate(points) for xj, yj in points[i + 1:])
    return total / (n * (n - 1) / 2)


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


Key = tuple[float, float]


def _keep(pairs: dict[Key, list[tuple[float, float]]], balance: dict[Key, int], key: Key,
          x: float, y: float) -> None:
    """Add (x, y) to `key`'s pairs, and its concordant minus discordant count with the earlier
    ones to `key`'s balance, so tau is never recounted."""
    seen = pairs.setdefault(key, [])
    balance[key] = balance.get(key, 0) + sum(_sign(x - a) * _sign(y - b) for a, b in seen)
    seen.append((x, y))


def _tau(pairs: dict[Key, list[tuple[float, float]]], balance: dict[Key, int], key: Key,
         least: int) -> float | None:
    """Kendall's tau of `key`'s pairs from its balance; None with fewer than `least` pairs."""
    n = len(pairs.get(key, ()))
    return balance[key] / (n * (n - 1) / 2) if n >= max(2, least) else None


@dataclass
class FidelityCheck:
    """Rank agreement between consecutive budgets, from the losses of promoted trials."""

    #: Pairs a step needs before its tau counts (a step with fewer counts as agreeing).
    min_pairs: int = 6
    min_trust: float = 0.3
    #: Direct pairs a budget needs before their tau replaces the product of the steps'.
    min_direct: int = 3
    #: (lower budget, higher budget) -> (loss at the lower, loss at the higher) per promotion.
    pairs: dict[tuple[float, float], list[tuple[float, float]]] = field(default_factory=dict)
    #: (lower budget, top budget) -> (loss at the lower, loss at the top) of every trial that
    #: reached the top through that budget (its lineage of promotions): measured, not chained.
    direct: dict[tuple[float, float], list[tuple[float, float]]] = field(default_factory=dict)
    #: Per step, concordant minus discordant pairs of pairs, kept as pairs arrive: a schedule
    #: asks for the trust at every new bracket or sample, so tau is never recounted.
    _balance: dict[tuple[float, float], int] = field(default_factory=dict, repr=False)
    _direct_balance: dict[tuple[float, float], int] = field(default_factory=dict, repr=False)

    def add(self, low_budget: float, low_loss: float, high_budget: float,
            high_loss: float) -> None:
        """One promotion's losses; failures (non-finite) say nothing about the ranking."""
        if math.isfinite(low_loss) and math.isfinite(high_loss):
            _keep(self.pairs, self._balance, (low_budget, high_budget), low_loss, high_loss)

    def add_lineage(self, lineage: Iterable[tuple[float, float]], top_budget: float,
                    top_loss: float) -> None:
        """A trial's result at `top_budget` with its ancestors' (budget, loss) on the way up:
        one direct pair per lower budget."""
        if not math.isfinite(top_loss):
            return
        for budget, loss in lineage:
            if math.isfinite(loss):
                _keep(self.direct, self._direct_balance, (budget, top_budget), loss, top_loss)

    def tau(self, low_budget: float, high_budget: float) -> float:
        """Kendall's tau of one step's pairs (`kendall_tau`, kept up to date)."""
        tau = _tau(self.pairs, self._balance, (low_budget, high_budget), 2)
        return 0.0 if tau is None else tau

    def trust(self, budget: float) -> float:
        """Kendall's tau between `budget` and the top over the direct pairs when there are
        `min_direct` of them; else the product of the taus of the steps from `budget` up (1.0
        where none is measured). A tau below 0 counts as 0."""
        for low, top in sorted(self.direct, key=lambda key: -key[1]):  # the highest top first
            if abs(low - budget) <= _RTOL * budget:
                direct = self._direct_tau(low, top)
                if direct is not None:
                    return max(0.0, direct)
        out = 1.0
        for (low, high), pairs in self.pairs.items():
            if low >= budget * (1 - _RTOL) and len(pairs) >= self.min_pairs:
                out *= max(0.0, self.tau(low, high))
        return out

    def settled(self, budgets: Iterable[float]) -> bool:
        """Whether the direct pairs already decide: every budget below the top ranks exactly as
        the top does (tau 1), or the lowest ranks no better than chance (tau <= 0)."""
        ladder = sorted(budgets)
        taus = [self._direct_tau(b, ladder[-1]) for b in ladder[:-1]]
        if not taus or any(t is None for t in taus):
            return False
        return all(t == 1.0 for t in taus) or taus[0] <= 0.0  # type: ignore[operator]

    def _direct_tau(self, budget: float, top: float) -> float | None:
        return _tau(self.direct, self._direct_balance, (budget, top), self.min_direct)

    def misleading(self) -> list[float]:
        """The budgets whose ranking the steps above them do not keep, lowest first."""
        lows = {low for low, _ in self.pairs} | {low for low, _ in self.direct}
        return sorted(low for low in lows if self.trust(low) <= self.min_trust)

    def lowest_trusted(self, budgets: Iterable[float]) -> float:
        """The lowest of `budgets` above every misleading one (the highest when none is)."""
        ladder = sorted(budgets)
        bad = self.misleading()
        if not bad:
            return ladder[0]
        above = [b for b in ladder if b > max(bad) * (1 + _RTOL)]
        return above[0] if above else ladder[-1]

    def summary(self) -> dict[str, float]:
        """Tau per budget step with its number of pairs, for traces: "low->high (n)" -> tau."""
        return {f"{low:g}->{high:g} ({len(p)})": round(self.tau(low, high), 3)
                for (low, high), p in sorted(self.pairs.items())}
