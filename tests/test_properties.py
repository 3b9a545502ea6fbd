"""Property-based checks (hypothesis) of the two parsers a user types into: budgets and overrides.

Either the input is accepted and means exactly what it says, or it is refused with a one-line
`UserError`; no other exception ever escapes.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import spaces
from nas.budget import Budget, Unit, format_amount
from nas.errors import UserError
from spaces import parse_assignment
from spaces.conv import _conv_params
from spaces.mlp import _mlp_params

PROPERTY = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
SUFFIXES = ["ep", "epoch", "epochs", "s", "sec", "m", "min", "h", "trial", "trials", "u"]


def _one_line_user_error(exc: BaseException) -> None:
    assert isinstance(exc, UserError), f"{type(exc).__name__}: {exc}"
    assert str(exc) and "\n" not in str(exc)


# ---------------------------------------------------------------- budgets

# From the smallest normal float (denormals carry too few digits to print back) to 1e300
# (near the float limit "4.99e304h" reads back as inf seconds).
positive = st.floats(min_value=sys.float_info.min, max_value=1e300)
seconds = st.floats(min_value=1e-6, max_value=1e300)


@PROPERTY
@given(st.one_of(
    st.tuples(positive, st.sampled_from([Unit.EPOCHS, Unit.UNITS])),
    st.tuples(seconds, st.just(Unit.SECONDS)),
    st.tuples(st.integers(1, 10**18).map(float), st.just(Unit.TRIALS)),
))
def test_a_budget_prints_as_text_that_parses_back_to_it(case: tuple[float, Unit]) -> None:
    amount, unit = case
    budget = Budget(amount, unit)
    again = Budget.parse(str(budget))
    assert again.unit is unit
    if unit is Unit.TRIALS:
        assert again.amount == amount
    else:
        assert again.amount == amount  # format_amount writes the shortest exact text


@PROPERTY
@given(st.one_of(
    st.tuples(positive, st.sampled_from([Unit.EPOCHS, Unit.UNITS])),
    st.tuples(seconds, st.just(Unit.SECONDS)),
    # Trials print rounded: anything that rounds to one or more.
    st.tuples(st.floats(min_value=0.51, max_value=1e18), st.just(Unit.TRIALS)),
))
def test_format_amount_always_parses_back(case: tuple[float, Unit]) -> None:
    amount, unit = case
    assert Budget.parse(format_amount(amount, unit)).unit is unit


budget_like = st.builds(
    lambda sign, number, space, suffix: f"{sign}{number}{space}{suffix}",
    st.sampled_from(["", "-", "+", " "]),
    st.one_of(st.floats().map(repr), st.integers(-10**30, 10**30).map(str),
              st.from_regex(r"[0-9]{0,3}\.?[0-9]{0,3}([eE][-+]?[0-9]{1,4})?", fullmatch=True)),
    st.sampled_from(["", " ", "\t", "\n"]),
    st.sampled_from([*SUFFIXES, *(s.upper() for s in SUFFIXES), "parsecs", "", "ms", "d"]),
)


@PROPERTY
@given(st.one_of(st.text(max_size=30), budget_like))
def test_any_text_is_a_positive_finite_budget_or_a_one_line_user_error(text: str) -> None:
    try:
        budget = Budget.parse(text)
    except OverflowError:
        # The known gap pinned by `test_a_huge_number_of_trials_is_a_user_error`: nothing else
        # may get here.
        assert re.search(r"trials?\s*$", text, re.IGNORECASE), text
        return
    except Exception as exc:
        _one_line_user_error(exc)
        return
    assert math.isfinite(budget.amount) and budget.amount > 0
    assert isinstance(budget.unit, Unit)
    if budget.unit is Unit.TRIALS:
        assert budget.amount == int(budget.amount)


def test_a_huge_number_of_trials_is_a_user_error() -> None:
    with pytest.raises(UserError, match="positive"):
        Budget.parse("1e999trials")


def test_a_tiny_time_budget_prints_back() -> None:
    assert Budget.parse(str(Budget(0.04, Unit.SECONDS))).amount > 0


def test_a_budget_prints_back_exactly() -> None:
    assert Budget.parse(str(Budget(1234567, Unit.EPOCHS))) == Budget(1234567, Unit.EPOCHS)


# ---------------------------------------------------------------- space overrides

FACTORIES = {"residual-mlp": (spaces.residual_mlp, _mlp_params),
             "residual-conv": (spaces.residual_conv, _conv_params)}
# Hard limits the factories enforce beyond what a Param says (family, name) -> (min, max).
HARD_LIMITS = {
    ("residual-mlp", "n_blocks"): (1, 8),
    ("residual-conv", "n_stages"): (1, 3),
    ("residual-conv", "n_nodes"): (1, 4),
    ("residual-conv", "n_cells"): (1, math.inf),
}


def _params(kinds: tuple[str, ...]) -> list[tuple[str, Any]]:
    return [(family, p) for family, (_, params) in FACTORIES.items() for p in params()
            if p.kind in kinds and p.name != "architecture"]


NUMERIC = _params(("int", "float"))
CHOICE = _params(("categorical", "ordinal"))


def _sampled(space: Any, name: str, seed: int, n: int = 20) -> list[Any]:
    space.seed(seed)
    return [c[name] for c in space.sample_configuration(n) if name in c]


@st.composite
def numeric_override(draw: st.DrawFn) -> tuple[str, Any, Any, Any]:
    family, param = draw(st.sampled_from(NUMERIC))
    if param.kind == "int":
        bound = st.integers(-20, 3000)
    else:
        bound = st.one_of(st.floats(-2.0, 2.0), st.floats(1e-8, 1e3), st.just(0.0))
    return family, param, draw(bound), draw(bound)


@PROPERTY
@given(numeric_override(), st.integers(0, 2**16))
def test_a_numeric_override_sets_the_range_or_is_refused(case: Any, seed: int) -> None:
    family, param, low, high = case
    factory = FACTORIES[family][0]
    lo_limit, hi_limit = HARD_LIMITS.get((family, param.name), (-math.inf, math.inf))
    refused = low > high or (param.log and low <= 0) or low < lo_limit or high > hi_limit
    # ConfigSpace keeps 13 decimals: a range that collapses to a point, e.g. (-1e-166, 0.0), or
    # a log range whose low rounds to 0, may be refused.
    degenerate = round(low, 13) == round(high, 13) or (param.log and round(low, 13) <= 0)
    try:
        space = factory(**{param.name: (low, high)})
    except Exception as exc:
        _one_line_user_error(exc)
        assert refused or degenerate, f"{param.name}=({low}, {high}) refused: {exc}"
        return
    assert not refused, f"{param.name}=({low}, {high}) accepted"
    hp = space[param.name]
    if low == high:
        assert hp.value == low
    else:
        assert hp.log == param.log
        assert _same(hp.lower, low) and _same(hp.upper, high)
        assert _within(hp.default_value, low, high)
    assert all(_within(v, low, high) for v in _sampled(space, param.name, seed))


# ConfigSpace keeps float bounds (and so draws) to 13 decimal places.
def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-13)


def _within(v: float, low: float, high: float) -> bool:
    return math.isfinite(v) and (low <= v <= high or _same(v, low) or _same(v, high))


any_number = st.one_of(
    st.floats(), st.integers(-(10**40), 10**40),
    st.sampled_from([0, 1, -1, 1e-300, 1e300, 2**63, float("nan"), float("inf")]),
)


@PROPERTY
@given(st.sampled_from(NUMERIC), any_number, any_number, st.booleans())
def test_any_numeric_override_is_honoured_or_a_one_line_user_error(
        where: Any, a: Any, b: Any, fixed: bool) -> None:
    family, param = where
    value = a if fixed else (a, b)
    try:
        space = FACTORIES[family][0](**{param.name: value})
    except Exception as exc:
        _one_line_user_error(exc)
        return
    low, high = (a, a) if fixed else (a, b)
    assert all(_within(v, low, high) for v in _sampled(space, param.name, seed=0))


@st.composite
def choice_override(draw: st.DrawFn) -> tuple[str, Any, list[Any]]:
    family, param = draw(st.sampled_from(CHOICE))
    pool = list(param.allowed or param.choices)
    return family, param, draw(st.lists(st.sampled_from(pool), unique=True,
                                        max_size=len(pool)))


@PROPERTY
@given(choice_override(), st.integers(0, 2**16))
def test_a_subset_of_choices_is_exactly_what_the_space_offers(case: Any, seed: int) -> None:
    family, param, subset = case
    try:
        space = FACTORIES[family][0](**{param.name: subset})
    except Exception as exc:
        _one_line_user_error(exc)
        assert not subset, f"{param.name}={subset} refused: {exc}"
        return
    assert subset
    hp = space[param.name]
    offered = [hp.value] if len(subset) == 1 else list(getattr(hp, "choices", None)
                                                       or hp.sequence)
    expected = sorted(subset) if param.kind == "ordinal" else subset
    assert offered == expected
    assert set(_sampled(space, param.name, seed)) <= set(subset)


@PROPERTY
@given(st.sampled_from(CHOICE), st.lists(st.one_of(st.text(max_size=8), st.integers(),
                                                   st.floats()), max_size=4))
def test_any_choice_override_is_honoured_or_a_one_line_user_error(
        where: Any, values: list[Any]) -> None:
    family, param = where
    try:
        space = FACTORIES[family][0](**{param.name: values})
    except Exception as exc:
        _one_line_user_error(exc)
        return
    pool = set(param.allowed or param.choices)
    assert set(_sampled(space, param.name, seed=0)) <= pool


names = st.sampled_from(sorted({p.name for _, p in NUMERIC + CHOICE} | {"ops", "depth", ""}))
raw_values = st.one_of(
    st.text(max_size=20),
    st.from_regex(r"-?[0-9.]{0,5}(e-?[0-9]{1,3})?(:-?[0-9.]{0,5})?", fullmatch=True),
    st.lists(st.sampled_from(["adam", "sgd", "relu", "gelu", "conv3x3", "none", "free", "32",
                              "64", "0.5", "nan", "inf", "", " "]), max_size=4).map(",".join),
)


@PROPERTY
@given(st.text(max_size=40))
def test_parse_assignment_raises_nothing_but_user_error(text: str) -> None:
    try:
        name, _ = parse_assignment(text)
    except Exception as exc:
        _one_line_user_error(exc)
        return
    assert name and name == name.strip() and "=" in text


@PROPERTY
@given(names, raw_values, st.sampled_from(sorted(FACTORIES)))
def test_a_typed_override_builds_a_space_or_is_a_one_line_user_error(
        name: str, raw: str, family: str) -> None:
    """What `nas search --set NAME=RAW` does, down to the models (for the MLP family)."""
    try:
        key, value = parse_assignment(f"{name}={raw}")
        space = FACTORIES[family][0](**{key: value})
    except Exception as exc:
        _one_line_user_error(exc)
        return
    assume(family == "residual-mlp")  # the build check of spaces.get: quick for MLPs only
    try:
        assert spaces.get(family, **{key: value}) == space
    except Exception as exc:
        _one_line_user_error(exc)
