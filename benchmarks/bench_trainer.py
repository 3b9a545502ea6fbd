"""One epoch of `nas.trainer.train` vs a minimal hand-written loop vs a DataLoader loop."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable

import pytest
import torch
from pytest_benchmark.fixture import BenchmarkFixture
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

import spaces
from benchmarks.timing import benchmarks_off
from nas.data import Dataset, load
from nas.trainer import TrainerOptions, train
from spaces.training import TrainSettings

# Run with:  python -m pytest benchmarks -q -p no:cacheprovider -s
# Not part of the default test run (pyproject: testpaths = ["tests"]).

# Threads are set explicitly to 2 (torch's default on this 2-core machine, so what a user gets);
# set here rather than left implicit because tests/conftest.py pins 1 for the unit tests.
THREADS = 2  # torch threads while this module runs (benchmarks/conftest.py)
DEVICE = torch.device("cpu")
SEED = 0
GROUP = "trainer-epoch"
# The bound on trainer / hand loop for one epoch.
MAX_TRAINER_OVER_HAND = 1.15
# MNIST-like shapes: 12,800 train samples -> 100 optimizer steps per epoch at batch 128, so the
# per-call overhead of `train` (seeding, optimizer, result) is amortised as it is in real use.
N_SAMPLES, N_FEATURES, N_CLASSES = 20_000, 784, 10
CONFIG: dict[str, object] = {
    "architecture": "residual-mlp", "width": 256, "n_blocks": 2, "block1_mult": 1.0,
    "block2_mult": 1.0, "norm": "batchnorm", "activation": "relu", "dropout": 0.1,
}
SETTINGS = TrainSettings(optimizer="adamw", lr=1e-3, weight_decay=1e-4, batch_size=128,
                         lr_schedule="cosine")
OPTIONS = TrainerOptions(device=str(DEVICE))
ROUNDS = 9
INTERLEAVED_ROUNDS = 15

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@pytest.fixture(scope="module")
def data() -> Dataset:
    """The benchmark data set, already on DEVICE (so the trainer's `.to(device)` is free)."""
    ds = load("synthetic", n_samples=N_SAMPLES, n_features=N_FEATURES, n_classes=N_CLASSES)
    return Dataset(
        name=ds.name, x_train=ds.x_train.to(DEVICE), y_train=ds.y_train.to(DEVICE),
        x_val=ds.x_val.to(DEVICE), y_val=ds.y_val.to(DEVICE), x_test=ds.x_test,
        y_test=ds.y_test, input_shape=ds.input_shape, num_classes=ds.num_classes,
        mean=ds.mean, std=ds.std,
    )


@pytest.fixture(scope="module")
def epoch_seconds() -> dict[str, float]:
    """Median seconds per epoch of each pytest-benchmark variant, for the ratio report."""
    return {}


def fresh_model(data: Dataset) -> nn.Module:
    """The same freshly initialised model every round, so no variant trains a drifted one."""
    torch.manual_seed(SEED)
    return spaces.build_model(CONFIG, data.input_shape, data.num_classes).to(DEVICE)


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    # Same optimizer, implementation (fused) and hyperparameters as `make_optimizer(SETTINGS,
    # ...)` inside the trainer: the ratio measures the trainer's loop, not the optimizer kernel.
    return torch.optim.AdamW(model.parameters(), lr=SETTINGS.lr,
                             weight_decay=SETTINGS.weight_decay, fused=True)


@torch.no_grad()
def _evaluate(model: nn.Module, batches: Batches, n: int) -> tuple[float, float]:
    # Mirrors the trainer's one validation pass per epoch: eval mode, summed on the device,
    # read back once; without it the hand loop would do less work than the trainer's epoch.
    model.eval()
    loss_sum = torch.zeros((), device=DEVICE)
    correct = torch.zeros((), device=DEVICE, dtype=torch.long)
    for xb, yb in batches:
        logits = model(xb)
        loss_sum += nn.functional.cross_entropy(logits, yb, reduction="sum")
        correct += (logits.argmax(dim=1) == yb).sum()
    model.train()
    return loss_sum.item() / n, correct.item() / n


def hand_epoch(model: nn.Module, data: Dataset) -> tuple[float, float]:
    """Minimal loop over the device-resident tensors; returns (val loss, val accuracy).

    No lr schedule (the trainer's per-step lr write is part of what is being measured), no
    loss accumulation; the shuffle uses a generator seeded like the trainer's, so with a
    constant schedule this loop takes exactly the trainer's steps (checked below).
    """
    x, y = data.x_train, data.y_train
    n, bs = len(x), SETTINGS.batch_size
    optimizer = _optimizer(model)
    loss_fn = nn.CrossEntropyLoss()
    torch.manual_seed(SEED)  # dropout's stream, as the trainer seeds it
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(SEED)).to(DEVICE)
    model.train()
    for b in range(n // bs):  # whole batches only, like the trainer
        idx = perm[b * bs:(b + 1) * bs]
        loss = loss_fn(model(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    ebs = OPTIONS.eval_batch(DEVICE)
    xv, yv = data.x_val, data.y_val
    val = ((xv[s:s + ebs], yv[s:s + ebs]) for s in range(0, len(xv), ebs))
    return _evaluate(model, val, len(xv))


def dataloader_epoch(model: nn.Module, data: Dataset) -> tuple[float, float]:
    """The loop users write: TensorDataset + DataLoader over CPU tensors, `.to(device)` per batch.

    Validation goes through a DataLoader too (eval batch size, no shuffle), as users write it.
    The sampler gets a generator seeded like the trainer's, so it draws the same permutation,
    and the loader one of its own, so the global RNG (dropout's) is left to the seed below.
    """
    train_set = TensorDataset(data.x_train.cpu(), data.y_train.cpu())
    val_set = TensorDataset(data.x_val.cpu(), data.y_val.cpu())
    # `shuffle=True` builds exactly this RandomSampler; it is spelled out only to give it its own
    # generator (the loader's draws a base seed from its generator before the sampler shuffles).
    sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(SEED))
    loader = DataLoader(train_set, batch_size=SETTINGS.batch_size, sampler=sampler,
                        drop_last=True, num_workers=0, generator=torch.Generator())
    optimizer = _optimizer(model)
    loss_fn = nn.CrossEntropyLoss()
    torch.manual_seed(SEED)
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(DEVICE), yb.to(DEVICE)
        loss = loss_fn(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    val_loader = DataLoader(val_set, batch_size=OPTIONS.eval_batch(DEVICE), shuffle=False,
                            num_workers=0)
    val = ((xb.to(DEVICE), yb.to(DEVICE)) for xb, yb in val_loader)
    return _evaluate(model, val, len(val_set))


def trainer_epoch(model: nn.Module, data: Dataset,
                  settings: TrainSettings = SETTINGS) -> tuple[float, float]:
    """One epoch of `nas.trainer.train` (training plus its one validation pass)."""
    metrics = train(model, data, settings, epochs=1, seed=SEED, options=OPTIONS).result.metrics
    return metrics["val_loss"], metrics["val_accuracy"]


VARIANTS: dict[str, Callable[[nn.Module, Dataset], tuple[float, float]]] = {
    "hand": hand_epoch,
    "trainer": trainer_epoch,
    "dataloader": dataloader_epoch,
}


def test_variants_take_the_same_steps(data: Dataset) -> None:
    """Sanity: with a constant lr all three loops train the same model on the same batches."""
    constant = TrainSettings(optimizer=SETTINGS.optimizer, lr=SETTINGS.lr,
                             weight_decay=SETTINGS.weight_decay,
                             batch_size=SETTINGS.batch_size, lr_schedule="constant")
    reference = trainer_epoch(fresh_model(data), data, constant)
    for name in ("hand", "dataloader"):
        got = VARIANTS[name](fresh_model(data), data)
        # Bitwise equal on CPU; approx leaves room for non-deterministic kernels elsewhere.
        assert got == pytest.approx(reference, rel=1e-4), name


@pytest.mark.parametrize("name", list(VARIANTS))
def test_epoch(benchmark: BenchmarkFixture, data: Dataset, epoch_seconds: dict[str, float],
               name: str) -> None:
    """Seconds per epoch of one variant (fresh model each round, built outside the timing)."""
    benchmark.group = GROUP
    fn = VARIANTS[name]
    benchmark.pedantic(fn, setup=lambda: ((fresh_model(data), data), {}), rounds=ROUNDS,
                       iterations=1, warmup_rounds=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        epoch_seconds[name] = benchmark.stats.stats.median


def test_report_ratios(epoch_seconds: dict[str, float], bench_report: list[str]) -> None:
    """Ratios of the pytest-benchmark medians above (same run); reported, not asserted."""
    if set(epoch_seconds) != set(VARIANTS):
        pytest.skip("the per-variant benchmarks did not all run (or were disabled)")
    hand = epoch_seconds["hand"]
    medians = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in epoch_seconds.items())
    line = (f"pytest-benchmark medians ({ROUNDS} rounds): {medians}; "
            f"trainer/hand = {epoch_seconds['trainer'] / hand:.3f}, "
            f"dataloader/hand = {epoch_seconds['dataloader'] / hand:.3f}")
    print("\n" + line)
    bench_report.append(line)


def test_interleaved_ratio(data: Dataset, bench_report: list[str],
                           pytestconfig: pytest.Config) -> None:
    """Most noise-robust ratio: variants alternate within each round; asserts the 1.15x bound.

    Skipped with benchmarks disabled or skipped: that run is a quick smoke run, and every variant
    has run once already in `test_variants_take_the_same_steps`.
    """
    if benchmarks_off(pytestconfig):
        pytest.skip("benchmarks disabled or skipped: nothing is timed")
    for fn in VARIANTS.values():  # warm-up: allocator, lazy init, caches
        fn(fresh_model(data), data)
    names = list(VARIANTS)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(INTERLEAVED_ROUNDS):
        # Rotate the order so no variant always runs first (or right after the slow one).
        for name in names[r % 3:] + names[:r % 3]:
            model = fresh_model(data)
            start = time.perf_counter()
            VARIANTS[name](model, data)
            times[name].append(time.perf_counter() - start)
    # Ratio per round, then the median: neighbours in time share the machine's load at the time.
    trainer = statistics.median(t / h for t, h in zip(times["trainer"], times["hand"],
                                                      strict=True))
    loader = statistics.median(d / h for d, h in zip(times["dataloader"], times["hand"],
                                                     strict=True))
    medians = ", ".join(f"{k} {statistics.median(v) * 1e3:.0f} ms" for k, v in times.items())
    line = (f"interleaved ({INTERLEAVED_ROUNDS} rounds): {medians}; "
            f"median per-round trainer/hand = {trainer:.3f}, dataloader/hand = {loader:.3f}")
    print("\n" + line)
    bench_report.append(line)
    assert trainer <= MAX_TRAINER_OVER_HAND, line
