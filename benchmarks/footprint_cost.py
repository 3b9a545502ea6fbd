"""What measuring a model's footprint costs, against one epoch of training it.

Trains the default configuration of each space for one epoch on digits, then times
`nas.footprint.measure` on the trained model (and its FLOP count alone); each space twice, the
first round paying the process's one-time costs (the second measures FLOPs from the cache).

    python benchmarks/footprint_cost.py
"""

from __future__ import annotations

import time

import torch

import spaces
from nas import footprint, load_dataset
from nas.trainer import train
from spaces.training import TrainSettings


def main() -> None:
    """Print one line per space."""
    torch.set_num_threads(1)
    data = load_dataset("digits")
    for name in ("residual-mlp", "residual-conv", "residual-mlp", "residual-conv"):
        config = dict(spaces.get(name).get_default_configuration())
        model = spaces.build_model(config, data.input_shape, data.num_classes)
        settings = TrainSettings.from_config(config)
        outcome = train(model, data, settings, epochs=1, seed=0)
        epoch = outcome.result.curve[-1]["seconds"]
        batch = torch.as_tensor(data.x_val[:settings.batch_size], dtype=torch.float32)
        start = time.perf_counter()
        fp = footprint.measure(model, batch, train_seconds=epoch, peak_memory_mb=None)
        measuring = time.perf_counter() - start
        footprint._FLOPS.clear()  # the first count of a structure, not the cached one
        start = time.perf_counter()
        footprint.count_flops(model, batch[:footprint.FLOP_SAMPLES])
        flops = time.perf_counter() - start
        print(f"{name}: 1 epoch {epoch:.3f} s, measuring {1000 * measuring:.1f} ms "
              f"({100 * measuring / epoch:.1f} %; FLOPs {1000 * flops:.1f} ms, "
              f"{fp.latency_repeats} timed passes of {fp.latency_ms:.2f} ms)")


if __name__ == "__main__":
    main()
