"""Build the tabular NAS benchmark of `nas.problems.tabular`: learning curves of sampled
`residual-mlp` configurations, trained once per seed for the full 27 epochs.

Each (configuration, seed) is trained through the project's trainer on one CPU thread, and its
validation accuracy and loss after every epoch are recorded, with the seconds each epoch took
and the model's parameter count. Finished runs go to a JSON-lines file as they end, so a killed
build goes on where it stopped; `--pack` writes the compressed table the package ships.

    python benchmarks/make_tabular.py --dataset digits --configs 400 --seeds 0,1,2
    python benchmarks/make_tabular.py --dataset digits --pack   # -> nas/problems/tables/
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from nas.problems.tabular import EPOCHS, TABLES, space_for
from nas.types import plain

ROOT = Path(__file__).resolve().parents[1]


def sample_configs(dataset: str, count: int, seed: int) -> list[dict[str, Any]]:
    """`count` configurations of the table's space: its default first, then seeded samples."""
    space = space_for(dataset)
    space.seed(seed)
    configs = [plain(dict(space.get_default_configuration()))]
    seen = {json.dumps(configs[0], sort_keys=True)}
    while len(configs) < count:
        config = plain(dict(space.sample_configuration()))
        key = json.dumps(config, sort_keys=True)
        if key not in seen:
            seen.add(key)
            configs.append(config)
    return configs


def train_one(dataset: str, config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One 27-epoch run: the curve of validation accuracy and loss, and seconds per epoch."""
    import torch

    from nas.problems.training import _dataset
    from nas.trainer import TrainerOptions, train_config

    torch.set_num_threads(1)
    data = _dataset(dataset)
    outcome = train_config(config, data, epochs=EPOCHS, seed=seed,
                           options=TrainerOptions(device="cpu"))
    points = outcome.result.curve
    accuracy = [float(p["val_accuracy"]) for p in points]
    loss = [float(p["val_loss"]) for p in points]
    seconds = [float(p["seconds"]) for p in points]
    params = sum(p.numel() for p in outcome.model.parameters()) if outcome.model is not None \
        else 0
    return {"accuracy": accuracy, "loss": loss, "seconds": seconds, "params": params,
            "status": outcome.result.status.value}


def build(dataset: str, count: int, seeds: list[int], runs: Path, sample_seed: int) -> None:
    """Train every (configuration, seed) not yet in `runs` and append it there."""
    configs = sample_configs(dataset, count, sample_seed)
    done: set[tuple[int, int]] = set()
    if runs.exists():
        for line in runs.read_text().splitlines():
            row = json.loads(line)
            done.add((row["index"], row["seed"]))
    runs.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    todo = [(i, s) for i in range(len(configs)) for s in seeds if (i, s) not in done]
    with runs.open("a") as out:
        for n, (index, seed) in enumerate(todo, 1):
            row = {"index": index, "seed": seed, "config": configs[index],
                   **train_one(dataset, configs[index], seed)}
            out.write(json.dumps(row) + "\n")
            out.flush()
            if n % 20 == 0:
                rate = (time.monotonic() - start) / n
                print(f"{dataset}: {n}/{len(todo)} runs, {rate:.1f} s each, "
                      f"{rate * (len(todo) - n) / 60:.0f} min left", flush=True)


def pack(dataset: str, runs: Path, target: Path) -> None:
    """The shipped table: configurations (JSON), accuracy/loss/seconds [config, seed, epoch]."""
    rows = [json.loads(line) for line in runs.read_text().splitlines()]
    indices = sorted({r["index"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    have = {(r["index"], r["seed"]) for r in rows}
    complete = [i for i in indices if all((i, s) in have for s in seeds)]
    position = {i: k for k, i in enumerate(complete)}
    shape = (len(complete), len(seeds), EPOCHS)
    accuracy = np.full(shape, np.nan, dtype=np.float32)
    loss = np.full(shape, np.nan, dtype=np.float32)
    seconds = np.full(shape, np.nan, dtype=np.float32)
    params = np.zeros(len(complete), dtype=np.int64)
    configs: list[dict[str, Any]] = [{}] * len(complete)
    for row in rows:
        if row["index"] not in position:
            continue
        k, s = position[row["index"]], seeds.index(row["seed"])
        n = min(len(row["accuracy"]), EPOCHS)
        accuracy[k, s, :n] = row["accuracy"][:n]
        loss[k, s, :n] = row["loss"][:n]
        # Per epoch, not cumulative: what each step of a continued trial costs.
        seconds[k, s, :n] = np.diff([0.0, *row["seconds"][:n]])
        params[k] = row["params"]
        configs[k] = row["config"]
    target.parent.mkdir(parents=True, exist_ok=True)
    space = json.dumps(space_for(dataset).to_serialized_dict())
    np.savez_compressed(target, space=np.array(space), configs=np.array(json.dumps(configs)),
                        accuracy=accuracy,
                        loss=loss, seconds=seconds, params=params, seeds=np.array(seeds))
    size = target.stat().st_size / 1024
    finished = np.isfinite(accuracy[:, :, -1])
    print(f"{target}: {len(complete)} configurations x {len(seeds)} seeds, {size:.0f} KiB; "
          f"{int((~finished).sum())} runs diverged or stopped early; best mean final "
          f"accuracy {np.nanmax(np.nanmean(accuracy[:, :, -1], axis=1)):.4f}")
    if not math.isfinite(float(np.nanmax(accuracy))):
        raise SystemExit("no finished run")


def main() -> None:
    """Build or pack one dataset's table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, choices=sorted(TABLES))
    parser.add_argument("--configs", type=int, default=400)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--runs", type=Path, default=None,
                        help="JSON-lines file of finished runs "
                        "(default runs/tabular-DATASET.jsonl)")
    parser.add_argument("--pack", action="store_true", help="write the shipped table and stop")
    args = parser.parse_args()
    runs = args.runs or ROOT / "runs" / f"tabular-{args.dataset}.jsonl"
    if args.pack:
        pack(args.dataset, runs, TABLES[args.dataset])
        return
    build(args.dataset, args.configs, [int(s) for s in args.seeds.split(",")], runs,
          args.sample_seed)


if __name__ == "__main__":
    main()
