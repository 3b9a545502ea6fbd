"""Pareto dominance, non-dominated sorting, hypervolume and crowding, every objective minimised.

Pure numpy, no state: the searchers' promotion and modelling rules and the engine's reports
share these, so one domination rule holds everywhere.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

import numpy as np

ArrayLike = Sequence[Sequence[float]] | np.ndarray


def _matrix(points: ArrayLike) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.size == 0:
        return array.reshape(0, array.shape[1] if array.ndim == 2 else 0)
    if array.ndim != 2:
        raise ValueError(f"points must be a 2-D array (n, m), got shape {array.shape}")
    return array


def dominates(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> bool:
    """Whether `a` is at least as good as `b` in every objective and better in one."""
    # Plain Python: callers test one pair at a time on short tuples, where numpy's overhead
    # would dominate (a followed front tests every new point against all it holds).
    pairs = list(zip(a, b, strict=True))
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


def _dominance_matrix(array: np.ndarray) -> np.ndarray:
    """`out[i, j]`: row i dominates row j."""
    le = np.all(array[:, None, :] <= array[None, :, :], axis=2)
    lt = np.any(array[:, None, :] < array[None, :, :], axis=2)
    return le & lt


def non_dominated(points: ArrayLike) -> list[int]:
    """Indices of the points no other point dominates; of equal points, only the first."""
    array = _matrix(points)
    n = len(array)
    if n == 0:
        return []
    dominated = _dominance_matrix(array).any(axis=0)
    equal = np.all(array[:, None, :] == array[None, :, :], axis=2)
    earlier_twin = np.tril(equal, k=-1).any(axis=1)  # an equal point with a smaller index
    return [i for i in range(n) if not dominated[i] and not earlier_twin[i]]


def nondominated_sort(points: ArrayLike) -> list[np.ndarray]:
    """Fronts of row indices, best first (equal points share a front); rows with any non-finite
    value all go in one last front, since they cannot be compared meaningfully."""
    array = _matrix(points)
    finite = np.all(np.isfinite(array), axis=1) if len(array) else np.zeros(0, dtype=bool)
    good = np.flatnonzero(finite)
    fronts: list[np.ndarray] = []
    if len(good):
        beats = _dominance_matrix(array[good])
        remaining = np.ones(len(good), dtype=bool)
        while remaining.any():
            # A row is in the next front when nothing still remaining dominates it.
            free = remaining & ~(beats & remaining[:, None]).any(axis=0)
            fronts.append(good[free])
            remaining &= ~free
    bad = np.flatnonzero(~finite)
    if len(bad):
        fronts.append(bad)
    return fronts


def _inside(array: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The rows strictly better than the reference in every objective."""
    return array[np.all(array < reference, axis=1)] if len(array) else array


def _hv2(array: np.ndarray, reference: np.ndarray) -> float:
    order = np.lexsort((array[:, 1], array[:, 0]))
    area, ceiling = 0.0, float(reference[1])
    for x, y in array[order]:  # left to right: each point adds the strip below the lowest yet
        if y < ceiling:
            area += (reference[0] - x) * (ceiling - y)
            ceiling = y
    return float(area)


def _hv3(array: np.ndarray, reference: np.ndarray) -> float:
    """Three objectives in O(n log n) (Beume et al. 2009's sweep): points by the last
    objective, the first two's dominated area kept as a staircase updated point by point."""
    rx, ry, rz = (float(v) for v in reference)
    xs: list[float] = []  # the staircase, by the first objective; the second falls along it
    ys: list[float] = []
    area, volume = 0.0, 0.0
    points = array[np.argsort(array[:, 2], kind="stable")]
    for i, (x, y, z) in enumerate(points.tolist()):
        pos = bisect_left(xs, x)
        left = ys[pos - 1] if pos else ry
        if left <= y or (pos < len(xs) and xs[pos] == x and ys[pos] <= y):
            pass  # dominated in the plane: the area stays
        else:
            end = pos
            while end < len(xs) and ys[end] >= y:
                end += 1
            # The area the point adds: above its height, up to the next step that stays.
            edges = [x, *xs[pos:end], xs[end] if end < len(xs) else rx]
            heights = [left, *ys[pos:end]]
            area += sum((h - y) * (b - a) for h, a, b in zip(heights, edges, edges[1:],
                                                             strict=False))
            xs[pos:end], ys[pos:end] = [x], [y]
        top = rz if i + 1 == len(points) else float(points[i + 1, 2])
        volume += area * (top - z)
    return volume


def _hv(array: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume of rows already strictly inside the reference box."""
    n, m = array.shape
    if n == 0:
        return 0.0
    if m == 1:
        return float(reference[0] - array[:, 0].min())
    if m == 2:
        return _hv2(array, reference)
    if m == 3:
        return _hv3(array, reference)
    # Slice along the last objective (HSO): between consecutive values of it, the dominated
    # region is the (m-1)-D hypervolume of the points already passed. Pruning dominated rows
    # at each level keeps a few hundred points at m=3 quick.
    array = array[non_dominated(array)]
    array = array[np.argsort(array[:, -1], kind="stable")]
    volume = 0.0
    for i in range(len(array)):
        top = reference[-1] if i + 1 == len(array) else array[i + 1, -1]
        depth = top - array[i, -1]
        if depth > 0:
            volume += depth * _hv(array[: i + 1, :-1], reference[:-1])
    return float(volume)


def hypervolume(points: ArrayLike, reference: Sequence[float] | np.ndarray) -> float:
    """The volume the points dominate below `reference` (exact, any number of objectives);
    points not strictly better than the reference in every objective count nothing."""
    ref = np.asarray(reference, dtype=float)
    array = _matrix(points)
    if len(array) == 0:
        return 0.0
    if array.shape[1] != len(ref):
        raise ValueError(f"points have {array.shape[1]} objectives, the reference {len(ref)}")
    return _hv(_inside(array, ref), ref)


def hypervolume_contributions(points: ArrayLike,
                              reference: Sequence[float] | np.ndarray) -> np.ndarray:
    """Each point's exclusive hypervolume: what the set loses without it (zero for a dominated
    point, and for each of two equal points)."""
    array = _matrix(points)
    n = len(array)
    if n == 0:
        return np.zeros(0)
    ref = np.asarray(reference, dtype=float)
    total = hypervolume(array, ref)
    out = np.empty(n)
    for i in range(n):
        out[i] = total - hypervolume(np.delete(array, i, axis=0), ref)
    return np.maximum(out, 0.0)  # rounding may leave a tiny negative for a zero contribution


def crowding_distance(points: ArrayLike) -> np.ndarray:
    """NSGA-II crowding distance of each point of one front: the sum over objectives of the
    normalised gap between its neighbours; the extremes of each objective are infinite."""
    array = _matrix(points)
    n = len(array)
    distance = np.zeros(n)
    if n == 0:
        return distance
    for k in range(array.shape[1]):
        order = np.argsort(array[:, k], kind="stable")
        values = array[order, k]
        distance[order[0]] = distance[order[-1]] = np.inf
        span = values[-1] - values[0]
        if n > 2 and span > 0 and np.isfinite(span):
            distance[order[1:-1]] += (values[2:] - values[:-2]) / span
    return distance


def normalise(points: ArrayLike, lower: Sequence[float] | np.ndarray,
              upper: Sequence[float] | np.ndarray) -> np.ndarray:
    """Points mapped so `lower` goes to 0 and `upper` to 1 in each objective; an objective with
    no spread (upper == lower) maps to 0 rather than dividing by zero."""
    array = _matrix(points)
    low, high = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    span = high - low
    span = np.where(span > 0, span, 1.0)
    return (array - low) / span
