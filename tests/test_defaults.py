from __future__ import annotations

import pytest

import nas
import spaces
from nas.budget import Budget, Unit
from nas.cli import main
from nas.defaults import (
    MAX_TRIAL_EPOCHS,
    MIN_AUGMENTED_EPOCHS,
    MIN_TRIAL_EPOCHS,
    data_kind,
    default_space,
    plan,
    resolve,
)
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


@pytest.mark.parametrize(("budget", "epoch_seconds", "epochs"), [
    (Budget(300, Unit.EPOCHS), None, 9),          # 300 / 30 = 10 -> a multiple of 9
    (Budget(120, Unit.SECONDS), 0.1, 36),         # 1200 epochs' worth -> 40 -> 36
    (Budget(120, Unit.SECONDS), 0.2, 18),         # 600 -> 20 -> 18
    (Budget(10, Unit.SECONDS), 1.0, MIN_TRIAL_EPOCHS),
    (Budget(3600, Unit.SECONDS), 0.01, MAX_TRIAL_EPOCHS),
    (Budget(50, Unit.TRIALS), None, 27),          # nothing to size by: the middle of the range
])
def test_trial_epochs_come_from_the_budget(budget: Budget, epoch_seconds: float | None,
                                           epochs: int) -> None:
    chosen = plan(_signals(), budget, epoch_seconds=epoch_seconds)
    assert chosen.trial_budget == Budget(epochs, Unit.EPOCHS)
    assert chosen.searcher == "bohb"
    assert chosen.searcher_options == {"eta": 3, "include_default": True}
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
    (20.0, 9),   # 6: never below the usual floor
])
def test_augmented_trials_shrink_when_the_budget_cannot_afford_them(epoch_seconds: float,
                                                                     epochs: int) -> None:
    chosen = plan(_images(), Budget(120, Unit.SECONDS), epoch_seconds=epoch_seconds)
    assert chosen.trial_budget == Budget(epochs, Unit.EPOCHS)
    lowered = "lowered from 27 so that a full trial of the default model takes at most 25 %"
    assert (lowered in chosen.explain()) == (epochs < MIN_AUGMENTED_EPOCHS)


def test_resolve_keeps_what_the_user_chose() -> None:
    space = spaces.residual_mlp(width=16, n_blocks=1)
    got = resolve(space, blobs(), "random", Budget(60, Unit.SECONDS), "5ep", None)
    assert got.plan is None and got.space is space and got.searcher == "random"
    assert got.trial_budget == Budget(5, Unit.EPOCHS) and got.budget == Budget(60, Unit.SECONDS)


def test_resolve_times_a_probe_and_takes_it_off_the_budget() -> None:
    got = resolve("auto", _images(), "auto", Budget(60, Unit.SECONDS), "auto", {"eta": 2})
    assert got.space_name == "residual-conv" and got.searcher == "bohb"
    assert got.searcher_options["eta"] == 2  # the user's option wins over the plan's
    # The rungs the plan explains: max / 9 to max of the chosen trial budget.
    assert got.searcher_options["min_budget"] == got.trial_budget.amount / 9
    assert got.budget.unit is Unit.SECONDS and got.budget.amount < 60
    assert got.trial_budget.unit is Unit.EPOCHS and got.trial_budget.amount % 9 == 0
    assert got.plan is not None and "s per epoch" in got.plan.explain()


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
    assert "searcher bohb" in out and "up to 9 epochs" in out and "300ep for the search" in out
    assert not (tmp_path / "runs").exists()
    assert main(["search", "--data", "mnist1d", "--searcher", "tpe", "--space", "residual-mlp",
                 "--trial-budget", "3ep", "--explain"]) == 0
    assert "nothing is automatic" in capsys.readouterr().out
