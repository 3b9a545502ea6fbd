from __future__ import annotations

import json

import pytest
import torch
from ConfigSpace import AndConjunction

import spaces
from nas.cli import main
from nas.errors import UserError
from spaces.cells import ALL_OPS, EDGES, OPS
from spaces.mlp import TRAINING_PARAMS


def default_config(**overrides) -> dict:
    return dict(spaces.residual_conv(**overrides).get_default_configuration())


def sampled_configs(n: int, seed: int, **overrides) -> list[dict]:
    space = spaces.residual_conv(**overrides)
    space.seed(seed)
    return [dict(c) for c in space.sample_configuration(n)]


def stage_shapes(model: torch.nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    """The output shape of every stage of `model` on `x` (without the batch dimension)."""
    shapes: list[tuple[int, ...]] = []
    hooks = [stage.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
             for stage in model.stages]
    model.eval()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return shapes


# --- space -------------------------------------------------------------------------------------

def test_default_space_and_configuration() -> None:
    space = spaces.residual_conv()
    assert space.name == "residual-conv" and space["architecture"].value == "residual-conv"
    for name in ["n_stages", "n_cells", "channels", "channel_growth", "stage2_channels",
                 "stage3_channels", "n_nodes", "activation",
                 *(p.name for p in TRAINING_PARAMS if not p.optional)]:
        assert name in space
    assert {f"edge_{i}_{j}" for i, j in EDGES} <= set(space)
    assert len(EDGES) == 10 and all(set(space[f"edge_{i}_{j}"].choices) == set(OPS)
                                    for i, j in EDGES)
    assert (space["n_stages"].lower, space["n_stages"].upper) == (1, 3)
    assert (space["n_cells"].lower, space["n_cells"].upper) == (1, 4)
    assert (space["n_nodes"].lower, space["n_nodes"].upper) == (2, 4)
    assert space["channels"].log and space["stage2_channels"].log and space["lr"].log
    assert set(space["channel_growth"].choices) == {"double", "free"}
    # Training settings are the MLP space's, shared rather than copied.
    mlp = spaces.residual_mlp()
    assert all(space[p.name] == mlp[p.name] for p in TRAINING_PARAMS if not p.optional)
    config = default_config()
    assert (config["n_stages"], config["n_cells"], config["channels"], config["n_nodes"]) == \
        (2, 1, 16, 2)
    assert (config["edge_0_1"], config["edge_0_2"], config["edge_1_2"]) == \
        ("conv3x3", "none", "conv3x3")
    assert "stage2_channels" not in config and "edge_0_3" not in config


def test_registered_listed_and_printed_by_the_cli(capsys) -> None:
    assert "residual-conv" in spaces.available()
    assert spaces.get("residual-conv", n_cells=2) == spaces.residual_conv(n_cells=2)
    assert main(["spaces"]) == 0
    assert "residual-conv" in capsys.readouterr().out
    assert main(["spaces", "residual-conv", "--set", "n_nodes=2:3"]) == 0
    out = capsys.readouterr().out
    assert "edge_2_3 | n_nodes > 2" in out and "edge_3_4" not in out


def test_overrides_narrow_fix_and_drop_what_cannot_exist() -> None:
    space = spaces.residual_conv(n_stages=(1, 2), channels=(8, 32), optimizer="adam",
                                 n_nodes=(2, 3), activation=["relu", "gelu"])
    assert (space["channels"].lower, space["channels"].upper) == (8, 32)
    assert space["optimizer"].value == "adam"
    assert set(space["activation"].choices) == {"relu", "gelu"}
    assert "stage2_channels" in space and "stage3_channels" not in space
    assert "edge_2_3" in space and not any(f"edge_{i}_4" in space for i in range(4))
    space.seed(0)
    for config in space.sample_configuration(30):
        assert 8 <= config["channels"] <= 32 and config["n_stages"] <= 2


def test_fixed_settings_need_no_conditions() -> None:
    space = spaces.residual_conv(n_stages=3, n_nodes=4, channel_growth="free")
    assert not space.conditions
    assert {"stage2_channels", "stage3_channels", "edge_3_4"} <= set(space)
    assert "stage2_channels" not in spaces.residual_conv(channel_growth="double")


def test_ops_override_sets_every_edge() -> None:
    space = spaces.residual_conv(ops=["skip", "conv3x3"], edge_0_1="sep_conv3x3")
    assert space["edge_0_1"].value == "sep_conv3x3"
    assert all(set(space[f"edge_{i}_{j}"].choices) == {"skip", "conv3x3"}
               for i, j in EDGES if (i, j) != (0, 1))


@pytest.mark.parametrize(
    "overrides",
    [{"depth": 3}, {"edge_0_5": "skip"}, {"edge_0_1": "conv9x9"}, {"ops": ["conv7x7"]},
     {"n_stages": (1, 4)}, {"n_nodes": (0, 2)}, {"n_nodes": (2, 5)}, {"n_cells": (0, 2)},
     {"channels": (64, 8)}, {"channel_growth": "triple"}, {"architecture": "residual-mlp"}],
)
def test_bad_overrides_are_one_line_user_errors(overrides: dict) -> None:
    with pytest.raises(UserError) as err:
        spaces.residual_conv(**overrides)
    assert "\n" not in str(err.value)


def test_conditions_over_sampled_configs() -> None:
    space = spaces.residual_conv()
    assert any(isinstance(c, AndConjunction) for c in space.conditions)
    seen = set()
    for values in sampled_configs(100, seed=3):
        free = values["channel_growth"] == "free"
        for s in (2, 3):
            assert (f"stage{s}_channels" in values) == (free and values["n_stages"] >= s)
        for i, j in EDGES:
            assert (f"edge_{i}_{j}" in values) == (j <= values["n_nodes"])
        seen.add((free, values["n_stages"], values["n_nodes"]))
    assert len(seen) >= 12  # the sample exercised most combinations


def test_space_round_trips_through_json() -> None:
    space = spaces.residual_conv(n_stages=(2, 3), ops=["none", "skip", "conv3x3"])
    back = spaces.space_from_json(json.loads(json.dumps(spaces.space_to_json(space))))
    assert back == space
    assert spaces.space_from_json(spaces.space_to_json(spaces.residual_conv())) == \
        spaces.residual_conv()


# --- model -------------------------------------------------------------------------------------

@pytest.mark.parametrize("input_shape", [(1, 8, 8), (1, 40)])
def test_sampled_models_match_their_config_and_graph(input_shape) -> None:
    for config in sampled_configs(5, seed=len(input_shape), channels=(8, 16),
                                  stage2_channels=(8, 32), stage3_channels=(8, 32)):
        torch.manual_seed(0)
        model = spaces.build_model(config, input_shape, 10)
        model.eval()
        with torch.no_grad():
            assert model(torch.randn(2, *input_shape)).shape == (2, 10)
        assert len(model.stages) == config["n_stages"]
        graph = spaces.cell_graph(config)
        text = str(model)
        for stage in model.stages:
            cells = [m for name, m in stage.named_children() if name.startswith("cell")]
            assert len(cells) == config["n_cells"]
            for cell in cells:
                assert {name: op.op for name, op in cell.edges.items()} == \
                    {f"edge_{u}_{v}": op for u, v, op in graph.edges(data="op")}
        for u, v, op in graph.edges(data="op"):
            assert f"(edge_{u}_{v}): {op}(" in text
        conv = torch.nn.Conv2d if len(input_shape) == 3 else torch.nn.Conv1d
        assert isinstance(model.stem.conv, conv)


@pytest.mark.parametrize("input_shape", [(1, 8, 8), (1, 40)])
def test_the_ops_a_user_may_add_build_and_keep_the_shape(input_shape) -> None:
    space = spaces.residual_conv(ops=["sep_conv5x5", "conv5x5"])
    assert set(OPS) < set(ALL_OPS)
    assert "sep_conv5x5" not in spaces.residual_conv()["edge_0_1"].choices
    config = default_config(n_nodes=3, edge_0_1="sep_conv5x5", edge_1_2="conv5x5",
                            edge_2_3="sep_conv5x5")
    model = spaces.build_model(config, input_shape, 4)
    assert model(torch.zeros(2, *input_shape)).shape == (2, 4)
    assert "(edge_0_1): sep_conv5x5(" in str(model) and "(edge_1_2): conv5x5(" in str(model)
    assert set(space["edge_0_1"].choices) == {"sep_conv5x5", "conv5x5"}


def test_printed_model_reads_like_the_architecture() -> None:
    config = default_config(n_stages=2, n_cells=2, activation="gelu")
    text = str(spaces.build_model(config, (1, 8, 8), 10))
    for part in ["ResidualConvNet", "(stage2): Sequential", "(downsample): Sequential",
                 "(cell2): ResidualCell", "(edge_0_1): conv3x3(", "(edge_2_out): skip()", "GELU"]:
        assert part in text


@pytest.mark.parametrize(("input_shape", "expected"), [
    ((1, 8, 8), [(8, 8, 8), (16, 4, 4), (32, 2, 2)]),
    ((1, 40), [(8, 40), (16, 20), (32, 10)]),
    ((3, 4, 4), [(8, 4, 4), (16, 2, 2), (32, 2, 2)]),  # too small to halve again: stride 1
    ((2, 3), [(8, 3), (16, 3), (32, 3)]),
])
def test_stages_halve_the_spatial_size_while_it_is_large_enough(input_shape, expected) -> None:
    config = default_config(n_stages=3, channels=8)
    model = spaces.build_model(config, input_shape, 10)
    assert stage_shapes(model, torch.randn(2, *input_shape)) == expected


def test_a_models_cost_prices_the_tensors_that_flops_miss() -> None:
    # Pooling edges do almost no arithmetic but write as much as convolutions: priced by FLOPs
    # alone such a model looked 9x cheaper than the all-convolution one.
    convs = default_config(n_stages=2, channels=16)
    pools = {**convs, "edge_0_1": "maxpool3x3", "edge_1_2": "avgpool3x3"}
    shape = (1, 8, 8)
    conv_work, pool_work = (spaces.model_work(c, shape, 10) for c in (convs, pools))
    assert conv_work.flops == spaces.model_flops(convs, shape, 10)
    assert pool_work.flops / conv_work.flops < 0.2 and pool_work.cost / conv_work.cost > 0.4
    # Both parts count: twice the channels write twice the elements and do ~4x the FLOPs.
    wide = spaces.model_work({**convs, "channels": 32}, shape, 10)
    assert 1.9 < wide.elements / conv_work.elements < 2.1
    assert wide.cost > 1.8 * conv_work.cost
    assert conv_work.cost == conv_work.elements + conv_work.flops / spaces.FLOPS_PER_ELEMENT


def test_a_stride_2_stem_halves_the_maps_for_a_quarter_of_the_flops() -> None:
    plain, strided = default_config(n_stages=3, channels=8), default_config(
        n_stages=3, channels=8, stem_stride=2)
    assert "stem_stride" not in plain and strided["stem_stride"] == 2
    model = spaces.build_model(strided, (1, 16, 16), 10)
    assert stage_shapes(model, torch.randn(2, 1, 16, 16)) == [(8, 8, 8), (16, 4, 4), (32, 2, 2)]
    ratio = spaces.model_flops(strided, (1, 16, 16), 10) / spaces.model_flops(plain, (1, 16, 16),
                                                                              10)
    assert 0.2 < ratio < 0.35
    # Stride 1 spelled out is the model without it: the same hash; stride 2 another.
    assert spaces.architecture_hash({**plain, "stem_stride": 1}) == \
        spaces.architecture_hash(plain) != spaces.architecture_hash(strided)
    assert "stem_stride" in spaces.residual_conv(stem_stride=[1, 2])
    with pytest.raises(UserError, match="stem_stride"):
        spaces.build_model({**plain, "stem_stride": 3}, (1, 16, 16), 10)


def test_free_channel_growth_sets_each_stage() -> None:
    config = default_config(n_stages=3, channel_growth="free", channels=8, stage2_channels=12,
                            stage3_channels=20)
    model = spaces.build_model(config, (1, 8, 8), 10)
    assert [s[0] for s in stage_shapes(model, torch.randn(2, 1, 8, 8))] == [8, 12, 20]
    assert model.head.fc.in_features == 20


def test_dead_nodes_build_nothing() -> None:
    base = default_config(n_nodes=3, n_stages=1)
    alive = base | {"edge_0_1": "conv3x3", "edge_1_3": "conv1x1", "edge_0_2": "none",
                    "edge_1_2": "none", "edge_0_3": "none", "edge_2_3": "none"}
    dead = alive | {"edge_2_3": "sep_conv3x3"}  # node 2 has no input, so this edge is pruned
    a, b = (spaces.build_model(c, (1, 8, 8), 10) for c in (alive, dead))
    assert "sep_conv3x3" not in str(b) and "edge_2_3" not in str(b)
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in b.named_parameters()]


def test_repaired_cell_builds_an_identity_cell() -> None:
    config = default_config(n_stages=1) | {"edge_0_1": "none", "edge_0_2": "none"}
    model = spaces.build_model(config, (1, 8, 8), 10)
    cell = model.stages.stage1.cell1
    assert list(cell.edges) == ["edge_0_out"]
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(cell(x), 2 * x)


def test_build_model_is_pure_and_reproducible() -> None:
    config = default_config(n_nodes=3)
    before = dict(config)
    torch.manual_seed(0)
    a = spaces.build_model(config, (1, 8, 8), 10)
    torch.manual_seed(0)
    b = spaces.build_model(config, (1, 8, 8), 10)
    assert config == before
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert na == nb and torch.equal(pa, pb)


def test_conv_space_needs_shaped_inputs() -> None:
    with pytest.raises(UserError, match="residual-mlp"):
        spaces.build_model(default_config(), (64,), 10)


def test_default_config_trains_on_digits() -> None:
    from nas.data import load
    from nas.trainer import TrainerOptions, train
    from spaces.training import TrainSettings

    config = default_config()
    data = load("digits")
    torch.manual_seed(0)
    model = spaces.build_model(config, data.input_shape, data.num_classes)
    outcome = train(model, data, TrainSettings.from_config(config), epochs=2, seed=0,
                    options=TrainerOptions(device="cpu"))
    assert outcome.result.metrics["val_accuracy"] > 0.6


def test_hand_written_configs_get_one_line_errors() -> None:
    config = default_config(n_stages=2) | {"channel_growth": "free"}
    with pytest.raises(UserError, match="stage2_channels"):
        spaces.build_model(config, (1, 8, 8), 10)
    with pytest.raises(UserError, match="n_cells"):
        spaces.build_model(default_config() | {"n_cells": 0}, (1, 8, 8), 10)
    with pytest.raises(UserError, match="n_stages"):
        spaces.build_model(default_config() | {"n_stages": 4}, (1, 8, 8), 10)
