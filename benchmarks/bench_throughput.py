"""Training samples/s of the shared trainer for the MLP and conv spaces on the available device.

    python -m pytest benchmarks/bench_throughput.py -q -p no:cacheprovider

Uses `device="auto"` (CUDA, then MPS, then CPU), so on a GPU machine it measures the CUDA path
(bf16 autocast, channels_last, cudnn.benchmark) and on CPU the fp32 path.
"""

from __future__ import annotations

import os
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


# -- batched training of same-architecture members (nas.batched) against one after another ------
#
#     NAS_BENCH_GROUPS=1 OMP_NUM_THREADS=1 python -m pytest benchmarks/bench_throughput.py \
#         -k group -q -p no:cacheprovider
#
# Groups of 1, 4 and 16 members that differ in lr, weight decay and seed, digits-sized data
# (64 features for the MLP, 1x8x8 images for the conv cells). The baseline is the same members
# trained one after another by the normal trainer, timed in the same test: the reported ratio is
# batched samples/s over sequential samples/s. On CPU both `exact` modes are timed (member by
# member kernels, bit-equal to lone runs; vmap's batched kernels); CUDA runs where there is one.
# Opt-in (NAS_BENCH_GROUPS=1): a minute or more, longer than gpu_check.sh gives this file.

GROUP_EPOCHS = 1
GROUP_SIZES = (1, 4, 16)
GROUP_CASES = {
    "residual-mlp": ({"width": 256, "n_blocks": 2}, (64,)),
    "residual-conv": ({"n_stages": 2, "n_cells": 1, "channels": 16}, (1, 8, 8)),
}
GROUP_DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA device")),
]


def _group_configs(space_name: str, size: int) -> list[dict]:
    overrides, _ = GROUP_CASES[space_name]
    base = dict(spaces.get(space_name, **overrides).get_default_configuration())
    base["batch_size"] = 128
    return [{**base, "lr": base["lr"] * (1 + i % 4), "weight_decay": 1e-4 * (1 + i // 4)}
            for i in range(size)]


def _timed(fn, rounds: int = 2) -> float:
    """Best wall time of `rounds` calls after a warm-up call."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.skipif(os.environ.get("NAS_BENCH_GROUPS") != "1", reason="NAS_BENCH_GROUPS=1")
@pytest.mark.parametrize("device", GROUP_DEVICES)
@pytest.mark.parametrize("size", GROUP_SIZES)
@pytest.mark.parametrize("space_name", list(GROUP_CASES))
def test_group_throughput(space_name: str, size: int, device: str, benchmark,
                          bench_report: list[str]) -> None:
    """Samples/s of `train_group` for `size` members against `train_config` one by one."""
    from nas.batched import train_group
    from nas.trainer import train_config

    data = _data(GROUP_CASES[space_name][1])
    data = Dataset(  # 2,000 training samples: 15 batches of 128 per member and epoch
        name=data.name, x_train=data.x_train[:2000], y_train=data.y_train[:2000],
        x_val=data.x_val[:500], y_val=data.y_val[:500], x_test=data.x_test,
        y_test=data.y_test, input_shape=data.input_shape, num_classes=10, mean=data.mean,
        std=data.std)
    configs = _group_configs(space_name, size)
    options = TrainerOptions(device=device)
    seeds = list(range(size))
    samples = size * GROUP_EPOCHS * (len(data.y_train) // 128) * 128

    def sequential() -> None:
        for config, seed in zip(configs, seeds, strict=True):
            train_config(config, data, epochs=GROUP_EPOCHS, seed=seed, options=options)

    base_s = _timed(sequential)
    modes = [True, False] if device == "cpu" else [False]
    rates = {}
    for exact in modes:
        def batched(exact: bool = exact) -> None:
            train_group(configs, data, epochs=GROUP_EPOCHS, seeds=seeds, options=options,
                        exact=exact)
        rates[exact] = samples / _timed(batched)
    # pytest-benchmark's table: the batched run in its default mode on this device.
    benchmark.pedantic(lambda: train_group(configs, data, epochs=GROUP_EPOCHS, seeds=seeds,
                                           options=options), rounds=1, iterations=1)
    base = samples / base_s
    parts = [f"sequential {base:>9,.0f}/s"]
    parts += [f"{'exact' if exact else 'vmap '} {rate:>9,.0f}/s = {rate / base:4.2f}x"
              for exact, rate in rates.items()]
    bench_report.append(f"group {space_name:<14} {size:>2} members on {device}: "
                        + "  ".join(parts))
