"""What `nas search` chooses when it is told only the data and the budget, and why.

`plan(data, budget)` is a pure function of the data's shape and size and the total budget (plus
the measured seconds per epoch, when the budget is a time): the space, the searcher and the
per-trial budget range. `Plan.explain()` says what was chosen and why (`nas search --explain`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ConfigSpace import ConfigurationSpace

from nas.budget import Budget, Unit
from nas.data import Dataset
from nas.probe import measure_epoch_seconds
from spaces.overrides import Default, Range

# Each constant says why in a line; the measurements behind them, with their commands, are in
# docs/decisions.md.
#: The searcher of a default search: Hyperband's schedule with model-based proposals; promoted
#: trials continue their parent's checkpoint, so a rung costs only its increment.
DEFAULT_SEARCHER = "bohb"
#: The searcher of a default multi-objective search: the same Hyperband schedule promoting by
#: Pareto rank, with multi-objective TPE proposals (`searchers.multiobjective`).
DEFAULT_MO_SEARCHER = "mobohb"
#: Successive-halving rate and rungs of the default searcher: max / min budget = ETA ** (RUNGS-1).
ETA = 3
RUNGS = 3
#: Bounds of a full trial's epochs: enough to converge on small data, few enough to compare many
#: (a 63-epoch cap made fewer trials reach the top rung and no better models).
MIN_TRIAL_EPOCHS = 9
MAX_TRIAL_EPOCHS = 36
#: Full-budget trials' worth of epochs one default search should be able to afford.
FULL_TRIALS_PER_SEARCH = 30
#: The fewest epochs of a full trial on augmented images: augmentation pays only with longer
#: training.
MIN_AUGMENTED_EPOCHS = 27
#: That floor holds only while a full trial of the default model takes at most this share of the
#: budget; else it comes down in steps of 9 (on slow machines no trial reached 27 epochs).
FULL_TRIAL_SHARE = 1 / 4
#: The most of a time budget one full trial of any candidate may take: a larger one is turned
#: away before it trains (`nas.engine.costs`), as one such model can eat the whole budget.
MAX_TRIAL_SHARE = 1 / 3
#: The plain baselines (`nas.baselines`) a search fits on its split get this share of a time
#: budget, and at most BASELINE_SECONDS of any other: a user's first try, seconds at most. A
#: short budget gives them up to BASELINE_SMALL_SHARE of it, BASELINE_FLOOR_SECONDS at most:
#: there a network has no time to beat them on hard data, so they are what the search returns,
#: and a full SVM on a few thousand samples takes seconds (docs/decisions.md).
BASELINE_SHARE = 0.05
BASELINE_SECONDS = 20.0
BASELINE_SMALL_SHARE = 0.4
BASELINE_FLOOR_SECONDS = 5.0
#: A time budget of which less than this share is left once the process started and loaded
#: its data trains no network: only the plain baselines are fitted.
MIN_LEFT_TO_PLAN = 1 / 3
#: The most of a time budget the timing of the default model may take: on a slow machine two
#: whole epochs can take longer than the budget, so the probe stops early and extrapolates.
PROBE_SHARE = 0.1
#: Extra seeds of the best full-budget configuration trained at the end (`nas.engine.replicas`):
#: their average fixes most of one model's errors.
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
    #: Seconds per epoch of the space's default model, as measured (time budgets only).
    epoch_seconds: float | None = None
    #: False when a time budget was spent before the first trial: only the baselines run.
    trains: bool = True
    #: Configurations trained at the full trial budget before the searcher's own (left-out
    #: hyperparameters at their defaults).
    enqueue: tuple[dict[str, Any], ...] = ()

    def explain(self) -> str:
        """What was chosen and why, one line per choice."""
        return "\n".join(self.reasons)


def data_kind(input_shape: tuple[int, ...]) -> str:
    """``"image"`` for (C, H, W), ``"signal"`` for (C, L), ``"features"`` for flat vectors."""
    return {3: "image", 2: "signal"}.get(len(input_shape), "features")


#: What a default space adds to the named space: label smoothing searched, a 5 % warm-up (neutral
#: on digits and mnist1d, helpful elsewhere; whole-position shifts measured worse, so left out).
AUTO_OVERRIDES: dict[str, dict[str, Any]] = {
    "residual-mlp": {"label_smoothing": (0.0, 0.2)},
    "residual-conv": {"label_smoothing": (0.0, 0.2), "warmup": 0.05},
}


#: Images and signals with at most this many positions (8x8, 1x40, 16x16) are "tiny": cheap per
#: channel, their first stage gets TINY_CHANNELS instead of the space's 8-64 (wider measured
#: better on digits and mnist1d, whole searches included).
TINY_POSITIONS = 256
TINY_CHANNELS = (32, 128)

#: An image model's default configuration gets as many stages as it takes to bring its maps
#: down to at most this wide (each stage after the first halves them; at most the space's
#: three): its last 3x3 convolutions then see most of the image. Trained alone for 27 epochs,
#: three stages against two: shapes28 (14x14 after the stem) 60 -> 85 %, shapes16 83 -> 89 %,
#: templates16 66 -> 74 %; digits (8x8) keeps two (0.5 points worse with three). Signals keep
#: the space's two: on mnist1d three were level at twice the time (docs/decisions.md).
FINAL_MAP_SIDE = 4

#: The augmentation images get by default: sub-pixel affine moves (a third fewer errors on digits
#: at 30 epochs); signals get none (it doubled mnist1d's errors); none either when a full trial
#: is shorter than MIN_TRIAL_EPOCHS (neutral at 9 epochs, worse at 5).
IMAGE_AUGMENT = "affine"


def image_stages(input_shape: tuple[int, ...], stem_stride: int = 1) -> int | None:
    """The default stages of an image model (`FINAL_MAP_SIDE`), or None to keep the space's
    default where that is already enough."""
    from spaces.conv import MAX_STAGES

    side = min(input_shape[1:]) / max(1, stem_stride)
    stages = 1
    while side > FINAL_MAP_SIDE and stages < MAX_STAGES:
        side, stages = side / 2, stages + 1
    return stages if stages > 2 else None


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
        # A searched stride ([1, 2]) starts at its default, 1.
        stride = (overrides or {}).get("stem_stride", 1)
        stages = image_stages(tuple(data.input_shape), stride if isinstance(stride, int) else 1)
        if stages is not None:
            chosen["n_stages"] = Default(stages)
    space = spaces.get(name, **{**chosen, **(overrides or {})})
    if kind == "features":
        why = (f"space   residual-mlp: samples are flat feature vectors ({shape}); label "
               "smoothing searched in [0, 0.2]")
    else:
        why = (f"space   residual-conv: samples are {kind}s ({shape}); label smoothing in "
               "[0, 0.2] searched, 5 % lr warm-up")
        if kind == "image" and (overrides or {}).get("augment", IMAGE_AUGMENT) == IMAGE_AUGMENT:
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
    if epochs < MIN_TRIAL_EPOCHS and augmented(default) \
            and "augment" not in (space_overrides or {}):
        # Trials too short for augmentation to pay, which also costs time per epoch.
        space_name, default, space_reason = default_space(
            data, {**(space_overrides or {}), "augment": "none"})
        space_reason += (f"; no augmentation, as trials of {epochs:g} epochs are too short "
                         "for it to pay")
    first: tuple[dict[str, Any], ...] = ()
    if space is None and epochs < MIN_AUGMENTED_EPOCHS and augmented(default) \
            and "augment" not in (space_overrides or {}):
        # Whether augmentation pays in so few epochs depends on the data (docs/decisions.md,
        # "Augmentation in short trials"): searched, and the default model trains both ways.
        space_name, default, space_reason = default_space(
            data, {**(space_overrides or {}), "augment": ["none", IMAGE_AUGMENT]})
        first = ({"augment": IMAGE_AUGMENT},)
        space_reason += (f"; augmentation searched (none or {IMAGE_AUGMENT}), and the default "
                         f"model trains the full {epochs:g} epochs both ways first: whether "
                         "augmentation pays in trials this short depends on the data")
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
        f"{min_epochs:g}-{epochs:g} epochs) with model-based proposals; first the space's "
        f"default configuration trains the full {epochs:g} epochs, so a fully trained model "
        "is held from the start; promoted trials continue their parent's training",
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
    total = _total_epochs(budget, epoch_seconds)
    if budget.unit is Unit.SECONDS and total is not None and epochs > total:
        reasons += (
            f"warning even one full trial ({epochs:g} epochs of the default model, about "
            f"{epochs * (epoch_seconds or 0.0):.0f} s) does not fit the {budget.amount:.0f} s "
            "left: the result will be a partly trained model or a plain baseline; give the "
            "search more time for a trained network",)
    if budget.unit is Unit.SECONDS and epoch_seconds is not None:
        reasons += (
            f"sizes   a candidate whose full trial would take over {100 * MAX_TRIAL_SHARE:.0f} % "
            "of the budget (predicted from what its modules write per sample plus its FLOPs, "
            "or from its FLOPs where they predict longer, against the default model's "
            "measured time) is skipped; the prediction is rescaled whenever trials take over "
            "2x or under 1/2 of it, and then the trial budget is planned again for the time "
            "left (the searcher's brackets not yet started use it); each re-plan is journaled",)
    return Plan(space_name=space_name, space=default, searcher=DEFAULT_SEARCHER,
                trial_budget=Budget(float(epochs), Unit.EPOCHS),
                searcher_options={"eta": ETA, "include_default": True, "full_first": True},
                reasons=reasons, epoch_seconds=epoch_seconds, enqueue=first)


#: The hyperparameter that sets a default space's model size, and the smallest lower bound a
#: narrowed range may reach.
SIZE_PARAMS = {"residual-conv": ("channels", 4), "residual-mlp": ("width", 8)}
#: Timings of narrowed models a plan may take (each stops after a share of the budget).
MAX_SIZE_PROBES = 2
#: Images whose smallest side is at least this may start with a stride-2 stem when full-size
#: maps are too slow: a quarter of the work, with maps still >= 8 wide (a 28x28 default model
#: took 2.3 s per epoch on one core, so a 60 s search trained 2 epochs per trial).
STEM_STRIDE_FROM = 16


def _sized_models(data: Dataset, overrides: dict[str, Any], epoch_seconds: float,
                  seconds: float, measure: Callable[..., float | None]
                  ) -> tuple[dict[str, Any], float, str]:
    """Make the default space's models cheaper until a full trial of its default model fits in
    FULL_TRIAL_SHARE of `seconds`: first a stride-2 stem on large images, then its model-size
    range halved. A full trial is the epochs the plan wants: MIN_AUGMENTED_EPOCHS where the
    space augments, else MIN_TRIAL_EPOCHS. The overrides, the default model's seconds per epoch
    and why; unchanged when it fits already.

    FLOPs pick the first range to try; `measure(space, share)` (a short timing within `share`
    of the planning time left) then decides, as small models pay fixed per-batch costs that
    FLOPs do not see. At most one stem timing and MAX_SIZE_PROBES range timings; once `measure`
    has no time left (None), the FLOPs' prediction stands (trials re-plan it). FLOPs, not the
    cost model's `Work.cost`: on a narrower default model FLOPs err fast and the cost slow, and
    a plan too fast is timed or re-planned while one too slow shortens every trial
    (docs/decisions.md, "FLOPs against output elements").
    """
    import spaces

    def flops(of: ConfigurationSpace) -> float:
        return spaces.model_flops(dict(of.get_default_configuration()), data.input_shape,
                                  data.num_classes)

    def timed(of: ConfigurationSpace, share: float, scaled_from: ConfigurationSpace,
              seconds_there: float) -> tuple[float, bool]:
        """`of`'s seconds per epoch, and whether they were timed (else scaled by FLOPs)."""
        measured = measure(of, share)
        if measured is not None:
            return measured, True
        return seconds_there * flops(of) / flops(scaled_from), False

    def verb(was_timed: bool) -> str:
        return "took" if was_timed else "is predicted from its FLOPs at"

    name, space, _ = default_space(data, overrides)
    param, smallest = SIZE_PARAMS[name]
    # Stem and width are judged by the epochs the plan wants (27 with augmentation): at 300 s
    # a 28x28 default model of 4 s per epoch fitted nine epochs, not 27, and 2 of 3 searches
    # ended below an SVM; at equal seconds, augmented images gained 0.5-22 points from half the
    # channels for three times the epochs, unaugmented ones lost 0-4 (docs/decisions.md).
    floor = MIN_AUGMENTED_EPOCHS if augmented(space) else MIN_TRIAL_EPOCHS
    wanted = FULL_TRIAL_SHARE * seconds / floor
    if epoch_seconds <= wanted:
        return overrides, epoch_seconds, ""
    whys: list[str] = []
    started_at = epoch_seconds
    if data_kind(tuple(data.input_shape)) == "image" and "stem_stride" not in overrides \
            and min(data.input_shape[1:]) >= STEM_STRIDE_FROM:
        overrides = {**overrides, "stem_stride": 2}
        epoch_seconds, was_timed = timed(default_space(data, overrides)[1], 0.5, space,
                                         started_at)
        whys.append(f"sizes   stem stride 2 (maps halved before the first stage): the default "
                    f"model took {started_at:.2f} s per epoch, so {floor} epochs would take "
                    f"over {100 * FULL_TRIAL_SHARE:.0f} % of the {seconds:.0f} s left; with "
                    f"it, it {verb(was_timed)} {epoch_seconds:.2f} s")
    if epoch_seconds <= wanted:
        return overrides, epoch_seconds, "\n".join(whys)
    if param not in space or param in overrides:
        return overrides, epoch_seconds, "\n".join(whys)

    start_space = default_space(data, overrides)[1]
    reference, hp = flops(start_space), start_space[param]
    start = Range(int(hp.lower), int(hp.upper), int(hp.default_value))

    def narrowed(size: Range, halve_default: bool) -> ConfigurationSpace:
        return default_space(data, {**overrides, param: _size_override(size, halve_default)})[1]

    def narrow(epochs: int, halve_default: bool
               ) -> tuple[Range, ConfigurationSpace, float, bool] | None:
        """Halve the range until `epochs` of the default model fit: the size, its space, its
        seconds per epoch and whether they were timed; None when nothing was narrowed."""
        target = FULL_TRIAL_SHARE * seconds / epochs
        size, measured, was_timed = start, epoch_seconds, True
        for _ in range(MAX_SIZE_PROBES):
            predicted = measured
            while predicted > target and size.low // 2 >= smallest:
                size = _halved(size)
                predicted = epoch_seconds * flops(narrowed(size, halve_default)) / reference
            if size.low == start.low:
                return None
            candidate = narrowed(size, halve_default)
            measured, was_timed = timed(candidate, 1.0, start_space, epoch_seconds)
            if not was_timed or measured <= target or size.low // 2 < smallest:
                break
        return size, candidate, measured, was_timed

    # On augmented images half the channels for three times the epochs won at equal seconds,
    # so the default model is halved with its range until 18 epochs fit (then the plan trains
    # 27 where they fit): from 18 epochs to 27, half the channels lost (shapes16 69.6 -> 65.1 %,
    # templates16 54.3 -> 47.5 %). Where even that cannot buy them, and on unaugmented data,
    # the wider model won: the old rule, the range narrowed until nine epochs fit and the
    # default model kept where it still fits (a 28x28 search at 30 s: 8 channels for 9 epochs
    # 43 % against 16 for 6 epochs 55 %).
    shorter = floor - ETA ** (RUNGS - 1)
    chosen, epochs, halve = None, shorter, floor > MIN_TRIAL_EPOCHS
    if halve:
        chosen = narrow(shorter, halve_default=True)
    if chosen is None or chosen[2] > FULL_TRIAL_SHARE * seconds / shorter:
        if epoch_seconds <= FULL_TRIAL_SHARE * seconds / MIN_TRIAL_EPOCHS:
            return overrides, epoch_seconds, "\n".join(whys)
        epochs, halve = MIN_TRIAL_EPOCHS, False
        chosen = narrow(MIN_TRIAL_EPOCHS, halve_default=False)
    if chosen is None:
        return overrides, epoch_seconds, "\n".join(whys)
    size, to, measured, was_timed = chosen
    whys.append(f"sizes   {param} narrowed to {size.low:g}-{size.high:g}, default "
                f"{to[param].default_value} (from {start.low:g}-{start.high:g}, default "
                f"{start.default:g}): the default model took {epoch_seconds:.2f} s per "
                f"epoch, so {epochs} epochs would take over {100 * FULL_TRIAL_SHARE:.0f} % of "
                f"the {seconds:.0f} s left; the narrower one {verb(was_timed)} {measured:.2f} s")
    return {**overrides, param: _size_override(size, halve)}, measured, "\n".join(whys)


def _size_override(size: Range, halve_default: bool) -> Range | tuple[int, int]:
    """A narrowed size as an override: with its halved default, or a plain range (the space's
    default kept where it fits, else the range's centre)."""
    return size if halve_default else (int(size.low), int(size.high))


def _halved(size: Range) -> Range:
    """A model-size range and its default, each halved (the default kept within the range)."""
    low, high = int(size.low) // 2, int(size.high) // 2
    return Range(low, high, min(max(int(size.default) // 2, low), high))


def _epoch_seconds(space: ConfigurationSpace, data: Dataset, device: str, limit: float
                   ) -> float:
    """`measure_epoch_seconds` at the threads the trials will get: fewer where a search that
    started after ours chose holds a core (`within_peers`)."""
    if device != "cpu":
        return measure_epoch_seconds(space, data, device, limit=limit)
    import torch

    from nas.executors.threads import torch_threads, within_peers

    with torch_threads(within_peers(torch.get_num_threads())):
        return measure_epoch_seconds(space, data, device, limit=limit)


def baseline_seconds(budget: Budget) -> float:
    """The time cap of a search's plain baselines."""
    if budget.unit is Unit.SECONDS:
        small = min(BASELINE_FLOOR_SECONDS, BASELINE_SMALL_SHARE * budget.amount)
        return min(BASELINE_SECONDS, max(BASELINE_SHARE * budget.amount, small))
    return BASELINE_SECONDS


def replanned_epochs(seconds_left: float, epoch_seconds: float, floor: int) -> int:
    """A full trial's epochs for the `seconds_left` of a search at `epoch_seconds` per epoch of
    the default model (measured anew): the rules `plan` started from, `floor` its wanted
    fewest epochs (MIN_AUGMENTED_EPOCHS or MIN_TRIAL_EPOCHS)."""
    left = Budget(max(seconds_left, 1e-3), Unit.SECONDS)
    return _trial_epochs(left, epoch_seconds,
                         _affordable_floor(floor, _total_epochs(left, epoch_seconds)))


def _total_epochs(budget: Budget, epoch_seconds: float | None) -> float | None:
    """Epochs of the default model the budget buys; None when it cannot tell (trials)."""
    if budget.unit is Unit.EPOCHS:
        return budget.amount
    if budget.unit is Unit.SECONDS and epoch_seconds:
        return budget.amount / epoch_seconds
    return None


def _affordable_floor(floor: int, total: float | None) -> int:
    """`floor` lowered in steps of ETA ** (RUNGS - 1) until a full trial of the default model
    takes at most FULL_TRIAL_SHARE of the `total` epochs (from 27 to 18: until 18 is the nearer
    in ratio); below MIN_TRIAL_EPOCHS only when even that does not fit (a short budget on a
    slow machine), down to one epoch."""
    step = ETA ** (RUNGS - 1)

    def too_long(epochs: int) -> bool:
        share = FULL_TRIAL_SHARE
        if epochs - step > MIN_TRIAL_EPOCHS:
            # 27 epochs at 26 % of a 60 s budget gave 8-channel shapes28 models 18 epochs:
            # 56-62 % against 70-75 % at 27 (docs/decisions.md).
            share *= math.sqrt(epochs / (epochs - step))
        return epochs > share * total

    while total is not None and floor > MIN_TRIAL_EPOCHS and too_long(floor):
        floor = max(MIN_TRIAL_EPOCHS, floor - step)
    if total is not None and floor <= MIN_TRIAL_EPOCHS and floor > FULL_TRIAL_SHARE * total:
        floor = max(1, min(floor, math.floor(FULL_TRIAL_SHARE * total)))
    return floor


def _trial_epochs(budget: Budget, epoch_seconds: float | None,
                  floor: int = MIN_TRIAL_EPOCHS) -> int:
    """Epochs of a full trial: the budget's epochs over FULL_TRIALS_PER_SEARCH, rounded to a
    multiple of ETA ** (RUNGS - 1) so that every rung trains whole epochs, within
    `floor`-MAX_TRIAL_EPOCHS."""
    if floor < MIN_TRIAL_EPOCHS:  # the budget affords no more
        return floor
    total = _total_epochs(budget, epoch_seconds)
    if total is None:  # a number of trials, or no measurement: the middle of the range
        total = FULL_TRIALS_PER_SEARCH * 27
    step = ETA ** (RUNGS - 1)
    raw = total / FULL_TRIALS_PER_SEARCH
    epochs = step * max(1, math.floor(raw / step))
    return int(min(max(epochs, floor), MAX_TRIAL_EPOCHS))


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


def multi_objective_default(chosen: Resolved) -> tuple[str, dict[str, Any]]:
    """`DEFAULT_MO_SEARCHER` on the rungs the plan chose for its single-objective searcher."""
    keep = ("eta", "min_budget", "max_budget", "include_default", "full_first")
    options = {k: v for k, v in (chosen.searcher_options or {}).items() if k in keep}
    return DEFAULT_MO_SEARCHER, options


#: Which "auto" argument each kind of reason explains (by its first word); a warning, always.
REASON_OF = {"space": "space", "searcher": "searcher", "replicas": "searcher",
             "trials": "trial_budget", "sizes": "trial_budget"}


def resolve(space: Any, data: Dataset, searcher: Any, budget: Budget, trial_budget: Any,
            searcher_options: dict[str, Any] | None, *, device: str = "cpu",
            space_overrides: dict[str, Any] | None = None,
            started_at: float | None = None, reserve: float = 0.0,
            announce: Callable[[str], None] | None = None) -> Resolved:
    """Replace each "auto" among `space`, `searcher`, `trial_budget` by the default `plan`.

    With an automatic trial budget and a time budget, the default model is timed first, for at
    most PROBE_SHARE of what is left of the budget (counted from `started_at`, a
    ``time.monotonic()``; default now); the plan is sized to what is left after it. `reserve`
    seconds of a time budget are kept for the plain baselines, fitted before the first trial.
    `announce` is told, as the timing starts, what is being timed (a progress display).
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
    sizing = budget
    narrowed = ""
    if "trial_budget" in auto and budget.unit is Unit.SECONDS:
        import time

        began = time.monotonic() if started_at is None else started_at
        probe_space = default_space(data, space_overrides)[1] if own is None else own

        def left_now() -> float:
            """What the trials may still use: the budget less the baselines' reserve and the
            time since it began."""
            return budget.amount - reserve - (time.monotonic() - began)

        left = left_now()
        # Every timing together stops within PROBE_SHARE of what was left when planning began.
        plan_ends = time.monotonic() + PROBE_SHARE * max(left, 0.0)

        def measure(candidate: ConfigurationSpace, share: float = 1.0) -> float | None:
            """A timing within `share` of the planning's time left; None once none is left:
            a timing's fixed costs (building the model, its first batches) would then come
            out of the trials' time (two searches side by side at 10 s: planning took 4-6 s)."""
            limit = share * (plan_ends - time.monotonic())
            if limit <= 0:
                return None
            return _epoch_seconds(candidate, data, device, limit)

        # Starting and loading the data already took most of the budget: a machine that slow
        # trains no network in the rest, and timing one would spend it.
        if left > MIN_LEFT_TO_PLAN * budget.amount:
            # Most of the planning's time to the model the plan starts from; the rest for a
            # narrower one, if that one turns out too slow.
            if announce is not None:
                announce(f"planning timing the default model on this machine (at most "
                         f"{100 * PROBE_SHARE:.0f} % of the budget) to size the trials ...")
            epoch_seconds = _epoch_seconds(probe_space, data, device,
                                           0.6 * max(0.0, plan_ends - time.monotonic()))
            left = left_now()
        else:
            left = min(left, 0.0)
        sizing = Budget(max(left, 1e-3), Unit.SECONDS)
        if own is None and epoch_seconds is not None and left > 0:
            space_overrides, epoch_seconds, narrowed = _sized_models(
                data, space_overrides or {}, epoch_seconds, sizing.amount, measure)
            left = left_now()
            sizing = Budget(max(left, 1e-3), Unit.SECONDS)
    chosen = plan(data, sizing, epoch_seconds=epoch_seconds, space_overrides=space_overrides,
                  space=own)
    if own is None and epoch_seconds is not None and narrowed:
        chosen = dataclasses.replace(chosen, reasons=(*chosen.reasons, *narrowed.split("\n")))
    if sizing.amount <= 1e-3:
        # Nothing left for a network (a slow start: imports, data): the plain baselines,
        # seconds at most, are all the search can still return.
        chosen = dataclasses.replace(chosen, trains=False, reasons=(*chosen.reasons, (
            f"warning the {budget} budget was spent before the first trial (starting, loading "
            f"the data and timing the model took {time.monotonic() - began:.1f} s, and "
            f"{reserve:.0f} s are kept for the plain baselines, leaving less than "
            f"{100 * MIN_LEFT_TO_PLAN:.0f} % of it): no network trains; the plain baselines "
            "get the time left and the best of them is the result; give the search more "
            "time")))
    # Only what was chosen here is said to be: a space or searcher the user named is theirs.
    chosen = dataclasses.replace(chosen, reasons=tuple(
        r for r in chosen.reasons if REASON_OF.get(r.split(" ", 1)[0], "") in auto | {""}))
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
