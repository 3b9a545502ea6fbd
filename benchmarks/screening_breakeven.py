"""When does a cheap budget pay for screening? The Kendall tau at which it breaks even.

A model of one successive-halving step: a budget costing `rho` of the top one screens `eta`
configurations and the best of them is trained at the top; against that, the same total
(`total` top-budget trainings) buys plain full-budget trainings. Losses at the two budgets are
standard bivariate normal with Pearson r = sin(pi tau / 2) (the Gaussian copula's link between
Kendall's tau and r). The break-even tau is the lowest on a 0.05 grid at which screening's best
true value reaches the plain one's, both averaged over `--repeats` draws.

    python benchmarks/screening_breakeven.py [--eta 3] [--total 30] [--repeats 4000]

Prints one line per cost ratio (1/3, 1/9, 1/27, 1/81 of the top budget). It models random
proposals; model-based ones leave screening less to find (docs/decisions.md, "Ladders from a
pool").
"""

from __future__ import annotations

import argparse
import math

import numpy as np


def screened_best(tau: float, rho: float, eta: int, total: float, repeats: int,
                  rng: np.random.Generator) -> float:
    """Mean best true value (higher is better) of rounds screening `eta` at cost `rho` each."""
    r = math.sin(math.pi * tau / 2)
    rounds = int(total / (1 + eta * rho))
    true = rng.standard_normal((repeats, rounds, eta))
    proxy = r * true + math.sqrt(1 - r * r) * rng.standard_normal((repeats, rounds, eta))
    picked = np.take_along_axis(true, proxy.argmax(axis=2)[..., None], axis=2)[..., 0]
    return float(picked.max(axis=1).mean())


def main() -> None:
    """Print the break-even tau per cost ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--total", type=float, default=30)
    parser.add_argument("--repeats", type=int, default=4000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    plain = float(rng.standard_normal((args.repeats, int(args.total))).max(axis=1).mean())
    for k in (1, 2, 3, 4):
        rho = args.eta ** -k
        even = next((tau for tau in np.arange(0.0, 1.0, 0.05)
                     if screened_best(tau, rho, args.eta, args.total, args.repeats, rng)
                     >= plain), math.nan)
        print(f"budget 1/{args.eta ** k} of the top: screening pays from Kendall tau "
              f"{even:.2f}", flush=True)


if __name__ == "__main__":
    main()
