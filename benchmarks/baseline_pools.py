"""The plain baselines on raw pixels against the same baselines that also try pooled images.

For each dataset, `nas.baselines.fit_baselines` with no practical time limit twice: once with
the inputs as they are only (pooling switched off), once as the engine fits them (images also
average-pooled by 2, 4, ..., the resolution chosen on validation). Prints a Markdown table of
validation / test accuracy and seconds per baseline, and the best on validation of each.

    python benchmarks/baseline_pools.py [--datasets digits,shapes16,...] [--seed 0]

Single-threaded, as the engine fits them (docs/decisions.md, "Baselines on pooled images").
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from unittest import mock

os.environ.setdefault("OMP_NUM_THREADS", "1")

DATASETS = "digits,mnist1d,wine,breast-cancer,shapes16,shapes28,templates16,mnist1d-hard"


def fitted(dataset: str, *, pooling: bool, seed: int) -> Sequence:
    """Every baseline fitted on `dataset`'s default split, pooled images tried or not."""
    import nas.baselines.fitting as fitting
    from nas.data import load

    data = load(dataset, seed=0)
    if pooling:
        return fitting.fit_baselines(data, seconds=3600.0, seed=seed)
    with mock.patch.object(fitting, "pools_for", lambda shape: (1,)):
        return fitting.fit_baselines(data, seconds=3600.0, seed=seed)


def _cell(b) -> str:
    pool = f", {b.pool}x{b.pool}" if b.pool > 1 else ""
    return f"{100 * b.val_accuracy:.1f} / {100 * b.test_accuracy:.1f}{pool} ({b.seconds:.2f} s)"


def main(argv: Sequence[str] | None = None) -> None:
    """Print the table for `--datasets`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from nas.baselines import NAMES, best_baseline

    print("| dataset | input | " + " | ".join(f"{n} raw | {n} pooled" for n in NAMES)
          + " | best raw (test) | best pooled (test) |")
    print("|---|---|" + "---|---|" * len(NAMES) + "---|---|")
    for dataset in args.datasets.split(","):
        raw = {b.name: b for b in fitted(dataset, pooling=False, seed=args.seed)}
        pooled = {b.name: b for b in fitted(dataset, pooling=True, seed=args.seed)}
        shape = "x".join(str(d) for d in next(iter(raw.values())).input_shape)
        best_raw, best_pooled = best_baseline(raw.values()), best_baseline(pooled.values())
        assert best_raw is not None and best_pooled is not None
        print(f"| {dataset} | {shape} | "
              + " | ".join(f"{_cell(raw[n])} | {_cell(pooled[n])}" for n in NAMES)
              + f" | {best_raw.name} {100 * best_raw.test_accuracy:.1f}"
              f" | {best_pooled.name} {100 * best_pooled.test_accuracy:.1f} |", flush=True)


if __name__ == "__main__":
    main()
