"""The `nas` command: search, show, report, export, spaces, searchers, datasets."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from nas.errors import UserError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nas` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(_join_values(list(sys.argv[1:] if argv is None else argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"nas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        path = getattr(exc, "path", None)
        where = f" in {path}; resume with: nas resume {path}" if path else " in the journal"
        print(f"\nnas: interrupted; finished trials are kept{where}", file=sys.stderr)
        return 130


# Options whose values may start with "-" ("-5m", "-1"): argparse would take them for options.
_VALUED = ("--budget", "--trial-budget", "--seed", "--replicas")


def _join_values(argv: list[str]) -> list[str]:
    """``--budget -5m`` -> ``--budget=-5m``, so the value reaches its own check."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in _VALUED and i + 1 < len(argv) and argv[i + 1].startswith("-") \
                and not argv[i + 1].startswith("--"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake on the command line is one line, like every other user error."""

    def error(self, message: str) -> NoReturn:
        """Print one line and exit 2."""
        self.exit(2, f"nas: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nas", description="Neural architecture search for PyTorch.",
    )
    sub = parser.add_subparsers(metavar="COMMAND")

    p = sub.add_parser("search", help="run a search", description=(
        "Search a space for the best model on a dataset within a total budget. "
        "Every trial is journaled to an SQLite file (default runs/<name>.db)."))
    p.add_argument("--space", default="auto",
                   help="search space (see `nas spaces`); auto: from the data's shape")
    p.add_argument("--data", default="digits", help="dataset (see `nas datasets`)")
    p.add_argument("--searcher", default="auto",
                   help="search algorithm (see `nas searchers`); auto: bohb")
    p.add_argument("--budget", default="10m",
                   help="total budget: 300ep, 90s, 10m, 1h or 50trials (default 10m)")
    p.add_argument("--trial-budget", default="auto",
                   help="what one full candidate trains for: epochs or seconds; auto: from the "
                        "budget and the data size")
    p.add_argument("--ensemble", type=int, default=10, metavar="K",
                   help="keep the K best trials and build a greedy ensemble of them on the "
                        "validation split at the end (0: none; default 10)")
    p.add_argument("--replicas", default="auto", metavar="N",
                   help="train the best full-budget configuration N more times with new seeds "
                        "at the end, for the ensemble; auto: 2 with the default searcher, else 0")
    p.add_argument("--explain", action="store_true",
                   help="print what the defaults (auto) choose and why, then stop")
    p.add_argument("--option", dest="searcher_options", action="append", default=[],
                   metavar="KEY=VALUE", help="searcher setting, e.g. eta=2 or min_budget=3")
    p.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    p.add_argument("--name", help="search name (default <space>-<data>-<searcher>-<time>)")
    p.add_argument("--db", help="journal path (default runs/<name>.db)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="narrow the space: width=32:256, optimizer=adam,adamw, n_blocks=2")
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:N")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32"],
                   help="auto: bf16 autocast on CUDA, fp32 elsewhere (default auto)")
    p.add_argument("--compile", action="store_true", help="torch.compile each candidate")
    p.add_argument("--no-continue", action="store_true",
                   help="promoted trials retrain from scratch instead of continuing their parent")
    p.add_argument("--max-failures", type=int, default=10,
                   help="stop after this many failed trials in a row (default 10)")
    p.add_argument("--no-dedup", action="store_true",
                   help="retrain candidates whose architecture was already trained at the budget")
    _executor_options(p)
    p.add_argument("--data-root", help="folder of torchvision datasets")
    p.add_argument("--download", action="store_true",
                   help="download torchvision datasets if missing (needs internet)")
    p.add_argument("--data-seed", type=int, default=None,
                   help="seed of a built-in dataset's train/validation/test split (default 0: "
                        "the same split whatever --seed is)")
    p.add_argument("--top", type=int, default=5, help="rows of the final table (default 5)")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    _tensorboard_option(p)
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("resume", help="continue a search that was stopped or killed",
                       description="Continue a search from its journal: finished trials are "
                                   "kept, the searcher is rebuilt by replay, trials that were "
                                   "running are run again.")
    p.add_argument("db", help="journal written by `nas search`")
    _executor_options(p)
    p.add_argument("--top", type=int, default=5, help="rows of the final table (default 5)")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    _tensorboard_option(p)
    p.set_defaults(func=_cmd_resume)

    p = sub.add_parser("show", help="summary and top trials of a search",
                       description="Summarise a finished or running search.")
    p.add_argument("db", help="journal written by `nas search`")
    p.add_argument("--top", type=int, default=5, help="rows of the table (default 5)")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("report", help="write an HTML report with plots",
                       description="Write PNG plots and one self-contained report.html (no "
                                   "server needed): best loss vs budget spent, every trial's "
                                   "loss vs its budget, budget per rung and bracket, the top "
                                   "configurations and hyperparameter importance.")
    p.add_argument("db", help="journal written by `nas search`, `nas.optimize` or `nas bench`")
    p.add_argument("-o", "--out", default="report", help="output folder (default report)")
    p.add_argument("--top", type=int, default=10, help="rows of the top table (default 10)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("export", help="write the best model to a file",
                       description="Write the best model (weights, config, space) to a file "
                                   "that `spaces.load_model` loads in a fresh process.")
    p.add_argument("db", help="journal written by `nas search`")
    p.add_argument("-o", "--output", default="best.pt", help="output file (default best.pt)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("spaces", help="list spaces, or print one",
                       description="List the search spaces, or print one (with overrides).")
    p.add_argument("name", nargs="?", help="space to print")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="narrow the space before printing it")
    p.add_argument("--json", action="store_true", help="print ConfigSpace JSON")
    p.set_defaults(func=_cmd_spaces)

    p = sub.add_parser("bench", help="compare searchers on problems over seeds",
                       description="Run every searcher on every problem for every seed under "
                                   "the same total budget; write results.csv/json, a regret "
                                   "plot per problem and summary.md (median and IQR regret, "
                                   "mean rank, budget to target, Wilcoxon vs random). Finished "
                                   "runs are reused, interrupted ones resumed.")
    p.add_argument("--problems", default="counting-ones,mf-branin,mf-hartmann6,digits-mlp",
                   help="comma-separated problem names or module:attribute import paths")
    p.add_argument("--searchers", default="random,tpe,hyperband,bohb,asha",
                   help="comma-separated searchers (see `nas searchers`)")
    p.add_argument("--seeds", type=int, default=10, help="seeds per problem and searcher")
    p.add_argument("--budget", default="30x",
                   help="total per run: 30x = 30 x the problem's max budget, or 300ep, 10m")
    p.add_argument("-o", "--out", default="bench", help="output folder (default bench)")
    p.add_argument("--workers", type=int, default=1, help="runs at once (worker processes)")
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="where runs go with --workers > 1 (default local processes)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask cluster")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("searchers", help="list search algorithms")
    p.set_defaults(func=_cmd_searchers)
    p = sub.add_parser("datasets", help="list built-in datasets")
    p.set_defaults(func=_cmd_datasets)
    return parser


def _executor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=["inprocess", "local", "dask"], default=None,
                   help="where trials run: this process (default), local worker processes, "
                        "or a Dask cluster")
    p.add_argument("--workers", type=int, help="worker processes (local: default one per GPU, "
                   "else one per core; dask: size of a local cluster)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler of a running cluster, e.g. tcp://host:8786")


def _tensorboard_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tensorboard", metavar="DIR",
                   help="also log each trial's learning curve to TensorBoard under DIR "
                        "(needs: pip install 'nas-engine[tensorboard]')")


def _callbacks(args: argparse.Namespace) -> list[Any]:
    """The callbacks the command line asks for (checked before anything slow starts)."""
    if not args.tensorboard:
        return []
    from nas.tensorboard import TensorBoardLogger

    return [TensorBoardLogger(args.tensorboard)]


def _executor_args(args: argparse.Namespace) -> dict[str, Any]:
    name = args.executor or ("dask" if args.scheduler else
                             "local" if args.workers is not None else "inprocess")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    return {"executor": name, "workers": args.workers, "scheduler": args.scheduler}


def _overrides(items: Sequence[str]) -> dict[str, Any]:
    from spaces import parse_assignment

    return dict(parse_assignment(item) for item in items)


def _cmd_search(args: argparse.Namespace) -> int:
    import spaces
    from nas.budget import Budget
    from nas.runner import search
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
    callbacks = _callbacks(args)
    data_options: dict[str, Any] = {}
    if args.data_root:
        data_options["root"] = args.data_root
    if args.download:
        data_options["download"] = True
    if args.data_seed is not None:
        data_options["seed"] = args.data_seed
    if args.explain:
        return _explain(args, space, budget, trial_budget, overrides, data_options)
    # By name, so the journal records how to load it again on `nas resume`.
    result = search(
        space, args.data, args.searcher, budget, data_options=data_options,
        space_overrides=overrides,
        searcher_options=_overrides(args.searcher_options),
        trial_budget=trial_budget, seed=args.seed, name=args.name, storage=args.db,
        trainer_options={"device": args.device, "precision": args.precision,
                         "compile": args.compile},
        progress=not args.no_progress, callbacks=callbacks,
        continue_trials=not args.no_continue,
        dedup=not args.no_dedup, max_failures=args.max_failures, ensemble=args.ensemble,
        replicas=_replicas(args.replicas),
        **_executor_args(args),
    )
    _print_summary(result.path, args.top)
    return 0


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
    from nas.defaults import resolve
    from nas.trainer import resolve_device

    device = resolve_device(args.device)
    data = load(args.data, **data_options)
    chosen = resolve(space, data, args.searcher, budget, trial_budget,
                     _overrides(args.searcher_options), device=str(device),
                     space_overrides=overrides)
    print(f"data    {data}")
    if chosen.plan is None:
        print("nothing is automatic: --space, --searcher and --trial-budget were all given")
        return 0
    auto = {"space": args.space, "searcher": args.searcher, "trials": args.trial_budget,
            "replicas": args.replicas if args.searcher == "auto" else None}
    for line in chosen.plan.reasons:
        key = line.split()[0]
        if auto.get(key) == "auto":
            print(line)
    print(f"budget  {chosen.budget} for the search"
          + ("" if chosen.budget == budget else f" ({budget} less the timed probe epochs)"))
    return 0


def _print_summary(path: Path, top: int) -> None:
    from nas.report import summary_text
    from nas.storage import Storage

    with Storage.open(path) as store:
        print(summary_text(path, store.settings, store.trials(),
                           state=store.meta("state", "unknown"), spent=store.meta("spent"),
                           summary=store.meta("summary"), k=top))


def _cmd_resume(args: argparse.Namespace) -> int:
    from nas.runner import resume
    from nas.storage import Storage

    callbacks = _callbacks(args)
    with Storage.open(args.db) as store:
        finished = store.meta("state") == "finished"
    if finished:
        print(f"{args.db} has finished already; nothing to resume")
    else:
        resume(args.db, progress=not args.no_progress, callbacks=callbacks,
               **_executor_args(args))
    _print_summary(Path(args.db), args.top)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import time

    from nas.bench import bench

    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    start = time.monotonic()
    done = [0]

    def progress(spec: Any, reused: bool) -> None:
        done[0] += 1
        print(f"[{done[0]}] {spec.name}{' (reused)' if reused else ''} "
              f"{time.monotonic() - start:.0f}s", file=sys.stderr, flush=True)

    result = bench(_names(args.problems), _names(args.searchers), seeds=args.seeds,
                   budget=args.budget, out=args.out, workers=args.workers,
                   executor=args.executor, scheduler=args.scheduler, on_run=progress)
    print(result.summary)
    print(f"{result.ran} runs done, {result.reused} reused, in {time.monotonic() - start:.0f}s;"
          f" results in {result.out}/ (summary.md, results.csv, regret-*.png)")
    return 0


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _cmd_report(args: argparse.Namespace) -> int:
    from nas.html_report import write_report

    if args.top < 1:
        raise UserError("--top must be at least 1")
    print(write_report(args.db, args.out, top_k=args.top))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    _print_summary(Path(args.db), args.top)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from nas.export import export

    out = export(args.db, args.output)
    print(f"wrote {out}  (load it with: spaces.load_model({str(out)!r}))")
    return 0


def _cmd_spaces(args: argparse.Namespace) -> int:
    import json

    import spaces

    if args.name is None:
        for name, doc in spaces.available().items():
            print(f"{name:<16} {doc}")
        return 0
    space = spaces.get(args.name, **_overrides(args.overrides))
    if args.json:
        print(json.dumps(spaces.space_to_json(space), indent=2))
    else:
        print(spaces.describe(space))
    return 0


def _cmd_searchers(args: argparse.Namespace) -> int:
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
            print(f"{name:<{width}} {'unusable':<22} {exc}")
            continue
        doc = ((cls.__doc__ or "").strip().splitlines() or [""])[0]
        kind = ("multi-fidelity" if cls.multi_fidelity else "full budget") + \
            (", model" if cls.model_based else "")
        print(f"{name:<{width}} {kind:<22} {doc}{origin}")
    for plugin in ignored_plugins():
        print(f"nas: warning: {plugin.error}", file=sys.stderr)
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from nas.data import describe

    for name, doc in describe().items():
        print(f"{name:<14} {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
