"""The CUDA path of the trainer and the search: bf16, channels_last, continuation, memory, OOM.

Skipped where no GPU is present (CI never has one); run them on a GPU machine with
``pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch
from torch import nn

import nas
import spaces
from nas.data import Dataset
from nas.engine.callbacks import Callback
from nas.trainer import TrainerOptions, TrainState, train
from nas.types import TrialStatus
from spaces.training import TrainSettings
from tests.helpers import blobs

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = TrainerOptions(device="cuda")


def _images(n: int = 256, side: int = 8, classes: int = 3) -> Dataset:
    """Gaussian class blobs shaped as one-channel images, so the conv path runs."""
    flat = blobs(n=n, d=side * side, classes=classes)

    def shaped(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), 1, side, side)

    return dataclasses.replace(flat, x_train=shaped(flat.x_train), x_val=shaped(flat.x_val),
                               x_test=shaped(flat.x_test), input_shape=(1, side, side))


def _conv_model(data: Dataset) -> nn.Module:
    config = dict(spaces.residual_conv(n_stages=1, n_cells=1, channels=16)
                  .get_default_configuration())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return spaces.build_model(config, data.input_shape, data.num_classes)


def _first_conv(model: nn.Module) -> nn.Conv2d:
    """The first convolution of several input channels (one channel fits either layout)."""
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d) and m.in_channels > 1)


@pytest.mark.parametrize(("precision", "dtype"), [("auto", torch.bfloat16),
                                                  ("fp32", torch.float32)])
def test_conv_training_runs_in_bf16_and_channels_last(precision: str, dtype) -> None:
    data = _images()
    model = _conv_model(data)
    seen: list[tuple[torch.dtype, bool, str]] = []

    def hook(module, inputs, output) -> None:
        seen.append((output.dtype, inputs[0].is_contiguous(memory_format=torch.channels_last),
                     output.device.type))

    _first_conv(model).register_forward_hook(hook)
    out = train(model, data, TrainSettings(batch_size=32), epochs=2, seed=0,
                options=dataclasses.replace(CUDA, precision=precision))
    assert out.result.status is TrialStatus.OK
    assert seen and all(s == (dtype, True, "cuda") for s in seen), seen[:3]
    metrics = out.result.metrics
    assert metrics["device"].startswith("cuda") and metrics["peak_memory_mb"] > 0
    # The model handed back (for checkpoints) is in the ordinary layout, its weights fp32.
    weight = _first_conv(out.model).weight
    assert weight.dtype == torch.float32 and weight.is_contiguous()
    assert out.result.metrics["val_accuracy"] > 0.5


def test_channels_last_can_be_turned_off() -> None:
    data = _images()
    model = _conv_model(data)
    layouts: list[bool] = []
    _first_conv(model).register_forward_hook(
        lambda m, i, o: layouts.append(i[0].is_contiguous(memory_format=torch.channels_last)))
    train(model, data, TrainSettings(batch_size=32), epochs=1, seed=0,
          options=dataclasses.replace(CUDA, channels_last=False))
    assert layouts and not any(layouts)


def _dropout_mlp() -> nn.Module:
    config = dict(spaces.residual_mlp(width=64, n_blocks=2, dropout=0.3, norm="batchnorm")
                  .get_default_configuration())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return spaces.build_model(config, (8,), 3)


@pytest.mark.parametrize("first", [3.0, 2.5])
def test_continuing_on_cuda_equals_training_straight(first: float) -> None:
    # Dropout on a GPU draws from the CUDA generator: the checkpoint must carry its state.
    data = blobs()
    settings = TrainSettings(optimizer="adamw", batch_size=32, lr_schedule="cosine")
    fp32 = dataclasses.replace(CUDA, precision="fp32")
    straight = train(_dropout_mlp(), data, settings, epochs=9, horizon=9, seed=4, options=fp32)
    part = train(_dropout_mlp(), data, settings, epochs=first, horizon=9, seed=4, options=fp32)
    state = TrainState.from_dict(part.state.to_dict())
    assert state.cuda_rng is not None
    model = _dropout_mlp()
    model.load_state_dict(part.model.state_dict())
    rest = train(model, data, settings, epochs=9, horizon=9, seed=123, resume=state,
                 options=fp32)
    assert rest.result.epochs + part.result.epochs == pytest.approx(9)
    # Same kernels, same order: equal up to the last bits of non-associative GPU sums.
    for a, b in zip(straight.model.state_dict().values(), rest.model.state_dict().values(),
                    strict=True):
        torch.testing.assert_close(a.cpu(), b.cpu(), rtol=1e-4, atol=1e-5)


def _syncs(data: Dataset, batch_size: int) -> int:
    """Host synchronisations CUDA reports over one epoch (evaluation included)."""
    model = _conv_model(data)
    settings = TrainSettings(batch_size=batch_size, augment="affine")
    train(model, data, settings, epochs=1, seed=0, options=CUDA)  # warm: cuDNN, allocator
    model = _conv_model(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train(model, data, settings, epochs=1, seed=0, options=CUDA)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def test_no_host_sync_inside_the_epoch_loop() -> None:
    # An epoch of 4 steps and one of 32 steps synchronise as often (copying the model in and
    # reading the epoch's loss and accuracy); a sync per step would add 28. Seen: 29 and 28.
    data = _images(n=512)
    few, many = _syncs(data, 128), _syncs(data, 16)
    assert few > 0  # the probe sees synchronisations at all
    assert abs(many - few) <= 2, (few, many)


def test_gpu_memory_does_not_grow_over_100_trials(tmp_path) -> None:
    samples: dict[int, tuple[int, int]] = {}

    class Probe(Callback):
        def on_trial_end(self, trial, result, best, ledger):
            if trial.id in (19, 99):
                samples[trial.id] = (torch.cuda.memory_allocated(), torch.cuda.memory_reserved())

    result = nas.search(spaces.residual_mlp(width=(16, 256), n_blocks=(1, 2)), blobs(n=200),
                        "random", "100trials", trial_budget="1ep", storage=tmp_path / "m.db",
                        progress=False, dedup=False, callbacks=[Probe()],
                        trainer_options={"device": "cuda"})
    assert len(result.trials) == 100
    assert all(r.result.metrics["device"].startswith("cuda") for r in result.trials)
    (alloc_20, reserved_20), (alloc_100, reserved_100) = samples[19], samples[99]
    # What stays allocated between trials is the resident dataset and the best model only.
    assert alloc_100 <= alloc_20 + 2**20, (alloc_20, alloc_100)
    assert reserved_100 <= reserved_20 + 64 * 2**20, (reserved_20, reserved_100)


def test_a_real_cuda_out_of_memory_fails_the_trial_and_the_search_goes_on(
        tmp_path, monkeypatch) -> None:
    from spaces.mlp import ResidualMLP

    original = ResidualMLP.forward
    total = torch.cuda.get_device_properties(0).total_memory

    def forward(self, x):
        if self.stem[1].out_features > 24:  # asks the allocator for twice the card
            torch.empty(2 * total, dtype=torch.uint8, device=x.device)
        return original(self, x)

    monkeypatch.setattr(ResidualMLP, "forward", forward)
    before = torch.cuda.memory_allocated()
    result = nas.search(spaces.residual_mlp(width=(16, 32), n_blocks=1), blobs(), "random",
                        "8trials", trial_budget="1ep", storage=tmp_path / "oom.db",
                        progress=False, trainer_options={"device": "cuda"}, dedup=False)
    statuses = [r.status for r in result.trials]
    assert TrialStatus.FAILED in statuses and TrialStatus.OK in statuses, statuses
    assert all(r.result.error == "out of memory" for r in result.trials
               if r.status is TrialStatus.FAILED)
    assert len(result.trials) == 8
    # Nothing a failed trial held stays behind (the resident dataset is a few KB).
    assert torch.cuda.memory_allocated() <= before + 2**20
