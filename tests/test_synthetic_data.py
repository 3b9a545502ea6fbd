"""Tests of the datasets nobody tuned on (`nas.data.synthetic`): shapes, classes, seeds, and
that the image sets are not solved by a linear model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.data import Dataset, available, describe, load

#: name -> (input shape, classes, (train, val, test) sizes)
EXPECTED: dict[str, tuple[tuple[int, ...], int, tuple[int, int, int]]] = {
    "wine": ((13,), 3, (106, 36, 36)),
    "breast-cancer": ((30,), 2, (341, 114, 114)),
    "shapes16": ((1, 16, 16), 8, (3000, 1000, 1000)),
    "shapes28": ((1, 28, 28), 8, (3000, 1000, 1000)),
    "templates16": ((1, 16, 16), 10, (3000, 1000, 1000)),
    "mnist1d-hard": ((1, 40), 10, (3600, 400, 1000)),
}
IMAGES = ("shapes16", "shapes28", "templates16", "mnist1d-hard")


def _splits(ds: Dataset) -> list[torch.Tensor]:
    return [ds.x_train, ds.y_train, ds.x_val, ds.y_val, ds.x_test, ds.y_test]


def _flat(x: torch.Tensor) -> np.ndarray:
    return x.reshape(len(x), -1).numpy()


def test_registered_and_described() -> None:
    names = available()
    for name in EXPECTED:
        assert name in names
        assert describe()[name]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_loads_with_its_shapes_and_classes(name: str) -> None:
    shape, classes, sizes = EXPECTED[name]
    ds = load(name, seed=0)
    assert ds.input_shape == shape and ds.num_classes == classes and ds.has_test_split
    assert (ds.sizes["train"], ds.sizes["val"], ds.sizes["test"]) == sizes
    for y in (ds.y_train, ds.y_val, ds.y_test):
        # Every split holds every class (stratified or balanced).
        assert sorted(torch.unique(y).tolist()) == list(range(classes))
    assert all(bool(torch.isfinite(x).all()) for x in (ds.x_train, ds.x_val, ds.x_test))


@pytest.mark.parametrize("name", list(EXPECTED))
def test_deterministic_for_a_seed_and_differs_across_seeds(name: str) -> None:
    first, again = load(name, seed=0), load(name, seed=0)
    numpy_state = np.random.get_state()[1].copy()
    # No other test loads seed 1, so mnist1d-hard generates it here: make_dataset reseeds
    # NumPy's global generator, which the loader must put back.
    other = load(name, seed=1)
    assert np.array_equal(np.random.get_state()[1], numpy_state)
    assert all(torch.equal(a, b) for a, b in zip(_splits(first), _splits(again), strict=True))
    assert not torch.equal(first.x_test, other.x_test)
    # A loaded dataset is the caller's to change: the next load must not see it.
    first.x_train.add_(1.0)
    assert torch.equal(load(name, seed=0).x_train, again.x_train)


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_linear_model_is_far_from_perfect(name: str) -> None:
    """Logistic regression on raw pixels stays well below 95 %: the task is not trivial."""
    from sklearn.linear_model import LogisticRegression

    ds = load(name, seed=0)
    model = LogisticRegression(max_iter=100).fit(_flat(ds.x_train), ds.y_train.numpy())
    accuracy = model.score(_flat(ds.x_test), ds.y_test.numpy())
    assert 1.0 / ds.num_classes - 0.05 < accuracy < 0.6
