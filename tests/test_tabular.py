"""The tabular NAS benchmarks: recorded learning curves, nearest-neighbour answers, regret."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ConfigSpace import Categorical, ConfigurationSpace, EqualsCondition, Float

from nas import problems
from nas.problems.tabular import EPOCHS, TABLES, Table

TABULAR = ("tab-mlp-digits", "tab-mlp-mnist1d")


def _toy_table(tmp_path: Path) -> Table:
    """Three configurations of a space with a float, a categorical and a conditional float."""
    space = ConfigurationSpace(seed=0)
    space.add([Float("lr", (1e-4, 1e-1), log=True), Categorical("opt", ["sgd", "adam"]),
               Float("momentum", (0.0, 0.9))])
    space.add(EqualsCondition(space["momentum"], space["opt"], "sgd"))
    configs = [{"lr": 1e-3, "opt": "adam"}, {"lr": 1e-2, "opt": "sgd", "momentum": 0.5},
               {"lr": 1e-2, "opt": "adam"}]
    accuracy = np.linspace(0.1, 0.9, EPOCHS, dtype=np.float32)[None, None, :] \
        * np.array([1.0, 0.9, 0.8], dtype=np.float32)[:, None, None]
    accuracy = np.repeat(accuracy, 2, axis=1)  # two seeds
    accuracy[1, 1, 5:] = np.nan  # seed 1 of entry 1 diverged at epoch 6
    path = tmp_path / "toy.npz"
    np.savez_compressed(path, space=np.array(json.dumps(space.to_serialized_dict())),
                        configs=np.array(json.dumps(configs)), accuracy=accuracy,
                        loss=1.0 - accuracy, seconds=np.full(accuracy.shape, 0.5, np.float32),
                        params=np.array([10, 20, 30]), seeds=np.array([0, 1]))
    return Table.load(path)


def test_a_table_answers_its_own_entries_exactly_and_others_by_the_nearest(tmp_path) -> None:
    table = _toy_table(tmp_path)
    assert table.nearest({"lr": 1e-3, "opt": "adam"}) == (0, True)
    assert table.nearest({"lr": 1e-2, "opt": "sgd", "momentum": 0.5}) == (1, True)
    # lr is compared on its log scale: 2e-3 is nearer 1e-3 than 1e-2.
    assert table.nearest({"lr": 2e-3, "opt": "adam"}) == (0, False)
    # The optimiser differs from entry 2 and momentum is active only in entry 1: with the same
    # lr as both, an sgd configuration is nearer the sgd entry, whatever its momentum.
    assert table.nearest({"lr": 1e-2, "opt": "sgd", "momentum": 0.0})[0] == 1


def test_a_lookup_reads_the_seeds_run_at_the_rounded_epoch(tmp_path) -> None:
    table = _toy_table(tmp_path)
    first, last = table.lookup(0, 1, seed=0), table.lookup(0, EPOCHS, seed=0)
    assert first["val_accuracy"] == pytest.approx(0.1) and last["val_accuracy"] == \
        pytest.approx(0.9)
    assert last["loss"] == pytest.approx(0.1) and last["train_seconds"] == pytest.approx(13.5)
    assert table.lookup(0, 2.6, seed=0) == table.lookup(0, 3, seed=0)
    assert table.lookup(0, 5, seed=2) == table.lookup(0, 5, seed=0)  # seeds cycle
    # A diverged run scores the worst loss from the epoch it diverged on; before it, its curve.
    assert table.lookup(1, 6, seed=1)["loss"] == 1.0
    assert table.lookup(1, 5, seed=1)["loss"] < 1.0
    assert table.final_losses[1] == pytest.approx(1.0 - 0.9 * 0.9 / 2)


# -- the shipped tables ------------------------------------------------------------------------


@pytest.mark.parametrize("name", TABULAR)
def test_the_shipped_table_is_a_problem_with_its_optimum_in_it(name) -> None:
    problem = problems.get(name)
    dataset = name.removeprefix("tab-mlp-")
    assert TABLES[dataset].stat().st_size < 2_000_000  # small enough to ship in the repo
    best = problem.best_config
    assert best is not None and problem.regret(best) == pytest.approx(0.0)
    assert problem.true_loss(best) == pytest.approx(problem.optimum)
    value = problem.evaluate(best, problem.max_budget, seed=0)
    assert value["exact"] and 0.0 <= value["loss"] < 1.0
    space = problem.space
    space.seed(1)
    sampled = [dict(c) for c in space.sample_configuration(50)]
    assert min(problem.regret(c) for c in sampled) >= 0.0
    answers = [problem.evaluate(c, 9, seed=0) for c in sampled]
    assert not any(a["exact"] for a in answers)  # a fresh sample is almost never an entry
    assert len({a["table_index"] for a in answers}) > 10  # ... and lands on many entries
    # More epochs learn more, on the whole table.
    early = np.nanmean([problem.evaluate(c, 1, seed=0)["loss"] for c in sampled])
    assert early > np.nanmean([a["loss"] for a in answers])


@pytest.mark.parametrize("name", TABULAR)
def test_a_tabular_problem_pickles_for_worker_processes(name) -> None:
    problem = problems.get(name)
    clone = pickle.loads(pickle.dumps(problem.evaluate))
    assert clone(problem.best_config, 3, seed=1) == problem.evaluate(problem.best_config, 3,
                                                                     seed=1)


def test_tabular_problems_need_no_torch() -> None:
    code = ("import sys\nimport nas.problems as p\n"
            f"for name in {TABULAR!r}:\n"
            "    prob = p.get(name)\n"
            "    prob.evaluate(dict(prob.space.get_default_configuration()), 27)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
