"""Seconds of one validation pass against the evaluation batch, on the CPU, one thread.

Each dataset's default model (`nas.defaults.default_space`) is trained for one epoch, then its
validation split is scored at each batch size (best of 3). The trainer's `CPU_EVAL_BATCH`
comes from this table (docs/decisions.md, "The evaluation batch on the CPU").

    python benchmarks/eval_batch.py --datasets shapes28,shapes16,digits,mnist1d
"""

from __future__ import annotations

import argparse
import time

import torch

from nas.data import load
from nas.defaults import default_space
from nas.trainer import TrainerOptions, evaluate, train_config

BATCHES = (32, 64, 128, 256, 512, 4096)


def pass_seconds(dataset: str, batches: tuple[int, ...] = BATCHES) -> dict[int, float]:
    """Best-of-3 seconds of one validation pass of `dataset`'s default model, by batch size."""
    data = load(dataset, seed=0)
    config = dict(default_space(data)[1].get_default_configuration())
    model = train_config(config, data, seed=0, epochs=1,
                         options=TrainerOptions(device="cpu")).model
    assert model is not None
    out = {}
    for batch in batches:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            evaluate(model, data.x_val, data.y_val, batch_size=batch)
            times.append(time.perf_counter() - start)
        out[batch] = min(times)
    return out


def main() -> None:
    """Print one row per dataset: seconds per pass and the ratio to batch 4,096."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="shapes28,shapes16,templates16,digits,mnist1d")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| dataset | " + " | ".join(f"batch {b}" for b in BATCHES) + " |")
    print("|---|" + "---|" * len(BATCHES))
    for name in args.datasets.split(","):
        seconds = pass_seconds(name)
        base = seconds[BATCHES[-1]]
        cells = [f"{s:.3f} s ({s / base:.2f})" for s in seconds.values()]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
