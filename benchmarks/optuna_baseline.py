"""The hand-written Optuna study a user would write instead of running `nas search`.

The textbook workflow (Optuna's PyTorch example, adapted to small images and 1-D signals):
a conv net of 1-4 conv layers (3-wide kernels, ReLU, max-pooling while the map is at least
4 wide) and 1-2 dense layers with dropout (the dense layers alone for flat features); the
optimizer (Adam, RMSprop, SGD with momentum) and its learning rate searched by TPE; 15 epochs
per trial, reported after each epoch to a Hyperband pruner. It sees the same
train/validation/test split as `nas search` (the dataset's split of `--data-seed`, default 0;
`--seed` seeds the study and the models, as it seeds the search), selects on validation
accuracy only and reports the best trial's test accuracy. A trial still running at the
deadline is dropped, so the study spends no more than the budget.

    python benchmarks/optuna_baseline.py --data digits --budget 120 --seed 0
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import torch
from torch import nn

EPOCHS = 15
BATCH_SIZE = 64


def build_net(trial: Any, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The trial's conv net for (C, L) signals or (C, H, W) images; for flat (F,) features,
    its dense layers alone (Optuna's own PyTorch example is such an MLP)."""
    conv, pool = (nn.Conv1d, nn.MaxPool1d) if len(input_shape) == 2 else (nn.Conv2d,
                                                                          nn.MaxPool2d)
    layers: list[nn.Module] = []
    channels, sizes = input_shape[0], list(input_shape[1:])
    n_conv = 0 if len(input_shape) == 1 else trial.suggest_int("n_conv", 1, 4)
    for i in range(n_conv):
        out = trial.suggest_categorical(f"conv{i}_channels", [16, 32, 64, 128])
        layers += [conv(channels, out, 3, padding=1), nn.ReLU()]
        if min(sizes) >= 4:
            layers.append(pool(2))
            sizes = [s // 2 for s in sizes]
        channels = out
    layers.append(nn.Flatten())
    width = channels * math.prod(sizes)
    for i in range(trial.suggest_int("n_dense", 1, 2)):
        units = trial.suggest_int(f"dense{i}_units", 32, 512, log=True)
        layers += [nn.Linear(width, units), nn.ReLU(),
                   nn.Dropout(trial.suggest_float(f"dense{i}_dropout", 0.0, 0.5))]
        width = units
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def run_study(data_name: str, budget_s: float, seed: int, data_seed: int = 0
              ) -> dict[str, Any]:
    """Run the study for `budget_s` seconds of wall time; its best trial's accuracies."""
    import optuna

    from nas.data import load

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.monotonic()
    deadline = start + budget_s
    data = load(data_name, seed=data_seed)  # as `nas search --data-seed` loads it
    best: dict[str, Any] = {"val": -1.0}

    def objective(trial: optuna.Trial) -> float:
        torch.manual_seed(seed * 100_003 + trial.number)
        model = build_net(trial, tuple(data.input_shape), data.num_classes)
        name = trial.suggest_categorical("optimizer", ["Adam", "RMSprop", "SGD"])
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        options = {"momentum": 0.9} if name == "SGD" else {}
        optimizer = getattr(torch.optim, name)(model.parameters(), lr=lr, **options)
        loss_fn = nn.CrossEntropyLoss()
        n = len(data.y_train)
        val = 0.0
        for epoch in range(EPOCHS):
            model.train()
            order = torch.randperm(n)
            for i in range(0, n, BATCH_SIZE):
                batch = order[i:i + BATCH_SIZE]
                optimizer.zero_grad()
                loss_fn(model(data.x_train[batch]), data.y_train[batch]).backward()
                optimizer.step()
                if time.monotonic() > deadline:
                    raise optuna.TrialPruned()  # unfinished at the deadline: not counted
            val = _accuracy(model, data.x_val, data.y_val)
            trial.report(val, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        if val > best["val"]:
            best.update(val=val, test=_accuracy(model, data.x_test, data.y_test),
                        params=dict(trial.params), number=trial.number)
        return val

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=EPOCHS,
                                              reduction_factor=3))
    study.optimize(objective, timeout=max(0.0, deadline - time.monotonic()))
    states = [t.state.name for t in study.trials]
    return {"data": data_name, "budget": f"{budget_s:g}s", "seed": seed,
            "wall_s": round(time.monotonic() - start, 1),
            "test_accuracy": best.get("test"), "val_accuracy": best["val"],
            "trials": len(states), "complete": states.count("COMPLETE"),
            "best_params": best.get("params")}


def main() -> None:
    """Run one study and print its result as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the data's split")
    args = parser.parse_args()
    print(json.dumps(run_study(args.data, args.budget, args.seed, args.data_seed)))


if __name__ == "__main__":
    main()
