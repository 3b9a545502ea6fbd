"""The test spaces of the conformance suite: mixed (conditions, forbiddens), tiny, continuous."""

from __future__ import annotations

from ConfigSpace import (
    Categorical,
    ConfigurationSpace,
    Constant,
    EqualsCondition,
    Float,
    ForbiddenAndConjunction,
    ForbiddenEqualsClause,
    ForbiddenInClause,
    GreaterThanCondition,
    InCondition,
    Integer,
    OrdinalHyperparameter,
)


def mixed_space() -> ConfigurationSpace:
    """A 10-parameter space: int (log), float (log), categorical, ordinal, constant, conditions.

    `momentum` is active only for ``optimizer == "sgd"``, `nesterov` only when momentum > 0.5
    (nested), `negative_slope` for two activations; sgd with gelu or elu is forbidden.
    """
    space = ConfigurationSpace(name="conformance-mixed")
    space.add([
        Integer("n_layers", (1, 6), default=2),
        Integer("width", (16, 1024), log=True),
        Float("lr", (1e-5, 1e-1), log=True),
        Categorical("optimizer", ["adam", "sgd", "rmsprop"]),
        Float("momentum", (0.0, 0.99)),
        Categorical("nesterov", ["off", "on"]),
        Categorical("activation", ["relu", "gelu", "leaky_relu", "elu"]),
        Float("negative_slope", (1e-3, 0.3), log=True),
        OrdinalHyperparameter("batch_size", [16, 32, 64, 128, 256]),
        Constant("arch", "mlp"),
    ])
    space.add([
        EqualsCondition(space["momentum"], space["optimizer"], "sgd"),
        GreaterThanCondition(space["nesterov"], space["momentum"], 0.5),
        InCondition(space["negative_slope"], space["activation"], ["leaky_relu", "elu"]),
    ])
    # An In-clause makes the forbidden region large (1/6 of the space), so a searcher that
    # ignores forbiddens is caught within a few dozen asks.
    space.add(ForbiddenAndConjunction(
        ForbiddenEqualsClause(space["optimizer"], "sgd"),
        ForbiddenInClause(space["activation"], ["gelu", "elu"]),
    ))
    return space


def tiny_space() -> ConfigurationSpace:
    """One categorical parameter with two values: a searcher must not loop looking for new ones."""
    space = ConfigurationSpace(name="conformance-tiny")
    space.add(Categorical("choice", ["a", "b"]))
    return space


def continuous_space() -> ConfigurationSpace:
    """Two floats, one of them on a log scale."""
    space = ConfigurationSpace(name="conformance-continuous")
    space.add([Float("x", (-5.0, 5.0)), Float("y", (1e-3, 1.0), log=True)])
    return space
