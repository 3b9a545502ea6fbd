"""The conformance suite catches broken searchers (none of them is registered)."""

from __future__ import annotations

import contextlib
import math
import signal
import time
from typing import Any

import numpy as np
import pytest
from ConfigSpace import Configuration, ConfigurationSpace

import nas.testing as conformance
from nas.problems import Problem
from nas.types import Result, Trial
from searchers import RandomSearch, Searcher


class IgnoresForbidden(RandomSearch):
    """Samples from a copy of its space that lost the forbidden clauses."""

    name = "ignores-forbidden"

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0) -> None:
        super().__init__(space, seed=seed, include_default=False)
        self.loose = ConfigurationSpace()
        self.loose.add(list(self.space.values()))
        self.loose.add(list(self.space.conditions))
        self.loose.seed(int(self.rng.integers(2**31 - 1)))

    def ask(self) -> Trial:
        return self._new_trial(self.loose.sample_configuration())


class UnseededRNG(RandomSearch):
    """Reseeds its sampler from fresh OS entropy on every ask."""

    name = "unseeded"

    def ask(self) -> Trial:
        self.space.seed(int(np.random.default_rng().integers(2**31 - 1)))
        return super().ask()


class GlobalRNG(RandomSearch):
    """Draws its sampler seeds from numpy's global random state."""

    name = "global-rng"

    def ask(self) -> Trial:
        self.space.seed(np.random.randint(2**31 - 1))
        return super().ask()


class OverBudget(RandomSearch):
    """Claims multi-fidelity, but every fifth trial asks twice the maximum budget."""

    name = "over-budget"
    multi_fidelity = True

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0, min_budget: float = 1,
                 max_budget: float = 27, eta: float = 3) -> None:
        super().__init__(space, seed=seed)
        self.min_budget, self.max_budget, self.eta = min_budget, max_budget, eta

    def ask(self) -> Trial:
        budget = [1.0, 3.0, 9.0, 27.0, 2 * self.max_budget][self._next_id % 5]
        return self._new_trial(self.space.sample_configuration(), budget=float(budget))


class EagerPromoter(Searcher):
    """Continues its previous trial at eta times the budget, even while that trial still runs."""

    name = "eager-promoter"
    multi_fidelity = True

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0, min_budget: float = 1,
                 max_budget: float = 27, eta: float = 3) -> None:
        super().__init__(space, seed=seed)
        self.min_budget, self.max_budget, self.eta = min_budget, max_budget, eta
        self.last: Trial | None = None

    @property
    def options(self) -> dict[str, Any]:
        return {"min_budget": self.min_budget, "max_budget": self.max_budget, "eta": self.eta}

    def ask(self) -> Trial:
        last = self.last
        if last is not None and last.budget is not None and last.budget < self.max_budget:
            trial = self._new_trial(last.config, budget=float(last.budget * self.eta),
                                    parent=last.id)
        else:
            trial = self._new_trial(self.space.sample_configuration(),
                                    budget=float(self.min_budget))
        self.last = trial
        return trial


class SearchesUntilUnseen(RandomSearch):
    """Insists on an unseen configuration: fine on a big space, an endless loop on a tiny one."""

    name = "until-unseen"

    def __init__(self, space: ConfigurationSpace, *, seed: int | None = 0) -> None:
        super().__init__(space, seed=seed, include_default=False)
        self.seen: set[str] = set()

    def ask(self) -> Trial:
        while True:
            config = self.space.sample_configuration()
            key = repr(sorted(dict(config).items()))
            if key not in self.seen:
                self.seen.add(key)
                return self._new_trial(config)


class UnseededWhileBusy(RandomSearch):
    """Deterministic one trial at a time, but reseeds from OS entropy with several running."""

    name = "unseeded-while-busy"

    def ask(self) -> Trial:
        if len(self.pending) > 1:
            self.space.seed(int(np.random.default_rng().integers(2**31 - 1)))
        return super().ask()


class KeepsUnknownTrials(RandomSearch):
    """Claims to continue a trial it never asked."""

    name = "keeps-unknown"

    def continuable(self) -> set[int]:
        return {self._next_id + 100}


class ClaimsModelBased(RandomSearch):
    """Random search that claims to learn."""

    name = "claims-model"
    model_based = True


def test_the_random_searcher_passes_every_check() -> None:
    for check in conformance.all_checks(RandomSearch):
        check(RandomSearch)


def test_forbidden_configs_fail_check_valid_configs() -> None:
    with pytest.raises(AssertionError, match="ForbiddenValueError"):
        conformance.check_valid_configs(IgnoresForbidden)


def test_unseeded_randomness_fails_check_deterministic() -> None:
    conformance.check_valid_configs(UnseededRNG)
    with pytest.raises(AssertionError, match="asked differently"):
        conformance.check_deterministic(UnseededRNG)
    with pytest.raises(AssertionError, match="journal holds"):
        conformance.check_replay(UnseededRNG)


def test_global_randomness_fails_and_is_put_back() -> None:
    before = np.random.get_state()[1].copy()
    with pytest.raises(AssertionError, match=r"numpy\.random"):
        conformance.check_global_rng_untouched(GlobalRNG)
    assert (np.random.get_state()[1] == before).all()


def test_budget_above_max_fails_check_budgets() -> None:
    with pytest.raises(AssertionError, match=r"budget 54\.0 outside \[min_budget=1, max"):
        conformance.check_budgets(OverBudget)


def test_promoting_a_running_trial_fails_only_with_trials_in_flight() -> None:
    conformance.check_budgets(EagerPromoter)  # asked one at a time, every parent has finished
    with pytest.raises(AssertionError, match="still running"):
        conformance.check_many_asks_before_tell(EagerPromoter)


def test_check_in_flight_catches_eager_promotion_busy_randomness_and_unknown_ids() -> None:
    with pytest.raises(AssertionError, match="still running"):
        conformance.check_in_flight(EagerPromoter)
    conformance.check_deterministic(UnseededWhileBusy)  # one at a time it is fine
    with pytest.raises(AssertionError, match="same completion order, asked differently"):
        conformance.check_in_flight(UnseededWhileBusy)
    with pytest.raises(AssertionError, match=r"names \[\d+\], never asked"):
        conformance.check_in_flight(KeepsUnknownTrials)


def test_run_tells_in_a_seeded_random_completion_order() -> None:
    problem = conformance.continuous_problem()
    orders = []
    for seed in (5, 5, 6, None):
        searcher = RandomSearch(problem.space, seed=0)
        pairs = conformance.run(searcher, problem, 20, in_flight=4, tell_order_seed=seed)
        orders.append([t.id for t, _ in pairs])
    assert orders[0] == orders[1] != orders[2]
    assert orders[3] == list(range(20))  # no seed: oldest first
    assert sorted(orders[0]) == list(range(20)) and orders[0] != orders[3]


def test_an_endless_loop_on_the_tiny_space_fails_instead_of_hanging(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conformance.checks, "TINY_TIMEOUT_S", 0.5)
    conformance.check_valid_configs(SearchesUntilUnseen)
    with pytest.raises(AssertionError, match=r"did not finish within 0\.5 s"):
        conformance.check_tiny_space(SearchesUntilUnseen)


def test_a_check_that_hangs_fails_after_check_timeout_s(monkeypatch: pytest.MonkeyPatch) -> None:
    class Sleeps(RandomSearch):
        name = "sleeps"

        def ask(self) -> Trial:
            time.sleep(60)
            return super().ask()

    monkeypatch.setattr(conformance.watchdog, "CHECK_TIMEOUT_S", 0.5)
    start = time.monotonic()
    with pytest.raises(AssertionError, match=r"check_seeds_differ\(sleeps\) did not finish "
                                             r"within 0\.5 s"):
        conformance.check_seeds_differ(Sleeps)
    assert time.monotonic() - start < 10


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_swallowed_alarm_is_followed_by_another(monkeypatch: pytest.MonkeyPatch) -> None:
    class SwallowsOnce(RandomSearch):
        name = "swallows-once"

        def ask(self) -> Trial:
            if self._next_id == 0:
                # What numpy's array coercion does to a pending error:
                with contextlib.suppress(BaseException):
                    _spin(30)
                _spin(5)
            return super().ask()

    monkeypatch.setattr(conformance.watchdog, "CHECK_TIMEOUT_S", 0.5)
    start = time.monotonic()
    with pytest.raises(AssertionError, match=r"did not finish within 0\.5 s"):
        conformance.check_seeds_differ(SwallowsOnce)
    assert time.monotonic() - start < 3
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # the repeating alarm stopped


def test_costly_asks_get_a_longer_watchdog_and_a_slow_mark(
        monkeypatch: pytest.MonkeyPatch) -> None:
    class Costly(RandomSearch):
        name = "costly"
        costly_asks = True

        def ask(self) -> Trial:
            if self._next_id == 0:
                time.sleep(0.5)
            return super().ask()

    monkeypatch.setattr(conformance.watchdog, "CHECK_TIMEOUT_S", 0.2)
    conformance.check_seeds_differ(Costly)  # 0.2 s x COSTLY_FACTOR: the first ask fits
    monkeypatch.setattr(Costly, "costly_asks", False)
    with pytest.raises(AssertionError, match=r"did not finish within 0\.2 s"):
        conformance.check_seeds_differ(Costly)
    monkeypatch.setattr(Costly, "costly_asks", True)
    params = conformance.parametrize_with_checks([Costly, RandomSearch]).mark.args[1]
    assert {p.id.split("-")[0] for p in params if p.marks} == {"costly"}


def test_random_search_claiming_a_model_fails_check_beats_random() -> None:
    assert conformance.check_beats_random in conformance.all_checks(ClaimsModelBased)
    with pytest.raises(AssertionError, match="does not beat random search"):
        conformance.check_beats_random(ClaimsModelBased)


def test_checks_follow_capabilities_and_ids_name_both() -> None:
    assert conformance.check_beats_random not in conformance.all_checks(RandomSearch)
    mark = conformance.parametrize_with_checks([RandomSearch, ClaimsModelBased]).mark
    assert mark.args[0] == ("cls", "check")
    ids = [p.id for p in mark.args[1]]
    assert "random-check_valid_configs" in ids and "claims-model-check_beats_random" in ids
    assert "random-check_beats_random" not in ids
    assert "random-check_in_flight" in ids
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("make", [conformance.mixed_problem, conformance.tiny_problem,
                                  conformance.continuous_problem])
def test_problems_know_their_optimum(make: Any) -> None:
    problem = make()
    assert isinstance(problem, Problem)  # one Problem class for benchmarks and the suite
    space = problem.space
    assert problem.space is not space
    Configuration(space, values=dict(problem.best_config)).check_valid_configuration()
    assert problem.true_loss(problem.best_config) == problem.optimum
    samples = [dict(c) for c in space.sample_configuration(50)]
    assert min(problem.true_loss(c) for c in samples) >= problem.optimum
    config = samples[0]
    assert problem.loss(config, conformance.MAX_BUDGET) == problem.true_loss(config)
    assert problem.loss(config, None) == problem.true_loss(config)
    low = problem.loss(config, conformance.MIN_BUDGET)
    assert low > problem.true_loss(config) and low == problem.loss(dict(config), 1.0)
    # Out-of-range budgets are clipped: the checks, not the objective, catch such a searcher.
    assert problem.loss(config, 2 * conformance.MAX_BUDGET) == problem.true_loss(config)
    assert problem.loss(config, 0.5) == low


def test_run_keeps_trials_in_flight_and_counts_budget() -> None:
    problem = conformance.continuous_problem()
    searcher = conformance.make_searcher(OverBudget, problem.space, seed=0)
    pairs = conformance.run(searcher, problem, total_budget=40, in_flight=3, fail_every=2)
    assert sum(t.budget for t, _ in pairs) <= 40
    assert [t.budget for t, _ in pairs] == [1.0, 3.0, 9.0, 27.0]
    assert [r.ok for _, r in pairs] == [True, False, True, False]
    assert conformance.incumbent(pairs).id == 2  # the best at the highest budget that succeeded
    assert list(searcher.pending) == [4]  # asked, but it did not fit: never run
    assert math.isinf(pairs[1][1].loss) and isinstance(pairs[0][1], Result)
