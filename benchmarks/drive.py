"""Direct ask/tell runs of a searcher on a `nas.problems` problem, for the measurement scripts
(misleading_fidelity.py, priors.py, warm_start.py, mo_variants.py; tpe_variants.py reads its
`--json` through `variants`): no journal, each trial charged its budget, the incumbent the best
trial at the highest budget so far, scored by its noise-free regret."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import searchers
from nas import problems
from nas.types import Result, Trial

#: A variant to compare: (registered searcher, its options).
Variant = tuple[str, dict[str, Any]]


def variants(text: str | None, known: Mapping[str, Variant], names: str) -> dict[str, Variant]:
    """The variants a script compares: `text` (``--json``, ``{"label": ["searcher",
    {options}]}``) when given, else the comma-separated `names` of `known`."""
    if text:
        return {label: (v[0], dict(v[1])) for label, v in json.loads(text).items()}
    return {name: known[name] for name in names.split(",")}


def build(problem: problems.Problem, name: str, seed: int, **options: Any) -> searchers.Searcher:
    """The registered searcher `name` on `problem` (a multi-fidelity one over its budgets)."""
    extra = {"min_budget": problem.min_budget, "max_budget": problem.max_budget} \
        if searchers.get_class(name).multi_fidelity else {}
    return searchers.get(name, problem.space, seed=seed, **extra, **options)


@dataclass
class Drive:
    """What a run did: (budget charged, incumbent regret) at each change of incumbent, every
    told (config, budget, result), the incumbent's configuration, and the budget charged when
    its regret first reached the target (inf: never, or no target)."""

    path: list[tuple[float, float]] = field(default_factory=list)
    told: list[tuple[dict[str, Any], float | None, Result]] = field(default_factory=list)
    incumbent: dict[str, Any] | None = None
    reached: float = math.inf

    @property
    def final_regret(self) -> float:
        """The last incumbent's regret (inf: no trial ran)."""
        return self.path[-1][1] if self.path else math.inf


def evaluations(searcher: searchers.Searcher, problem: problems.Problem, seed: int, *,
                factor: float) -> Iterator[tuple[Trial, float, Any, float]]:
    """Each trial the searcher asks until `factor` x max_budget is charged (a trial its budget,
    as `nas bench` charges): (trial, its budget, the problem's answer, budget charged so far).
    The caller tells the searcher before asking for the next."""
    spent = 0.0
    while spent < factor * problem.max_budget:
        trial = searcher.ask()
        if trial is None:
            return
        budget = trial.budget if trial.budget is not None else problem.max_budget
        value = problem.evaluate(trial.config, budget, seed=seed)
        spent += budget
        yield trial, budget, value, spent


def answer_loss(value: Any) -> Any:
    """The loss in a problem's answer: a tabular problem answers with its record (a dict
    holding the loss), the others with the loss itself."""
    return value["loss"] if isinstance(value, Mapping) else value


def drive(searcher: searchers.Searcher, problem: problems.Problem, seed: int, *,
          factor: float, target: float | None = None) -> Drive:
    """Ask and tell until `factor` x max_budget is charged, or until the incumbent's regret is
    at most `target`."""
    out = Drive()
    best = (-math.inf, math.inf)
    for trial, budget, value, spent in evaluations(searcher, problem, seed, factor=factor):
        result = Result(loss=answer_loss(value))
        searcher.tell(trial, result)
        out.told.append((dict(trial.config), trial.budget, result))
        if (budget, -result.loss) > (best[0], -best[1]):
            best, out.incumbent = (budget, result.loss), trial.config
            out.path.append((spent, problem.regret(trial.config)))
            # A configuration enqueued again comes back rounded by ConfigSpace (13 digits).
            if target is not None and out.path[-1][1] <= target + 1e-9 * (1 + abs(target)):
                out.reached = spent
                break
    return out
