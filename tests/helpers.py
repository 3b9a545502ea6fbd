"""Small builders shared by tests."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from nas.data import Dataset
from nas.data.arrays import from_arrays


def blobs(n: int = 300, d: int = 8, classes: int = 3, seed: int = 0) -> Dataset:
    """A tiny learnable dataset: gaussian class clusters, already standardised."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, d, generator=g) * 2.0

    def split(m: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, classes, (m,), generator=g)
        return centers[y] + torch.randn(m, d, generator=g), y

    (xt, yt), (xv, yv), (xs, ys) = split(n), split(n // 3), split(n // 3)
    return Dataset(name="blobs", x_train=xt, y_train=yt, x_val=xv, y_val=yv, x_test=xs,
                   y_test=ys, input_shape=(d,), num_classes=classes,
                   mean=torch.zeros(d), std=torch.ones(d))


def shifted_images(*, block: int, shift: int, noise: float, n: int = 600, side: int = 16,
                   classes: int = 4, seed: int = 0) -> Dataset:
    """Noisy class templates of `block`-pixel squares, each sample rolled by up to `shift`."""
    rng = np.random.default_rng(seed)
    blocks = rng.normal(size=(classes, side // block, side // block))
    templates = blocks.repeat(block, 1).repeat(block, 2)
    y = np.arange(n) % classes
    shifts = rng.integers(-shift, shift + 1, (n, 2))
    x = np.stack([np.roll(templates[c], tuple(s), axis=(0, 1))
                  for c, s in zip(y, shifts, strict=True)])
    x = x + rng.normal(0, noise, x.shape)
    return from_arrays(x[:, None].astype(np.float32), y)


# -- objectives that run in worker processes (module level: workers import them by name) -------

def quadratic(config: dict, budget: float) -> float:
    """A cheap deterministic objective over a space with float `x` (and optional `y`)."""
    return (config["x"] - 0.3) ** 2 + 0.1 * config.get("y", 0.0) + 1.0 / budget


def slow_quadratic(config: dict, budget: float) -> float:
    """`quadratic`, taking 20 ms per unit of budget like a (very) small training run."""
    import time

    time.sleep(0.02 * budget)
    return quadratic(config, budget)


def kill_worker_for_small_x(config: dict, budget: float) -> float:
    """Kills its own process whenever x < 0.25; once only if NAS_TEST_KILL_ONCE names a file.

    Stands for a worker lost mid-trial (OOM killer, preempted node, crash in native code).
    """
    import signal

    if config["x"] < 0.25:
        marker = os.environ.get("NAS_TEST_KILL_ONCE")
        if marker is None:
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            pass  # killed once already: this attempt runs
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    return quadratic(config, budget)


def pid_and_threads(shared: object, x: int) -> tuple[int, int, int, int]:
    """Which process ran the task, its torch threads, the shared value's id there, and x."""
    return os.getpid(), torch.get_num_threads(), id(shared), x


def kill_self(shared: object) -> None:
    """Kill the worker process running this task."""
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def toy_problem() -> object:
    """A user's own benchmark problem, given to `nas bench` by import path."""
    from ConfigSpace import ConfigurationSpace, Float

    from nas.problems import Problem

    def space() -> ConfigurationSpace:
        s = ConfigurationSpace(name="toy")
        s.add([Float("x", (0.0, 1.0))])
        return s

    return Problem(name="toy", description="(x - 0.3)^2 + 1/budget", min_budget=1.0,
                   max_budget=9.0, budget_unit="u", optimum=1 / 9,
                   _space=space, _evaluate=_toy_evaluate,
                   _true_loss=lambda c: (c["x"] - 0.3) ** 2 + 1 / 9)


def _toy_evaluate(config: dict, budget: float, seed: int) -> float:
    return (config["x"] - 0.3) ** 2 + 1.0 / budget


def one_line_error(capsys: Any, argv: list[str]) -> str:
    """Run the CLI on `argv`: it must exit 2 with exactly one line on stderr; that line."""
    from nas.cli import main

    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def unavailable_message(monkeypatch: Any, name: str) -> str:
    """With `name`'s lazy registry entry made to require a module that does not exist: assert
    that `searchers.available()` leaves it out, and return `get_class`'s one-line error."""
    import dataclasses

    import pytest

    import searchers
    from nas.errors import UserError
    from searchers import registry

    missing = dataclasses.replace(registry._LAZY[name], requires="nas_no_such_module")
    monkeypatch.setitem(registry._LAZY, name, missing)
    assert name not in searchers.available()
    with pytest.raises(UserError) as info:
        searchers.get_class(name)
    return str(info.value)


# -- a search killed with SIGKILL from outside ----------------------------------------------------

def ok_trials(db: Any) -> int:
    """Trials journaled ok in `db` so far (0 while the journal or its schema does not exist)."""
    import sqlite3
    from pathlib import Path

    if not Path(db).exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT count(*) FROM trials WHERE status = 'ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def kill_after(code: str, args: list[str], db: Any, n_ok: int) -> Any:
    """Run Python `code` (with `args`) in a fresh process of this checkout, one thread, and
    SIGKILL it once its journal `db` holds `n_ok` ok trials; the finished process."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=root,
                            env={"OMP_NUM_THREADS": "1", "PATH": "", "PYTHONPATH": str(root)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while ok_trials(db) < n_ok:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the search did not get going"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return proc
