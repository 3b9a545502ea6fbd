from __future__ import annotations

import json

import pytest
import torch
from ConfigSpace import Configuration, ConfigurationSpace

import spaces
from nas.errors import UserError


def test_default_space_shape() -> None:
    space = spaces.residual_mlp()
    names = set(space.keys())
    for required in ["n_blocks", "width", "activation", "norm", "dropout", "optimizer", "lr",
                     "weight_decay", "batch_size", "lr_schedule", "block1_mult", "block8_mult"]:
        assert required in names
    assert space["width"].log and space["lr"].log and space["weight_decay"].log
    assert set(space["activation"].choices) == {"relu", "gelu", "silu"}
    assert set(space["norm"].choices) == {"batchnorm", "layernorm", "none"}
    assert set(space["optimizer"].choices) == {"adam", "adamw", "sgd"}
    assert (space["n_blocks"].lower, space["n_blocks"].upper) == (1, 8)


def test_block_multipliers_are_active_only_when_the_block_exists() -> None:
    space = spaces.residual_mlp()
    space.seed(1)
    for config in space.sample_configuration(50):
        values = dict(config)
        n = values["n_blocks"]
        for i in range(1, 9):
            assert (f"block{i}_mult" in values) == (i <= n)


def test_overrides_narrow_fix_and_choose() -> None:
    space = spaces.residual_mlp(width=(32, 256), n_blocks=(1, 4), optimizer="adam",
                                activation=["relu", "gelu"], batch_size=(32, 128))
    assert (space["width"].lower, space["width"].upper) == (32, 256)
    assert space["optimizer"].value == "adam"
    assert set(space["activation"].choices) == {"relu", "gelu"}
    assert list(space["batch_size"].sequence) == [32, 64, 128]
    assert "block5_mult" not in space  # blocks beyond the deepest possible do not exist
    space.seed(0)
    for config in space.sample_configuration(30):
        assert 32 <= config["width"] <= 256 and config["n_blocks"] <= 4


def test_a_default_override_moves_only_the_default() -> None:
    from spaces.overrides import Default

    space = spaces.residual_conv(n_stages=Default(3), optimizer=Default("sgd"))
    assert space["n_stages"].default_value == 3
    assert (space["n_stages"].lower, space["n_stages"].upper) == (1, 3)
    assert space["optimizer"].default_value == "sgd"
    assert len(space["optimizer"].choices) > 1
    with pytest.raises(UserError, match="outside the space"):
        spaces.residual_conv(n_stages=Default(5))


def test_a_range_override_sets_the_range_and_its_default() -> None:
    from spaces.overrides import Range

    # A plain range keeps the old default (16) where it still fits; a Range moves it too.
    assert spaces.residual_conv(channels=(8, 32))["channels"].default_value == 16
    space = spaces.residual_conv(channels=Range(4, 32, 8))
    assert (space["channels"].lower, space["channels"].upper) == (4, 32)
    assert space["channels"].default_value == 8
    assert str(Range(4, 32, 8)) == "(4, 32), default 8"
    with pytest.raises(UserError, match="outside the space"):
        spaces.residual_conv(channels=Range(4, 32, 64))


def test_overrides_can_widen_and_fixed_depth_has_no_conditions() -> None:
    space = spaces.residual_mlp(width=(8, 4096), n_blocks=3)
    assert (space["width"].lower, space["width"].upper) == (8, 4096)
    assert not space.conditions
    assert all(f"block{i}_mult" in space for i in (1, 2, 3))


@pytest.mark.parametrize(
    "overrides",
    [{"depth": 3}, {"activation": "tanh"}, {"width": (256, 32)}, {"lr": (0, 1)},
     {"n_blocks": (1, 12)}, {"width": "wide"}],
)
def test_bad_overrides_are_user_errors(overrides: dict) -> None:
    with pytest.raises(UserError) as err:
        spaces.residual_mlp(**overrides)
    assert "\n" not in str(err.value)


def test_parse_assignment() -> None:
    assert spaces.parse_assignment("width=32:256") == ("width", (32, 256))
    assert spaces.parse_assignment("optimizer=adam,adamw") == ("optimizer", ["adam", "adamw"])
    assert spaces.parse_assignment("lr=0.01") == ("lr", 0.01)
    with pytest.raises(UserError):
        spaces.parse_assignment("width")


def test_space_round_trips_through_configspace_json(tmp_path) -> None:
    space = spaces.residual_mlp(width=(32, 256), optimizer="adam")
    back = spaces.space_from_json(json.loads(json.dumps(spaces.space_to_json(space))))
    assert back == space
    path = tmp_path / "space.json"
    space.to_json(path)
    assert ConfigurationSpace.from_json(path) == space


def test_user_space_is_not_mutated_by_sampling_searcher() -> None:
    import searchers

    space = spaces.residual_mlp()
    before = spaces.space_to_json(space)
    searcher = searchers.get("random", space, seed=1)
    for _ in range(5):
        searcher.ask()
    assert spaces.space_to_json(space) == before
    assert searcher.space is not space


@pytest.mark.parametrize("seed", range(6))
def test_build_model_matches_config(seed: int) -> None:
    space = spaces.residual_mlp()
    space.seed(seed)
    config = dict(space.sample_configuration())
    model = spaces.build_model(config, (1, 8, 8), 10)
    assert len(model.blocks) == config["n_blocks"]
    block = model.blocks.block1
    assert block.fc1.in_features == config["width"]
    assert block.fc1.out_features == max(1, round(config["width"] * config["block1_mult"]))
    norm_type = {"batchnorm": torch.nn.BatchNorm1d, "layernorm": torch.nn.LayerNorm,
                 "none": torch.nn.Identity}[config["norm"]]
    assert isinstance(block.norm, norm_type)
    model.eval()
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_build_model_is_pure() -> None:
    config = dict(spaces.residual_mlp().get_default_configuration())
    torch.manual_seed(0)
    a = spaces.build_model(config, (20,), 3)
    torch.manual_seed(0)
    b = spaces.build_model(config, (20,), 3)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert config == dict(spaces.residual_mlp().get_default_configuration())


def test_printed_model_reads_like_the_architecture() -> None:
    config = dict(spaces.residual_mlp(n_blocks=3, activation="gelu").get_default_configuration())
    text = str(spaces.build_model(config, (64,), 10))
    assert "ResidualMLP" in text and "(block3): ResidualBlock" in text and "GELU" in text


def test_build_model_accepts_configuration_objects() -> None:
    space = spaces.residual_mlp()
    config = Configuration(space, values=dict(space.get_default_configuration()))
    assert spaces.build_model(config, (64,), 10) is not None


def test_unknown_space_and_architecture() -> None:
    with pytest.raises(UserError, match="residual-mlp"):
        spaces.get("transformer")
    with pytest.raises(UserError):
        spaces.build_model({"width": 3}, (4,), 2)


def test_describe_lists_every_hyperparameter() -> None:
    space = spaces.residual_mlp(n_blocks=(1, 2))
    text = spaces.describe(space)
    for name in space:
        assert name in text
    assert "block2_mult | n_blocks > 1" in text


_PLUGIN_SPACE = '''
import math

from ConfigSpace import ConfigurationSpace, Constant, Integer
from torch import nn

import spaces


def space(**overrides):
    s = ConfigurationSpace(name="two-layer")
    s.add([Constant("architecture", "two-layer"), Integer("width", (4, 16))])
    return s


def build(config, input_shape, num_classes):
    hidden = int(config["width"])
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU(),
                         nn.Linear(hidden, num_classes))


FAMILY = spaces.SpaceFamily(space, build, "two linear layers, from a plugin")
'''


def test_a_distribution_adds_a_space_through_an_entry_point(tmp_path, monkeypatch) -> None:
    import importlib.metadata
    import sys
    from types import SimpleNamespace

    import nas
    from tests.helpers import blobs

    (tmp_path / "two_layer_plugin.py").write_text(_PLUGIN_SPACE)
    monkeypatch.syspath_prepend(str(tmp_path))
    point = SimpleNamespace(name="two-layer", value="two_layer_plugin:FAMILY",
                            group="nas.spaces", dist=SimpleNamespace(name="two-layer-dist"))
    real = importlib.metadata.entry_points  # torch finds its own plugins (triton) through it
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [point] if kw.get(
        "group") == "nas.spaces" else real(**kw))
    # A fresh view of the registry: discovery is read once per process.
    for attr in ("_entries", "_docs"):
        monkeypatch.setattr(spaces.FAMILIES, attr, dict(getattr(spaces.FAMILIES, attr)))
    monkeypatch.setattr(spaces.FAMILIES, "_plugins", None)
    monkeypatch.delitem(sys.modules, "two_layer_plugin", raising=False)

    assert "two-layer" in spaces.available() and "two_layer_plugin" not in sys.modules
    space = spaces.get("two-layer")
    assert space["width"].upper == 16
    result = nas.search(space, blobs(), "random", "2trials", trial_budget="1ep", seed=0,
                        storage=tmp_path / "p.db", progress=False, ensemble=0)
    assert [r.trial.config["architecture"] for r in result.trials] == ["two-layer"] * 2
    assert result.best is not None and result.load_best_model() is not None


def test_an_entry_point_that_is_no_space_family_is_one_line(tmp_path, monkeypatch) -> None:
    import importlib.metadata
    from types import SimpleNamespace

    (tmp_path / "not_a_family.py").write_text("FAMILY = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    point = SimpleNamespace(name="broken", value="not_a_family:FAMILY", group="nas.spaces",
                            dist=SimpleNamespace(name="broken-dist"))
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [point] if kw.get(
        "group") == "nas.spaces" else real(**kw))
    monkeypatch.setattr(spaces.FAMILIES, "_plugins", None)
    with pytest.raises(UserError, match=r"not a spaces\.SpaceFamily") as err:
        spaces.get("broken")
    assert "\n" not in str(err.value) and "broken-dist" in str(err.value)
