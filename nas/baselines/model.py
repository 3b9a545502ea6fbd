"""A fitted baseline: its scores, its scikit-learn model, and the module the search returns."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from nas.errors import UserError


@dataclass(frozen=True, eq=False)
class Baseline:
    """One baseline fitted on the train split (or skipped), with its accuracies and model.

    `model` is the fitted scikit-learn estimator (None when skipped); it takes the standardised
    inputs average-pooled by `pool` (`pooled`) and flattened, and its classes are the dataset's
    label ids.
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
    #: The factor its images were average-pooled by, chosen on validation (1: as they are).
    pool: int = 1

    @property
    def fitted(self) -> bool:
        """Whether it was fitted (not skipped)."""
        return self.skipped is None and self.model is not None

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted label ids (int64, on `x`'s device) of standardised inputs (N, *input_shape)."""
        features = self._features(x)
        if len(features) == 0:
            return torch.zeros(0, dtype=torch.int64, device=x.device)
        with single_thread():
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
            with single_thread():
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
                "skipped": self.skipped, "train_size": self.train_size, "pool": self.pool,
                "params": json.loads(json.dumps(params, default=str))}

    def _features(self, x: torch.Tensor) -> np.ndarray:
        if not self.fitted:
            raise UserError(f"baseline {self.name} was not fitted: {self.skipped}")
        if tuple(x.shape[1:]) != tuple(self.input_shape):
            raise UserError(f"baseline {self.name} takes samples shaped {self.input_shape}, "
                            f"got {tuple(x.shape[1:])}")
        return flat(pooled(x, self.pool))


def linear_module(baseline: Baseline) -> torch.nn.Module:
    """The fitted logistic baseline as ``nn.Sequential(nn.Flatten(), nn.Linear(F, K))``, with
    its average pooling first where it was fitted on pooled images.

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
    layers: list[torch.nn.Module] = [torch.nn.Flatten(), linear]
    if baseline.pool > 1:
        layers.insert(0, _pooling(baseline.pool))
    return torch.nn.Sequential(*layers).eval()


def pooled(x: torch.Tensor, pool: int) -> torch.Tensor:
    """Images (N, C, H, W) average-pooled by `pool` (a partial window at an edge averages the
    pixels it holds); `x` itself when `pool` is 1."""
    if pool == 1:
        return x
    with torch.no_grad():
        return _pooling(pool)(x.detach().float())


def _pooling(pool: int) -> torch.nn.Module:
    return torch.nn.AvgPool2d(pool, stride=pool, ceil_mode=True)


def flat(x: torch.Tensor, dtype: type[np.floating] | None = np.float64) -> np.ndarray:
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


def single_thread() -> Any:
    """BLAS and OpenMP limited to one thread: the baselines run beside torch's own threads."""
    return _controller().limit(limits=1)



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
