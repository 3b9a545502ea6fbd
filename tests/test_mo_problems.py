"""Multi-objective problems (`nas.problems.multiobjective`): textbook values, known fronts and
their hypervolumes, the biased low fidelity, and the tabular error-vs-size problems."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import nas
from nas import problems
from nas.dominance import hypervolume, non_dominated
from nas.problems import multiobjective as mo
from nas.problems import tabular

ANALYTIC = ("zdt1-mf", "zdt2-mf", "dtlz2-mf")
TABULAR = ("tab-mlp-digits-mo", "tab-mlp-mnist1d-mo")


def _front(name: str, n: int = 301) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Points of the analytic true front, and configurations on it (distance at its optimum)."""
    t = np.linspace(0.0, 1.0, n)
    if name == "dtlz2-mf":
        a, b = np.meshgrid(t, t)
        configs = [{"x1": float(u), "x2": float(v), **{f"x{i}": 0.5 for i in range(3, 8)}}
                   for u, v in zip(a.ravel(), b.ravel(), strict=True)]
        ang_a, ang_b = a.ravel() * math.pi / 2, b.ravel() * math.pi / 2
        points = np.stack([np.cos(ang_a) * np.cos(ang_b), np.cos(ang_a) * np.sin(ang_b),
                           np.sin(ang_a)], axis=1)
        return points, configs
    configs = [{"x1": float(u), **{f"x{i}": 0.0 for i in range(2, 7)}} for u in t]
    shape = np.sqrt(t) if name == "zdt1-mf" else t**2
    return np.stack([t, 1.0 - shape], axis=1), configs


def _samples(problem: problems.Problem, n: int, seed: int = 0) -> list[dict]:
    space = problem.space
    space.seed(seed)
    return [dict(c) for c in space.sample_configuration(max(n, 2))][:n]


@pytest.mark.parametrize("name", ANALYTIC + TABULAR)
def test_multi_objective_problems_describe_their_objectives(name: str) -> None:
    problem = problems.get(name)
    assert problem.multi_objective and len(problem.objectives) in (2, 3)
    assert problem.reference_point is not None
    assert len(problem.reference_point) == len(problem.objectives)
    assert problem.optimum_hypervolume > 0
    config = _samples(problem, 1)[0]
    value = problem.evaluate(config, problem.max_budget, seed=0)
    values = value["loss"] if isinstance(value, dict) else value
    assert len(values) == len(problem.objectives)
    assert problem.loss(config) == pytest.approx(values[0])
    pickle.loads(pickle.dumps(problem.evaluate))  # goes to worker processes


def test_single_objective_problems_are_untouched() -> None:
    branin = problems.get("mf-branin")
    assert not branin.multi_objective and branin.objectives == ()
    assert branin.reference_point is None and math.isnan(branin.optimum_hypervolume)
    with pytest.raises(NotImplementedError):
        branin.true_objectives({"x1": 0.0, "x2": 0.0})


def test_zdt1_and_dtlz2_match_the_textbook_at_max_budget() -> None:
    x = np.array([0.3, 0.1, 0.2, 0.4, 0.05, 0.9])
    g = 1 + 9 * x[1:].sum() / 5
    zdt1 = problems.get("zdt1-mf")
    config = {f"x{i}": float(v) for i, v in enumerate(x, start=1)}
    assert zdt1.evaluate(config, 81) == pytest.approx((0.3, g * (1 - math.sqrt(0.3 / g))))
    assert problems.get("zdt2-mf").true_objectives(config) == pytest.approx(
        (0.3, g * (1 - (0.3 / g) ** 2)))
    y = np.array([0.2, 0.7, 0.1, 0.5, 0.6, 0.9, 0.3])
    r = 1 + float(((y[2:] - 0.5) ** 2).sum())
    a, b = y[0] * math.pi / 2, y[1] * math.pi / 2
    dtlz2 = problems.get("dtlz2-mf")
    assert dtlz2.true_objectives({f"x{i}": float(v) for i, v in enumerate(y, start=1)}) == \
        pytest.approx((r * math.cos(a) * math.cos(b), r * math.cos(a) * math.sin(b),
                       r * math.sin(a)))


@pytest.mark.parametrize("name", ANALYTIC)
def test_the_known_front_reaches_the_optimum_hypervolume(name: str) -> None:
    problem = problems.get(name)
    points, configs = _front(name, 301 if name != "dtlz2-mf" else 31)
    # The configurations on the front give its points at max budget.
    assert np.allclose([problem.true_objectives(c) for c in configs[::7]], points[::7])
    hv = hypervolume(points, problem.reference_point)
    # A sampled front falls short of the continuous one by less than the sampling step.
    assert hv <= problem.optimum_hypervolume + 1e-9
    assert hv == pytest.approx(problem.optimum_hypervolume, abs=0.03 if name == "dtlz2-mf"
                               else 2e-3)
    # No sampled configuration beats the optimum.
    sampled = np.array([problem.true_objectives(c) for c in _samples(problem, 200)])
    assert hypervolume(np.vstack([sampled, points]), problem.reference_point) \
        <= problem.optimum_hypervolume + 1e-9


def test_stated_optimum_hypervolumes() -> None:
    assert pytest.approx(11.766667, abs=1e-6) == mo.ZDT1_HYPERVOLUME
    assert pytest.approx(11.433333, abs=1e-6) == mo.ZDT2_HYPERVOLUME
    assert pytest.approx(2.475**3 - math.pi / 6, abs=1e-9) == mo.DTLZ2_HYPERVOLUME
    # Monte Carlo on the box confirms DTLZ2's closed form to ~1e-2.
    rng = np.random.default_rng(0)
    box = rng.uniform(0, 2.475, size=(400_000, 3))
    share = float((np.linalg.norm(box, axis=1) >= 1).mean())
    assert share * 2.475**3 == pytest.approx(mo.DTLZ2_HYPERVOLUME, abs=0.02)


@pytest.mark.parametrize("name", ANALYTIC)
def test_low_fidelity_is_informative_but_biased(name: str) -> None:
    from scipy.stats import spearmanr

    problem = problems.get(name)
    configs = _samples(problem, 200)
    low = np.array([problem.evaluate(c, 1.0) for c in configs])
    high = np.array([problem.evaluate(c, 81.0) for c in configs])
    assert not np.allclose(low, high)
    for j in range(low.shape[1]):  # informative: the rungs order configurations alike
        assert spearmanr(low[:, j], high[:, j])[0] > 0.9
    # Biased: at the lowest budget, moving the true front's distance variables by SHIFT
    # improves every point (the sum of its objectives); at the full budget it worsens every one.
    _, front = _front(name, 11)
    position = ("x1", "x2") if name == "dtlz2-mf" else ("x1",)
    moved = [{k: v if k in position else v + mo.SHIFT for k, v in c.items()} for c in front]
    for budget, better in ((1.0, True), (81.0, False)):
        on = np.array([problem.evaluate(c, budget) for c in front])
        off = np.array([problem.evaluate(c, budget) for c in moved])
        assert np.all((off.sum(axis=1) < on.sum(axis=1)) == better)
    # Between the two the low-fidelity optimum walks back: at 27 (s = 3/4) it is SHIFT / 4.
    quarter = [{k: v if k in position else v + mo.SHIFT / 4 for k, v in c.items()}
               for c in front]
    assert np.all(np.array([problem.evaluate(c, 27.0) for c in quarter]).sum(axis=1)
                  < np.array([problem.evaluate(c, 27.0) for c in moved]).sum(axis=1))


@pytest.mark.parametrize("name", TABULAR)
def test_tabular_objectives_are_error_and_log_parameters(name: str) -> None:
    problem = problems.get(name)
    assert problem.objectives == ("val_error", "log10_params")
    held = tabular.table(name.removeprefix("tab-mlp-").removesuffix("-mo"))
    config = dict(held.configs[5])
    out = problem.evaluate(config, 27.0, seed=1)
    assert out["exact"] and out["table_index"] == 5
    assert out["loss"] == pytest.approx([1.0 - held.accuracy[5, 1, -1],
                                         math.log10(held.params[5])])
    assert problem.true_objectives(config) == pytest.approx(
        (held.final_losses[5], math.log10(held.params[5])))


@pytest.mark.parametrize("name", TABULAR)
def test_tabular_optimum_is_the_tables_front(name: str) -> None:
    problem = problems.get(name)
    held = tabular.table(name.removeprefix("tab-mlp-").removesuffix("-mo"))
    points = np.array([problem.true_objectives(c) for c in held.configs])
    assert problem.reference_point is not None
    assert np.all(points < np.array(problem.reference_point))  # every entry counts
    front = points[non_dominated(points)]
    assert hypervolume(front, problem.reference_point) == pytest.approx(
        problem.optimum_hypervolume)
    sampled = np.array([problem.true_objectives(c) for c in _samples(problem, 30)])
    assert hypervolume(sampled, problem.reference_point) < problem.optimum_hypervolume


def test_optimize_records_every_objective() -> None:
    problem = problems.get("zdt1-mf")
    run = nas.optimize(problem.evaluate, problem.space, "mo-random", 4 * problem.max_budget,
                       min_budget=problem.min_budget, max_budget=problem.max_budget,
                       seed=0, storage=":memory:", objectives=problem.objectives)
    results = [r.result for r in run.trials if r.result is not None]
    assert len(results) == 4
    for result, record in zip(results, run.trials, strict=True):
        assert result.objectives == pytest.approx(problem.evaluate(record.trial.config, 81.0))
