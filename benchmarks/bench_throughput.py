"""Training samples/s of the shared trainer for the MLP and conv spaces on the available device.

    python -m pytest benchmarks/bench_throughput.py -q -p no:cacheprovider

Uses `device="auto"` (CUDA, then MPS, then CPU), so on a GPU machine it measures the CUDA path
(bf16 autocast, channels_last, cudnn.benchmark) and on CPU the fp32 path.
"""

from __future__ import annotations

import time

import pytest
import torch

import spaces
from nas.data import Dataset, load
from nas.trainer import TrainerOptions, resolve_device, train
from spaces.training import TrainSettings

EPOCHS = 2
CASES = {
    # MNIST-like flat inputs for the MLP; 1x28x28 images for the conv cells.
    "residual-mlp": ({"width": 256, "n_blocks": 2}, (784,)),
    "residual-conv": ({"n_stages": 2, "n_cells": 1, "channels": 16}, (1, 28, 28)),
}


def _data(shape: tuple[int, ...]) -> Dataset:
    n_features = 1
    for d in shape:
        n_features *= d
    base = load("synthetic", n_samples=6000, n_features=n_features, n_classes=10)
    return Dataset(
        name=base.name, x_train=base.x_train.reshape(-1, *shape),
        y_train=base.y_train, x_val=base.x_val.reshape(-1, *shape), y_val=base.y_val,
        x_test=base.x_test.reshape(-1, *shape), y_test=base.y_test, input_shape=shape,
        num_classes=10, mean=base.mean, std=base.std,
    )


@pytest.mark.parametrize("space_name", list(CASES))
def test_training_throughput(space_name: str, benchmark, bench_report: list[str]) -> None:
    """Samples per second over two epochs (validation included), for one space's default."""
    overrides, shape = CASES[space_name]
    config = dict(spaces.get(space_name, **overrides).get_default_configuration())
    data = _data(shape)
    options = TrainerOptions(device="auto")
    settings = TrainSettings.from_config({**config, "batch_size": 128})
    steps = EPOCHS * (len(data.y_train) // 128)

    def run() -> float:
        model = spaces.build_model(config, data.input_shape, data.num_classes)
        start = time.perf_counter()
        train(model, data, settings, epochs=EPOCHS, seed=0, options=options)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter() - start

    seconds = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    per_s = steps * 128 / seconds
    bench_report.append(f"{space_name:<14} on {resolve_device('auto')}: "
                        f"{per_s:,.0f} training samples/s (batch 128, {EPOCHS} epochs)")
