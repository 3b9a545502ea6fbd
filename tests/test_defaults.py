from __future__ import annotations

import re

import pytest

import nas
import spaces
from nas.budget import Budget, Unit
from nas.cli import main
from nas.defaults import (
    MAX_TRIAL_EPOCHS,
    MIN_AUGMENTED_EPOCHS,
    MIN_TRIAL_EPOCHS,
    augmented,
    data_kind,
    default_space,
    image_stages,
    plan,
    resolve,
)
from nas.probe import measure_epoch_seconds
from nas.storage import Storage
from tests.helpers import blobs


def _images(n: int = 90) -> nas.Dataset:
    return nas.load_dataset("synthetic", n_samples=n, n_features=36, shape="1x6x6", seed=0)


def _signals(n: int = 90) -> nas.Dataset:
    return nas.load_dataset("synthetic", n_samples=n, n_features=40, shape="1x40", seed=0)


def test_data_kind_follows_the_sample_shape() -> None:
    assert data_kind((20,)) == "features"
    assert data_kind((1, 40)) == "signal"
    assert data_kind((3, 32, 32)) == "image"


def test_default_space_by_data_shape() -> None:
    name, space, why = default_space(blobs())
    assert name == "residual-mlp" and "label_smoothing" in space and "augment" not in space
    assert "flat feature vectors" in why
    name, space, why = default_space(_images())
    assert name == "residual-conv" and space["warmup"].value == 0.05
    assert space["augment"].value == "affine" and "affine augmentation" in why
    name, space, why = default_space(_signals())
    assert name == "residual-conv" and "augment" not in space  # measured to hurt on mnist1d
    name, space, why = default_space(_images(), {"channels": (8, 16), "augment": ["none", "shift"]})
    assert space["channels"].upper == 16 and "narrowed by" in why
    assert list(space["augment"].choices) == ["none", "shift"]  # the user's choice wins


def test_tiny_inputs_get_wider_first_stages() -> None:
    _, space, why = default_space(_images())  # 1x6x6: 36 positions
    assert (space["channels"].lower, space["channels"].upper) == (32, 128)
    assert space["channels"].default_value == 64 and "tiny inputs" in why
    larger = nas.load_dataset("synthetic", n_samples=90, n_features=400, shape="1x20x20", seed=0)
    _, space, why = default_space(larger)
    assert (space["channels"].lower, space["channels"].upper) == (8, 64)
    assert "tiny" not in why
    # The user's range wins over the tiny-input one.
    _, space, _ = default_space(_images(), {"channels": (8, 16)})
    assert space["channels"].upper == 16


@pytest.mark.parametrize(("shape", "stride", "stages"), [
    ((1, 6, 6), 1, None),      # 6 -> 3: two stages, the space's own default
    ((1, 8, 8), 1, None),      # digits: 8 -> 4
    ((1, 16, 16), 1, 3),       # 16 -> 8 -> 4
    ((1, 16, 16), 2, None),    # 8 after the stem
    ((1, 28, 28), 2, 3),       # 14 -> 7 -> 3.5
    ((3, 32, 32), 1, 3),       # 32 -> 16 -> 8: at most the space's three
])
def test_image_models_start_with_stages_enough_to_shrink_their_maps(
        shape: tuple[int, ...], stride: int, stages: int | None) -> None:
    assert image_stages(shape, stride) == stages


def test_the_default_space_moves_only_the_default_of_its_stages() -> None:
    larger = nas.load_dataset("synthetic", n_samples=90, n_features=256, shape="1x16x16", seed=0)
    _, space, _ = default_space(larger)
    assert space["n_stages"].default_value == 3
    assert (space["n_stages"].lower, space["n_stages"].upper) == (1, 3)  # still searched
    _, strided, _ = default_space(larger, {"stem_stride": 2})
    assert strided["n_stages"].default_value == 2
    _, searched, _ = default_space(larger, {"stem_stride": [1, 2]})  # stride 1 by default
    assert searched["n_stages"].default_value == 3
    _, space, _ = default_space(larger, {"n_stages": (1, 2)})  # the user's range wins
    assert space["n_stages"].upper == 2 and space["n_stages"].default_value == 2
    assert default_space(_signals())[1]["n_stages"].default_value == 2


@pytest.mark.parametrize(("budget", "epoch_seconds", "epochs"), [
    (Budget(300, Unit.EPOCHS), None, 9),          # 300 / 30 = 10 -> a multiple of 9
    (Budget(120, Unit.SECONDS), 0.1, 36),         # 1200 epochs' worth -> 40 -> 36
    (Budget(120, Unit.SECONDS), 0.2, 18),         # 600 -> 20 -> 18
    (Budget(40, Unit.SECONDS), 1.0, MIN_TRIAL_EPOCHS),  # 40 epochs' worth: 9 are 23 %
    (Budget(3600, Unit.SECONDS), 0.01, MAX_TRIAL_EPOCHS),
    (Budget(50, Unit.TRIALS), None, 27),          # nothing to size by: the middle of the range
])
def test_trial_epochs_come_from_the_budget(budget: Budget, epoch_seconds: float | None,
                                           epochs: int) -> None:
    chosen = plan(_signals(), budget, epoch_seconds=epoch_seconds)
    assert chosen.trial_budget == Budget(epochs, Unit.EPOCHS)
    assert chosen.searcher == "bohb"
    # The default configuration first, at the full budget: the anytime incumbent.
    assert chosen.searcher_options == {"eta": 3, "include_default": True, "full_first": True}
    assert epochs % 9 == 0
    assert f"up to {epochs} epochs" in chosen.explain()


def test_augmented_candidates_get_longer_trials() -> None:
    budget = Budget(300, Unit.EPOCHS)  # 9 epochs per trial without augmentation
    chosen = plan(_images(), budget)
    assert chosen.trial_budget == Budget(MIN_AUGMENTED_EPOCHS, Unit.EPOCHS)
    assert "augmented candidates need the longer training" in chosen.explain()
    # The user's space decides: without augmentation the usual floor holds.
    plain = plan(_images(), budget, space=spaces.get("residual-conv"))
    assert plain.trial_budget == Budget(MIN_TRIAL_EPOCHS, Unit.EPOCHS)
    got = resolve(spaces.get("residual-conv", augment=["none", "affine"]), _images(), "auto",
                  budget, "auto", None)
    assert got.trial_budget == Budget(MIN_AUGMENTED_EPOCHS, Unit.EPOCHS)
    assert got.searcher_options["include_default"] is True


@pytest.mark.parametrize(("epoch_seconds", "epochs"), [
    (0.5, 27),   # 240 epochs' worth: a 27-epoch trial is 11 % of it
    (1.0, 27),   # 120: 23 %
    (1.4, 18),   # 86: 27 epochs would be 32 %, 18 are 21 %
    (3.0, 9),    # 40: even 18 would be 45 %
    (10.0, 3),   # 12: even 9 would be 75 %, so a quarter of what the budget buys
    (200.0, 1),  # 0.6: never below one epoch
])
def test_augmented_trials_shrink_when_the_budget_cannot_afford_them(epoch_seconds: float,
                                                                     epochs: int) -> None:
    chosen = plan(_images(), Budget(120, Unit.SECONDS), epoch_seconds=epoch_seconds)
    assert chosen.trial_budget == Budget(epochs, Unit.EPOCHS)
    lowered = "lowered from 27 so that a full trial of the default model takes at most 25 %"
    assert (lowered in chosen.explain()) == (epochs < MIN_AUGMENTED_EPOCHS)
    if epochs < MIN_TRIAL_EPOCHS:  # rungs of fractions of an epoch, down from the full trial
        assert f"rungs of {epochs / 9:g}-{epochs:g} epochs" in chosen.explain()


def test_resolve_keeps_what_the_user_chose() -> None:
    space = spaces.residual_mlp(width=16, n_blocks=1)
    got = resolve(space, blobs(), "random", Budget(60, Unit.SECONDS), "5ep", None)
    assert got.plan is None and got.space is space and got.searcher == "random"
    assert got.trial_budget == Budget(5, Unit.EPOCHS) and got.budget == Budget(60, Unit.SECONDS)


def test_resolve_times_a_probe_and_sizes_the_plan_by_what_is_left() -> None:
    import time

    got = resolve("auto", _images(), "auto", Budget(60, Unit.SECONDS), "auto", {"eta": 2})
    assert got.space_name == "residual-conv" and got.searcher == "bohb"
    assert got.searcher_options["eta"] == 2  # the user's option wins over the plan's
    # The rungs the plan explains: max / 9 to max of the chosen trial budget.
    assert got.searcher_options["min_budget"] == got.trial_budget.amount / 9
    # The budget stays the user's: the ledger charges the probe's time as it charges trials'.
    assert got.budget == Budget(60, Unit.SECONDS)
    assert got.trial_budget.unit is Unit.EPOCHS and got.trial_budget.amount % 9 == 0
    assert got.plan is not None and got.plan.epoch_seconds is not None
    assert "s per epoch" in got.plan.explain()
    # The sizing sees what is left: 35 of the 60 s gone before it starts leaves under 25 s.
    late = resolve("auto", _images(), "auto", Budget(60, Unit.SECONDS), "auto", None,
                   started_at=time.monotonic() - 35)
    assert late.plan is not None
    left = float(re.search(r"([0-9.]+) s at [0-9.]+ s per epoch", late.plan.explain())[1])
    assert 0 < left <= 25.0
    # Less than a third left once started: nothing is timed, only the baselines will run.
    slow = resolve("auto", _images(), "auto", Budget(60, Unit.SECONDS), "auto", None,
                   started_at=time.monotonic() - 45)
    assert slow.plan is not None and slow.plan.epoch_seconds is None
    assert "no network trains" in slow.plan.explain()
    # Nothing left: no probe, and a warning that only the plain baselines remain.
    spent = resolve("auto", _images(), "auto", Budget(60, Unit.SECONDS), "auto", None,
                    started_at=time.monotonic() - 61)
    assert spent.plan is not None and spent.plan.epoch_seconds is None
    assert "was spent before the first trial" in spent.plan.explain()


@pytest.mark.parametrize("n", [90, 1500])  # 1,500: more validation samples than a timing scores
def test_a_capped_probe_still_measures_an_epoch(n: int) -> None:
    space = default_space(_images(n))[1]
    whole = measure_epoch_seconds(space, _images(n))
    capped = measure_epoch_seconds(space, _images(n), limit=0.0)  # one batch after warming up
    assert whole > 0 and capped > 0
    assert 0.2 < capped / whole < 5  # an extrapolation, not the one-off costs of a first batch


def test_search_with_defaults_journals_its_reasons(tmp_path) -> None:
    result = nas.search(data=_images(), budget="3trials", seed=0, storage=tmp_path / "a.db",
                        progress=False)
    with Storage.open(result.path) as store:
        settings = store.settings
    assert settings["space_name"] == "residual-conv"
    assert settings["searcher"]["name"] == "bohb"
    assert settings["trial_budget"] == "27ep"
    assert any(line.startswith("searcher bohb") for line in settings["auto"])


def test_cli_explain_prints_the_choices_and_runs_nothing(tmp_path, monkeypatch,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["search", "--data", "mnist1d", "--budget", "300ep", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "residual-conv: samples are signals (1x40)" in out
    assert "searcher bohb" in out and "up to 9 epochs" in out and "budget  300ep" in out
    assert "\nthreads " in out  # the timing runs at the threads the search would choose
    assert not (tmp_path / "runs").exists()
    assert main(["search", "--data", "mnist1d", "--searcher", "tpe", "--space", "residual-mlp",
                 "--trial-budget", "3ep", "--explain"]) == 0
    assert "nothing is automatic" in capsys.readouterr().out


def test_models_are_narrowed_until_a_full_trial_fits_a_quarter_of_the_budget() -> None:
    from nas.defaults import _sized_models

    timed: list[tuple[int, int, int]] = []

    def measure(space, share: float = 1.0) -> float:  # a narrower space's default model:
        hp = space["channels"]  # fast enough
        timed.append((hp.lower, hp.upper, hp.default_value))
        return 0.05

    overrides, seconds, why = _sized_models(_images(), {}, 10.0, 20.0, measure)
    size = overrides["channels"]
    low, high, default = timed[-1]
    assert (size.low, size.high, size.default) == (low, high, default) and seconds == 0.05
    # Range and default model halved together, from 32-128 with 64 by default.
    assert high < 128 and (low, high, default) == (32 * default // 64, 128 * default // 64,
                                                    default)
    assert f"channels narrowed to {low}-{high}, default {default}" in why
    assert "took 0.05 s" in why
    space = default_space(_images(), overrides)[1]
    assert space["channels"].default_value == default < 64
    # Fast enough already, or the user's own range: nothing changes and nothing is timed.
    assert _sized_models(_images(), {}, 0.1, 20.0, measure)[2] == ""
    assert _sized_models(_images(), {"channels": (8, 16)}, 10.0, 20.0, measure)[0] == \
        {"channels": (8, 16)}
    assert len(timed) == 1


@pytest.mark.parametrize(("data", "floor"), [(_images, 27), (_signals, 9)])
def test_models_are_narrowed_until_the_epochs_the_plan_wants_fit(data, floor: int) -> None:
    from nas.defaults import FULL_TRIAL_SHARE, _sized_models

    # A quarter of 100 s holds 9 epochs of 2 s but not 18: augmented images (which want 27,
    # and are narrowed until at least 18 fit) get narrower models, signals (9) keep theirs.
    overrides, _, why = _sized_models(data(), {}, 2.0, 100.0, lambda space, share=1.0: 0.5)
    assert 9 * 2.0 <= FULL_TRIAL_SHARE * 100.0 < 18 * 2.0
    assert ("channels" in overrides) == (floor == 27)
    assert ("18 epochs would take over 25 %" in why) == (floor == 27)
    if floor == 27:
        # Half the channels (32) fit 18 epochs but not 27: kept, not halved again for 27.
        overrides, seconds, _ = _sized_models(
            data(), {}, 2.0, 100.0,
            lambda space, share=1.0: {32: 1.2}.get(space["channels"].default_value, 0.3))
        assert overrides["channels"].default == 32 and seconds == 1.2


def test_narrowing_that_cannot_buy_the_augmented_epochs_keeps_the_wider_default() -> None:
    from nas.defaults import _sized_models

    timed: list[tuple[int, int]] = []

    def measure(space, share: float = 1.0) -> float:
        # Halved defaults (32 channels and fewer) stay too slow for 18 epochs in a quarter of
        # 20 s.
        hp = space["channels"]
        timed.append((hp.upper, hp.default_value))
        return {64: 0.5}.get(hp.default_value, 0.3)

    overrides, seconds, why = _sized_models(_images(), {}, 0.5, 20.0, measure)
    # Nine epochs of the default model (4.5 s) fit a quarter of 20 s: nothing changes.
    assert overrides == {} and seconds == 0.5 and why == ""
    assert all(default < 64 for _, default in timed)  # only halved defaults were tried
    overrides, seconds, why = _sized_models(_images(), {}, 1.0, 20.0, measure)
    # Nine epochs of 1 s do not fit: the old rule, a plain narrower range (the space's own
    # default where it fits) until nine epochs do.
    assert isinstance(overrides["channels"], tuple) and 9 * seconds <= 5.0
    default = default_space(_images(), overrides)[1]["channels"].default_value
    assert "9 epochs would take over 25 %" in why and f"default {default} " in why


@pytest.mark.parametrize(("strided_seconds", "narrowed"), [(0.05, False), (5.0, True)])
def test_large_images_first_get_a_stride_2_stem(strided_seconds: float, narrowed: bool) -> None:
    from nas.defaults import _sized_models

    images = nas.load_dataset("synthetic", n_samples=90, n_features=256, shape="1x16x16",
                              seed=0)
    timed: list[dict] = []

    def measure(space, share: float = 1.0) -> float:
        timed.append({name: space[name] for name in ("channels",)} | {
            "stride": space["stem_stride"].value if "stem_stride" in space else 1})
        return strided_seconds if len(timed) == 1 else 0.05

    overrides, seconds, why = _sized_models(images, {}, 10.0, 20.0, measure)
    assert seconds == (0.05 if narrowed else strided_seconds)
    assert overrides["stem_stride"] == 2 and timed[0]["stride"] == 2
    assert "stem stride 2" in why
    # Fast enough with it: the channels stay; else they are narrowed too, stride kept.
    assert ("channels" in overrides) == narrowed == ("channels narrowed" in why)
    assert all(t["stride"] == 2 for t in timed)
    # Nine epochs fit a quarter of 200 s at 3 s each, but the 27 an augmented plan wants do
    # not: the stem is still halved (and nothing narrowed).
    between = _sized_models(images, {}, 3.0, 200.0, lambda space, share=1.0: 1.0)
    assert between[0] == {"stem_stride": 2} and "27 epochs" in between[2]
    # Small images (6x6) never get it; the user's own choice is kept.
    assert "stem_stride" not in _sized_models(_images(), {}, 10.0, 20.0, measure)[0]
    assert _sized_models(images, {"stem_stride": 1, "channels": (8, 16)}, 10.0, 20.0,
                         measure)[0] == {"stem_stride": 1, "channels": (8, 16)}


def test_without_planning_time_left_the_flops_predict_the_smaller_models() -> None:
    from nas.defaults import _sized_models

    images = nas.load_dataset("synthetic", n_samples=90, n_features=256, shape="1x16x16",
                              seed=0)
    asked: list[float] = []

    def measure(space, share: float = 1.0) -> None:  # the planning's time is spent
        asked.append(share)

    overrides, seconds, why = _sized_models(images, {}, 10.0, 20.0, measure)
    # Stride 2 and narrower channels, each predicted below the default's 10 s by its FLOPs
    # alone, and nothing timed after the first refusal of each stage.
    assert overrides["stem_stride"] == 2 and "channels" in overrides
    assert 0 < seconds < 10.0 and len(asked) == 2
    assert why.count("predicted from its FLOPs") == 2 and "took 0" not in why


def test_trials_too_short_for_augmentation_train_without_it() -> None:
    # 200 s per epoch of 120 s: one epoch per trial, far below the nine where it is neutral.
    short = plan(_images(), Budget(120, Unit.SECONDS), epoch_seconds=200.0)
    assert short.trial_budget.amount < MIN_TRIAL_EPOCHS
    assert not augmented(short.space)
    assert "no augmentation" in short.explain()
    long = plan(_images(), Budget(120, Unit.SECONDS), epoch_seconds=1.0)
    assert augmented(long.space) and "no augmentation" not in long.explain()


@pytest.mark.parametrize(("share", "epochs"), [(0.24, 27), (0.28, 27), (0.32, 18)])
def test_augmented_trials_keep_27_epochs_while_they_are_nearer_than_18(share: float,
                                                                      epochs: int) -> None:
    # A full 27-epoch trial at `share` of 120 s: 27 is kept up to sqrt(27 / 18) x a quarter
    # (30.6 %), the nearer of the two steps in ratio.
    chosen = plan(_images(), Budget(120, Unit.SECONDS), epoch_seconds=share * 120 / 27)
    assert chosen.trial_budget == Budget(epochs, Unit.EPOCHS)


@pytest.mark.parametrize(("epoch_seconds", "epochs"), [(1.4, 18), (3.0, 9)])
def test_short_augmented_trials_search_augmentation_and_train_the_default_both_ways(
        epoch_seconds: float, epochs: int) -> None:
    # 9 to 26 epochs: whether augmentation pays depends on the data, so it is searched and the
    # default model trains with it (enqueued) and without it (the space's default) first.
    chosen = plan(_images(), Budget(120, Unit.SECONDS), epoch_seconds=epoch_seconds)
    assert chosen.trial_budget == Budget(epochs, Unit.EPOCHS)
    assert list(chosen.space["augment"].choices) == ["none", "affine"]
    assert chosen.space["augment"].default_value == "none"
    assert chosen.enqueue == ({"augment": "affine"},)
    assert "trains the full" in chosen.explain() and "both ways" in chosen.explain()
    # 27 epochs or more: augmentation pays (measured), fixed as before; below 9: none.
    for seconds in (1.0, 200.0):
        fixed = plan(_images(), Budget(120, Unit.SECONDS), epoch_seconds=seconds)
        assert fixed.enqueue == () and not hasattr(fixed.space["augment"], "choices")
    # The user's own choice of augmentation is kept.
    theirs = plan(_images(), Budget(120, Unit.SECONDS), epoch_seconds=3.0,
                  space_overrides={"augment": "affine"})
    assert theirs.enqueue == () and theirs.space["augment"].value == "affine"


def test_a_search_trains_the_default_with_and_without_augmentation_first(tmp_path) -> None:
    # 60 epochs of budget: 9-epoch trials, so the plan enqueues the augmented default.
    result = nas.search(data=_images(), budget="60ep", seed=0, storage=tmp_path / "a.db",
                        progress=False, baselines=False, replicas=0, ensemble=0)
    first = sorted(result.trials, key=lambda r: r.id)[:2]
    assert [r.trial.config["augment"] for r in first] == ["affine", "none"]
    assert [r.trial.info.get("origin") for r in first] == ["enqueued", "default"]
    # Both at the full trial budget (None: the search's own, 9 epochs here).
    assert [r.trial.budget for r in first] == [None, 9.0]
    assert {k: v for k, v in first[0].trial.config.items() if k != "augment"} == \
        {k: v for k, v in first[1].trial.config.items() if k != "augment"}


def test_the_baselines_reserve_comes_out_of_what_the_plan_may_use() -> None:
    data = blobs()
    # 20 s with 2 s for the baselines: the default model is timed and the trials planned.
    kept = resolve("auto", data, "auto", Budget.parse("20s"), "auto", None, reserve=2.0)
    assert kept.plan is not None and kept.plan.epoch_seconds is not None
    # 20 s with 15 s for the baselines: under a third is left, so nothing is timed and the
    # plan says the baselines are the result.
    spent = resolve("auto", data, "auto", Budget.parse("20s"), "auto", None, reserve=15.0)
    assert spent.plan is not None and spent.plan.epoch_seconds is None
    assert any("15 s are kept for the plain baselines" in r for r in spent.plan.reasons)


def test_only_what_was_chosen_automatically_is_said_to_be() -> None:
    from nas.budget import Budget
    from nas.data import load
    from nas.defaults import resolve

    data = load("digits")
    named = resolve("residual-mlp", data, "bohb", Budget.parse("300ep"), "auto", None)
    words = {r.split(" ", 1)[0] for r in named.plan.reasons}
    assert words == {"trials"}  # not the space, searcher, or replicas the user named
    every = resolve("auto", data, "auto", Budget.parse("300ep"), "auto", None)
    assert {r.split(" ", 1)[0] for r in every.plan.reasons} >= {"space", "searcher", "trials",
                                                                "replicas"}
