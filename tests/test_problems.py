"""Tests of nas.problems: registry, the synthetic problems against textbook formulas, training."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys

import numpy as np
import pytest
from ConfigSpace import CategoricalHyperparameter, Float, UniformFloatHyperparameter
from ConfigSpace.util import deactivate_inactive_hyperparameters

from nas import problems
from nas.errors import UserError

SYNTHETIC = ("counting-ones", "mf-branin", "mf-hartmann6", "mixed-10d", "mixed-20d")
TRAINING = ("digits-conv", "digits-mlp", "mnist1d-mlp")
TABULAR = ("tab-mlp-digits", "tab-mlp-mnist1d")
# Tested in test_mo_problems.py.
MULTI_OBJECTIVE = ("dtlz2-mf", "tab-mlp-digits-mo", "tab-mlp-mnist1d-mo", "zdt1-mf", "zdt2-mf")
# The cheapest configuration of each training problem, so that tests train in milliseconds.
NARROW: dict[str, dict[str, object]] = {
    "digits-conv": {"n_cells": 1, "channels": 8, "batch_size": 128},
    "digits-mlp": {"width": 16, "n_blocks": 1, "batch_size": 128},
    "mnist1d-mlp": {"width": 16, "n_blocks": 1, "batch_size": 128},
}
BRANIN_MINIMISERS = [(-math.pi, 12.275), (math.pi, 2.275), (3 * math.pi, 2.475)]
HARTMANN_MINIMISER = (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)


def branin_textbook(x1: float, x2: float, *, db: float = 0.0, dc: float = 0.0,
                    dt: float = 0.0) -> float:
    """Branin as in Surjanovic & Bingham, with optional shifts of b, c and t."""
    b = 5.1 / (4 * math.pi**2) + db
    c = 5 / math.pi + dc
    t = 1 / (8 * math.pi) + dt
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def hartmann6_textbook(x: tuple[float, ...], alpha: tuple[float, ...] = (1.0, 1.2, 3.0, 3.2)
                       ) -> float:
    """Hartmann6 written out loop by loop (Dixon & Szego 1978 constants)."""
    a = [[10, 3, 17, 3.50, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
         [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
    p = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
    total = 0.0
    for i in range(4):
        inner = sum(a[i][j] * (x[j] - 1e-4 * p[i][j]) ** 2 for j in range(6))
        total += alpha[i] * math.exp(-inner)
    return -total


def hartmann_config(x: tuple[float, ...]) -> dict[str, float]:
    return {f"x{i}": v for i, v in enumerate(x, start=1)}


def ones_config(cat: int = 1, x: float = 1.0) -> dict[str, float]:
    return {**{f"cat{i}": cat for i in range(8)}, **{f"x{i}": x for i in range(8)}}


def samples(problem: problems.Problem, n: int, seed: int = 0) -> list[dict]:
    space = problem.space
    space.seed(seed)
    return [dict(c) for c in space.sample_configuration(n)]


# ---------------------------------------------------------------- registry


def test_available_lists_every_problem():
    assert problems.available() == sorted([*SYNTHETIC, *TRAINING, *TABULAR, *MULTI_OBJECTIVE])
    for name in problems.available():
        problem = problems.get(name)
        assert problem.name == name
        assert problem.min_budget < problem.max_budget
        assert problem.description and "\n" not in problem.description


def test_unknown_problem_is_a_one_line_user_error_naming_the_available_ones():
    with pytest.raises(UserError) as info:
        problems.get("rosenbrock")
    message = str(info.value)
    assert "\n" not in message
    assert "rosenbrock" in message
    assert all(name in message for name in problems.available())


def test_names_are_normalised():
    assert problems.get("MF_Branin").name == "mf-branin"


# ---------------------------------------------------------------- shared behaviour


@pytest.mark.parametrize("name", [*SYNTHETIC, *TRAINING, *TABULAR])
def test_space_is_a_fresh_object_on_each_call(name):
    problem = problems.get(name)
    first, second = problem.space, problem.space
    assert first is not second
    first.add(Float("extra", (0.0, 1.0)))
    assert "extra" not in problem.space


@pytest.mark.parametrize("name", SYNTHETIC)
def test_sampled_configs_evaluate_at_min_and_max_budget(name):
    problem = problems.get(name)
    for config in samples(problem, 20):
        for budget in (problem.min_budget, problem.max_budget):
            loss = problem.evaluate(config, budget, seed=3)
            assert isinstance(loss, float) and math.isfinite(loss)


@pytest.mark.parametrize("name", [*SYNTHETIC, *TRAINING, *TABULAR])
def test_budget_outside_the_range_is_a_value_error(name):
    problem = problems.get(name)
    config = dict(problem.space.get_default_configuration())
    for budget in (problem.min_budget * 0.5, problem.max_budget * 1.5, math.nan, "lots"):
        with pytest.raises(ValueError):
            problem.evaluate(config, budget)
    for seed in (-1, 1.5, True):
        with pytest.raises(ValueError):
            problem.evaluate(config, problem.min_budget, seed=seed)


def test_budgets_a_few_ulps_outside_the_range_are_clipped():
    problem = problems.get("mf-branin")
    config = {"x1": 1.0, "x2": 2.0}
    rung = 81 * 3.0**-4  # 1.0000000000000002, as Hyperband computes it
    assert problem.evaluate(config, rung) == problem.evaluate(config, 1.0)
    assert problem.evaluate(config, 81 * (1 + 1e-12)) == problem.evaluate(config, 81)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_regret_is_non_negative_on_random_configs(name):
    problem = problems.get(name)
    regrets = [problem.regret(c) for c in samples(problem, 200, seed=1)]
    assert min(regrets) >= -1e-9


def test_missing_parameter_is_a_user_error():
    with pytest.raises(UserError, match="x2"):
        problems.get("mf-branin").evaluate({"x1": 0.0}, 81)


# ---------------------------------------------------------------- mixed, misleading low budgets


@pytest.mark.parametrize(("name", "dims"), [("mixed-10d", 10), ("mixed-20d", 20)])
def test_mixed_problems_have_every_kind_of_hyperparameter_and_a_known_optimum(name, dims):
    from ConfigSpace.hyperparameters import IntegerHyperparameter

    problem = problems.get(name)
    space = problem.space
    kinds = {type(hp).__name__ for hp in space.values()}
    assert len(space) == dims and {"UniformFloatHyperparameter", "UniformIntegerHyperparameter",
                                   "CategoricalHyperparameter"} <= kinds
    assert space.conditions  # some floats are active on one branch only
    assert isinstance(space["branch"], CategoricalHyperparameter)
    assert any(isinstance(hp, IntegerHyperparameter) for hp in space.values())
    best = problem.best_config
    assert best is not None and problem.true_loss(best) == 0.0 == problem.optimum
    assert problem.evaluate(best, problem.max_budget) == 0.0
    regrets = [problem.regret(c) for c in samples(problem, 200, seed=2)]
    assert min(regrets) > 0.0  # nothing random reaches the hidden optimum


@pytest.mark.parametrize("name", ["mixed-10d", "mixed-20d"])
def test_mixed_problems_low_budgets_rank_configurations_the_wrong_way(name):
    from scipy.stats import spearmanr

    problem = problems.get(name)
    configs = samples(problem, 300, seed=4)
    full = [problem.evaluate(c, 81) for c in configs]
    corr = {b: spearmanr([problem.evaluate(c, b) for c in configs], full)[0] for b in (1, 3, 27)}
    assert corr[1] < -0.3 and corr[3] < -0.3 and corr[27] > 0.3
    # The optimum is no good at the lowest budget, and losses fall as budgets grow.
    assert problem.evaluate(problem.best_config, 1) > sorted(problem.evaluate(c, 1)
                                                            for c in configs)[150]
    assert all(problem.evaluate(c, 1) > problem.evaluate(c, 81) for c in configs[:20]
               if problem.evaluate(c, 81) < 0.3)


def test_a_mixed_configuration_without_its_branch_floats_is_a_user_error():
    problem = problems.get("mixed-10d")
    config = dict(problem.best_config or {})
    del config["ax0"]
    with pytest.raises(UserError, match="ax0"):
        problem.evaluate(config, 81)


# ---------------------------------------------------------------- mf-branin


def test_branin_at_max_budget_is_standard_branin():
    problem = problems.get("mf-branin")
    for x1, x2 in BRANIN_MINIMISERS:
        config = {"x1": x1, "x2": x2}
        assert problem.evaluate(config, 81) == pytest.approx(0.397887, abs=1e-5)
        assert problem.true_loss(config) == pytest.approx(0.397887, abs=1e-5)
    for x1, x2 in [(-5.0, 0.0), (10.0, 15.0), (0.0, 7.5), (2.5, 3.3), (-1.7, 11.2)]:
        config = {"x1": x1, "x2": x2}
        assert problem.evaluate(config, 81) == pytest.approx(branin_textbook(x1, x2), rel=1e-12)
        assert problem.true_loss(config) == pytest.approx(branin_textbook(x1, x2), rel=1e-12)
    assert problem.optimum == pytest.approx(0.397887, abs=1e-6)


def test_branin_lower_fidelity_follows_boca_shifts_on_a_log_budget_scale():
    # z = 1 - u shifts b by -0.01 u, c by -0.1 u, t by +0.05 u; budget 1 is u = 1, budget 9
    # (half-way on a log scale from 1 to 81) is u = 0.5.
    problem = problems.get("mf-branin")
    for x1, x2 in [(0.0, 7.5), (2.5, 3.3), (-3.0, 12.0), (9.0, 1.0)]:
        config = {"x1": x1, "x2": x2}
        for budget, u in [(1, 1.0), (9, 0.5), (27, 0.25)]:
            expected = branin_textbook(x1, x2, db=-0.01 * u, dc=-0.1 * u, dt=0.05 * u)
            assert problem.evaluate(config, budget) == pytest.approx(expected, rel=1e-12)


def test_branin_lower_fidelity_differs_and_converges_towards_max_budget():
    problem = problems.get("mf-branin")
    for x1, x2 in [*BRANIN_MINIMISERS, (0.0, 7.5), (5.0, 5.0)]:
        config = {"x1": x1, "x2": x2}
        full = problem.evaluate(config, 81)
        gap_low = abs(problem.evaluate(config, 1) - full)
        gap_near = abs(problem.evaluate(config, 80.9) - full)
        assert gap_low > 0.05
        assert gap_near < 1e-3 * gap_low + 1e-12


# ---------------------------------------------------------------- mf-hartmann6


def test_hartmann6_known_minimiser_at_max_budget():
    problem = problems.get("mf-hartmann6")
    config = hartmann_config(HARTMANN_MINIMISER)
    assert problem.evaluate(config, 81) == pytest.approx(-3.32237, abs=1e-4)
    assert problem.true_loss(config) == pytest.approx(-3.32237, abs=1e-4)
    assert problem.optimum == pytest.approx(-3.32237, abs=1e-5)
    assert 0 <= problem.regret(config) < 1e-6


def test_hartmann6_matches_the_textbook_formula_at_full_and_lower_fidelity():
    problem = problems.get("mf-hartmann6")
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = tuple(rng.random(6))
        config = hartmann_config(x)
        assert problem.evaluate(config, 81) == pytest.approx(hartmann6_textbook(x), rel=1e-12)
        for budget, u in [(1, 1.0), (9, 0.5)]:
            alpha = tuple(a - 0.1 * u for a in (1.0, 1.2, 3.0, 3.2))
            assert problem.evaluate(config, budget) == pytest.approx(
                hartmann6_textbook(x, alpha), rel=1e-12
            )


def test_hartmann6_lower_fidelity_differs():
    problem = problems.get("mf-hartmann6")
    config = hartmann_config(HARTMANN_MINIMISER)
    assert problem.evaluate(config, 1) > problem.evaluate(config, 81) + 0.05


# ---------------------------------------------------------------- counting-ones


def test_counting_ones_space_has_eight_binary_and_eight_float_parameters():
    space = problems.get("counting-ones").space
    params = list(space.values())
    categorical = [p for p in params if isinstance(p, CategoricalHyperparameter)]
    floats = [p for p in params if isinstance(p, UniformFloatHyperparameter)]
    assert len(params) == 16 and len(categorical) == 8 and len(floats) == 8
    assert all(set(p.choices) == {0, 1} for p in categorical)
    assert all((p.lower, p.upper) == (0.0, 1.0) for p in floats)


def test_counting_ones_optimum():
    problem = problems.get("counting-ones")
    best = ones_config()
    assert problem.optimum == -16
    assert problem.true_loss(best) == -16
    assert problem.regret(best) == 0
    # Binomial draws with p = 1 are all ones: exact at every budget and seed.
    assert problem.evaluate(best, 729, seed=5) == -16
    assert problem.evaluate(best, 9, seed=6) == -16
    assert problem.evaluate(ones_config(x=0.99), 729) == pytest.approx(-16, abs=0.1)


def test_counting_ones_is_deterministic_per_seed_and_varies_across_seeds():
    problem = problems.get("counting-ones")
    config = ones_config(x=0.5)
    assert problem.evaluate(config, 27, seed=4) == problem.evaluate(dict(config), 27, seed=4)
    assert len({problem.evaluate(config, 27, seed=s) for s in range(10)}) > 1
    # The config and the budget feed the generator too.
    other = {**config, "x0": 0.5000001}
    assert [problem.evaluate(config, 27, seed=s) for s in range(5)] != [
        problem.evaluate(other, 27, seed=s) for s in range(5)
    ]


def test_counting_ones_noise_shrinks_with_budget_around_the_true_loss():
    problem = problems.get("counting-ones")
    config = ones_config(cat=0, x=0.5)
    low = np.array([problem.evaluate(config, 9, seed=s) for s in range(200)])
    high = np.array([problem.evaluate(config, 729, seed=s) for s in range(200)])
    assert low.var() > 10 * high.var()
    # Unbiased: 8 * 0.25 / 9 is the variance at 9 samples; allow 5 standard errors.
    assert abs(low.mean() - problem.true_loss(config)) < 5 * math.sqrt(8 * 0.25 / 9 / 200)
    assert low.var() == pytest.approx(8 * 0.25 / 9, rel=0.35)


def test_counting_ones_accepts_string_choices_and_rejects_bad_probabilities():
    problem = problems.get("counting-ones")
    as_strings = {**ones_config(x=0.3), **{f"cat{i}": "1" for i in range(8)}}
    assert problem.evaluate(as_strings, 9) == problem.evaluate(ones_config(x=0.3), 9)
    with pytest.raises(UserError):
        problem.evaluate(ones_config(x=1.5), 9)


# ---------------------------------------------------------------- training problems


def narrow_config(name: str) -> dict:
    problem = problems.get(name)
    space = problem.space
    values = {**dict(space.get_default_configuration()), **NARROW[name]}
    # Fewer blocks than the default leave some block multipliers inactive: drop them.
    return dict(deactivate_inactive_hyperparameters(values, space))


@pytest.mark.parametrize("name", TRAINING)
def test_training_problem_at_min_budget_is_deterministic_given_seed(name):
    import torch

    problem = problems.get(name)
    assert problem.budget_unit == "ep" and (problem.min_budget, problem.max_budget) == (1, 27)
    assert math.isnan(problem.optimum)
    config = narrow_config(name)
    state = torch.random.get_rng_state()
    out = problem.evaluate(config, problem.min_budget, seed=0)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's RNG is untouched
    assert isinstance(out, dict)
    assert out["status"] == "ok"
    assert 0 <= out["loss"] <= 1
    assert out["loss"] == pytest.approx(1 - out["val_accuracy"])
    assert out["epochs"] == pytest.approx(1)
    assert math.isfinite(out["val_loss"])
    assert problem.evaluate(dict(config), problem.min_budget, seed=0) == out
    # The seed decides the initial weights and the batches: another seed trains another model.
    assert problem.evaluate(config, problem.min_budget, seed=1)["val_loss"] != out["val_loss"]
    with pytest.raises(NotImplementedError):
        problem.true_loss(config)


@pytest.mark.parametrize("name", TRAINING)
def test_training_problem_budget_is_epochs_and_more_epochs_learn_more(name):
    problem = problems.get(name)
    config = {**narrow_config(name), "lr": 1e-2}
    low = problem.evaluate(config, 1, seed=0)
    high = problem.evaluate(config, 4, seed=0)
    assert high["epochs"] == pytest.approx(4)
    assert high["val_loss"] < low["val_loss"]
    assert high["val_accuracy"] > 0.25  # chance is 0.1 for all three


@pytest.mark.parametrize("name", TRAINING)
def test_training_problem_searches_the_family_its_name_says(name):
    # Both families train on digits' 1x8x8 images, so a conv problem handed the MLP space (or
    # the reverse) would pass every other test.
    problem = problems.get(name)
    family = "residual-conv" if name.endswith("conv") else "residual-mlp"
    assert problem.space["architecture"].value == family


def test_digits_mlp_default_config_learns_in_one_epoch():
    problem = problems.get("digits-mlp")
    config = dict(problem.space.get_default_configuration())
    assert problem.evaluate(config, 1, seed=0)["val_accuracy"] > 0.5


def test_a_diverged_training_run_has_the_worst_loss():
    problem = problems.get("digits-mlp")
    # SGD at a huge learning rate overflows within the first epoch.
    config = {**narrow_config("digits-mlp"), "optimizer": "sgd", "lr": 1e6, "norm": "none"}
    out = problem.evaluate(config, 1, seed=0)
    assert out["status"] == "diverged"
    assert out["loss"] == 1.0 and out["val_accuracy"] is None


@pytest.mark.parametrize("name", TRAINING)
def test_training_problem_evaluate_pickles_for_worker_processes(name):
    problem = problems.get(name)
    clone = pickle.loads(pickle.dumps(problem.evaluate))
    config = narrow_config(name)
    assert clone(config, 1, seed=0) == problem.evaluate(config, 1, seed=0)


def test_importing_and_using_synthetic_problems_does_not_import_torch():
    code = (
        "import sys\n"
        "import nas.problems as p\n"
        "for name in ('counting-ones', 'mf-branin', 'mf-hartmann6'):\n"
        "    prob = p.get(name)\n"
        "    config = dict(prob.space.get_default_configuration())\n"
        "    prob.evaluate(config, prob.max_budget)\n"
        "for name in ('digits-conv', 'digits-mlp', 'mnist1d-mlp'):\n"
        "    p.get(name)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
