"""`AutoClassifier`: fit a search on arrays, predict with the best model it found.

The scikit-learn conventions (constructor parameters as attributes, `get_params` / `set_params`,
fitted attributes ending in ``_``, a clear error before `fit`) without importing scikit-learn.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ConfigSpace import ConfigurationSpace

from nas.errors import UserError

#: The space whose models take a channel axis first (samples are reshaped for it).
CONV_SPACE = "residual-conv"


# What `fit` sets; reading one earlier is a NotFittedError.
_FITTED = frozenset({"classes_", "n_features_in_", "input_shape_", "search_space_", "space_name_",
                     "search_result_", "best_config_", "best_loss_", "journal_", "model_"})


def _not_fitted_bases() -> tuple[type[Exception], ...]:
    """scikit-learn's NotFittedError where it is installed (so its `check_is_fitted` and
    ``except NotFittedError`` work), else an AttributeError as scikit-learn's also is."""
    try:
        from sklearn.exceptions import NotFittedError as SklearnNotFitted
    except ImportError:
        return (UserError, AttributeError)
    return (UserError, SklearnNotFitted)


class NotFittedError(*_not_fitted_bases()):  # type: ignore[misc]
    """An estimator was used before `fit` (scikit-learn's NotFittedError when it is installed,
    an AttributeError in any case)."""


#: Validation samples below which accuracies move in steps too coarse to tell models apart.
MIN_VALIDATION = 50


class AutoClassifier:
    """Searches a space for the best classifier of (X, y) within a budget, then predicts with it.

    ``AutoClassifier(budget="10m").fit(X, y)``; X is a numpy array or torch tensor shaped
    (n, features) or images (n, H, W) / (n, C, H, W). ``"auto"`` space, searcher, trial budget
    and replicas are `nas search`'s measured default plan (`nas.defaults`). Predictions come from
    a greedy ensemble of the `ensemble` best trials (0: the best alone), started from the best
    configuration and its `replicas` (retrained with new seeds at the end). `constraints`
    (``{"max_params": "50k", "max_latency": "2ms"}``, `nas.constraints`) make it the most
    accurate single model within those limits. `objectives` (``"val_error,params"``,
    `nas.objectives`) make it a multi-objective search: it predicts with the most accurate
    (feasible) model of the front, and ``pareto_front_`` lists the front. It is quiet unless
    `verbose`, and writes no file unless `storage` names its journal.
    """

    def __init__(
        self,
        space: str | ConfigurationSpace = "auto",
        searcher: str = "auto",
        budget: str = "10m",
        *,
        trial_budget: str = "auto",
        seed: int = 0,
        storage: str | os.PathLike[str] | None = None,
        device: str = "auto",
        workers: int | None = None,
        searcher_options: Mapping[str, Any] | None = None,
        ensemble: int = 10,
        replicas: int | str = "auto",
        verbose: bool = False,
        constraints: Mapping[str, Any] | None = None,
        objectives: str | Sequence[str] | None = None,
    ) -> None:
        self.space = space
        self.searcher = searcher
        self.budget = budget
        self.trial_budget = trial_budget
        self.seed = seed
        self.storage = storage
        self.device = device
        self.workers = workers
        self.searcher_options = searcher_options
        self.ensemble = ensemble
        self.replicas = replicas
        self.verbose = verbose
        self.constraints = constraints
        self.objectives = objectives
        self._check_params()

    # -- scikit-learn conventions ---------------------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        return [p.name for p in inspect.signature(cls.__init__).parameters.values()
                if p.name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, by name (`deep` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> AutoClassifier:
        """Set constructor parameters by name; returns self. Fitted state is kept until `fit`."""
        names = self._param_names()
        for key, value in params.items():
            if key not in names:
                raise UserError(f"AutoClassifier has no parameter {key!r}; "
                                f"valid: {', '.join(names)}")
            setattr(self, key, value)
        self._check_params()
        return self

    def __repr__(self) -> str:
        """The parameters that differ from their defaults, like scikit-learn."""
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if defaults.get(k) != v]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _check_params(self) -> None:
        import searchers as registry
        import spaces
        from nas.budget import Budget

        if isinstance(self.space, str) and self.space != "auto":
            spaces.get(self.space)
        elif not isinstance(self.space, (str, ConfigurationSpace)):
            raise UserError("space is a registered name, 'auto' or a ConfigurationSpace, "
                            f"got {type(self.space).__name__}")
        if self.searcher != "auto":
            registry.get_class(self.searcher)
        Budget.parse(self.budget)
        if self.trial_budget != "auto":
            Budget.parse(self.trial_budget)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) \
                or self.seed < 0:
            raise UserError(f"seed must be a non-negative integer, got {self.seed!r}")
        from nas.constraints import Constraints

        Constraints.of(self.constraints)
        from nas.objectives import parse_objectives

        parse_objectives(self.objectives)

    # -- fitting --------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, *, validation_split: float = 0.1,
            validation_data: tuple[Any, Any] | None = None) -> AutoClassifier:
        """Search for the best model of (X, y); selection uses a held-out validation split.

        `validation_split` of (X, y) (stratified, fixed by `seed`) is held out unless
        `validation_data` = (X_val, y_val) is given. Returns self.
        """
        import nas
        from nas.data import from_arrays

        x = self._features(X, "X")
        sample = tuple(x.shape[1:])
        labels = _labels(y, "y")
        if len(labels) != len(x):
            raise UserError(f"X has {len(x)} samples but y has {len(labels)} labels")
        classes, codes = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise UserError(f"y holds {len(classes)} distinct class; need at least 2")
        space = self.space
        layout = _layout(space, x.shape[1:])
        x = x.reshape(len(x), *layout)
        if validation_data is None:
            data = from_arrays(x, codes, x_test=x[:1], y_test=codes[:1],
                               val_fraction=validation_split, seed=int(self.seed),
                               name="arrays", num_classes=len(classes))
        else:
            xv = self._features(validation_data[0], "validation X")
            if tuple(xv.shape[1:]) != sample:
                raise UserError(f"validation X has samples of shape {tuple(xv.shape[1:])}, X of "
                                f"shape {sample}: they must match")
            xv = xv.reshape(-1, *layout)
            yv = _labels(validation_data[1], "validation y")
            if len(yv) != len(xv):
                raise UserError(f"validation X has {len(xv)} samples but validation y "
                                f"{len(yv)} labels")
            if yv.dtype.kind != classes.dtype.kind and {yv.dtype.kind, classes.dtype.kind} \
                    & {"U", "S", "O"}:
                raise UserError("validation y and y must hold the same kind of labels (numbers "
                                "or text)")
            unknown = np.setdiff1d(yv, classes)
            if len(unknown):
                raise UserError(f"validation y holds labels not in y: {unknown[:5].tolist()}")
            data = _with_validation(x, codes, xv, np.searchsorted(classes, yv), len(classes))
        # The search reports test accuracy on its test split; here the user keeps the test data,
        # so the validation split stands in and the search does not report a test accuracy.
        # The labels as given, so an exported model says what its outputs mean.
        data = dataclasses.replace(_without_test(data),
                                   class_names=tuple(str(c) for c in classes))
        n_val = len(data.y_val)
        if n_val < MIN_VALIDATION:
            import warnings

            warnings.warn(f"the validation split holds {n_val} samples: accuracies move in "
                          f"steps of {100 / max(n_val, 1):.1f}%, so many models tie and the "
                          "choice among them is luck; give more data, a larger "
                          "validation_split or validation_data", stacklevel=2)
        with _journal_dir(self.storage) as storage:
            result = nas.search(
                space, data, self.searcher, self.budget, trial_budget=self.trial_budget,
                seed=int(self.seed), storage=storage, name=None,
                searcher_options=self.searcher_options,
                trainer_options={"device": self.device}, progress=self.verbose,
                workers=self.workers, executor="local" if self.workers else "inprocess",
                ensemble=self.ensemble, replicas=self.replicas, constraints=self.constraints,
                objectives=self.objectives,
            )
            self._fit_result(result, data, classes, x)
        return self

    def _fit_result(self, result: Any, data: Any, classes: np.ndarray, x: torch.Tensor
                    ) -> None:
        """Keep what the search returns (read while its journal still exists)."""
        import spaces
        from nas.journal import JournalView

        if result.best is None and result.baseline_won is None:
            where = f"see `nas show {result.path}`" if self.storage is not None \
                else "pass storage= to keep its journal for `nas show`"
            raise UserError(f"the search found no usable model (every trial failed); {where}")
        # What the search returns: a plain baseline that beat it on validation, else the greedy
        # ensemble of the best trials, else the best trial.
        model = result.load_final_model(data)
        self.classes_ = classes
        self.n_features_in_ = int(np.prod(x.shape[1:]))
        self.input_shape_ = tuple(int(d) for d in x.shape[1:])
        view = JournalView.load(result.path)
        settings = view.settings
        self.search_space_ = spaces.space_from_json(view.space)
        self.space_name_ = settings.space_name or "custom"
        self.search_result_ = result
        #: The front of the search's objectives (validation error and size without them).
        self.pareto_front_ = result.pareto_front()
        self.best_config_ = None if result.best is None else dict(result.best.trial.config)
        self.best_loss_ = result.best_loss
        #: The journal (None: no `storage` was given, and it was a temporary file).
        self.journal_ = Path(result.path) if self.storage is not None else None
        self._full_budget = view.full_budget
        self.model_ = model

    # -- prediction -----------------------------------------------------------------------------

    def predict_proba(self, X: Any, *, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns in the order of `classes_`."""
        model = self._fitted("model_")
        x = self._features(X, "X")
        if int(np.prod(x.shape[1:])) != self.n_features_in_:
            raise UserError(f"X has {int(np.prod(x.shape[1:]))} features per sample; the "
                            f"model was fitted on {self.n_features_in_}")
        x = x.reshape(len(x), *self.input_shape_)
        model.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                out.append(torch.softmax(model(x[start:start + batch_size]).float(), dim=1))
        return torch.cat(out).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample, as labels of `classes_`."""
        return self._fitted("classes_")[self.predict_proba(X).argmax(axis=1)]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy of `predict(X)` against `y`."""
        truth = _labels(y, "y")
        predicted = self.predict(X)
        if len(truth) != len(predicted):
            raise UserError(f"X has {len(predicted)} samples but y has {len(truth)} labels")
        return float(np.mean(predicted == truth))

    # -- results --------------------------------------------------------------------------------

    @property
    def search_space(self) -> ConfigurationSpace:
        """The ConfigurationSpace searched, printing one line per hyperparameter
        (`spaces.DescribedSpace`); before `fit`, the one `space` names."""
        import spaces

        fitted = getattr(self, "search_space_", None)
        if fitted is not None:
            return spaces.described(fitted)
        if isinstance(self.space, ConfigurationSpace):
            return spaces.described(self.space)
        name = getattr(self, "space_name_", None) or self.space
        if name == "auto":
            raise UserError("space='auto' is chosen from the data at fit(); pass a space name "
                            "or call fit first")
        return spaces.described(spaces.get(name))

    @property
    def results_(self) -> Any:
        """Every trial as a record (dict); a pandas DataFrame when pandas is installed."""
        result = self._fitted("search_result_")
        full = self.__dict__.get("_full_budget")
        records = [_record(r, full) for r in result.trials]
        try:
            import pandas as pd
        except ImportError:
            return records
        return pd.DataFrame.from_records(records)

    def get_pytorch_model(self) -> torch.nn.Module:
        """The model `predict` uses, in eval mode, on the CPU, taking raw inputs: a plain
        baseline that beat the search on validation (`nas.baselines.BaselineModel`), else the
        ensemble of the best trials (`nas.ensemble.Ensemble`), else the best trial's model."""
        return self._fitted("model_")

    def __getattr__(self, name: str) -> Any:
        """Fitted attributes read before `fit` raise NotFittedError (an AttributeError)."""
        if name in _FITTED:
            self._fitted(name)
        if name == "results_":  # the property raised NotFittedError, and Python lands here
            self._fitted("search_result_")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _fitted(self, name: str) -> Any:
        if name not in self.__dict__:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X, y) "
                                 "before using it")
        return self.__dict__[name]

    def _features(self, X: Any, what: str) -> torch.Tensor:
        from nas.data.arrays import _as_features

        return _as_features(X, what)


def _layout(space: str | ConfigurationSpace, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The sample shape the models take: conv models want a channel axis first.

    With ``space="auto"`` a sample of two or more axes is an image ((H, W) gains a channel),
    which `nas.defaults` then searches with conv cells; a flat one stays features.
    """
    name = space if isinstance(space, str) else None
    if name is None:
        arch = space.get("architecture")
        name = getattr(arch, "value", None) or getattr(arch, "default_value", None)
    if name != CONV_SPACE and not (name == "auto" and len(shape) >= 2):
        return tuple(shape)
    if len(shape) == 1:  # a signal: one channel of length L
        return (1, shape[0])
    if len(shape) == 2:  # a grayscale image (H, W)
        return (1, *shape)
    return tuple(shape)


def _labels(y: Any, what: str) -> np.ndarray:
    """Class labels, one per sample: numbers or text, all of one kind, none missing."""
    arr = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or len(arr) == 0:
        raise UserError(f"{what} must be one class label per sample, got shape {arr.shape}")
    if arr.dtype == object:
        values = arr.tolist()
        missing = sum(v is None or (isinstance(v, float) and math.isnan(v)) for v in values)
        if missing:
            raise UserError(f"{what} has {missing} missing label(s) (None or NaN): drop those "
                            "samples or label them")
        kinds = sorted({"text" if isinstance(v, str) else "number"
                        if isinstance(v, (int, np.integer)) else type(v).__name__
                        for v in values})
        if kinds not in (["number"], ["text"]):
            raise UserError(f"{what} mixes kinds of labels ({', '.join(kinds)}): use all whole "
                            "numbers or all text")
    elif arr.dtype.kind == "f":
        missing = int(np.isnan(arr).sum())
        if missing:
            raise UserError(f"{what} has {missing} missing label(s) (NaN): drop those samples "
                            "or label them")
    elif arr.dtype.kind not in "biuUS":
        raise UserError(f"{what} must hold numbers or text, got {arr.dtype}")
    return arr


def _record(record: Any, full: float | None) -> dict[str, Any]:
    result = record.result
    return {
        "trial": record.id,
        "status": None if result is None else result.status.value,
        "budget": record.trial.budget_or(full) if full is not None else record.trial.budget,
        "loss": None if result is None else result.loss,
        "val_accuracy": record.val_accuracy,
        "epochs": None if result is None else result.epochs,
        "seconds": None if result is None else result.seconds,
        "cost": None if result is None else result.cost,
        "config": dict(record.trial.config),
    }


@contextlib.contextmanager
def _journal_dir(storage: str | os.PathLike[str] | None) -> Iterator[str | os.PathLike[str]]:
    """`storage`, or a temporary journal removed once `fit` has read it."""
    if storage is not None:
        yield storage
        return
    with tempfile.TemporaryDirectory(prefix="nas-fit-") as folder:
        yield Path(folder) / "fit.db"


def _with_validation(x: torch.Tensor, y: np.ndarray, xv: torch.Tensor, yv: np.ndarray,
                     classes: int) -> Any:
    from nas.data.dataset import _assemble

    return _assemble("arrays", (x.clone(), y), (xv.clone(), yv), (xv[:1].clone(), yv[:1]),
                     classes)


def _without_test(data: Any) -> Any:
    import dataclasses

    return dataclasses.replace(data, x_test=data.x_val, y_test=data.y_val, has_test_split=False)
