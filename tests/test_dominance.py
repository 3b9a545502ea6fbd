from __future__ import annotations

import itertools

import numpy as np
import pytest

from nas.dominance import (
    crowding_distance,
    dominates,
    hypervolume,
    hypervolume_contributions,
    non_dominated,
    nondominated_sort,
    normalise,
)


def _brute_hv(points: np.ndarray, reference: np.ndarray) -> float:
    """Inclusion–exclusion over all subsets: the union of the boxes [p, reference]."""
    points = points[np.all(points < reference, axis=1)]
    total = 0.0
    for k in range(1, len(points) + 1):
        for subset in itertools.combinations(range(len(points)), k):
            corner = points[list(subset)].max(axis=0)
            total += (-1) ** (k + 1) * float(np.prod(reference - corner))
    return total


def test_dominates() -> None:
    assert dominates((1, 2), (1, 3))
    assert not dominates((1, 3), (1, 3))
    assert not dominates((1, 3), (2, 2))
    with pytest.raises(ValueError):
        dominates((1, 2), (1, 2, 3))


def test_non_dominated_keeps_the_first_of_equal_points() -> None:
    points = [(1, 3), (2, 2), (1, 3), (3, 3), (3, 1)]
    assert non_dominated(points) == [0, 1, 4]
    assert non_dominated([]) == []


def test_nondominated_sort_fronts_and_non_finite_last() -> None:
    points = [(1, 3), (2, 2), (3, 3), (4, 4), (np.nan, 0), (0, np.inf), (2, 2)]
    fronts = [sorted(f.tolist()) for f in nondominated_sort(points)]
    assert fronts == [[0, 1, 6], [2], [3], [4, 5]]


def test_nondominated_sort_matches_repeated_peeling() -> None:
    rng = np.random.default_rng(0)
    points = rng.integers(0, 5, size=(40, 3)).astype(float)
    left = list(range(len(points)))
    for front in nondominated_sort(points):
        expected = {i for i in left if not any(dominates(points[j], points[i]) for j in left)}
        assert set(front.tolist()) == expected
        left = [i for i in left if i not in expected]
    assert not left


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_hypervolume_matches_inclusion_exclusion(m: int) -> None:
    rng = np.random.default_rng(m)
    for _ in range(5):
        points = rng.random((7, m))
        reference = np.full(m, 0.9)
        assert hypervolume(points, reference) == pytest.approx(_brute_hv(points, reference))


def test_hypervolume_known_values() -> None:
    assert hypervolume([(1, 3), (2, 2), (3, 1)], (4, 4)) == 6.0
    assert hypervolume([(5, 1), (1, 5)], (4, 4)) == 0.0
    assert hypervolume([(4, 1)], (4, 4)) == 0.0  # on the reference: not strictly better
    assert hypervolume([], (1, 1)) == 0.0
    assert hypervolume([(0, 0, 0)], (1, 2, 3)) == 6.0
    # Two unit cubes overlapping in half a cube.
    assert hypervolume([(0, 0, 0), (0.5, 0, 0)], (1, 1, 1)) == 1.0
    assert hypervolume([(0, 0, 0.5), (0.5, 0.5, 0)], (1, 1, 1)) == pytest.approx(0.5 + 0.25 - 0.125)


def test_hypervolume_many_points_at_three_objectives() -> None:
    rng = np.random.default_rng(1)
    points = rng.random((300, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)  # all on one front
    value = hypervolume(points, (1.1, 1.1, 1.1))
    mc = rng.random((20000, 3)) * 1.1
    covered = np.zeros(len(mc), dtype=bool)
    for p in points:
        covered |= np.all(mc >= p, axis=1)
    assert value == pytest.approx(covered.mean() * 1.1**3, abs=0.02)


def test_hypervolume_contributions() -> None:
    points = np.array([(1, 3), (2, 2), (3, 1), (3, 3), (1, 3)])
    out = hypervolume_contributions(points, (4, 4))
    # (1,3) twice: neither alone adds area; (3,3) is dominated.
    assert out.tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]
    rng = np.random.default_rng(2)
    front = rng.random((6, 3))
    front = front[non_dominated(front)]
    ref = np.ones(3)
    for i, c in enumerate(hypervolume_contributions(front, ref)):
        rest = np.delete(front, i, axis=0)
        assert c == pytest.approx(_brute_hv(front, ref) - _brute_hv(rest, ref))


def test_crowding_distance() -> None:
    out = crowding_distance([(0, 4), (1, 2), (2, 1.5), (4, 0)])
    assert np.isinf(out[0]) and np.isinf(out[3])
    assert out[1] == pytest.approx(2 / 4 + 2.5 / 4)
    assert out[2] == pytest.approx(3 / 4 + 2 / 4)
    assert np.isinf(crowding_distance([(1, 1), (2, 0)])).all()


def test_normalise() -> None:
    out = normalise([(1, 5), (3, 5)], (1, 5), (3, 5))
    assert out.tolist() == [[0.0, 0.0], [1.0, 0.0]]
