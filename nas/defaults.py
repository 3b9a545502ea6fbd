"""What `nas search` chooses when it is told only the data and the budget, and why.

`plan(data, budget)` is a pure function of the data's shape and size and the total budget (plus
the measured seconds per epoch, when the budget is a time): the space, the searcher and the
per-trial budget range. `Plan.explain()` says what was chosen and why (`nas search --explain`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ConfigSpace import ConfigurationSpace

from nas.budget import Budget, Unit
from nas.data import Dataset

#: The searcher of a default search: Hyperband's schedule with model-based proposals; promoted
#: trials continue their parent's checkpoint, so a rung costs only its increment.
DEFAULT_SEARCHER = "bohb"
#: Successive-halving rate and rungs of the default searcher: max / min budget = ETA ** (RUNGS-1).
ETA = 3
RUNGS = 3
#: Bounds of a full trial's epochs: enough to converge on small data, few enough to compare many.
#: A higher cap was measured on digits at 600 s (seeds 0-2, test errors of 449): 63-epoch trials
#: (20-22 of them) made 3 / 3 / 0 errors against 0 / 4 / 2 with 36 (32-37 trials).
MIN_TRIAL_EPOCHS = 9
MAX_TRIAL_EPOCHS = 36
#: Full-budget trials' worth of epochs one default search should be able to afford.
FULL_TRIALS_PER_SEARCH = 30
#: The fewest epochs of a full trial on augmented images: augmentation pays only with longer
#: training (IMAGE_AUGMENT's measurements: neutral at 9 epochs, a third fewer errors at 30).
#: Whole default searches on digits at 120 s (seeds 0-2, test errors of 449): 9-epoch trials
#: 5 / 3 / 1, and 3 / 3 / 5 with the default configuration first; 18-epoch trials 4 / 3 / 1;
#: 27-epoch trials with the default first 2 / 3 / 1 (the default reached 27 epochs each time).
MIN_AUGMENTED_EPOCHS = 27
#: That floor holds only while a full trial of the default model takes at most this share of the
#: budget; else it comes down in steps of 9 (to MIN_TRIAL_EPOCHS). BOHB's first bracket costs
#: about 2.3 full trials (with continuation) before its first full-budget model, and random
#: candidates train slower than the default. Measured on digits at 120 s on a machine half as
#: fast (1.4 s per default epoch; seeds 0-2, test errors of 449): 27-epoch trials 10 / 7 / 2 and
#: 10 / 2 / 2 in two runs (no trial reached 27 epochs), 18-epoch 2 / 3 / 2, 9-epoch 3 / 3 / 2.
FULL_TRIAL_SHARE = 1 / 4
#: Extra seeds of the best full-budget configuration trained at the end (`nas.replicas`), at
#: most half the budget. Measured offline on the journals of default 600 s digits searches
#: (seeds 0-2, test errors of 449): the best configuration plus two replicas made 1 / 1 / 1
#: against 0 / 4 / 2 for the searches' own ensembles.
REPLICAS = 2


@dataclass(frozen=True)
class Plan:
    """The choices of a default search: space (name and object), searcher, trial budget."""

    space_name: str
    space: ConfigurationSpace
    searcher: str
    trial_budget: Budget
    searcher_options: dict[str, Any] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    replicas: int = REPLICAS

    def explain(self) -> str:
        """What was chosen and why, one line per choice."""
        return "\n".join(self.reasons)


def data_kind(input_shape: tuple[int, ...]) -> str:
    """``"image"`` for (C, H, W), ``"signal"`` for (C, L), ``"features"`` for flat vectors."""
    return {3: "image", 2: "signal"}.get(len(input_shape), "features")


#: What a default space adds to the named space. Measured on digits and mnist1d (3 seeds, 30
#: epochs, default conv model): random whole-position shifts cost 0.5-1.5 points of test accuracy
#: on both, so they stay out; label smoothing and a 5 % warm-up were neutral there and are kept
#: searchable / on, as they help elsewhere and cost nothing.
AUTO_OVERRIDES: dict[str, dict[str, Any]] = {
    "residual-mlp": {"label_smoothing": (0.0, 0.2)},
    "residual-conv": {"label_smoothing": (0.0, 0.2), "warmup": 0.05},
}


#: Images and signals with at most this many positions (8x8, 1x40, 16x16) are "tiny": they are
#: cheap per channel, and their first stage gets TINY_CHANNELS instead of the space's 8-64.
TINY_POSITIONS = 256
#: Measured with the default conv model, 30 epochs, 3 splits (test errors summed over the
#: splits): digits 8x8 (449 test samples each): 8 channels 19, 16: 7, 32: 7, 64: 4, 128: 6;
#: mnist1d 1x40 (1,000 each): 16 channels 43, 32: 23, 64: 15. 64 channels cost ~6x the epoch
#: time of 16, which a time budget pays for with fewer, shorter trials; still, whole searches
#: (bench_e2e, 3 seeds) did as well or better: 120 s digits 99.33 % median test accuracy wide vs
#: 99.33 % narrow, mnist1d 99.20 % vs 98.20 %; 600 s mnist1d 99.60 % vs 99.20 %.
TINY_CHANNELS = (32, 128)

#: The augmentation images get by default. Measured on digits with the default conv model
#: (64 channels, 6 splits x 3 seeds, test errors summed over the 18 runs / over the 6 ensembles
#: of 3): "affine" (rotations up to 10 degrees, 10 % scaling, sub-pixel translations) 27 / 4
#: against 36 / 11 without at 30 epochs, 23 / 5 against 39 / 10 at 60, neutral at 9 (45 / 11
#: against 44 / 12). On mnist1d signals (stretch and sub-position shift) it doubled the errors
#: (13-16 against 7-8 of 1,000), so signals get none.
IMAGE_AUGMENT = "affine"


def default_space(data: Dataset, overrides: dict[str, Any] | None = None
                  ) -> tuple[str, ConfigurationSpace, str]:
    """The space for `data`'s shape, with `overrides` on top; (name, space, reason)."""
    import spaces

    kind = data_kind(tuple(data.input_shape))
    shape = "x".join(str(d) for d in data.input_shape)
    name = "residual-mlp" if kind == "features" else "residual-conv"
    chosen = dict(AUTO_OVERRIDES[name])
    tiny = kind != "features" and math.prod(data.input_shape[1:]) <= TINY_POSITIONS
    if tiny:
        chosen["channels"] = TINY_CHANNELS
    if kind == "image":
        chosen["augment"] = IMAGE_AUGMENT
    space = spaces.get(name, **{**chosen, **(overrides or {})})
    if kind == "features":
        why = (f"space   residual-mlp: samples are flat feature vectors ({shape}); label "
               "smoothing searched in [0, 0.2]")
    else:
        why = (f"space   residual-conv: samples are {kind}s ({shape}); label smoothing in "
               "[0, 0.2] searched, 5 % lr warm-up")
        if kind == "image":
            why += (f", {IMAGE_AUGMENT} augmentation (small rotations, scalings and sub-pixel "
                    "translations measured better on images)")
        if tiny:
            low, high = TINY_CHANNELS
            why += (f"; tiny inputs (<= {TINY_POSITIONS} positions) start with {low}-{high} "
                    "channels, as wide models measured better there")
    if overrides:
        why += "; narrowed by " + ", ".join(f"{k}={v}" for k, v in overrides.items())
    return name, space, why


def augmented(space: ConfigurationSpace) -> bool:
    """True when candidates of `space` may train with an augmentation other than none."""
    if "augment" not in space:
        return False
    hp = space["augment"]
    choices = getattr(hp, "choices", None) or (getattr(hp, "value", "none"),)
    return any(choice != "none" for choice in choices)


def plan(data: Dataset, budget: Budget, *, epoch_seconds: float | None = None,
         space_overrides: dict[str, Any] | None = None,
         space: ConfigurationSpace | None = None) -> Plan:
    """Defaults for a search of `data` within `budget`.

    `epoch_seconds` (one epoch of the space's default model, measured) sizes the trials of a
    time budget; an epoch budget sizes them directly. `space`, the user's own, replaces the
    default one in sizing the trials.
    """
    space_name, default, space_reason = default_space(data, space_overrides)
    wanted = MIN_AUGMENTED_EPOCHS if augmented(space if space is not None else default) \
        else MIN_TRIAL_EPOCHS
    floor = _affordable_floor(wanted, _total_epochs(budget, epoch_seconds))
    epochs = _trial_epochs(budget, epoch_seconds, floor)
    min_epochs = epochs / ETA ** (RUNGS - 1)
    if budget.unit is Unit.SECONDS and epoch_seconds is not None:
        afford = f"{budget.amount:g} s at {epoch_seconds:.2f} s per epoch"
    elif budget.unit is Unit.EPOCHS:
        afford = f"{budget.amount:g} epochs"
    else:
        afford = f"a budget of {budget}"
    reasons = (
        space_reason,
        f"searcher {DEFAULT_SEARCHER}: multi-fidelity (eta {ETA}, {RUNGS} rungs of "
        f"{min_epochs:g}-{epochs:g} epochs) with model-based proposals, the space's default "
        "configuration first; promoted trials continue their parent's training",
        f"trials  up to {epochs:g} epochs: {afford}, aiming at about {FULL_TRIALS_PER_SEARCH} "
        f"full-budget trials' worth (bounded to {floor}-{MAX_TRIAL_EPOCHS}"
        + ("; augmented candidates need the longer training" if floor > MIN_TRIAL_EPOCHS
           else "")
        + (f"; lowered from {wanted} so that a full trial of the default model takes at most "
           f"{100 * FULL_TRIAL_SHARE:.0f} % of the budget" if floor < wanted else "") + ")",
        f"replicas {REPLICAS}: the best full-budget configuration trains again with {REPLICAS} "
        "new seeds at the end (up to half the budget), and the final ensemble starts from "
        "their average",
    )
    return Plan(space_name=space_name, space=default, searcher=DEFAULT_SEARCHER,
                trial_budget=Budget(float(epochs), Unit.EPOCHS),
                searcher_options={"eta": ETA, "include_default": True}, reasons=reasons)


def _total_epochs(budget: Budget, epoch_seconds: float | None) -> float | None:
    """Epochs of the default model the budget buys; None when it cannot tell (trials)."""
    if budget.unit is Unit.EPOCHS:
        return budget.amount
    if budget.unit is Unit.SECONDS and epoch_seconds:
        return budget.amount / epoch_seconds
    return None


def _affordable_floor(floor: int, total: float | None) -> int:
    """`floor` lowered in steps of ETA ** (RUNGS - 1), not below MIN_TRIAL_EPOCHS, until a full
    trial of the default model takes at most FULL_TRIAL_SHARE of the `total` epochs."""
    step = ETA ** (RUNGS - 1)
    while total is not None and floor > MIN_TRIAL_EPOCHS and floor > FULL_TRIAL_SHARE * total:
        floor = max(MIN_TRIAL_EPOCHS, floor - step)
    return floor


def _trial_epochs(budget: Budget, epoch_seconds: float | None,
                  floor: int = MIN_TRIAL_EPOCHS) -> int:
    """Epochs of a full trial: the budget's epochs over FULL_TRIALS_PER_SEARCH, rounded to a
    multiple of ETA ** (RUNGS - 1) so that every rung trains whole epochs, within
    `floor`-MAX_TRIAL_EPOCHS."""
    total = _total_epochs(budget, epoch_seconds)
    if total is None:  # a number of trials, or no measurement: the middle of the range
        total = FULL_TRIALS_PER_SEARCH * 27
    step = ETA ** (RUNGS - 1)
    raw = total / FULL_TRIALS_PER_SEARCH
    epochs = step * max(1, math.floor(raw / step))
    return int(min(max(epochs, floor), MAX_TRIAL_EPOCHS))


def measure_epoch_seconds(space: ConfigurationSpace, data: Dataset, device: str = "cpu") -> float:
    """Seconds one epoch of `space`'s default model takes on `data` (a two-epoch training run)."""
    import time

    import torch

    import spaces
    from nas.trainer import TrainerOptions, TrainSettings, train

    config = dict(space.get_default_configuration())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = spaces.build_model(config, data.input_shape, data.num_classes)
    ends: list[float] = []
    # Two epochs, timing the second: the first pays one-off costs (kernel selection, caches).
    train(model, data, TrainSettings.from_config(config), epochs=2, seed=0,
          options=TrainerOptions(device=device),
          on_epoch=lambda point: ends.append(time.perf_counter()))
    return ends[1] - ends[0]


@dataclass(frozen=True)
class Resolved:
    """A search's space, searcher and trial budget once every "auto" is decided."""

    space: ConfigurationSpace | str
    space_name: str
    searcher: Any
    searcher_options: dict[str, Any] | None
    trial_budget: Budget
    budget: Budget
    plan: Plan | None
    #: Replicas of the default plan: with the default searcher only.
    replicas: int = 0


def resolve(space: Any, data: Dataset, searcher: Any, budget: Budget, trial_budget: Any,
            searcher_options: dict[str, Any] | None, *, device: str = "cpu",
            space_overrides: dict[str, Any] | None = None) -> Resolved:
    """Replace each "auto" among `space`, `searcher`, `trial_budget` by the default `plan`.

    With an automatic trial budget and a time budget, two epochs of the default model are timed
    first; that time is taken off the budget, so the whole search still fits in it.
    """
    auto = {k for k, v in (("space", space), ("searcher", searcher),
                           ("trial_budget", trial_budget)) if isinstance(v, str) and v == "auto"}
    space_name = space if isinstance(space, str) else (getattr(space, "name", None) or "custom")
    if not auto:
        return Resolved(space, space_name, searcher, searcher_options,
                        Budget.parse(trial_budget), budget, None)
    import spaces

    own = None if "space" in auto else spaces.get(space) if isinstance(space, str) else space
    epoch_seconds = None
    if "trial_budget" in auto and budget.unit is Unit.SECONDS:
        probe_space = default_space(data, space_overrides)[1] if own is None else own
        epoch_seconds = measure_epoch_seconds(probe_space, data, device)
        if epoch_seconds < budget.amount:
            budget = Budget(math.floor((budget.amount - 2 * epoch_seconds) * 10) / 10,
                            Unit.SECONDS)
    chosen = plan(data, budget, epoch_seconds=epoch_seconds, space_overrides=space_overrides,
                  space=own)
    if "space" in auto:
        space, space_name = chosen.space, chosen.space_name
    per_trial = chosen.trial_budget if "trial_budget" in auto else Budget.parse(trial_budget)
    if "searcher" in auto:
        searcher = chosen.searcher
        # The rungs the plan explains (max / ETA**(RUNGS-1) to max) of the actual trial budget.
        rungs = {"min_budget": per_trial.amount / ETA ** (RUNGS - 1)}
        searcher_options = {**chosen.searcher_options, **rungs, **(searcher_options or {})}
    return Resolved(space, space_name, searcher, searcher_options, per_trial, budget, chosen,
                    replicas=chosen.replicas if "searcher" in auto else 0)
