"""The `nas` command: search, show, report, export, spaces, searchers, datasets."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from nas import commands
from nas.errors import ObjectiveError, UserError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nas` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(_join_values(list(sys.argv[1:] if argv is None else argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # `nas show ... | head` closed the pipe: what was read is all that was wanted.
        _quiet_stdout()
        return 0
    except UserError as exc:
        print(f"nas: error: {exc}", file=sys.stderr)
        return 2
    except ObjectiveError as exc:
        # The traceback is in the journal (`nas show --format json`); one line here.
        print(f"nas: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        path = getattr(exc, "path", None)
        where = f" in {path}; resume with: nas resume {path}" if path else " in the journal"
        print(f"\nnas: interrupted; finished trials are kept{where}", file=sys.stderr)
        return 130


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit cannot fail on a closed pipe."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"nas {version('nas-engine')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "nas (not installed)"


def run() -> None:
    """The `nas` console script: `main`, then exit without collecting every object first
    (with torch and scikit-learn loaded that takes seconds, and a time budget counts them)."""
    import gc

    code = main()
    gc.freeze()  # exit handlers still run; the collector just skips what exists now
    sys.exit(code)


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
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(metavar="COMMAND")

    p = sub.add_parser("search", help="run a search", description=(
        "Search a space for the best model on a dataset within a total budget. "
        "Every trial is journaled to an SQLite file (default runs/<name>.db)."))
    p.add_argument("--space", default="auto",
                   help="search space (see `nas spaces`); auto: from the data's shape")
    p.add_argument("--data", required=True,
                   help="dataset (see `nas datasets`, e.g. digits), or a path: a .npz file, a "
                        ".csv file (with --target) or a folder with one sub-folder of images "
                        "per class")
    p.add_argument("--target", metavar="COLUMN",
                   help="CSV data: the column of class labels (the other columns are features)")
    p.add_argument("--image-size", metavar="N|HxW",
                   help="image folder: resize every image to N x N or H x W pixels (needed when "
                        "the images differ in size)")
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
    p.add_argument("--enqueue", metavar="FILE",
                   help="a JSON list of configurations to train first, in order (each a dict "
                        "of hyperparameters, the rest at their defaults, or {\"config\": {...}, "
                        "\"budget\": 3}); journaled like any trial")
    p.add_argument("--prior", metavar="default|FILE",
                   help="favour preferred values early, less as results come in: 'default' (the "
                        "space's defaults) or a JSON file of values, e.g. {\"lr\": 0.01} or "
                        "{\"values\": {...}, \"confidence\": \"high\"}")
    p.add_argument("--warm-start", metavar="DB", action="append", default=[],
                   help="journal of an earlier search (repeatable): its trials that fit this "
                        "space are told to the searcher first, never trained or charged")
    p.add_argument("--warm-start-retrain", metavar="K", type=int, default=0,
                   help="train the best K imported configurations first, at the full budget "
                        "(only trials trained here can be the result)")
    p.add_argument("--objectives", metavar="NAMES",
                   help="search the Pareto front of several objectives, all minimised: "
                        "val_error and any of params, flops, latency, e.g. val_error,params "
                        "(`nas show` prints the front; the result is its most accurate model)")
    p.add_argument("--max-params", metavar="N",
                   help="limit on a model's parameters, e.g. 50k or 1.5M: larger "
                        "configurations are turned away before training, charged nothing")
    p.add_argument("--max-flops", metavar="N",
                   help="limit on a model's forward FLOPs per sample, e.g. 10M (checked "
                        "before training, like --max-params)")
    p.add_argument("--max-latency", metavar="TIME",
                   help="limit on a trained model's latency: the median forward time of one "
                        "batch (the training batch size) on the search's device, e.g. 2ms")
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
    p.add_argument("--no-baselines", action="store_true",
                   help="fit no plain baselines (logistic regression, RBF SVM, k-NN) beside "
                        "the search")
    _executor_options(p)
    p.add_argument("--data-root", help="folder of torchvision datasets")
    p.add_argument("--download", action="store_true",
                   help="download torchvision datasets if missing (needs internet)")
    p.add_argument("--data-seed", type=int, default=None,
                   help="seed of a built-in dataset's train/validation/test split (default 0: "
                        "the same split whatever --seed is)")
    p.add_argument("--top", type=_at_least_one, default=5,
                   help="rows of the final table (default 5)")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    _tensorboard_option(p)
    p.set_defaults(func=commands.search)

    p = sub.add_parser("resume", help="continue a search that was stopped or killed",
                       description="Continue a search from its journal: finished trials are "
                                   "kept, the searcher is rebuilt by replay, trials that were "
                                   "running are run again.")
    p.add_argument("db", help="journal written by `nas search`")
    _executor_options(p)
    p.add_argument("--repair", action="store_true",
                   help="first drop what the journal holds that cannot be trusted (unreadable "
                        "trial rows, missing or damaged checkpoints); those trials run again")
    p.add_argument("--budget", metavar="TOTAL",
                   help="a larger total budget (same unit: 20m, 600ep, 80trials): goes on "
                        "with a finished or stopped search")
    p.add_argument("--space-update", dest="space_update", action="append", default=[],
                   metavar="NAME=VALUE",
                   help="change the space before going on (repeatable): width=16:512 (a "
                        "range), optimizer=adam,sgd (choices), ops+=sep_conv5x5 / ops-=none "
                        "(choices added or removed; ops: every cell edge); the searcher is "
                        "rebuilt on it and shown every earlier trial that fits")
    p.add_argument("--data-root", help="folder of torchvision datasets (never read from the "
                   "journal)")
    p.add_argument("--download", action="store_true",
                   help="download torchvision datasets if missing (needs internet)")
    p.add_argument("--top", type=_at_least_one, default=5,
                   help="rows of the final table (default 5)")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    _tensorboard_option(p)
    p.set_defaults(func=commands.resume)

    p = sub.add_parser("show", help="summary and top trials of a search",
                       description="Summarise a finished or running search.")
    p.add_argument("db", help="journal written by `nas search`")
    p.add_argument("--top", type=_at_least_one, default=5,
                   help="rows of the table (default 5)")
    p.add_argument("--full", action="store_true",
                   help="print each configuration whole (they are cut to one line otherwise)")
    p.add_argument("--format", choices=["text", "json", "csv"], default="text",
                   help="text (default); json: the search and every trial; csv: one row per "
                        "trial (the full configuration in columns)")
    p.add_argument("--pareto", nargs="?", const="", metavar="OBJECTIVES",
                   help="also print the Pareto front of these objectives, all minimised "
                        "(val_error, params, flops, latency; default: the search's own "
                        "objectives, else val_error,params); a multi-objective search "
                        "prints its front without it")
    p.set_defaults(func=commands.show)

    p = sub.add_parser("report", help="write an HTML report with plots",
                       description="Write PNG plots and one self-contained report.html (no "
                                   "server needed): best loss vs budget spent, every trial's "
                                   "loss vs its budget, budget per rung and bracket, the top "
                                   "configurations and hyperparameter importance.")
    p.add_argument("db", help="journal written by `nas search`, `nas.optimize` or `nas bench`")
    p.add_argument("-o", "--out", default="report", help="output folder (default report)")
    p.add_argument("--top", type=_at_least_one, default=10,
                   help="rows of the top table (default 10)")
    p.set_defaults(func=commands.report)

    p = sub.add_parser("export", help="write the search's final model to a file",
                       description="Write the search's final model (its ensemble of the best "
                                   "trials when it chose one, else its best trial: weights, "
                                   "configs, space, input shape) to a file that "
                                   "`spaces.load_model` loads in a fresh process.")
    p.add_argument("db", help="journal written by `nas search`")
    p.add_argument("-o", "--output", default="best.pt", help="output file (default best.pt)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, metavar="N",
                       help="export trial N alone instead of the final model (its "
                            "checkpoint must have been kept)")
    which.add_argument("--pareto-index", type=int, metavar="K",
                       help="export the K-th point of the front of validation error and "
                            "parameters (`nas show --pareto`; 0: the most accurate)")
    p.set_defaults(func=commands.export)

    p = sub.add_parser("spaces", help="list spaces, or print one",
                       description="List the search spaces, or print one (with overrides).")
    p.add_argument("name", nargs="?", help="space to print")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="narrow the space before printing it")
    p.add_argument("--json", action="store_true", help="print ConfigSpace JSON")
    p.add_argument("--auto", action="store_true",
                   help="print the space a default search of --data searches (what `--space "
                        "auto` chooses from the data's shape, with its augmentation and "
                        "channel range)")
    p.add_argument("--data", help="dataset or path for --auto (see `nas datasets`)")
    p.set_defaults(func=commands.spaces)

    p = sub.add_parser("bench", help="compare searchers on problems over seeds",
                       description="Run every searcher on every problem for every seed under "
                                   "the same total budget; write results.csv/json, a regret "
                                   "plot per problem and summary.md (median and IQR regret, "
                                   "mean rank, budget to target, Wilcoxon vs random). Finished "
                                   "runs are reused, interrupted ones resumed.")
    p.add_argument("--problems", help="comma-separated problem names or module:attribute "
                   f"import paths (with --searchers alone: {commands.BENCH_PROBLEMS})")
    p.add_argument("--searchers", help="comma-separated searchers (see `nas searchers`; with "
                   f"--problems alone: {commands.BENCH_SEARCHERS})")
    p.add_argument("--seeds", type=int, default=10, help="seeds per problem and searcher")
    p.add_argument("--budget", default="30x",
                   help="total per run: 30x = 30 x the problem's max budget, or 300ep, 10m")
    p.add_argument("-o", "--out", default="bench", help="output folder (default bench)")
    p.add_argument("--workers", type=int, default=1, help="runs at once (worker processes)")
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="where runs go with --workers > 1 (default local processes)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask cluster")
    p.set_defaults(func=commands.bench)

    p = sub.add_parser("searchers", help="list search algorithms")
    p.set_defaults(func=commands.searchers)
    p = sub.add_parser("datasets", help="list built-in datasets (a path works too)")
    p.set_defaults(func=commands.datasets)
    return parser


def _executor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=["inprocess", "local", "dask"], default=None,
                   help="where trials run: this process (default), local worker processes, "
                        "or a Dask cluster")
    p.add_argument("--workers", type=int, help="worker processes (local: default one per GPU, "
                   "else one per core; dask: size of a local cluster)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler of a running cluster, e.g. tcp://host:8786")
    p.add_argument("--workers-per-device", metavar="N|auto", default=None,
                   help="trials at once per GPU, each started when its estimated memory fits "
                        "(auto: as many as fit); local workers")


def _at_least_one(text: str) -> int:
    """A count of rows: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _tensorboard_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tensorboard", metavar="DIR",
                   help="also log each trial's learning curve to TensorBoard under DIR "
                        "(needs: pip install 'nas-engine[tensorboard]')")


if __name__ == "__main__":
    sys.exit(main())
