"""What a candidate will cost in time, before it trains, and re-planning when trials disagree.

A time budget's plan is sized from one measured model (`nas.defaults`), yet a space holds models
ten and more times its cost: one of them can eat a whole budget in a single epoch. The cost
model predicts a candidate's seconds per epoch from its cost per sample (`spaces.Work.cost`:
the elements its modules write, plus its FLOPs), scaled by the measured model; it turns away
candidates whose full trial would take more than a share of the budget (judged by the cost or
the FLOPs, whichever predicts longer), and rescales itself when the trials' real times differ
from its predictions by more than a factor `REPLAN_FACTOR` (a slower machine than the probe
saw, or a busier one).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.types import Result, Trial, TrialKind

if TYPE_CHECKING:
    from spaces import Work

#: Observed / predicted seconds beyond which (either way) the model rescales and says so.
REPLAN_FACTOR = 2.0
#: Trials whose latest times the rescaling looks at (the machine's load changes).
RECENT = 5
#: After a rescaling, trials (their median) needed before the next: one trial's time is noisy,
#: and single trials made the scale swing 2.2x, 2.5x, 0.5x, 0.4x within one 300 s search.
SEEN_AFTER_REPLAN = 3
#: Only models at least this share of the measured one's cost calibrate the scale: in smaller
#: ones fixed per-batch costs dominate.
CALIBRATES_FROM = 0.25


@dataclass(frozen=True)
class Replan:
    """One revision of the plan: when (`spent` of the budget), why, and the new scale; with
    `trial_epochs`, the searcher's trials from `at_trial` on run up to that many epochs."""

    spent: float
    reason: str
    epoch_seconds: float
    trial_epochs: float | None = None
    at_trial: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The journal's form."""
        out = {"spent": self.spent, "reason": self.reason, "epoch_seconds": self.epoch_seconds}
        if self.trial_epochs is not None:
            out |= {"trial_epochs": self.trial_epochs, "at_trial": self.at_trial}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Replan:
        """Read back `to_dict`'s form."""
        epochs, at = data.get("trial_epochs"), data.get("at_trial")
        return cls(float(data["spent"]), str(data["reason"]), float(data["epoch_seconds"]),
                   None if epochs is None else float(epochs), None if at is None else int(at))


@dataclass(frozen=True)
class CostPlan:
    """What the cost model starts from: the measured model, its seconds per epoch, a full
    trial's epochs and the most of the budget (`limit` seconds) one full trial may take."""

    reference: Mapping[str, Any]
    epoch_seconds: float
    full_epochs: float
    limit: float
    share: float
    #: The fewest epochs a full trial should have (`nas.defaults.replanned_epochs`' floor);
    #: None: the trial budget is never re-planned.
    floor: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The journal's form (a resume rebuilds the model from it)."""
        return {"reference": dict(self.reference), "epoch_seconds": self.epoch_seconds,
                "full_epochs": self.full_epochs, "limit": self.limit, "share": self.share,
                "floor": self.floor}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostPlan:
        """Read back `to_dict`'s form."""
        floor = data.get("floor")
        return cls(dict(data["reference"]), float(data["epoch_seconds"]),
                   float(data["full_epochs"]), float(data["limit"]), float(data["share"]),
                   None if floor is None else int(floor))


class CostModel:
    """Seconds per epoch of a configuration = its cost x a scale measured on real trials."""

    def __init__(self, plan: CostPlan, work_of: Callable[[Mapping[str, Any]], Work],
                 key_of: Callable[[Mapping[str, Any]], str],
                 epochs_for: Callable[[float, float, int], int] | None = None) -> None:
        """`work_of` counts what one sample of a configuration does (`spaces.model_work`);
        `key_of` names its model (the count is cached per model); `epochs_for(seconds_left,
        epoch_seconds, floor)` sizes a full trial anew when the scale changes
        (`nas.defaults.replanned_epochs`)."""
        self.plan = plan
        self._work_of = work_of
        self._key_of = key_of
        self._epochs_for = epochs_for
        self._works: dict[str, Work] = {}
        self.reference = self.work(plan.reference)
        self.reference_cost = max(self.reference.cost, 1.0)
        self.epoch_seconds = plan.epoch_seconds  # of the reference model, as now believed
        self.full_epochs = plan.full_epochs  # of a full trial, as now planned
        self._ratios: list[float] = []
        #: Every calibrating trial's time over the plan's own prediction, in order; and the
        #: latest of the measured model itself (its own trials: the default first, replicas).
        self._history: list[float] = []
        self._reference_ratio = 1.0
        self._reference_key = key_of(plan.reference)
        self.replans: list[Replan] = []

    def resume(self, replans: list[Replan]) -> None:
        """Go on from a journal's re-plans: at the scale and trial budget of the last."""
        self.replans = list(replans)
        if replans:
            self.epoch_seconds = replans[-1].epoch_seconds
        for replan in replans:
            if replan.trial_epochs is not None:
                self.full_epochs = replan.trial_epochs

    def work(self, config: Mapping[str, Any]) -> Work:
        """What one sample through `config`'s model does (cached per model)."""
        key = self._key_of(config)
        if key not in self._works:
            self._works[key] = self._work_of(config)
        return self._works[key]

    def cost(self, config: Mapping[str, Any]) -> float:
        """One sample's cost through `config`'s model (`Work.cost`)."""
        return self.work(config).cost

    def predict(self, config: Mapping[str, Any]) -> float:
        """Seconds one epoch of `config` should take."""
        return self.epoch_seconds * self.cost(config) / self.reference_cost

    def refusal(self, trial: Trial) -> str | None:
        """Why `trial` must not train (its full trial would not fit its share), or None: only a
        searcher's model never trained before is checked (a promotion continues an admitted one)."""
        if trial.kind is not TrialKind.SEARCH or trial.parent is not None:
            return None
        plan = self.plan
        # The cost under-predicts wide models, whose arithmetic outweighs what they write, and
        # FLOPs small or pooling-heavy ones (by up to 36x): the longer of the two guards the
        # budget (docs/decisions.md, "FLOPs against output elements").
        flops = self.work(trial.config).flops / max(self.reference.flops, 1.0)
        full = max(self.predict(trial.config),
                   self.epoch_seconds * flops) * self.full_epochs
        if full <= plan.share * plan.limit:
            return None
        return (f"too slow for this budget: {self.full_epochs:g} epochs would take about "
                f"{full:.0f} s, more than {100 * plan.share:.0f} % of {plan.limit:g} s")

    def learn(self, trial: Trial, result: Result, spent: float, *,
              rebudget: Callable[[float], int | None] | None = None,
              retune: Callable[[], str] | None = None) -> Replan | None:
        """Compare a finished trial's time with the prediction; rescale (and return why) when
        recent trials disagree by more than REPLAN_FACTOR (after a rescaling, the median of at
        least SEEN_AFTER_REPLAN trials). Then a full trial is sized anew, by the plan's rules,
        at the machine's measured speed (`machine_factor`); when that changes its epochs,
        `rebudget(epochs)` re-plans the searcher (the id of its first trial so planned, or None
        when it cannot).

        First `retune()` measures the machine again (the executor's threads): when it changes
        something (its line says what), that was the cause, and the scale stays until trials
        run under the change are timed."""
        if result.epochs < 0.25 or not result.ok:
            return None
        cost = self.cost(trial.config)
        if cost < CALIBRATES_FROM * self.reference_cost:
            return None
        seconds = result.seconds / result.epochs
        self._ratios.append(seconds / self.predict(trial.config))
        absolute = seconds / (self.plan.epoch_seconds * cost / self.reference_cost)
        if self._key_of(trial.config) == self._reference_key:
            self._reference_ratio = absolute
        else:
            self._history.append(absolute)
        if self.replans and len(self._ratios) < SEEN_AFTER_REPLAN:
            return None
        ratio = statistics.median(self._ratios[-RECENT:])
        if 1 / REPLAN_FACTOR <= ratio <= REPLAN_FACTOR:
            return None
        self._ratios.clear()
        change = retune() if retune is not None else ""
        if change:
            replan = Replan(spent, f"trials took {ratio:.1f}x the predicted time; {change}; the "
                            "plan stays until trials so run are timed", self.epoch_seconds)
            self.replans.append(replan)
            return replan
        before, self.epoch_seconds = self.epoch_seconds, self.epoch_seconds * ratio
        # The scale is per unit of cost: small models' fixed per-batch costs raise it while the
        # measured model itself may run as planned (its own speed sizes the trials, below).
        why = (f"trials took {ratio:.1f}x the predicted time: the measured model's cost now "
               f"predicts {self.epoch_seconds:.2f} s per epoch (were {before:.2f} s), so the "
               "largest models allowed changed")
        epochs, at = self._trial_epochs(rebudget)
        if epochs is not None:
            why += (f"; the machine runs the measured model {self.machine_factor():.1f}x as long "
                    f"as planned, so trials from {at} on run up to {epochs:g} epochs (were "
                    f"{self.full_epochs:g})")
            self.full_epochs = epochs
        replan = Replan(spent, why, self.epoch_seconds, epochs, at)
        self.replans.append(replan)
        return replan

    def machine_factor(self) -> float:
        """How much slower the machine runs the measured model than the plan said.

        Not the cost scale: other architectures take more (or less) time per unit than the
        measured one, and that misfit is no reason to shorten its trials (on shapes16, models
        of one stage ran 2x their FLOPs' prediction while the default ran as planned, and the
        trials were cut from 9 epochs to 3). So: the measured model's own latest time, times
        how far the other trials drifted since the search's first ones (a machine that slowed
        down mid-search).
        """
        history = self._history
        if len(history) < 2:
            return self._reference_ratio
        early = statistics.median(history[:RECENT])
        drift = statistics.median(history[-RECENT:]) / early if early > 0 else 1.0
        return self._reference_ratio * drift

    def _trial_epochs(self, rebudget: Callable[[float], int | None] | None
                      ) -> tuple[float | None, int | None]:
        """A full trial's new epochs, and where the searcher takes them up; (None, None) when
        they stay (or nothing can re-plan them).

        The plan's rules on the whole budget, at the measured model's speed now: not on the
        time left, where the same rules give shorter trials at any speed (a shapes16 search
        re-planned at 118 s went from 9 epochs to 4 with the machine at 1.1x its plan).
        """
        if self._epochs_for is None or self.plan.floor is None or rebudget is None:
            return None, None
        plan = self.plan
        planned = self._epochs_for(plan.limit, plan.epoch_seconds, plan.floor)
        epochs = float(self._epochs_for(plan.limit, plan.epoch_seconds * self.machine_factor(),
                                        plan.floor))
        if epochs == planned:
            epochs = plan.full_epochs  # as fast as planned: the plan's own trial length
        if epochs == self.full_epochs:
            return None, None
        at = rebudget(epochs)
        return (epochs, at) if at is not None else (None, None)
