"""What each baseline tries (its settings on validation) and what fitting it costs.

The cost model sizes a baseline's training subsample so that all of them fit a time cap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from nas.errors import UserError

#: The baselines by name, in the order that breaks ties between equal cost estimates.
NAMES = ("logistic", "svm-rbf", "knn")

# k-NN tries 1 neighbour (best when classes form dense, clean clusters: digits), 5 and 15
# (which outvote label noise and overlapping classes) and keeps the best on validation: three
# candidates cover both regimes while the choice overfits the validation split little and
# costs two extra validation passes.
KNN_KS = (1, 5, 15)
# The regularisation a user tries first, each chosen on validation like k: logistic regression
# from strong to sklearn's default, the SVM at sklearn's default and weaker (its RBF usually
# wants C > 1 on standardised features).
LOGISTIC_CS = (0.01, 0.1, 1.0)
SVM_CS = (1.0, 10.0)
#: Images (inputs shaped (C, H, W)) are also tried average-pooled, by 2, 4, ... while the
#: pooled shorter side keeps this many pixels, and the resolution is chosen on validation with
#: C and k: distances between raw pixels punish every small shift, pooled images far less
#: (docs/decisions.md, "Baselines on pooled images").
MIN_POOLED_SIDE = 4
#: The one setting tried when the whole train split fits a time cap with it but not with all:
#: scikit-learn's default, a user's first try (fewer settings before fewer samples).
FIRST_CHOICE = {"logistic": 1.0, "svm-rbf": 1.0}
# sklearn's default; the cost estimate assumes the solver may use all of them.
LOGISTIC_MAX_ITER = 100

# Cost model, measured single-threaded on the slow machine kind (an AMD EPYC without AVX-512)
# with digits, mnist1d and synthetic sets of 20 to 3,000 features, rounded up.
# Logistic (lbfgs): per iteration ~1e-9 s per sample x feature x class, plus ~1.5 ms of overhead.
_LOGISTIC_PER_UNIT, _LOGISTIC_PER_ITER = 1e-9, 1.5e-3
# SVC (libsvm): fitting evaluates O(n^2) kernels; one-vs-one over K classes costs about the
# same as one problem on all n. Predicting evaluates (support vectors <= n) x samples kernels.
# A kernel costs ~F operations plus a fixed part, hence (F + 16).
_SVM_FIT_PER_UNIT, _SVM_PREDICT_PER_UNIT = 1.5e-9, 2e-9
# k-NN (brute force): one distance per train x evaluated sample, BLAS-fast.
_KNN_PER_UNIT = 4e-10
_FIXED_S = 0.01
_KERNEL_OVERHEAD = 16
# The figures above are from a quiet machine; with other jobs sharing its 2 cores the same fits
# took 1.3-1.6 times as long, and a cap overrun costs more than a baseline fitted a bit smaller.
_SAFETY = 1.5


def pools_for(input_shape: Sequence[int]) -> tuple[int, ...]:
    """The pooling factors a baseline tries on inputs shaped `input_shape`: 1 (the inputs as
    they are), and for images (C, H, W) 2, 4, ... while the shorter side, pooled, keeps
    `MIN_POOLED_SIDE` pixels."""
    pools = [1]
    if len(input_shape) == 3:
        side = min(int(input_shape[1]), int(input_shape[2]))
        while math.ceil(side / (pools[-1] * 2)) >= MIN_POOLED_SIDE:
            pools.append(pools[-1] * 2)
    return tuple(pools)


def pooled_features(input_shape: Sequence[int], pool: int) -> int:
    """Features of an input shaped `input_shape` once average-pooled by `pool` (a partial
    window at an edge is one more pixel)."""
    if pool == 1:
        return math.prod(int(d) for d in input_shape)
    channels, height, width = (int(d) for d in input_shape)
    return channels * math.ceil(height / pool) * math.ceil(width / pool)


def estimate_seconds(name: str, *, n_train: int, n_features: int, n_classes: int,
                     n_val: int, n_test: int, settings: int | None = None,
                     also_features: Sequence[int] = ()) -> float:
    """Estimated seconds to fit baseline `name` on `n_train` samples and score it, trying
    `settings` of its regularisation values (default all), on `n_features` and on each of
    `also_features` (the same inputs pooled).

    Scoring covers the validation split (k-NN once per candidate k) and `n_test` test samples.
    """
    if also_features:
        return sum(estimate_seconds(name, n_train=n_train, n_features=f, n_classes=n_classes,
                                    n_val=n_val, n_test=n_test, settings=settings)
                   for f in (n_features, *also_features))
    n, f = float(n_train), float(n_features)
    kernel = f + _KERNEL_OVERHEAD
    if name == "logistic":
        work = (settings or len(LOGISTIC_CS)) * LOGISTIC_MAX_ITER * (
            _LOGISTIC_PER_UNIT * n * f * n_classes + _LOGISTIC_PER_ITER)
    elif name == "svm-rbf":
        work = (settings or len(SVM_CS)) * (
            _SVM_FIT_PER_UNIT * n * n * kernel
            + _SVM_PREDICT_PER_UNIT * n * (n_val + n_test) * kernel)
    elif name == "knn":
        work = _KNN_PER_UNIT * n * (len(KNN_KS) * n_val + n_test) * kernel
    else:
        raise UserError(f"unknown baseline {name!r}; known: {', '.join(NAMES)}")
    return _SAFETY * (_FIXED_S + work)


def largest_fitting(cost: Callable[[int], float], smallest: int, n: int,
                     left: float) -> int | None:
    """The largest size in [smallest, n] whose cost fits in `left` (cost grows with size)."""
    if cost(n) <= left:
        return n
    if cost(smallest) > left:
        return None
    low, high = smallest, n  # cost(low) fits, cost(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if cost(middle) <= left else (low, middle)
    return low

