"""What a candidate will cost in time, before it trains, and re-planning when trials disagree.

A time budget's plan is sized from one measured model (`nas.defaults`), yet a space holds models
ten and more times its cost: one of them can eat a whole budget in a single epoch. The cost
model predicts a candidate's seconds per epoch from its forward FLOPs, scaled by the measured
model; it turns away candidates whose full trial would take more than a share of the budget, and
rescales itself when the trials' real times differ from its predictions by more than a factor
`REPLAN_FACTOR` (a slower machine than the probe saw, or a busier one).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nas.types import Result, Trial, TrialKind

#: Observed / predicted seconds beyond which (either way) the model rescales and says so.
REPLAN_FACTOR = 2.0
#: Trials whose latest times the rescaling looks at (the machine's load changes).
RECENT = 5
#: After a rescaling, trials (their median) needed before the next: one trial's time is noisy,
#: and single trials made the scale swing 2.2x, 2.5x, 0.5x, 0.4x within one 300 s search.
SEEN_AFTER_REPLAN = 3
#: Only models at least this share of the measured one's FLOPs calibrate the scale: in smaller
#: ones fixed per-batch costs, not FLOPs, dominate.
CALIBRATES_FROM = 0.25


@dataclass(frozen=True)
class Replan:
    """One revision of the plan: when (`spent` of the budget), why, and the new scale."""

    spent: float
    reason: str
    epoch_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The journal's form."""
        return {"spent": self.spent, "reason": self.reason, "epoch_seconds": self.epoch_seconds}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Replan:
        """Read back `to_dict`'s form."""
        return cls(float(data["spent"]), str(data["reason"]), float(data["epoch_seconds"]))


@dataclass(frozen=True)
class CostPlan:
    """What the cost model starts from: the measured model, its seconds per epoch, a full
    trial's epochs and the most of the budget (`limit` seconds) one full trial may take."""

    reference: Mapping[str, Any]
    epoch_seconds: float
    full_epochs: float
    limit: float
    share: float

    def to_dict(self) -> dict[str, Any]:
        """The journal's form (a resume rebuilds the model from it)."""
        return {"reference": dict(self.reference), "epoch_seconds": self.epoch_seconds,
                "full_epochs": self.full_epochs, "limit": self.limit, "share": self.share}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostPlan:
        """Read back `to_dict`'s form."""
        return cls(dict(data["reference"]), float(data["epoch_seconds"]),
                   float(data["full_epochs"]), float(data["limit"]), float(data["share"]))


class CostModel:
    """Seconds per epoch of a configuration = its FLOPs x a scale measured on real trials."""

    def __init__(self, plan: CostPlan, flops_of: Callable[[Mapping[str, Any]], float],
                 key_of: Callable[[Mapping[str, Any]], str]) -> None:
        """`flops_of` counts a configuration's forward FLOPs; `key_of` names its model (the
        count is cached per model)."""
        self.plan = plan
        self._flops_of = flops_of
        self._key_of = key_of
        self._flops: dict[str, float] = {}
        self.reference_flops = max(self.flops(plan.reference), 1.0)
        self.epoch_seconds = plan.epoch_seconds  # of the reference model, as now believed
        self._ratios: list[float] = []
        self.replans: list[Replan] = []

    def resume(self, replans: list[Replan]) -> None:
        """Go on from a journal's re-plans: at the scale of the last."""
        self.replans = list(replans)
        if replans:
            self.epoch_seconds = replans[-1].epoch_seconds

    def flops(self, config: Mapping[str, Any]) -> float:
        """Forward FLOPs of `config`'s model (cached)."""
        key = self._key_of(config)
        if key not in self._flops:
            self._flops[key] = self._flops_of(config)
        return self._flops[key]

    def predict(self, config: Mapping[str, Any]) -> float:
        """Seconds one epoch of `config` should take."""
        return self.epoch_seconds * self.flops(config) / self.reference_flops

    def refusal(self, trial: Trial) -> str | None:
        """Why `trial` must not train (its full trial would not fit its share), or None: only a
        searcher's model never trained before is checked (a promotion continues an admitted one)."""
        if trial.kind is not TrialKind.SEARCH or trial.parent is not None:
            return None
        plan = self.plan
        full = self.predict(trial.config) * plan.full_epochs
        if full <= plan.share * plan.limit:
            return None
        return (f"too slow for this budget: {plan.full_epochs:g} epochs would take about "
                f"{full:.0f} s, more than {100 * plan.share:.0f} % of {plan.limit:g} s")

    def learn(self, trial: Trial, result: Result, spent: float) -> Replan | None:
        """Compare a finished trial's time with the prediction; rescale (and return why) when
        recent trials disagree by more than REPLAN_FACTOR (after a rescaling, the median of at
        least SEEN_AFTER_REPLAN trials)."""
        if result.epochs < 0.25 or not result.ok:
            return None
        flops = self.flops(trial.config)
        if flops < CALIBRATES_FROM * self.reference_flops:
            return None
        self._ratios.append(result.seconds / result.epochs / self.predict(trial.config))
        if self.replans and len(self._ratios) < SEEN_AFTER_REPLAN:
            return None
        ratio = statistics.median(self._ratios[-RECENT:])
        if 1 / REPLAN_FACTOR <= ratio <= REPLAN_FACTOR:
            return None
        before, self.epoch_seconds = self.epoch_seconds, self.epoch_seconds * ratio
        self._ratios.clear()
        replan = Replan(spent, f"trials took {ratio:.1f}x the predicted time: the measured "
                               f"model's epoch is now {self.epoch_seconds:.2f} s (was "
                               f"{before:.2f} s), so the largest models allowed changed",
                        self.epoch_seconds)
        self.replans.append(replan)
        return replan
