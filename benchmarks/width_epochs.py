"""The default model at several widths and epochs, trained alone: what a short budget should buy.

When a full trial of the default model does not fit a short budget, the plan can train it for
fewer epochs or narrow the model (`nas.defaults._sized_models`). This trains the default
configuration of each dataset's default space (with each `--augment`, as short plans search it;
a stride-2 stem on images of 16 pixels and more, as short plans choose) at a fraction of its
first-stage channels and for each number of epochs, and prints one JSON line per run:
validation accuracy and the seconds it took (one torch thread). Compare rows of equal seconds.

    python benchmarks/width_epochs.py --datasets templates16,shapes16,shapes28,digits,mnist1d \
        --widths 1,0.5,0.25 --epochs 9,18,27,36 --seeds 0,1 --augment none,affine
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    """Train each (dataset, width, epochs, seed) and print one JSON line per run."""
    import torch

    from nas.data import load
    from nas.defaults import STEM_STRIDE_FROM, default_space
    from nas.trainer import train_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="templates16,shapes16,shapes28,digits,mnist1d")
    parser.add_argument("--widths", default="1,0.5,0.25",
                        help="fractions of the default model's first-stage channels")
    parser.add_argument("--epochs", default="9,18,27,36")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--augment", default="none",
                        help="images: the augmentations to train with, e.g. none,affine")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.datasets.split(","):
        data = load(name)
        image = len(data.input_shape) == 3
        overrides: dict[str, object] = {"augment": "none"} if image else {}
        if image and min(data.input_shape[1:]) >= STEM_STRIDE_FROM:
            overrides["stem_stride"] = 2
        config = dict(default_space(data, overrides)[1].get_default_configuration())
        augments = args.augment.split(",") if image else ["none"]
        runs = [(augment, width, epochs, seed) for augment in augments
                for width in (float(w) for w in args.widths.split(","))
                for epochs in (int(e) for e in args.epochs.split(","))
                for seed in (int(s) for s in args.seeds.split(","))]
        for augment, width, epochs, seed in runs:
            channels = max(4, round(int(config["channels"]) * width))
            changed = {"channels": channels, **({"augment": augment} if image else {})}
            began = time.monotonic()
            outcome = train_config({**config, **changed}, data, epochs=epochs, seed=seed)
            metrics = outcome.result.metrics
            print(json.dumps({
                "data": name, "augment": augment, "channels": channels, "epochs": epochs,
                "seed": seed,
                "val_accuracy": metrics.get("val_accuracy"),
                "seconds": round(time.monotonic() - began, 1)}), flush=True)


if __name__ == "__main__":
    main()
