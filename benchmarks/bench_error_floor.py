"""Test samples that every model gets wrong: a floor under any search's test errors.

On a small test split a few samples decide a target (digits: one error is 0.22 points). This
trains the default space's default model (64 channels, 30 epochs) with three seeds, an RBF
SVM and a 1-nearest-neighbour classifier on one split and lists the test samples all of them
misclassify: a search can only beat that floor by a model that gets such samples right.

    python benchmarks/bench_error_floor.py --data digits --splits 0,1,2
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def floor(data_name: str, split: int, epochs: int = 30, seeds: int = 3) -> dict[str, object]:
    """Wrong test samples of each model on `split`, and those every model gets wrong."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    import spaces
    from nas.data import load
    from nas.defaults import default_space
    from nas.trainer import train
    from spaces.training import TrainSettings

    data = load(data_name, seed=split)
    config = dict(default_space(data)[1].get_default_configuration())
    wrong: dict[str, list[int]] = {}
    for seed in range(seeds):
        torch.manual_seed(seed)
        model = spaces.build_model(config, data.input_shape, data.num_classes)
        train(model, data, TrainSettings.from_config(config), epochs=epochs, seed=seed)
        model.eval()
        with torch.no_grad():
            predicted = model(data.x_test).argmax(1)
        wrong[f"net{seed}"] = (predicted != data.y_test).nonzero().flatten().tolist()
    # The classical models see train and validation: they need no model selection here.
    x = torch.cat([data.x_train, data.x_val]).flatten(1).numpy()
    y = np.concatenate([data.y_train.numpy(), data.y_val.numpy()])
    x_test, y_test = data.x_test.flatten(1).numpy(), data.y_test.numpy()
    for name, clf in (("svm", SVC(C=10.0)), ("1nn", KNeighborsClassifier(1))):
        clf.fit(x, y)
        wrong[name] = np.nonzero(clf.predict(x_test) != y_test)[0].tolist()
    common = sorted(set.intersection(*(set(w) for w in wrong.values())))
    return {"data": data_name, "split": split, "test_samples": len(y_test),
            "errors": {k: len(v) for k, v in wrong.items()}, "all_wrong": common}


def main() -> None:
    """Print one JSON line per split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--splits", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for split in args.splits.split(","):
        print(json.dumps(floor(args.data, int(split), args.epochs)), flush=True)


def test_error_floor_smoke() -> None:
    row = floor("digits", 0, epochs=1, seeds=1)
    errors = row["errors"]
    assert set(errors) == {"net0", "svm", "1nn"}  # type: ignore[arg-type]
    # Every sample in the floor is wrong for each model, so it is no larger than any count.
    assert len(row["all_wrong"]) <= min(errors.values())  # type: ignore[arg-type, union-attr]


if __name__ == "__main__":
    main()
