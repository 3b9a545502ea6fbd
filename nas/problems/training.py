"""Training problems: a residual MLP or residual conv cells trained on scikit-learn digits or
MNIST-1D through the project's trainer. Torch is imported only when one is evaluated (or its
space asked for)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ConfigSpace import ConfigurationSpace

from nas.problems.core import PROBLEMS, Problem

if TYPE_CHECKING:
    from nas.data import Dataset

# ---------------------------------------------------------------- training problems
#
# Budgets run from 1 to 27 epochs: Hyperband/BOHB with eta=3 get four rungs (1, 3, 9, 27). Each
# space is narrowed so that a typical configuration trains 27 epochs in at most a few seconds on
# one CPU core (sampled medians 0.5-1.5 s, largest configurations 3-7 s). Spaces and evaluation
# functions are module-level functions and partials of them, so that a problem's `evaluate`
# pickles for worker processes.

_TRAIN_MIN_BUDGET = 1.0
_TRAIN_MAX_BUDGET = 27.0


def _mlp_space(**overrides: Any) -> ConfigurationSpace:
    """The residual MLP space with `overrides`; imports torch, only when a space is asked for."""
    from spaces import residual_mlp

    return residual_mlp(**overrides)


def _conv_space(**overrides: Any) -> ConfigurationSpace:
    """The residual conv space with `overrides`; imports torch, only when a space is asked for."""
    from spaces import residual_conv

    return residual_conv(**overrides)


@functools.cache
def _dataset(name: str) -> Dataset:
    """Built-in dataset `name` with its default splits, loaded once per process."""
    from nas.data import load

    return load(name)


def _train_evaluate(dataset: str, config: Mapping[str, Any], budget: float,
                    seed: int) -> dict[str, Any]:
    """Train the model `config` describes on `dataset` for `budget` epochs; loss 1 - val acc."""
    from nas.trainer import TrainerOptions, train_config
    from nas.types import TrialStatus

    result = train_config(config, _dataset(dataset), epochs=budget, seed=seed,
                          options=TrainerOptions(device="cpu")).result
    if result.status is TrialStatus.DIVERGED:
        # Worst possible loss; accuracy and validation loss of a diverged model are unknown.
        return {"loss": 1.0, "val_accuracy": None, "val_loss": None, "epochs": result.epochs,
                "status": result.status.value, "error": result.error}
    return {
        "loss": 1.0 - float(result.metrics["val_accuracy"]),
        # Validation cross-entropy orders equal accuracies, as in a search.
        "tiebreak_loss": float(result.metrics["val_loss"]),
        "val_accuracy": float(result.metrics["val_accuracy"]),
        "val_loss": float(result.metrics["val_loss"]),
        "epochs": result.epochs,
        "status": result.status.value,
    }


def _training_problem(name: str, description: str, dataset: str,
                      space: Callable[[], ConfigurationSpace]) -> Problem:
    """A problem that trains on built-in `dataset` for 1 to 27 epochs; loss 1 - val accuracy."""
    # No true loss: the optimum is unknown and training noise has no closed-form expectation, so
    # regret is left to the synthetic problems.
    return Problem(
        name=name,
        description=description,
        min_budget=_TRAIN_MIN_BUDGET,
        max_budget=_TRAIN_MAX_BUDGET,
        budget_unit="ep",
        optimum=math.nan,
        _space=space,
        _evaluate=functools.partial(_train_evaluate, dataset),
        _true_loss=None,
    )


@PROBLEMS.register("digits-mlp")
def _digits_mlp() -> Problem:
    return _training_problem(
        "digits-mlp", "residual MLP (width 16-256, 1-4 blocks) on sklearn digits; loss 1 - val acc",
        "digits", functools.partial(_mlp_space, width=(16, 256), n_blocks=(1, 4)),
    )


@PROBLEMS.register("digits-conv")
def _digits_conv() -> Problem:
    # One stage (8x8 maps throughout) of one or two cells with three searched edges (the cell
    # of a pre-activation basic block and its variants); a third cell node would nearly double
    # the time of the largest configurations.
    space = functools.partial(_conv_space, n_stages=1, channel_growth="double", n_cells=(1, 2),
                              channels=(8, 16), n_nodes=2)
    return _training_problem(
        "digits-conv",
        "residual conv cells (1 stage, 1-2 cells, 8-16 channels) on sklearn digits; "
        "loss 1 - val acc",
        "digits", space,
    )


@PROBLEMS.register("mnist1d-mlp")
def _mnist1d_mlp() -> Problem:
    return _training_problem(
        "mnist1d-mlp", "residual MLP (width 16-128, 1-3 blocks) on MNIST-1D; loss 1 - val acc",
        "mnist1d", functools.partial(_mlp_space, width=(16, 128), n_blocks=(1, 3)),
    )
