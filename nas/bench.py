"""`nas bench`: searchers x problems x seeds under one total budget, with statistics and plots.

Each run is an `optimize` search with its own SQLite journal under ``<out>/runs/``: an interrupted
benchmark resumes its unfinished runs and a re-run with the same arguments reuses finished ones.
Runs go to the executors' workers whole (``workers``), so they never share a journal.

Regret: the incumbent at any moment is the best trial at the highest budget evaluated so far;
its regret is ``true_loss - optimum`` when the problem knows them, else (training problems) its
loss minus the best loss any run of the benchmark observed at the maximum budget. A problem of
several objectives is measured by hypervolume regret instead (`nas.bench_pareto`).
"""

from __future__ import annotations

import csv
import importlib
import importlib.metadata
import json
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas import bench_pareto
from nas.bench_summary import BASELINE, problem_section
from nas.budget import Budget, Unit, charge
from nas.errors import UserError
from nas.journal import JournalView, incumbent_key
from nas.problems import Problem
from nas.problems import get as get_registered

#: The default total budget of a run: 30 x the problem's max budget.
DEFAULT_BUDGET = "30x"


@dataclass(frozen=True)
class RunSpec:
    """One run of a benchmark: a searcher on a problem with a seed and a total budget."""

    problem: str
    searcher: str
    seed: int
    budget: str

    @property
    def name(self) -> str:
        """File-name-safe identifier of the run (its journal is ``runs/<name>.db``)."""
        safe = self.problem.replace(":", "_").replace("/", "_")
        return f"{safe}-{self.searcher}-seed{self.seed}"


@dataclass(frozen=True)
class BenchResult:
    """What a benchmark leaves: its folder, one row per evaluation, and the summary text."""

    out: Path
    rows: tuple[dict[str, Any], ...]
    summary: str
    reused: int
    ran: int
    #: The peer library behind each searcher that wraps one, with its version ("optuna 5.1.0").
    versions: Mapping[str, str] = field(default_factory=dict)


def load_problem(name: str) -> Problem:
    """A registered problem, or one given by import path ``package.module:attribute``.

    The attribute is a `Problem` or a callable returning one (a class or a factory).
    """
    if ":" not in name:
        return get_registered(name)
    module_name, _, attr = name.partition(":")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"cannot import problem {name!r}: {exc}") from None
    problem = target() if callable(target) and not isinstance(target, Problem) else target
    for needed in ("space", "min_budget", "max_budget", "evaluate"):
        if not hasattr(problem, needed):
            raise UserError(f"problem {name!r} has no {needed!r}: a problem needs space, "
                            "min_budget, max_budget, optimum and evaluate(config, budget, seed)")
    return problem


def run_budget(text: str, problem: Problem) -> Budget:
    """``30x`` = 30 x the problem's max budget (its own units); else ``300ep``, ``10m``, ...

    Epochs are the training problems' own budget units.
    """
    text = str(text).strip()
    if text.endswith("x"):
        try:
            factor = float(text[:-1])
        except ValueError:
            raise UserError(f"bad budget {text!r}: use e.g. 30x, 300ep, 10m or 50trials"
                            ) from None
        if not 0 < factor < math.inf:
            raise UserError(f"a budget multiple must be positive, got {text!r}")
        return Budget(factor * problem.max_budget, Unit.UNITS)
    budget = Budget.parse(text)
    return Budget(budget.amount, Unit.UNITS) if budget.unit is Unit.EPOCHS else budget


def run_one(spec: RunSpec, folder: str) -> tuple[str, bool]:
    """Run (or resume, or reuse) one benchmark run; its journal path and whether it was reused.

    A top-level function: workers import it by name.
    """
    import nas
    from nas.engine.resuming import finished

    problem = load_problem(spec.problem)
    path = Path(folder) / f"{spec.name}.db"
    if path.exists():
        if finished(path):
            return str(path), True
        nas.resume(path, objective=problem.evaluate, progress=False)
        return str(path), False
    nas.optimize(problem.evaluate, problem.space, spec.searcher,
                 run_budget(spec.budget, problem), min_budget=problem.min_budget,
                 max_budget=problem.max_budget, seed=spec.seed, storage=path, name=spec.name,
                 objectives=getattr(problem, "objectives", None) or None)
    return str(path), False


def bench(
    problems: Sequence[str],
    searchers: Sequence[str],
    *,
    seeds: int | Sequence[int] = 10,
    budget: str = DEFAULT_BUDGET,
    out: str | Path = "bench",
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    on_run: Callable[[RunSpec, bool], None] | None = None,
) -> BenchResult:
    """Run every searcher on every problem for every seed and write results, plots, summary.

    Writes ``results.csv`` / ``results.json`` (one row per evaluation), ``regret-<problem>.png``
    and ``summary.md`` into `out`. With `workers` > 1 (or a Dask `scheduler`) whole runs go to
    worker processes of `executor` (``"local"`` or ``"dask"``).
    """
    import searchers as registry

    if not problems or not searchers:
        raise UserError("name at least one problem and one searcher")
    for s in searchers:
        registry.get_class(s)
    loaded = {p: load_problem(p) for p in problems}
    for p in loaded.values():
        run_budget(budget, p)  # a bad budget is the user's mistake: say so before running
    bench_pareto.check_searchers(loaded, searchers)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list or any(s < 0 for s in seed_list):
        raise UserError("--seeds is a number of seeds >= 1")
    out = Path(out)
    folder = out / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    specs = [RunSpec(p, s, seed, budget) for p in problems for s in searchers
             for seed in seed_list]
    versions = library_versions(searchers)
    reused = _run_all(specs, str(folder), workers, executor, scheduler, on_run)
    rows = collect_rows(specs, folder, loaded)
    annotate_regret(rows, loaded)
    for row in rows:
        row["library"] = versions.get(row["searcher"])
    summary = write_outputs(out, rows, loaded, searchers, budget, versions)
    return BenchResult(out=out, rows=tuple(rows), summary=summary, reused=reused,
                       ran=len(specs) - reused, versions=versions)


def library_versions(searchers: Sequence[str]) -> dict[str, str]:
    """``{searcher: "optuna 5.1.0"}`` for each searcher whose class names, in its `library`
    attribute, the distribution it wraps (an external baseline), as installed now."""
    import searchers as registry

    versions: dict[str, str] = {}
    for name in searchers:
        library = registry.get_class(name).library
        if library:
            try:
                versions[name] = f"{library} {importlib.metadata.version(library)}"
            except importlib.metadata.PackageNotFoundError:  # importable, but not installed
                versions[name] = f"{library} (version unknown)"
    return versions


def _run_all(specs: Sequence[RunSpec], folder: str, workers: int | None, executor: str,
             scheduler: str | None, on_run: Callable[[RunSpec, bool], None] | None) -> int:
    """Run every spec, in this process or on workers; return how many were reused."""
    from nas.executors import make_executor

    reused = 0
    if scheduler is None and (workers is None or workers <= 1):
        for spec in specs:
            _, was_reused = run_one(spec, folder)
            reused += was_reused
            if on_run is not None:
                on_run(spec, was_reused)
        return reused
    pool = make_executor("dask" if scheduler else executor,
                         workers=None if scheduler else workers, scheduler=scheduler)
    try:
        pool.start()
        pending: dict[Future[Any], RunSpec] = {}
        queue = list(specs)
        while queue or pending:
            while queue and len(pending) < pool.workers:
                spec = queue.pop(0)
                pending[pool.submit(run_one, spec, folder)] = spec
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                spec = pending.pop(future)
                _, was_reused = future.result()
                reused += was_reused
                if on_run is not None:
                    on_run(spec, was_reused)
    finally:
        pool.close()
    return reused


def collect_rows(specs: Sequence[RunSpec], folder: Path,
                 problems: Mapping[str, Problem]) -> list[dict[str, Any]]:
    """One row per evaluation, in the order each run told its searcher, with the regret."""
    rows: list[dict[str, Any]] = []
    for spec in specs:
        problem = problems[spec.problem]
        view = JournalView.load(folder / f"{spec.name}.db")
        created = view.created_at
        records = sorted((r for r in view.records if r.result is not None),
                         key=lambda r: r.tell_order)
        spent = 0.0
        for record in records:
            result = record.result
            assert result is not None
            budget = view.budget_of(record)
            # In the problem's own units whatever the run's budget, so runs compare.
            spent += charge(result, Unit.UNITS)
            rows.append({
                "problem": spec.problem, "searcher": spec.searcher, "seed": spec.seed,
                "trial": record.id, "budget": budget,
                "loss": result.loss if math.isfinite(result.loss) else None,
                "status": result.status.value, "spent": spent,
                "seconds": result.seconds,
                "wall": (record.finished_at or created) - created,
                "true_loss": _true_loss(problem, record.trial.config) if result.ok else None,
            })
            rows[-1].update(bench_pareto.row_values(problem, result, record.trial.config))
    return rows


def _true_loss(problem: Problem, config: Mapping[str, Any]) -> float | None:
    try:
        return float(problem.true_loss(config))
    except (NotImplementedError, AttributeError):
        return None


def annotate_regret(rows: Sequence[dict[str, Any]], problems: Mapping[str, Problem]) -> None:
    """Set each row's ``regret``: the incumbent's regret once that evaluation is in (or None)."""
    rows, problems = bench_pareto.annotate(rows, problems)  # the single-objective rest
    state: dict[tuple[str, str, int], tuple[float, float, float]] = {}  # budget, loss, regret
    references = {name: _reference([r for r in rows if r["problem"] == name], problem)
                  for name, problem in problems.items()}
    for row in rows:
        key = (row["problem"], row["searcher"], row["seed"])
        incumbent = state.get(key)
        if row["loss"] is not None and (incumbent is None or incumbent_key(
                row["budget"], row["loss"]) < incumbent_key(incumbent[0], incumbent[1])):
            value = row["true_loss"] if row["true_loss"] is not None else row["loss"]
            state[key] = incumbent = (row["budget"], row["loss"],
                                      value - references[row["problem"]])
        row["regret"] = None if incumbent is None else incumbent[2]


def _curves(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, int], list[tuple[float, float]]]:
    """Per (searcher, seed): (budget spent, regret of the incumbent) after each evaluation."""
    runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for row in rows:
        regret = math.nan if row["regret"] is None else row["regret"]
        runs.setdefault((row["searcher"], row["seed"]), []).append((row["spent"], regret))
    return runs


def _reference(rows: Sequence[dict[str, Any]], problem: Problem) -> float:
    """The loss regret is measured from: the known optimum, else the best seen at max budget."""
    optimum = float(getattr(problem, "optimum", math.nan))
    if math.isfinite(optimum):
        return optimum
    seen = [r["loss"] for r in rows if r["loss"] is not None
            and r["budget"] >= problem.max_budget * (1 - 1e-9)]
    return min(seen) if seen else 0.0


def write_outputs(out: Path, rows: Sequence[dict[str, Any]], problems: Mapping[str, Problem],
                  searchers: Sequence[str], budget: str,
                  versions: Mapping[str, str] | None = None) -> str:
    """Write results.csv/json, a regret plot per problem and summary.md; return the summary
    (which names the peer libraries of `versions`, from `library_versions`)."""
    out.mkdir(parents=True, exist_ok=True)
    fields = ["problem", "searcher", "seed", "trial", "budget", "loss", "status", "spent",
              "seconds", "wall", "true_loss", "regret", "library"]
    fields += bench_pareto.fields(rows)
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    (out / "results.json").write_text(json.dumps(list(rows), indent=0))
    from nas.reporting.plots import plot_regret  # matplotlib only once results are written

    sections = [f"# nas bench: {', '.join(searchers)} on {', '.join(problems)}", "",
                f"Total budget per run: {budget}; seeds per cell: "
                f"{len({r['seed'] for r in rows})}. Regret of the incumbent (one objective: "
                "the best trial at the highest budget so far; several: the front, as each "
                "problem says); lower is better.", ""]
    if versions:
        sections += ["Peer libraries: " + ", ".join(
            f"{name}: {versions[name]}" for name in searchers if name in versions) + ".", ""]
    for name, problem in problems.items():
        mine = [r for r in rows if r["problem"] == name]
        reference = _reference(mine, problem)
        curves = _curves(mine)
        what, against, label = bench_pareto.describe(problem, mine, searchers)
        sections += problem_section(name, problem, mine, curves, searchers, reference,
                                     what=what, against=against or BASELINE)
        plot_regret(out / f"regret-{name.replace(':', '_')}.png", name, problem.max_budget,
                    curves, searchers, what=label)
    text = "\n".join(sections) + "\n"
    (out / "summary.md").write_text(text)
    return text
