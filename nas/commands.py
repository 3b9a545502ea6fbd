"""What each `nas` command does, once `nas.cli` has parsed its arguments."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas.errors import UserError


def _callbacks(args: argparse.Namespace) -> list[Any]:
    """The callbacks the command line asks for (checked before anything slow starts)."""
    if not args.tensorboard:
        return []
    from nas.reporting.tensorboard import TensorBoardLogger

    return [TensorBoardLogger(args.tensorboard)]


def _executor_args(args: argparse.Namespace) -> dict[str, Any]:
    packs = getattr(args, "workers_per_device", None)
    name = args.executor or ("dask" if args.scheduler else "local"
                             if args.workers is not None or packs else "inprocess")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    return {"executor": name, "workers": args.workers, "scheduler": args.scheduler,
            **({"workers_per_device": packs} if packs else {})}


def _overrides(items: Sequence[str]) -> dict[str, Any]:
    from spaces import parse_assignment

    return dict(parse_assignment(item) for item in items)


def search(args: argparse.Namespace) -> int:
    """`nas search`: check the arguments, run the search, print its summary."""
    import spaces
    from nas.budget import Budget, process_started_at
    from nas.engine.api import search
    from searchers import get_class

    # Check everything the user typed before the slow parts (data, torch) start.
    budget = Budget.parse(args.budget)
    trial_budget = "auto" if args.trial_budget == "auto" else Budget.parse(args.trial_budget)
    if args.searcher != "auto":
        get_class(args.searcher)
    overrides = _overrides(args.overrides)
    space: Any = args.space
    if args.space != "auto":
        space = spaces.get(args.space, **overrides)
        overrides = {}
    if args.top < 1:
        raise UserError("--top must be at least 1")
    from nas.constraints import Constraints

    constraints = Constraints.parse(max_params=args.max_params, max_flops=args.max_flops,
                                    max_latency=args.max_latency)
    callbacks = _callbacks(args)
    data_options: dict[str, Any] = {}
    if args.data_root:
        data_options["root"] = args.data_root
    if args.download:
        data_options["download"] = True
    if args.data_seed is not None:
        data_options["seed"] = args.data_seed
    if args.target is not None:
        data_options["target"] = args.target
    if args.image_size is not None:
        data_options["image_size"] = args.image_size
    if args.explain:
        return _explain(args, space, budget, trial_budget, overrides, data_options)
    # By name, so the journal records how to load it again on `nas resume`.
    result = search(
        space, args.data, args.searcher, budget, data_options=data_options,
        space_overrides=overrides,
        searcher_options={**_overrides(args.searcher_options),
                          **({"prior": args.prior} if args.prior else {})},
        trial_budget=trial_budget, seed=args.seed, name=args.name, storage=args.db,
        trainer_options={"device": args.device, "precision": args.precision,
                         "compile": args.compile},
        progress=not args.no_progress, callbacks=callbacks,
        continue_trials=not args.no_continue,
        dedup=not args.no_dedup, max_failures=args.max_failures, ensemble=args.ensemble,
        replicas=_replicas(args.replicas), baselines=not args.no_baselines,
        started_at=process_started_at(), constraints=constraints,
        objectives=args.objectives, enqueue=_enqueued(args.enqueue),
        warm_start=args.warm_start, warm_start_retrain=args.warm_start_retrain,
        **_executor_args(args),
    )
    _print_summary(result.path, args.top)
    return 0


def _enqueued(path: str | None) -> list[Any] | None:
    """The configurations of an `--enqueue` file: a JSON list."""
    if path is None:
        return None
    import json

    try:
        entries = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UserError(f"cannot read --enqueue {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UserError(f"--enqueue {path} is not JSON: {exc}") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UserError(f"--enqueue {path} must hold a JSON list of configurations (objects)")
    return entries


def _replicas(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise UserError(f"--replicas is a number or auto, got {value!r}") from None


def _explain(args: argparse.Namespace, space: Any, budget: Any, trial_budget: Any,
             overrides: dict[str, Any], data_options: dict[str, Any]) -> int:
    """Print what a search with these arguments would choose for each "auto", and why."""
    from nas.data import load
    from nas.defaults import baseline_seconds, resolve
    from nas.executors.threads import planning_threads
    from nas.trainer import resolve_device

    device = resolve_device(args.device)
    data = load(args.data, **data_options)
    # The timing runs at the threads the search would choose, as the search's own does.
    with planning_threads(device.type) as threads:
        chosen = resolve(space, data, args.searcher, budget, trial_budget,
                         _overrides(args.searcher_options), device=str(device),
                         space_overrides=overrides,
                         reserve=0.0 if args.no_baselines else baseline_seconds(budget))
    print(f"data    {data}")
    if threads is not None:
        print(f"threads {threads.reason}")
    if chosen.plan is None:
        print("nothing is automatic: --space, --searcher and --trial-budget were all given")
        return 0
    auto = {"space": args.space, "searcher": args.searcher, "trials": args.trial_budget,
            "replicas": args.replicas if args.searcher == "auto" else None,
            "sizes": args.trial_budget, "warning": "auto"}
    for line in chosen.plan.reasons:
        key = line.split()[0]
        if auto.get(key) == "auto":
            print(line)
    print(f"budget  {chosen.budget}, wall clock from the start: loading, timing, plain "
          "baselines, trials and the final scoring" if budget.unit.value == "s"
          else f"budget  {chosen.budget}")
    return 0


def _print_summary(path: Path, top: int, *, full: bool = False) -> None:
    from nas.journal import JournalView
    from nas.reporting.console import summary_text

    print(summary_text(JournalView.load(path), k=top, full=full))


def resume(args: argparse.Namespace) -> int:
    """`nas resume`: continue a stopped search from its journal, print its summary."""
    from nas.engine.resuming import finished, resume

    callbacks = _callbacks(args)
    if args.repair:
        from nas.repair import repair

        for note in repair(args.db) or ["nothing to repair"]:
            print(f"repair   {note}")
    if finished(args.db) and not args.space_update and args.budget is None:
        print(f"{args.db} has finished already; nothing to resume (a larger --budget goes on)")
    else:
        resume(args.db, progress=not args.no_progress, callbacks=callbacks,
               data_root=args.data_root, download=args.download,
               space_update=args.space_update, budget=args.budget, **_executor_args(args))
    _print_summary(Path(args.db), args.top)
    return 0


#: What `nas bench` compares when only one of --problems and --searchers is given.
BENCH_PROBLEMS = "counting-ones,mf-branin,mf-hartmann6,digits-mlp"
BENCH_SEARCHERS = "random,tpe,hyperband,bohb,asha"


def bench(args: argparse.Namespace) -> int:
    """`nas bench`: compare searchers on problems over seeds."""
    import time

    from nas.bench import bench
    if args.problems is None and args.searchers is None:
        # Hundreds of runs are not what a bare command should start.
        raise UserError("name what to compare: --problems P1,P2 and/or --searchers S1,S2 (the "
                        f"reference comparison: --problems {BENCH_PROBLEMS} --searchers "
                        f"{BENCH_SEARCHERS})")
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    start = time.monotonic()
    done = [0]

    def progress(spec: Any, reused: bool) -> None:
        done[0] += 1
        print(f"[{done[0]}] {spec.name}{' (reused)' if reused else ''} "
              f"{time.monotonic() - start:.0f}s", file=sys.stderr, flush=True)

    result = bench(_names(args.problems or BENCH_PROBLEMS),
                   _names(args.searchers or BENCH_SEARCHERS), seeds=args.seeds,
                   budget=args.budget, out=args.out, workers=args.workers,
                   executor=args.executor, scheduler=args.scheduler, on_run=progress)
    print(result.summary)
    print(f"{result.ran} runs done, {result.reused} reused, in {time.monotonic() - start:.0f}s;"
          f" results in {result.out}/ (summary.md, results.csv, regret-*.png)")
    return 0


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def report(args: argparse.Namespace) -> int:
    """`nas report`: write the HTML report and its plots."""
    from nas.reporting.html import write_report

    if args.top < 1:
        raise UserError("--top must be at least 1")
    print(write_report(args.db, args.out, top_k=args.top))
    return 0


def show(args: argparse.Namespace) -> int:
    """`nas show`: summary and top trials of a finished or running search, and its Pareto
    front (asked for, or of a multi-objective search's own objectives)."""
    from nas.journal import JournalView
    from nas.pareto import front_of

    view = JournalView.load(args.db)
    if args.format != "text":
        from nas.reporting.tables import trials_csv, trials_json

        print(trials_json(view) if args.format == "json" else trials_csv(view), end="")
        return 0
    searched = view.settings.objectives
    shown = None
    if args.pareto is not None or searched:
        shown = front_of(view.records, searched,
                         args.pareto.split(",") if args.pareto else None)
    _print_summary(Path(args.db), args.top, full=args.full)
    if shown is not None:
        from nas.reporting.console import front_table

        names, points = shown
        print(f"\npareto   {len(points)} trials on the front of {', '.join(names)}")
        print(front_table(points, names))
    return 0


def export(args: argparse.Namespace) -> int:
    """`nas export`: write the best model to one file."""
    from nas.export import export
    from nas.journal import JournalView

    won = getattr(JournalView.load(args.db).summary, "baseline_won", None)
    if won is not None and args.trial is None and args.pareto_index is None:
        print(f"note: the plain {won['name']} baseline beat this search on validation and is "
              "what it returns (SearchResult.load_final_model); the file holds the search's "
              "own final model", file=sys.stderr)
    out = export(args.db, args.output, trial=args.trial, pareto_index=args.pareto_index)
    print(f"wrote {out}  (load it with: spaces.load_model({str(out)!r}))")
    return 0


def spaces(args: argparse.Namespace) -> int:
    """`nas spaces`: list the spaces, or print one (narrowed, or as JSON)."""
    import json

    import spaces

    if args.auto:
        if args.data is None or args.name is not None:
            raise UserError("nas spaces --auto needs --data D and no space name: it prints the "
                            "space a default search of D chooses")
        from nas.data import load
        from nas.defaults import default_space

        name, space, why = default_space(load(args.data), _overrides(args.overrides))
        print(f"{why}\n(a time budget may narrow the model sizes further once the default "
              "model is timed: `nas search ... --explain` shows the final plan)\n")
    elif args.name is None:
        for name, doc in spaces.available().items():
            print(f"{name:<16} {doc}")
        return 0
    else:
        space = spaces.get(args.name, **_overrides(args.overrides))
    if args.json:
        print(json.dumps(spaces.space_to_json(space), indent=2))
    else:
        print(spaces.describe(space))
    return 0


def searchers(args: argparse.Namespace) -> int:
    """`nas searchers`: list the search algorithms, plugins included."""
    import searchers
    from searchers.registry import ignored_plugins, plugins

    names = searchers.available()
    width = max(map(len, names))
    dists = {p.name: p.dist for p in plugins()}
    for name in names:
        origin = f" (plugin: {dists[name]})" if name in dists else ""
        try:
            cls = searchers.get_class(name)
        except UserError as exc:  # a broken plugin: say why, and list the others
            print(f"{name:<{width}}  {'unusable':<22}  {exc}")
            continue
        doc = ((cls.__doc__ or "").strip().splitlines() or [""])[0]
        kind = ("multi-fidelity" if cls.multi_fidelity else "full budget") + \
            (", model" if cls.model_based else "")
        print(f"{name:<{width}}  {kind:<22}  {doc}{origin}")
    for plugin in ignored_plugins():
        print(f"nas: warning: {plugin.error}", file=sys.stderr)
    return 0


def datasets(args: argparse.Namespace) -> int:
    """`nas datasets`: list the built-in datasets, and the files and folders read as data."""
    from nas.data import describe

    for name, doc in describe().items():
        print(f"{name:<14} {doc}")
    print("\nor a path (--data PATH): a .npz file of arrays x, y (optional x_test, y_test); a "
          ".csv file with --target COLUMN; a folder with one sub-folder of PNG/JPEG images per "
          "class (--image-size N or HxW to resize)")
    return 0
