"""Fitting the baselines on a Dataset's train split within a time cap, cheapest first."""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.baselines.costs import (
    FIRST_CHOICE,
    KNN_KS,
    LOGISTIC_CS,
    LOGISTIC_MAX_ITER,
    NAMES,
    SVM_CS,
    estimate_seconds,
    largest_fitting,
    pooled_features,
    pools_for,
)
from nas.baselines.model import Baseline, flat, pooled, single_thread
from nas.errors import UserError

if TYPE_CHECKING:
    from nas.data import Dataset

# No baseline is fitted on fewer samples than this (per class, and in all): a model fitted on
# less says nothing about the data.
_MIN_PER_CLASS, _MIN_TRAIN = 10, 100
# The clock skips a planned baseline only when it would pass the cap by more than this share of
# it: the plan leaves no margin, so a clock a hair behind the estimates (the data's conversion,
# a busy moment) would otherwise skip the last baseline of nearly every tight plan.
_CLOCK_SLACK = 0.1
#: The estimates are the slowest machine's (`nas.baselines.costs`); on a faster one the fits'
#: clock scales them down, to at most this share: the most a fit ran faster than its estimate
#: where an underestimate overruns most, the SVM (docs/decisions.md, "Baselines' time cap").
FASTEST = 0.35
#: What the first baseline may cost when the cap has nothing left (a short budget on a busy
#: machine): half a second past the budget at most, for the model the search then returns.
FIRST_SECONDS = 0.5


def fit_baselines(data: Dataset, *, seconds: float, seed: int = 0, only: str | None = None,
                  train_size: int | None = None, speed: float | None = None,
                  settings: int | None = None) -> tuple[Baseline, ...]:
    """Fit every baseline on `data`'s train split within about `seconds`, cheapest first.

    One that would not fit in what is left is fitted on a stratified subsample whose estimated
    cost fits, or skipped (with the reason) when even a small one would not; the first always
    runs. The estimates are the slowest machine's, times `speed` (None: measured, the fits' own
    seconds against their estimates). Single-threaded; returned in the order they ran. `only`
    fits just that one on `train_size` samples (default all) trying `settings` values of its
    regularisation (default all; 1: `FIRST_CHOICE`), as a search did: its journaled baseline,
    fitted again. Where the whole split fits the cap with one setting but not with all, that
    one is fitted on the whole split (fewer settings before fewer samples).
    """
    if only is not None and only not in NAMES:
        raise UserError(f"no baseline named {only!r}; there are {', '.join(NAMES)}")
    if train_size is not None and only is None:
        raise UserError("train_size fits one baseline again: name it with only=")
    seconds = _check_seconds(seconds)
    seed = _check_seed(seed)
    start = time.perf_counter()
    y_train, y_val = data.y_train.cpu().numpy(), data.y_val.cpu().numpy()
    y_test = data.y_test.cpu().numpy() if data.has_test_split else None
    n, n_features = len(y_train), math.prod(data.input_shape)
    n_classes = int(data.num_classes)
    train_classes = len(np.unique(y_train))
    pools = pools_for(data.input_shape)
    also_features = tuple(pooled_features(data.input_shape, p) for p in pools[1:])

    @functools.cache
    def inputs(pool: int) -> _Inputs:
        # The train split stays as it is (no copy) until a baseline's subsample is taken.
        return _Inputs(flat(pooled(data.x_train, pool), None), flat(pooled(data.x_val, pool)),
                       None if y_test is None else flat(pooled(data.x_test, pool)))

    def fit(name: str, common: dict[str, Any], size: int, tried: int | None = None
            ) -> Baseline:
        keep = _subsample(y_train, size, np.random.default_rng([seed, NAMES.index(name)]))
        return _fit(name, common, {p: inputs(p) for p in pools}, keep,
                    (y_train[keep], y_val, y_test), seed, settings=tried)

    def common(name: str) -> dict[str, Any]:
        return {"name": name, "num_classes": n_classes, "input_shape": tuple(data.input_shape)}

    if only is not None:
        size = n if train_size is None else _check_size(train_size, n)
        return (fit(only, common(only), size, settings),)

    def estimate(name: str, size: int, tried: int | None = None) -> float:
        return estimate_seconds(name, n_train=size, n_features=n_features, n_classes=n_classes,
                                n_val=len(y_val), n_test=0 if y_test is None else len(y_test),
                                settings=tried, also_features=also_features)

    measured = 0.0  # the slowest of the fits so far, as a share of its estimate

    def cost(name: str, size: int, tried: int | None = None) -> float:
        scale = speed if speed is not None else (
            min(1.0, max(FASTEST, measured)) if measured else 1.0)
        return scale * estimate(name, size, tried)

    smallest = min(n, max(_MIN_TRAIN, _MIN_PER_CLASS * n_classes))
    order = sorted(NAMES, key=lambda name: estimate(name, n))  # stable: ties keep NAMES' order
    # What the fits so far took: with `speed` given, their estimates (the sizes are then a pure
    # function of the data); measured, their real seconds (an estimate 10x too high for k-NN
    # left nothing for the SVM).
    used = 0.0
    done: list[Baseline] = []
    for name in order:
        first = not any(b.fitted for b in done)
        if name != "knn" and train_classes < 2:
            done.append(_skipped(common(name), "the train split holds a single class"))
            continue
        left = seconds - used
        size = largest_fitting(functools.partial(cost, name), smallest, n, left)
        if size is None and not first:
            done.append(_skipped(common(name), f"would need about {cost(name, smallest):.2g} s "
                                 f"even on {smallest} of {n} training samples; "
                                 f"{max(left, 0.0):.2g} s of the {seconds:g} s cap were left"))
            continue
        if size is None:
            # The first always runs: with no time left, on as many samples as FIRST_SECONDS
            # buys, as the smallest sample can cost the model the search returns many points.
            size = largest_fitting(functools.partial(cost, name), smallest, n,
                                   FIRST_SECONDS) or smallest
        tried = None
        if size < n and name in FIRST_CHOICE and cost(name, n, 1) <= left:
            size, tried = n, 1  # the whole split with the default setting only
        # The clock also skips: on a machine slower or busier than the estimates say.
        spent = time.perf_counter() - start
        if not first and spent + cost(name, size, tried) > seconds * (1 + _CLOCK_SLACK):
            done.append(_skipped(common(name), f"the cap of {seconds:g} s would be passed: "
                                 f"{spent:.2g} s spent (the fits took {used:.2g} s)"
                                 f" and this one estimated at {cost(name, size, tried):.2g} s"))
            continue
        estimated = cost(name, size, tried)
        done.append(fit(name, common(name), size, tried))
        used += estimated if speed is not None else done[-1].seconds
        if estimate(name, size, tried) > 0:
            measured = max(measured, done[-1].seconds / estimate(name, size, tried))
    return tuple(done)


def best_baseline(baselines: Iterable[Baseline]) -> Baseline | None:
    """The fitted baseline with the highest validation accuracy (ties: the faster); None if none."""
    fitted = [b for b in baselines if b.fitted and b.val_accuracy is not None]
    if not fitted:
        return None
    return min(fitted, key=lambda b: (-float(b.val_accuracy or 0.0), b.seconds))



def _skipped(common: dict[str, Any], reason: str) -> Baseline:
    return Baseline(**common, val_accuracy=None, test_accuracy=None, seconds=0.0, skipped=reason)


@dataclass(frozen=True)
class _Inputs:
    """The flattened features of each split at one resolution (`test` None: no test split)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray | None


def _fit(name: str, common: dict[str, Any], by_pool: Mapping[int, _Inputs], keep: np.ndarray,
         labels: tuple[np.ndarray, np.ndarray, np.ndarray | None], seed: int, *,
         settings: int | None = None) -> Baseline:
    """Fit baseline `name` on the train rows `keep` at every resolution of `by_pool`, trying
    all its regularisation values (or, with ``settings=1``, only `FIRST_CHOICE`) at each, and
    keep the best on validation (ties: the smaller pool); the result keeps the model."""
    y, y_val, y_test = labels
    start = time.perf_counter()
    chosen: tuple[int, Any, dict[str, Any], float] | None = None
    by_resolution: dict[int, float] = {}
    with single_thread():
        for pool, inputs in by_pool.items():
            model, params, by_resolution[pool] = _fit_one(
                name, inputs.train[keep].astype(np.float64), y, (inputs.val, y_val), seed,
                settings)
            if chosen is None or by_resolution[pool] > chosen[3]:
                chosen = (pool, model, params, by_resolution[pool])
        assert chosen is not None
        pool, model, params, val_accuracy = chosen
        test = by_pool[pool].test
        test_accuracy = None if test is None or y_test is None \
            else _accuracy(model, test, y_test)
    if len(by_pool) > 1:
        params = {**params, "pool": pool, "val_accuracy_by_pool": MappingProxyType(by_resolution)}
    return Baseline(**common, val_accuracy=val_accuracy, test_accuracy=test_accuracy,
                    seconds=time.perf_counter() - start, train_size=len(y),
                    params=MappingProxyType(params), model=model, pool=pool)


def _fit_one(name: str, x: np.ndarray, y: np.ndarray, val: tuple[np.ndarray, np.ndarray],
             seed: int, settings: int | None) -> tuple[Any, dict[str, Any], float]:
    """Baseline `name` fitted on (x, y) with the setting best on `val`, its params, and its
    accuracy on `val` (the score that chose it)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    if name == "logistic":
        def logistic(c: float) -> Any:
            # Multinomial is lbfgs's default for several classes (the option is deprecated).
            model = LogisticRegression(C=c, max_iter=LOGISTIC_MAX_ITER, random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # reported in params
                return model.fit(x, y)

        c, model, scores = _best_on(val, _tried(name, LOGISTIC_CS, settings), logistic)
        return model, {"C": c, "converged": bool(np.max(model.n_iter_) < LOGISTIC_MAX_ITER),
                       "val_accuracy_by_C": MappingProxyType(scores)}, scores[c]
    if name == "svm-rbf":
        # break_ties: predict is then the argmax of the one-vs-rest decision function, the
        # scores predict_proba softmaxes, instead of a one-vs-one vote won by the first.
        # gamma="scale" spelled out, so that params can say what it was.
        spread = float(x.var()) * x.shape[1]
        gamma = 1.0 / spread if spread > 0 else 1.0
        # probability is left at its default, False: passing it is deprecated since 1.9.
        c, model, scores = _best_on(val, _tried(name, SVM_CS, settings), lambda c: SVC(
            kernel="rbf", C=c, gamma=gamma, break_ties=True, random_state=seed).fit(x, y))
        return model, {"C": c, "gamma": gamma,
                       "val_accuracy_by_C": MappingProxyType(scores)}, scores[c]
    model = KNeighborsClassifier(algorithm="brute", n_jobs=1).fit(x, y)
    scores = {}
    for k in (k for k in KNN_KS if k <= len(y)):
        model.set_params(n_neighbors=k)
        scores[k] = _accuracy(model, *val)
    # Ties go to the larger k: smoother, so less fitted to this validation split.
    best = max(scores, key=lambda k: (scores[k], k))
    model.set_params(n_neighbors=best)
    return model, {"k": best, "val_accuracy_by_k": MappingProxyType(dict(scores))}, scores[best]


def _tried(name: str, values: Sequence[float], settings: int | None) -> Sequence[float]:
    """The regularisation values to try: all, or with one setting `FIRST_CHOICE` alone."""
    return (FIRST_CHOICE[name],) if settings == 1 else values


def _best_on(val: tuple[np.ndarray, np.ndarray], settings: Sequence[float],
             fit: Callable[[float], Any]) -> tuple[float, Any, dict[float, float]]:
    """The setting whose fitted model scores best on `val` (ties: the first, the more
    regularised), that model, and every setting's score."""
    best: tuple[float, Any] | None = None
    scores: dict[float, float] = {}
    for setting in settings:
        model = fit(setting)
        scores[setting] = _accuracy(model, *val)
        if best is None or scores[setting] > scores[best[0]]:
            best = (setting, model)
    assert best is not None
    return best[0], best[1], scores


def _accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.predict(x) == y))


def _subsample(y: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a stratified random subset of `size` samples (all of them, in order, if more).

    Each class keeps its share, and every class at least one sample when size allows.
    """
    if size >= len(y):
        return np.arange(len(y))
    order = rng.permutation(len(y))
    shuffled = y[order]
    by_class = np.argsort(shuffled, kind="stable")
    first = np.searchsorted(shuffled[by_class], shuffled[by_class], side="left")
    rank = np.empty(len(y), dtype=np.int64)
    rank[by_class] = np.arange(len(y)) - first
    # Taking the smallest rank-within-class fractions interleaves the classes in proportion.
    fraction = rank / np.bincount(shuffled)[shuffled]
    return np.sort(order[np.argsort(fraction, kind="stable")[:size]])



def _check_seconds(seconds: Any) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.floating, np.integer)) \
            or not math.isfinite(seconds) or seconds < 0:
        raise UserError(f"seconds must be a finite number of at least 0, got {seconds!r}")
    return float(seconds)


def _check_size(size: Any, n: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= n:
        raise UserError(f"train_size must be a whole number from 1 to {n}, got {size!r}")
    return int(size)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)

