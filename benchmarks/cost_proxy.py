"""How well forward FLOPs predict a candidate's training time, and whether activation sizes help.

The cost model (`nas.engine.costs.CostModel`) predicts a candidate's seconds per epoch from its
forward FLOPs against the timed default model's. torch's FLOP counter sees only matrix products
and convolutions; pooling, normalisation and element-wise work are free to it. This samples
configurations of a dataset's default space, counts each one's FLOPs and the elements its
modules output (on the meta device), times a few training steps of it at its own batch size
(one thread), and prints one JSON line per configuration, then the spread of seconds per sample
against each proxy: FLOPs alone, elements alone, and elements + FLOPs / c for the c that fits
best.

    python benchmarks/cost_proxy.py --data shapes28 --set stem_stride=2 --configs 30

With `--narrowed K`, it times instead what a plan's narrowing predicts: the default model and
the default model with its size range (and default) halved 1..K times, each a whole epoch with
validation (`nas.probe.measure_epoch_seconds`, no limit), and prints the measured ratio of
each to the default beside the ratios predicted by FLOPs and by elements + FLOPs / c.

    python benchmarks/cost_proxy.py --data digits --narrowed 2
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from typing import Any


def step_seconds(config: dict[str, Any], data: Any, steps: int = 4) -> float:
    """Seconds per training sample of `config`'s model: `steps` timed steps after two."""
    import torch

    from spaces import build_model

    torch.manual_seed(0)
    model = build_model(config, data.input_shape, data.num_classes)
    batch = int(config.get("batch_size", 64))
    x = torch.as_tensor(data.x_train[:batch]).float()
    y = torch.as_tensor(data.y_train[:batch]).long()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(2):
        step()
    began = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - began) / (steps * batch)


def narrowed(data: Any, overrides: dict[str, Any], halvings: int, repeats: int) -> None:
    """Time the default model and its halved sizes; print measured against predicted ratios."""
    from nas.defaults import SIZE_PARAMS, _halved, default_space
    from nas.probe import measure_epoch_seconds
    from spaces import model_work
    from spaces.overrides import Range

    name, space, _ = default_space(data, overrides)
    param = SIZE_PARAMS[name][0]
    hp = space[param]
    size = Range(int(hp.lower), int(hp.upper), int(hp.default_value))
    rows = []
    for step in range(halvings + 1):
        if step:
            size = _halved(size)
            space = default_space(data, {**overrides, param: size})[1]
        config = dict(space.get_default_configuration())
        seconds = min(measure_epoch_seconds(space, data) for _ in range(repeats))
        work = model_work(config, data.input_shape, data.num_classes)
        rows.append({"size": int(config[param]), "flops": work.flops,
                     "elements": work.elements, "epoch_seconds": seconds})
        print(json.dumps({"narrowed": step, **rows[-1]}), flush=True)
    first = rows[0]
    for row in rows[1:]:
        predicted = {f"c={c:g}": round((first["elements"] + first["flops"] / c)
                                       / (row["elements"] + row["flops"] / c), 2)
                     for c in (100, 300, 1000)}
        print(json.dumps({"size": f"{first['size']} -> {row['size']}",
                          "measured": round(first["epoch_seconds"] / row["epoch_seconds"], 2),
                          "flops": round(first["flops"] / row["flops"], 2),
                          "elements": round(first["elements"] / row["elements"], 2),
                          **predicted}), flush=True)


def main() -> None:
    """Sample, count, time; print one line per configuration and the summary."""
    import torch

    from nas.commands import _overrides
    from nas.data import load
    from nas.defaults import default_space
    from spaces import model_work

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="shapes28")
    parser.add_argument("--set", action="append", default=[], help="space override NAME=VALUE")
    parser.add_argument("--configs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--narrowed", type=int, default=0, metavar="K",
                        help="time the default model halved 1..K times instead of sampling")
    parser.add_argument("--repeats", type=int, default=2,
                        help="with --narrowed: timings per size (the fastest counts)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load(args.data)
    overrides = _overrides(args.set)
    if args.narrowed:
        narrowed(data, overrides, args.narrowed, args.repeats)
        return
    space = default_space(data, overrides)[1]
    space.seed(args.seed)
    configs = [dict(space.get_default_configuration())] + [
        dict(c) for c in space.sample_configuration(args.configs)]
    rows = []
    for config in configs:
        work = model_work(config, data.input_shape, data.num_classes)
        flops, elems = work.flops, work.elements
        seconds = step_seconds(config, data)
        rows.append((flops, elems, seconds))
        print(json.dumps({"flops": flops, "elements": elems, "seconds_per_sample": seconds,
                          "batch_size": int(config.get("batch_size", 64))}), flush=True)

    def spread(costs: list[float]) -> dict[str, float]:
        """Seconds per unit of cost, relative to the default model's: the worst under- and
        over-prediction and the median absolute log error."""
        ratios = [s / c / (rows[0][2] / costs[0]) for c, (_, _, s) in zip(costs, rows, strict=True)]
        logs = [abs(math.log(r)) for r in ratios]
        return {"max_ratio": round(max(ratios), 2), "min_ratio": round(min(ratios), 2),
                "median_abs_log": round(statistics.median(logs), 3)}

    def error(costs: list[float]) -> float:
        return spread(costs)["median_abs_log"]

    print(json.dumps({"proxy": "flops", **spread([f for f, _, _ in rows])}))
    print(json.dumps({"proxy": "elements", **spread([e for _, e, _ in rows])}))
    # Elements plus a share of FLOPs: c FLOPs cost what one output element does.
    c = min((error([e + f / c for f, e, _ in rows]), c) for c in (1, 3, 10, 30, 100, 300, 1000))[1]
    print(json.dumps({"proxy": f"elements + flops / {c:g}",
                      **spread([e + f / c for f, e, _ in rows])}))


if __name__ == "__main__":
    main()
