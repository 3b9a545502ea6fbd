from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest
import torch

import spaces
from nas.batched import VARYING, architecture_key, train_group
from nas.data import Dataset, load
from nas.trainer import TrainerOptions, TrainOutcome, train_config
from nas.types import TrialStatus

CPU = TrainerOptions(device="cpu", precision="fp32")
TOLERANCE = 1e-6  # what a member must match its lone run to (it matches bit for bit today)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    """A slice of digits (1x8x8 images): 640 training and 200 validation samples."""
    d = load("digits")
    return dataclasses.replace(d, x_train=d.x_train[:640], y_train=d.y_train[:640],
                               x_val=d.x_val[:200], y_val=d.y_val[:200])


def _config(space: str, **values: Any) -> dict[str, Any]:
    return {**dict(spaces.get(space).get_default_configuration()), **values}


def _mlp(**values: Any) -> dict[str, Any]:
    return _config("residual-mlp", **{"width": 32, "n_blocks": 2, "batch_size": 64, **values})


def _assert_like_lone_runs(configs: Sequence[dict[str, Any]], seeds: Sequence[int],
                           data: Dataset, epochs: float) -> list[TrainOutcome]:
    group = train_group(configs, data, epochs=epochs, seeds=seeds, options=CPU)
    assert len(group) == len(configs)
    for config, seed, member in zip(configs, seeds, group, strict=True):
        alone = train_config(config, data, epochs=epochs, seed=seed, options=CPU)
        assert member.model is not None and alone.model is not None
        for (name, p), q in zip(alone.model.state_dict().items(),
                                member.model.state_dict().values(), strict=True):
            torch.testing.assert_close(q.float(), p.float(), rtol=0, atol=TOLERANCE, msg=name)
        a, b = alone.result, member.result
        assert b.status is TrialStatus.OK and b.epochs == a.epochs == epochs
        assert len(b.curve) == len(a.curve)
        for pa, pb in zip(a.curve, b.curve, strict=True):
            assert pb["epoch"] == pa["epoch"]
            for key in ("val_loss", "val_accuracy", "train_loss"):
                assert pb[key] == pytest.approx(pa[key], rel=0, abs=TOLERANCE), key
        assert b.loss == a.loss and b.metrics["batched_members"] == len(configs)
    return group


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
def test_mlp_members_equal_their_lone_runs(digits: Dataset, optimizer: str) -> None:
    # Batch norm in front of every block makes some biases' gradients pure rounding noise,
    # which Adam turns into lr-sized steps: any rounding difference would show at 1e-3.
    configs = [
        _mlp(optimizer=optimizer, lr=3e-3, weight_decay=1e-4, dropout=0.0),
        _mlp(optimizer=optimizer, lr=1e-2, weight_decay=0.0, dropout=0.0,
             label_smoothing=0.1, lr_schedule="constant"),
        _mlp(optimizer=optimizer, lr=5e-3, weight_decay=1e-2, dropout=0.3, warmup=0.2),
        _mlp(optimizer=optimizer, lr=1e-3, weight_decay=1e-3, dropout=0.1),
    ]
    _assert_like_lone_runs(configs, [0, 1, 2, 3], digits, epochs=2)


def test_layernorm_mlp_and_fractional_epochs(digits: Dataset) -> None:
    configs = [_mlp(norm="layernorm", lr=3e-3, dropout=0.2), _mlp(norm="layernorm", lr=1e-3)]
    _assert_like_lone_runs(configs, [5, 6], digits, epochs=1.5)


def test_conv_members_equal_their_lone_runs(digits: Dataset) -> None:
    base = _config("residual-conv", channels=8, n_stages=2, batch_size=64)
    assert base["edge_0_1"] != "none"  # convolutions, batch norm and pooling in the cell
    configs = [dict(base, lr=3e-3), dict(base, lr=1e-2, augment="shift", label_smoothing=0.1),
               dict(base, lr=1e-3, weight_decay=1e-2, augment="affine")]
    _assert_like_lone_runs(configs, [0, 1, 2], digits, epochs=1)


def test_members_really_differ(digits: Dataset) -> None:
    configs = [_mlp(lr=3e-3), _mlp(lr=3e-2), _mlp(lr=3e-3, weight_decay=1e-1), _mlp(lr=3e-3)]
    group = train_group(configs, digits, epochs=1, seeds=[0, 0, 0, 1], options=CPU)
    weights = [torch.cat([p.flatten() for p in m.model.parameters()]) for m in group]
    for i in range(len(weights)):
        for j in range(i):
            assert not torch.allclose(weights[i], weights[j], atol=1e-3), (i, j)
    assert len({m.result.metrics["val_loss"] for m in group}) == len(group)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_a_member_continues_with_the_normal_trainer(digits: Dataset, optimizer: str) -> None:
    # Stopped mid-epoch (1.5 of 3 epochs): the continued member equals a straight 3-epoch run.
    configs = [_mlp(optimizer=optimizer, lr=3e-3, dropout=0.2),
               _mlp(optimizer=optimizer, lr=1e-2, dropout=0.0)]
    group = train_group(configs, digits, epochs=1.5, seeds=[3, 4], options=CPU, horizon=3)
    for config, seed, member in zip(configs, [3, 4], group, strict=True):
        assert member.state is not None and member.state.perm is not None
        parent = {"state_dict": member.model.state_dict(), "train_state": member.state.to_dict()}
        continued = train_config(config, digits, epochs=3, seed=seed, options=CPU, horizon=3,
                                 parent=parent)
        straight = train_config(config, digits, epochs=3, seed=seed, options=CPU)
        for p, q in zip(continued.model.parameters(), straight.model.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=0, atol=TOLERANCE)


def test_vmap_kernels_stay_close(digits: Dataset) -> None:
    # exact=False is what CUDA runs: vmap's batched kernels, rounding differently per op.
    configs = [_mlp(optimizer="sgd", lr=1e-2, dropout=0.2), _mlp(optimizer="sgd", lr=3e-3)]
    group = train_group(configs, digits, epochs=1, seeds=[0, 1], options=CPU, exact=False)
    for config, seed, member in zip(configs, [0, 1], group, strict=True):
        alone = train_config(config, digits, epochs=1, seed=seed, options=CPU)
        for p, q in zip(alone.model.parameters(), member.model.parameters(), strict=True):
            torch.testing.assert_close(q, p, rtol=0, atol=1e-4)


@pytest.mark.parametrize(("change", "named"), [
    ({"width": 64}, "width"),
    ({"n_blocks": 3}, "n_blocks"),
    ({"batch_size": 32}, "batch_size"),
    ({"optimizer": "sgd"}, "optimizer"),
    ({"norm": "layernorm"}, "norm"),
])
def test_other_architectures_are_refused(digits: Dataset, change: dict[str, Any],
                                         named: str) -> None:
    with pytest.raises(ValueError, match=rf"configuration 1 does not share .*\b{named}\b"):
        train_group([_mlp(), _mlp(lr=1e-2, **change)], digits, epochs=1, seeds=[0, 1],
                    options=CPU)


def test_group_keys_and_arguments(digits: Dataset) -> None:
    assert architecture_key(_mlp(lr=1.0, dropout=0.4, augment="shift")) == architecture_key(
        _mlp())
    assert architecture_key(_mlp(width=64)) != architecture_key(_mlp())
    assert {"lr", "weight_decay", "dropout", "label_smoothing"} <= VARYING
    assert "batch_size" not in VARYING and "optimizer" not in VARYING
    with pytest.raises(ValueError, match="one seed per configuration"):
        train_group([_mlp(), _mlp()], digits, epochs=1, seeds=[0], options=CPU)
    with pytest.raises(ValueError, match="one seed per configuration"):
        train_group([], digits, epochs=1, seeds=[], options=CPU)


def test_a_diverging_member_does_not_stop_the_others(digits: Dataset) -> None:
    configs = [_mlp(optimizer="sgd", lr=1e-2), _mlp(optimizer="sgd", lr=1e6, norm="none")]
    configs[0]["norm"] = "none"
    group = train_group(configs, digits, epochs=2, seeds=[0, 1], options=CPU)
    alone = [train_config(c, digits, epochs=2, seed=s, options=CPU)
             for c, s in zip(configs, [0, 1], strict=True)]
    assert alone[1].result.status is TrialStatus.DIVERGED
    assert group[1].result.status is TrialStatus.DIVERGED and group[1].model is None
    assert group[1].result.epochs == alone[1].result.epochs
    assert group[0].result.status is TrialStatus.OK
    assert group[0].result.metrics["val_loss"] == pytest.approx(
        alone[0].result.metrics["val_loss"], abs=TOLERANCE)
