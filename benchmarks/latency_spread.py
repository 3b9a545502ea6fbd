"""How repeatable is the trainer's latency measurement? Repeat-to-repeat spread per model.

For a few models of the default spaces (small to large), times the forward pass of one batch
exactly as the trainer does (`nas.footprint.time_forward`: warm-up, then timed passes), in
`--rounds` independent measurements of `nas.footprint.MAX_REPEATS` passes each, and reports per
model: the median latency, the median of each round's inter-quartile range relative to its
median (the spread one trial's record carries), and how far the rounds' medians lie apart.

    python benchmarks/latency_spread.py --rounds 10

Runs on CUDA when `--device cuda` (the same function, synchronised per pass).
"""

from __future__ import annotations

import argparse
import statistics

import torch

import spaces
from nas import footprint

#: name -> (space factory, overrides, input shape)
MODELS = {
    "mlp w64 x1 (digits)": (spaces.residual_mlp, {"width": 64, "n_blocks": 1}, (64,)),
    "mlp w256 x4 (digits)": (spaces.residual_mlp, {"width": 256, "n_blocks": 4}, (64,)),
    "conv default (16x16)": (spaces.residual_conv, {}, (1, 16, 16)),
    "conv default (28x28)": (spaces.residual_conv, {}, (1, 28, 28)),
}


def main() -> None:
    """Parse the command line and print one table row per model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, {args.threads} thread(s), batch {args.batch}, {args.rounds} rounds"
          f" x {footprint.MAX_REPEATS} passes\n")
    print("| model | params | MFLOPs/sample | median ms/batch | IQR / median (median of rounds)"
          " | rounds' medians max/min |")
    print("|---|---|---|---|---|---|")
    for name, (make, overrides, shape) in MODELS.items():
        config = dict(make(**overrides).get_default_configuration())
        torch.manual_seed(0)
        model = spaces.build_model(config, shape, 10).to(device)
        batch = torch.randn(args.batch, *shape, device=device)
        medians, spreads = [], []
        for _ in range(args.rounds):
            # A budget this large always times MAX_REPEATS passes.
            median, iqr, _ = footprint.time_forward(model, batch, budget_seconds=60.0)
            medians.append(median)
            spreads.append(iqr / median)
        flops = footprint.count_flops(model, batch[:footprint.FLOP_SAMPLES])
        print(f"| {name} | {footprint.count_params(model):,} | {flops / 1e6:.2f} | "
              f"{statistics.median(medians):.3f} | {100 * statistics.median(spreads):.1f} % | "
              f"{max(medians) / min(medians):.2f} |", flush=True)


if __name__ == "__main__":
    main()
