"""Mixed problems whose low fidelity misleads: `mixed-10d` and `mixed-20d`.

Floats, integers and categoricals, and a categorical `branch` whose value switches conditional
floats on (each branch its own). The loss at full budget (`true`) is a weighted sum of squared
distances to hidden targets, plus a penalty for each categorical off its best value and an
offset per branch; it is 0 exactly at `Problem.best_config`. A lower budget blends it with a
decoy of the same form whose optimum sits elsewhere (floats mirrored, integers reflected,
categoricals and the best branch shifted):

    loss(x, s) = s**2 * true(x) + (1 - s**2) * decoy(x) + 0.5 * (1 - s)

with the fidelity s = 0, 1/4, 1/2, 3/4, 1 at budgets 1, 3, 9, 27, 81. The decoy rules the
lower rungs (s**2 = 0.06 at budget 3, 0.25 at 9), so a multi-fidelity searcher that trusts
them promotes the wrong configurations; the last term makes losses fall with the budget, as
learning curves do. Noise-free: the seed is accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from ConfigSpace import Categorical, ConfigurationSpace, EqualsCondition, Float, Integer

from nas.errors import UserError
from nas.problems.core import _MF_MAX_BUDGET, _MF_MIN_BUDGET, PROBLEMS, Problem, _fidelity

#: The categoricals' values, and the branches with their offsets at full budget (the first best).
CHOICES = ("p", "q", "r", "s")
BRANCHES = ("a", "b", "c")
BRANCH_OFFSETS = (0.0, 0.1, 0.25)
INT_RANGE = (0, 10)


@dataclass(frozen=True)
class MixedFunction:
    """The loss of one mixed problem; its hidden targets come from `seed`."""

    floats: int
    ints: int
    categoricals: int
    #: Conditional floats per branch ("a", "b", "c").
    branch_floats: tuple[int, int, int]
    seed: int

    def names(self) -> list[str]:
        """Every hyperparameter's name, conditional ones last."""
        return [*self._plain(), "branch", *self._conditional()]

    def _plain(self) -> list[str]:
        return ([f"f{i}" for i in range(self.floats)] + [f"i{i}" for i in range(self.ints)]
                + [f"c{i}" for i in range(self.categoricals)])

    def _conditional(self, branch: str | None = None) -> list[str]:
        """Names of the conditional floats (of one `branch`, or of all)."""
        return [_conditional_name(b, i) for b, n in zip(BRANCHES, self.branch_floats, strict=True)
                for i in range(n) if branch in (None, b)]

    def space(self, name: str) -> ConfigurationSpace:
        """The problem's configuration space (a fresh one)."""
        out = ConfigurationSpace(name=name)
        branch = Categorical("branch", BRANCHES)
        out.add([*(Float(f"f{i}", (0.0, 1.0)) for i in range(self.floats)),
                 *(Integer(f"i{i}", INT_RANGE) for i in range(self.ints)),
                 *(Categorical(f"c{i}", CHOICES) for i in range(self.categoricals)), branch])
        for b, n in zip(BRANCHES, self.branch_floats, strict=True):
            for i in range(n):
                hp = Float(_conditional_name(b, i), (0.0, 1.0))
                out.add(hp)
                out.add(EqualsCondition(hp, branch, b))
        return out

    def _targets(self) -> dict[str, Any]:
        """Hidden optimum: floats away from the middle (so the mirrored decoy is elsewhere),
        integers off the centre, one best value per categorical."""
        rng = np.random.default_rng(self.seed)
        out: dict[str, Any] = {}
        for name in [f"f{i}" for i in range(self.floats)] + self._conditional():
            side = rng.uniform(0.08, 0.32)
            out[name] = float(side if rng.random() < 0.5 else 1.0 - side)
        for i in range(self.ints):
            out[f"i{i}"] = int(rng.choice([1, 2, 3, 7, 8, 9]))
        for i in range(self.categoricals):
            out[f"c{i}"] = CHOICES[int(rng.integers(len(CHOICES)))]
        return out

    def best_config(self) -> dict[str, Any]:
        """A configuration of loss 0 at full budget."""
        targets = self._targets()
        best = {n: targets[n] for n in self._plain()}
        best["branch"] = BRANCHES[0]
        best.update({n: targets[n] for n in self._conditional(BRANCHES[0])})
        return best

    def loss(self, config: Mapping[str, Any], budget: float) -> float:
        """The loss at `budget` (1 to 81)."""
        s = _fidelity(budget)
        trust = s * s
        return trust * self.part(config, decoy=False) \
            + (1.0 - trust) * self.part(config, decoy=True) + 0.5 * (1.0 - s)

    def part(self, config: Mapping[str, Any], *, decoy: bool) -> float:
        """The full-budget loss (`decoy` False) or the decoy's, at `config`."""
        missing = [n for n in [*self._plain(), "branch"] if n not in config]
        if missing:
            raise UserError(f"configuration lacks {', '.join(missing)}")
        targets = self._targets()
        total = 0.0
        # Weights fall with the index, so some hyperparameters matter more than others.
        for i in range(self.floats):
            t = targets[f"f{i}"]
            total += (1.0 / (1 + i)) * (float(config[f"f{i}"]) - (1.0 - t if decoy else t)) ** 2
        lo, hi = INT_RANGE
        for i in range(self.ints):
            t = targets[f"i{i}"]
            goal = lo + hi - t if decoy else t
            total += 0.5 * ((int(config[f"i{i}"]) - goal) / (hi - lo)) ** 2
        for i in range(self.categoricals):
            best = CHOICES.index(targets[f"c{i}"])
            if decoy:
                best = (best + 1) % len(CHOICES)
            total += 0.0 if config[f"c{i}"] == CHOICES[best] else 0.15 + 0.05 * i
        branch = BRANCHES.index(str(config["branch"]))
        total += (BRANCH_OFFSETS[::-1] if decoy else BRANCH_OFFSETS)[branch]
        for name in self._conditional(BRANCHES[branch]):
            if name not in config:
                raise UserError(f"configuration lacks {name} (active for branch "
                                f"{BRANCHES[branch]!r})")
            t = targets[name]
            total += 0.5 * (float(config[name]) - (1.0 - t if decoy else t)) ** 2
        return float(total)


def _conditional_name(branch: str, index: int) -> str:
    return f"{branch}x{index}"


def _mixed_problem(name: str, function: MixedFunction) -> Problem:
    def evaluate(config: Mapping[str, Any], budget: float, seed: int) -> float:
        return function.loss(config, budget)

    def true_loss(config: Mapping[str, Any]) -> float:
        return function.part(config, decoy=False)

    dims = len(function.names())
    description = (f"{dims} mixed hyperparameters (floats, integers, categoricals, conditional "
                   "floats) whose low budgets rank by a decoy with its optimum elsewhere; "
                   "noise-free")
    return Problem(name=name, description=description, min_budget=_MF_MIN_BUDGET,
                   max_budget=_MF_MAX_BUDGET, budget_unit="fidelity", optimum=0.0,
                   _space=lambda: function.space(name), _evaluate=evaluate,
                   _true_loss=true_loss, best_config=function.best_config())


@PROBLEMS.register("mixed-10d")
def _mixed_10d() -> Problem:
    return _mixed_problem("mixed-10d", MixedFunction(4, 2, 1, (1, 1, 0), seed=10))


@PROBLEMS.register("mixed-20d")
def _mixed_20d() -> Problem:
    return _mixed_problem("mixed-20d", MixedFunction(8, 4, 3, (2, 1, 1), seed=20))

