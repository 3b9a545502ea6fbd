"""The plain baselines a user would try first: logistic regression, an RBF SVM and k-NN.

`fit_baselines` fits them on a Dataset's train split within a time cap and scores them on its
validation (and test) split; a search's models should beat the best of them.
"""

from __future__ import annotations

import functools
import json
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from nas.errors import UserError

if TYPE_CHECKING:
    from nas.data import Dataset

#: The baselines by name, in the order that breaks ties between equal cost estimates.
NAMES = ("logistic", "svm-rbf", "knn")

# k-NN tries 1 neighbour (best when classes form dense, clean clusters: digits), 5 and 15
# (which outvote label noise and overlapping classes) and keeps the best on validation: three
# candidates cover both regimes while the choice overfits the validation split little and
# costs two extra validation passes.
_KNN_KS = (1, 5, 15)
# The regularisation a user tries first, each chosen on validation like k: logistic regression
# from strong to sklearn's default, the SVM at sklearn's default and weaker (its RBF usually
# wants C > 1 on standardised features).
_LOGISTIC_CS = (0.01, 0.1, 1.0)
_SVM_CS = (1.0, 10.0)
# sklearn's default; the cost estimate assumes the solver may use all of them.
_LOGISTIC_MAX_ITER = 100
# No baseline is fitted on fewer samples than this (per class, and in all): a model fitted on
# less says nothing about the data.
_MIN_PER_CLASS, _MIN_TRAIN = 10, 100

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
# The clock skips a planned baseline only when it would pass the cap by more than this share of
# it: the plan leaves no margin, so a clock a hair behind the estimates (the data's conversion,
# a busy moment) would otherwise skip the last baseline of nearly every tight plan.
_CLOCK_SLACK = 0.1


@dataclass(frozen=True, eq=False)
class Baseline:
    """One baseline fitted on the train split (or skipped), with its accuracies and model.

    `model` is the fitted scikit-learn estimator (None when skipped); it takes the flattened
    standardised features, and its classes are the dataset's label ids.
    """

    name: str
    val_accuracy: float | None
    test_accuracy: float | None
    #: Wall-clock seconds spent fitting and scoring (0.0 when skipped).
    seconds: float
    skipped: str | None = None
    num_classes: int = 2
    input_shape: tuple[int, ...] = ()
    #: Training samples it was fitted on: fewer than the train split when the cap subsampled it.
    train_size: int = 0
    #: Its settings (k for k-NN, C and gamma for the SVM, whether lbfgs converged, ...).
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    model: Any = field(default=None, repr=False)

    @property
    def fitted(self) -> bool:
        """Whether it was fitted (not skipped)."""
        return self.skipped is None and self.model is not None

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted label ids (int64, on `x`'s device) of standardised inputs (N, *input_shape)."""
        features = self._features(x)
        if len(features) == 0:
            return torch.zeros(0, dtype=torch.int64, device=x.device)
        with _single_thread():
            labels = self.model.predict(features)
        return torch.as_tensor(np.asarray(labels, dtype=np.int64), device=x.device)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, num_classes), float32 on `x`'s device; rows sum to 1.

        logistic: its softmax probabilities. svm-rbf: a softmax over the one-vs-rest decision
        function, scores whose argmax is the prediction, not calibrated probabilities.
        knn: the fractions of the k neighbours' votes. Classes absent from the train split get 0.
        """
        features = self._features(x)
        out = np.zeros((len(features), self.num_classes), dtype=np.float64)
        if len(features):
            classes = np.asarray(self.model.classes_, dtype=np.int64)
            with _single_thread():
                if self.name == "svm-rbf":
                    scores = np.asarray(self.model.decision_function(features), np.float64)
                    if scores.ndim == 1:  # two classes: the score of the second, the first 0
                        scores = np.stack([np.zeros_like(scores), scores], axis=1)
                    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
                    out[:, classes] = scores / scores.sum(axis=1, keepdims=True)
                else:
                    out[:, classes] = self.model.predict_proba(features)
        return torch.as_tensor(out, dtype=torch.float32, device=x.device)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with plain dicts in place of the read-only `params` (a fitted estimator
        pickles; `AutoClassifier` holding one must)."""
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        state["params"] = _thawed(self.params)
        return (_baseline_from, (state,))

    def to_dict(self) -> dict[str, Any]:
        """The journal's form (without the model)."""
        params = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in self.params.items()}
        return {"name": self.name, "val_accuracy": self.val_accuracy,
                "test_accuracy": self.test_accuracy, "seconds": self.seconds,
                "skipped": self.skipped, "train_size": self.train_size,
                "params": json.loads(json.dumps(params, default=str))}

    def _features(self, x: torch.Tensor) -> np.ndarray:
        if not self.fitted:
            raise UserError(f"baseline {self.name} was not fitted: {self.skipped}")
        if tuple(x.shape[1:]) != tuple(self.input_shape):
            raise UserError(f"baseline {self.name} takes samples shaped {self.input_shape}, "
                            f"got {tuple(x.shape[1:])}")
        return _flat(x)


def estimate_seconds(name: str, *, n_train: int, n_features: int, n_classes: int,
                     n_val: int, n_test: int) -> float:
    """Estimated seconds to fit baseline `name` on `n_train` samples and score it.

    Scoring covers the validation split (k-NN once per candidate k) and `n_test` test samples.
    """
    n, f = float(n_train), float(n_features)
    kernel = f + _KERNEL_OVERHEAD
    if name == "logistic":
        work = len(_LOGISTIC_CS) * _LOGISTIC_MAX_ITER * (
            _LOGISTIC_PER_UNIT * n * f * n_classes + _LOGISTIC_PER_ITER)
    elif name == "svm-rbf":
        work = len(_SVM_CS) * (_SVM_FIT_PER_UNIT * n * n * kernel
                               + _SVM_PREDICT_PER_UNIT * n * (n_val + n_test) * kernel)
    elif name == "knn":
        work = _KNN_PER_UNIT * n * (len(_KNN_KS) * n_val + n_test) * kernel
    else:
        raise UserError(f"unknown baseline {name!r}; known: {', '.join(NAMES)}")
    return _SAFETY * (_FIXED_S + work)


def fit_baselines(data: Dataset, *, seconds: float, seed: int = 0,
                  only: str | None = None) -> tuple[Baseline, ...]:
    """Fit every baseline on `data`'s train split within about `seconds`, cheapest first.

    One that would not fit in what is left is fitted on a stratified subsample whose estimated
    cost fits, or skipped (with the reason) when even a small one would not; the first always
    runs. Single-threaded. Returned in the order they ran. `only` fits just that one, exactly
    as the full call of the same arguments did (a journaled baseline, fitted again).
    """
    if only is not None and only not in NAMES:
        raise UserError(f"no baseline named {only!r}; there are {', '.join(NAMES)}")
    seconds = _check_seconds(seconds)
    seed = _check_seed(seed)
    start = time.perf_counter()
    # The train split stays as it is (no copy) until a baseline's subsample is taken from it.
    x_train, y_train = _flat(data.x_train, None), data.y_train.cpu().numpy()
    x_val, y_val = _flat(data.x_val), data.y_val.cpu().numpy()
    test = (_flat(data.x_test), data.y_test.cpu().numpy()) if data.has_test_split else None
    n, n_features = x_train.shape
    n_classes = int(data.num_classes)
    train_classes = len(np.unique(y_train))

    def cost(name: str, size: int) -> float:
        return estimate_seconds(name, n_train=size, n_features=n_features, n_classes=n_classes,
                                n_val=len(y_val), n_test=0 if test is None else len(test[1]))

    smallest = min(n, max(_MIN_TRAIN, _MIN_PER_CLASS * n_classes))
    order = sorted(NAMES, key=lambda name: cost(name, n))  # stable: ties keep NAMES' order
    planned = 0.0
    done: list[Baseline] = []
    for name in order:
        common: dict[str, Any] = {"name": name, "num_classes": n_classes,
                                  "input_shape": tuple(data.input_shape)}
        first = not any(b.fitted for b in done)
        if name != "knn" and train_classes < 2:
            done.append(_skipped(common, "the train split holds a single class"))
            continue
        # Sizes come from the estimates alone, never the clock, so that a fitted baseline
        # depends only on the data, the cap and the seed.
        left = seconds - planned
        size = _largest_fitting(functools.partial(cost, name), smallest, n, left)
        if size is None and not first:
            done.append(_skipped(common, f"would need about {cost(name, smallest):.2g} s even "
                                 f"on {smallest} of {n} training samples; {max(left, 0.0):.2g} s "
                                 f"of the {seconds:g} s cap were left"))
            continue
        size = smallest if size is None else size  # the first always runs, however small
        if only is not None and name != only:
            planned += cost(name, size)  # as if fitted: the sizes after it stay the same
            done.append(_skipped(common, "not asked for"))
            continue
        # The clock only skips: on a machine slower or busier than the cost model's.
        spent = time.perf_counter() - start
        if only is None and not first and spent + cost(name, size) > seconds * (1 + _CLOCK_SLACK):
            done.append(_skipped(common, f"the cap of {seconds:g} s would be passed: {spent:.2g} "
                                 f"s spent (more than the {planned:.2g} s estimated) and this "
                                 f"one estimated at {cost(name, size):.2g} s"))
            continue
        planned += cost(name, size)
        keep = _subsample(y_train, size, np.random.default_rng([seed, NAMES.index(name)]))
        done.append(_fit(name, common, x_train[keep].astype(np.float64), y_train[keep],
                         (x_val, y_val), test, seed))
    return tuple(done)


def best_baseline(baselines: Iterable[Baseline]) -> Baseline | None:
    """The fitted baseline with the highest validation accuracy (ties: the faster); None if none."""
    fitted = [b for b in baselines if b.fitted and b.val_accuracy is not None]
    if not fitted:
        return None
    return min(fitted, key=lambda b: (-float(b.val_accuracy or 0.0), b.seconds))


def linear_module(baseline: Baseline) -> torch.nn.Module:
    """The fitted logistic baseline as ``nn.Sequential(nn.Flatten(), nn.Linear(F, K))``.

    Its logits are sklearn's decision function (float32), so their softmax is its probabilities
    and their argmax its prediction; it takes the same standardised inputs, in eval mode.
    """
    if baseline.name != "logistic" or not baseline.fitted:
        state = "skipped" if baseline.skipped else "fitted"
        raise UserError(f"linear_module needs the fitted logistic baseline, got {state} "
                        f"{baseline.name}")
    model = baseline.model
    classes = np.asarray(model.classes_, dtype=np.int64)
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    n_features = coef.shape[1]
    weight = np.zeros((baseline.num_classes, n_features))
    # A class the train split lacks is never predicted: its logit is the lowest finite float,
    # finite so that a loss or softmax over these logits never meets inf - inf.
    bias = np.full(baseline.num_classes, float(torch.finfo(torch.float32).min))
    if len(classes) == 2:
        # Binary sklearn keeps one score s for the second class: logits (0, s) have the same
        # argmax (s > 0, ties to the first) and their softmax is its sigmoid.
        weight[classes[1]], bias[classes[1]], bias[classes[0]] = coef[0], intercept[0], 0.0
    else:
        weight[classes], bias[classes] = coef, intercept
    linear = torch.nn.Linear(n_features, baseline.num_classes)
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        linear.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return torch.nn.Sequential(torch.nn.Flatten(), linear).eval()


# ---------------------------------------------------------------- fitting


def _skipped(common: dict[str, Any], reason: str) -> Baseline:
    return Baseline(**common, val_accuracy=None, test_accuracy=None, seconds=0.0, skipped=reason)


def _fit(name: str, common: dict[str, Any], x: np.ndarray, y: np.ndarray,
         val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray] | None,
         seed: int) -> Baseline:
    """Fit baseline `name` on (x, y) and score it; the result keeps the model."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    start = time.perf_counter()
    params: dict[str, Any] = {}
    with _single_thread():
        if name == "logistic":
            def logistic(c: float) -> Any:
                # Multinomial is lbfgs's default for several classes (the option is deprecated).
                model = LogisticRegression(C=c, max_iter=_LOGISTIC_MAX_ITER, random_state=seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)  # reported in params
                    return model.fit(x, y)

            c, model, scores = _best_on(val, _LOGISTIC_CS, logistic)
            params = {"C": c, "converged": bool(np.max(model.n_iter_) < _LOGISTIC_MAX_ITER),
                      "val_accuracy_by_C": MappingProxyType(scores)}
        elif name == "svm-rbf":
            # break_ties: predict is then the argmax of the one-vs-rest decision function, the
            # scores predict_proba softmaxes, instead of a one-vs-one vote won by the first.
            # gamma="scale" spelled out, so that params can say what it was.
            spread = float(x.var()) * x.shape[1]
            gamma = 1.0 / spread if spread > 0 else 1.0
            # probability is left at its default, False: passing it is deprecated since 1.9.
            c, model, scores = _best_on(val, _SVM_CS, lambda c: SVC(
                kernel="rbf", C=c, gamma=gamma, break_ties=True, random_state=seed).fit(x, y))
            params = {"C": c, "gamma": gamma, "val_accuracy_by_C": MappingProxyType(scores)}
        else:
            model = KNeighborsClassifier(algorithm="brute", n_jobs=1).fit(x, y)
            scores = {}
            for k in (k for k in _KNN_KS if k <= len(y)):
                model.set_params(n_neighbors=k)
                scores[k] = _accuracy(model, *val)
            # Ties go to the larger k: smoother, so less fitted to this validation split.
            best = max(scores, key=lambda k: (scores[k], k))
            model.set_params(n_neighbors=best)
            params = {"k": best, "val_accuracy_by_k": MappingProxyType(dict(scores))}
        val_accuracy = _accuracy(model, *val)
        test_accuracy = None if test is None else _accuracy(model, *test)
    return Baseline(**common, val_accuracy=val_accuracy, test_accuracy=test_accuracy,
                    seconds=time.perf_counter() - start, train_size=len(y),
                    params=MappingProxyType(params), model=model)


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


def _largest_fitting(cost: Callable[[int], float], smallest: int, n: int,
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


def _flat(x: torch.Tensor, dtype: type[np.floating] | None = np.float64) -> np.ndarray:
    """Samples as rows of features, the layout scikit-learn fits on (a view if `dtype` is None)."""
    rows = x.detach().cpu().reshape(len(x), math.prod(x.shape[1:])).numpy()
    return rows if dtype is None else rows.astype(dtype)


@functools.cache
def _controller() -> Any:
    # Built once, after sklearn's modules are loaded: inspecting the loaded libraries costs
    # ~15 ms, each limit afterwards ~0.1 ms.
    import sklearn.neighbors
    import sklearn.svm  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _single_thread() -> Any:
    """BLAS and OpenMP limited to one thread: the baselines run beside torch's own threads."""
    return _controller().limit(limits=1)


def _check_seconds(seconds: Any) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.floating, np.integer)) \
            or not math.isfinite(seconds) or seconds < 0:
        raise UserError(f"seconds must be a finite number of at least 0, got {seconds!r}")
    return float(seconds)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


class BaselineModel(torch.nn.Module):
    """A fitted baseline behind the search's model interface: raw inputs in (standardised with
    the train split's mean and std), log-probabilities out, on the CPU."""

    def __init__(self, baseline: Baseline, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.baseline = baseline
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (N, num_classes): their softmax is the baseline's probabilities."""
        probabilities = self.baseline.predict_proba(((x - self.mean) / self.std).cpu())
        return torch.log(probabilities.clamp_min(1e-12))


def _thawed(value: Any) -> Any:
    """`value` with every read-only mapping in it made a plain dict."""
    if isinstance(value, Mapping):
        return {k: _thawed(v) for k, v in value.items()}
    return value


def _frozen(value: Any) -> Any:
    """`value` with every dict in it made read-only."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    return value


def _baseline_from(state: dict[str, Any]) -> Baseline:
    """A pickled `Baseline` back (see `Baseline.__reduce__`)."""
    return Baseline(**{**state, "params": _frozen(state["params"])})
