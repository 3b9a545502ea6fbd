"""Test errors of the default space's default model, with settings changed: the protocol behind
the default space's choices (channels of tiny inputs, augmentation, batch norm).

Trains the default configuration of `nas.defaults.default_space(data)` (with ``--set`` applied
to the configuration) for ``--epochs`` on each split and seed, and prints the test errors summed
over the runs and over the per-split ensembles of the seeds (the averaged probabilities).

    python benchmarks/bench_default_model.py --data digits --splits 0,1,2 --seeds 0 \\
        --set channels=64 --set augment=affine --epochs 30
"""

from __future__ import annotations

import argparse
import json


def errors(data_name: str, splits: list[int], seeds: list[int], epochs: int,
           changes: dict[str, object]) -> dict[str, object]:
    """Summed test errors of single models and of each split's seed ensemble."""
    import torch

    from nas.data import load
    from nas.defaults import default_space
    from nas.trainer import train_config

    singles = ensembles = 0
    for split in splits:
        data = load(data_name, seed=split)
        config = {**dict(default_space(data)[1].get_default_configuration()), **changes}
        probs = []
        for seed in seeds:
            model = train_config(config, data, epochs=epochs, seed=seed).model
            assert model is not None, "training diverged"
            with torch.no_grad():
                p = torch.softmax(model.eval()(data.x_test).float(), 1)
            singles += int((p.argmax(1) != data.y_test).sum())
            probs.append(p)
        ensembles += int((torch.stack(probs).mean(0).argmax(1) != data.y_test).sum())
    return {"data": data_name, "splits": splits, "seeds": seeds, "epochs": epochs,
            "set": changes, "single_errors": singles, "ensemble_errors": ensembles}


def main() -> None:
    from spaces import parse_assignment

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--splits", default="0,1,2")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--set", dest="changes", action="append", default=[],
                        metavar="NAME=VALUE", help="change the default configuration")
    args = parser.parse_args()
    changes = dict(parse_assignment(item) for item in args.changes)
    print(json.dumps(errors(args.data, [int(s) for s in args.splits.split(",")],
                            [int(s) for s in args.seeds.split(",")], args.epochs, changes)))


if __name__ == "__main__":
    main()


def test_default_model_protocol_runs() -> None:
    """Smoke test: one split, one seed, one epoch."""
    out = errors("digits", [0], [0], 1, {"channels": 32})
    assert out["single_errors"] >= 0 and out["ensemble_errors"] == out["single_errors"]
