from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import spaces
from nas.footprint import MAX_REPEATS, Footprint, count_flops, measure, time_forward
from nas.trainer import train
from nas.types import Result, TrialStatus
from spaces.training import TrainSettings
from tests.helpers import blobs


def test_flops_count_two_per_multiply_add_per_sample() -> None:
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))
    # 10*20 + 20*3 multiply-adds per sample, whatever the batch.
    assert count_flops(model, torch.zeros(4, 10)) == 2 * (10 * 20 + 20 * 3)
    assert count_flops(model, torch.zeros(1, 10)) == 2 * (10 * 20 + 20 * 3)
    conv = nn.Conv2d(1, 4, 3, padding=1)
    assert count_flops(conv, torch.zeros(2, 1, 8, 8)) == 2 * 4 * 9 * 8 * 8


def test_a_larger_model_takes_longer_per_pass() -> None:
    torch.manual_seed(0)
    small = nn.Linear(64, 64)
    large = nn.Sequential(*[nn.Linear(512, 512) for _ in range(8)])
    t_small, iqr, n = time_forward(small, torch.zeros(256, 64), budget_seconds=0.0)
    assert n == 1 and iqr is None  # no time to spare: one timed pass
    # A budget no pass count can use up: exactly MAX_REPEATS passes each, even on a busy
    # machine (a budget in milliseconds gave the large model 2 passes beside 3 CPU burners).
    t_small, _, n = time_forward(small, torch.zeros(256, 64), budget_seconds=60.0)
    t_large, iqr, m = time_forward(large, torch.zeros(256, 512), budget_seconds=60.0)
    assert n == m == MAX_REPEATS and t_large > t_small > 0 and iqr is not None and iqr >= 0
    assert small.training  # the model's mode is given back


def test_the_trainer_records_every_trials_footprint_in_its_result() -> None:
    config = dict(spaces.residual_mlp(width=32, n_blocks=2).get_default_configuration())
    torch.manual_seed(0)
    model = spaces.build_model(config, (8,), 3)
    params = sum(p.numel() for p in model.parameters())
    out = train(model, blobs(), TrainSettings(lr=3e-3, batch_size=32), epochs=2, seed=0)
    fp = out.result.footprint
    assert fp is not None and fp.params == params == out.result.metrics["params"]
    assert fp.flops_per_sample >= 2 * params * 0.9  # every weight used once per sample, mostly
    assert fp.latency_ms is not None and fp.latency_ms > 0 and fp.latency_batch == 32
    assert fp.latency_repeats >= 1 and fp.device == "cpu" and fp.peak_memory_mb is None
    assert fp.latency_ms_per_sample == pytest.approx(fp.latency_ms / 32)
    # It travels through the journal's JSON and back.
    again = Result.from_dict(out.result.to_dict())
    assert again.footprint == fp


def test_a_diverged_trial_keeps_its_size_but_no_latency() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    out = train(model, blobs(), TrainSettings(lr=1e6, optimizer="sgd", batch_size=32),
                epochs=3, seed=0)
    assert out.result.status is TrialStatus.DIVERGED
    fp = out.result.footprint
    assert fp is not None and fp.params == 8 * 16 + 16 + 16 * 3 + 3 and fp.latency_ms is None


def test_old_results_and_unknown_keys_read_back() -> None:
    assert Result.from_dict({"loss": 0.5}).footprint is None
    fp = Footprint.from_dict({"params": 3, "flops_per_sample": 6.0, "from_the_future": 1})
    assert fp == Footprint(3, 6.0) and fp.latency_ms_per_sample is None


def test_measure_skips_latency_when_asked() -> None:
    model = nn.Linear(4, 2)
    fp = measure(model, torch.zeros(5, 4), train_seconds=1.0, peak_memory_mb=None,
                 latency=False)
    assert fp.latency_ms is None and fp.latency_repeats == 0
    assert math.isclose(fp.flops_per_sample, 2 * 4 * 2)
