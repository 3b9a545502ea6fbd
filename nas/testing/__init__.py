"""Conformance checks for searchers, shipped so plugin authors can run them on their own classes.

Decorate a pytest test taking ``cls, check`` with ``parametrize_with_checks([MySearcher])`` and
call ``check(cls)`` in it; every check raises AssertionError naming what broke. A
``multi_objective`` searcher is built with ``n_objectives=2`` and told two objectives (the
problem's loss and `size_objective`), and must report its Pareto front through ``front()``. Or call
``check_searcher(MySearcher)``: one AssertionError lists every check that failed.

Settings live with what reads them: ``checks.TINY_TIMEOUT_S``, ``watchdog.CHECK_TIMEOUT_S``.
"""

from __future__ import annotations

from nas.problems import Problem
from nas.testing.checks import (
    BEATS_RANDOM_SEEDS,
    BEATS_RANDOM_TRIALS,
    IN_FLIGHT,
    IN_FLIGHT_TRIALS,
    TINY_TIMEOUT_S,
    all_checks,
    check_beats_random,
    check_budgets,
    check_conditional,
    check_failed_results,
    check_in_flight,
    check_many_asks_before_tell,
    check_searcher,
    check_tiny_space,
    check_valid_configs,
    parametrize_with_checks,
)
from nas.testing.driver import (
    ETA,
    MAX_BUDGET,
    MIN_BUDGET,
    N_OBJECTIVES,
    incumbent,
    make_searcher,
    run,
    size_objective,
)
from nas.testing.multiobjective import (
    MO_BEATS_RANDOM_SEEDS,
    MO_BEATS_RANDOM_TRIALS,
    check_front,
    check_mo_beats_random,
    front_of,
)
from nas.testing.problems import (
    ZDT_REFERENCE,
    continuous_problem,
    mixed_problem,
    tiny_problem,
    zdt_objective,
    zdt_objectives,
    zdt_space,
)
from nas.testing.queue import check_enqueue, check_imports, check_space_change
from nas.testing.reproducibility import (
    check_deterministic,
    check_global_rng_untouched,
    check_options_roundtrip,
    check_replay,
    check_seeds_differ,
)
from nas.testing.spaces import continuous_space, mixed_space, tiny_space
from nas.testing.validity import assert_valid_config, assert_valid_trial
from nas.testing.watchdog import CHECK_TIMEOUT_S

__all__ = [
    "BEATS_RANDOM_SEEDS",
    "BEATS_RANDOM_TRIALS",
    "CHECK_TIMEOUT_S",
    "ETA",
    "IN_FLIGHT",
    "IN_FLIGHT_TRIALS",
    "MAX_BUDGET",
    "MIN_BUDGET",
    "MO_BEATS_RANDOM_SEEDS",
    "MO_BEATS_RANDOM_TRIALS",
    "N_OBJECTIVES",
    "TINY_TIMEOUT_S",
    "ZDT_REFERENCE",
    "Problem",
    "all_checks",
    "assert_valid_config",
    "assert_valid_trial",
    "check_beats_random",
    "check_budgets",
    "check_conditional",
    "check_deterministic",
    "check_enqueue",
    "check_failed_results",
    "check_front",
    "check_global_rng_untouched",
    "check_imports",
    "check_in_flight",
    "check_many_asks_before_tell",
    "check_mo_beats_random",
    "check_options_roundtrip",
    "check_replay",
    "check_searcher",
    "check_seeds_differ",
    "check_space_change",
    "check_tiny_space",
    "check_valid_configs",
    "continuous_problem",
    "continuous_space",
    "front_of",
    "incumbent",
    "make_searcher",
    "mixed_problem",
    "mixed_space",
    "parametrize_with_checks",
    "run",
    "size_objective",
    "tiny_problem",
    "tiny_space",
    "zdt_objective",
    "zdt_objectives",
    "zdt_space",
]
