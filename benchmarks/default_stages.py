"""The default configuration of each dataset's default space, trained alone, at 2 and 3 stages.

What `nas.defaults.FINAL_MAP_SIDE` was chosen from: validation accuracy after the same epochs,
and the seconds they took (one torch thread). 28x28 images get the stride-2 stem their plans
choose below a few minutes.

    python benchmarks/default_stages.py \
        --datasets shapes28,shapes16,templates16,digits,mnist1d,mnist1d-hard --epochs 27
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    """Train each (dataset, stages, seed) and print one JSON line per run."""
    import torch

    from nas.data import load
    from nas.defaults import default_space
    from nas.trainer import train_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="shapes28,shapes16,templates16,digits,mnist1d")
    parser.add_argument("--epochs", type=float, default=27.0)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--stages", default="2,3")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.datasets.split(","):
        data = load(name)
        overrides = {"stem_stride": 2} if min(data.input_shape[1:]) >= 28 else {}
        config = dict(default_space(data, overrides)[1].get_default_configuration())
        for stages in (int(s) for s in args.stages.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                began = time.monotonic()
                result = train_config({**config, "n_stages": stages}, data, epochs=args.epochs,
                                      seed=seed).result
                print(json.dumps({"data": name, "stages": stages, "seed": seed,
                                  "val_accuracy": result.metrics.get("val_accuracy"),
                                  "seconds": round(time.monotonic() - began, 1)}), flush=True)


if __name__ == "__main__":
    main()
