"""Each plain baseline's fitting time against the cost model's estimate, on this machine.

The estimates are the slowest machine's (`nas.baselines.costs`); the ratios say how much faster
this one is, per baseline and dataset (`nas.baselines.fitting.FASTEST` bounds the scaling).

    python benchmarks/baseline_costs.py [--datasets digits,mnist1d,...]
"""

from __future__ import annotations

import argparse
import math

from nas.baselines import estimate_seconds, fit_baselines
from nas.data import load

DATASETS = ("digits", "mnist1d", "wine", "breast-cancer", "shapes16", "templates16",
            "mnist1d-hard", "shapes28")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args()
    print("| dataset | train x features | baseline | seconds | estimate | ratio | val acc |")
    print("|---|---|---|---|---|---|---|")
    for name in args.datasets.split(","):
        data = load(name)
        features = math.prod(data.input_shape)
        for b in fit_baselines(data, seconds=1e4, speed=1.0):
            estimate = estimate_seconds(b.name, n_train=b.train_size, n_features=features,
                                        n_classes=data.num_classes, n_val=len(data.y_val),
                                        n_test=len(data.y_test))
            print(f"| {name} | {b.train_size} x {features} | {b.name} | {b.seconds:.2f} | "
                  f"{estimate:.2f} | {b.seconds / estimate:.2f} | {b.val_accuracy:.3f} |")


if __name__ == "__main__":
    main()
