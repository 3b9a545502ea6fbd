from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import spaces
from nas import AutoClassifier
from nas.defaults import DEFAULT_SEARCHER, TINY_CHANNELS
from nas.errors import UserError
from nas.estimator import NotFittedError, _layout
from nas.journal import JournalView
from nas.storage import Storage


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    x, y = x[order].astype(np.float32), y[order]
    return x[:600], y[:600], x[600:900], y[600:900]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory, digits: tuple) -> AutoClassifier:
    x, y, _, _ = digits
    # String labels: the estimator must map them to classes and back.
    labels = np.array([f"digit-{d}" for d in y])
    clf = AutoClassifier(space=spaces.residual_mlp(width=(32, 64), n_blocks=(1, 2)),
                         searcher="random", budget="4trials", trial_budget="3ep", seed=0,
                         storage=tmp_path_factory.mktemp("est") / "fit.db")
    return clf.fit(x, labels, validation_split=0.2)


def test_fit_predict_score(fitted: AutoClassifier, digits: tuple) -> None:
    _, _, xt, yt = digits
    labels = np.array([f"digit-{d}" for d in yt])
    assert list(fitted.classes_) == [f"digit-{d}" for d in range(10)]
    proba = fitted.predict_proba(xt)
    assert proba.shape == (len(xt), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    predicted = fitted.predict(xt)
    assert predicted.dtype == fitted.classes_.dtype
    assert set(predicted) <= set(fitted.classes_)
    score = fitted.score(xt, labels)
    assert score == pytest.approx(np.mean(predicted == labels))
    # Three epochs of small MLPs on digits (chance is 0.1): the best trial alone is well above
    # 0.8; the ensemble, chosen on 120 validation samples, can trail it (a known limit).
    assert score > 0.6
    best = fitted.search_result_.load_best_model()
    with torch.no_grad():
        best_pred = fitted.classes_[best(torch.from_numpy(xt)).argmax(1).numpy()]
    assert np.mean(best_pred == labels) > 0.8
    # torch input gives the same answer as numpy
    np.testing.assert_allclose(fitted.predict_proba(torch.from_numpy(xt)), proba, rtol=1e-6)


def test_fitted_attributes(fitted: AutoClassifier) -> None:
    assert fitted.best_config_["architecture"] == "residual-mlp"
    assert 32 <= fitted.best_config_["width"] <= 64
    assert fitted.n_features_in_ == 64
    with Storage.open(fitted.journal_) as store:
        trials = store.trials()
        summary = store.meta("summary")
    assert len(trials) == 4
    # No test split was given, so the search must not report one.
    assert summary["test_accuracy"] is None
    best_loss = min(t.result.loss for t in trials if t.result is not None)
    assert fitted.best_loss_ == pytest.approx(best_loss)
    results = fitted.results_
    records = results.to_dict("records") if hasattr(results, "to_dict") else results
    assert len(records) == 4
    assert {r["trial"] for r in records} == {t.id for t in trials}
    assert min(r["loss"] for r in records) == pytest.approx(best_loss)


def test_pytorch_model_is_the_best_and_standardises(fitted: AutoClassifier,
                                                       digits: tuple) -> None:
    _, _, xt, _ = digits
    model = fitted.get_pytorch_model()
    assert isinstance(model, torch.nn.Module) and not model.training
    from nas.baselines import BaselineModel
    from nas.ensemble import Ensemble
    result = fitted.search_result_
    if result.baseline_won:  # a plain baseline beat this tiny search on validation
        assert isinstance(model, BaselineModel)
        assert model.baseline.name == result.baseline_won["name"]
    elif result.ensemble:
        assert isinstance(model, Ensemble)
    with torch.no_grad():
        logits = model(torch.from_numpy(xt))  # raw pixel values: standardisation is inside
    np.testing.assert_array_equal(logits.argmax(1).numpy(),
                                  fitted.predict_proba(xt).argmax(1))


def test_pickles(fitted: AutoClassifier, digits: tuple) -> None:
    _, _, xt, _ = digits
    clone = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(clone.predict(xt), fitted.predict(xt))


def test_not_fitted_is_one_clear_error() -> None:
    clf = AutoClassifier(searcher="random")
    for use in (lambda: clf.predict(np.zeros((2, 64))), clf.get_pytorch_model,
                lambda: clf.results_, lambda: clf.classes_):
        with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
            use()
    assert not hasattr(clf, "best_config_")  # AttributeError, like scikit-learn


def test_params_follow_scikit_learn_conventions() -> None:
    clf = AutoClassifier(space="residual-mlp", searcher="tpe", budget="2m", seed=3)
    params = clf.get_params()
    assert params["searcher"] == "tpe" and params["budget"] == "2m" and params["seed"] == 3
    assert AutoClassifier(**params).get_params() == params
    assert clf.set_params(searcher="random", budget="30s") is clf
    assert (clf.searcher, clf.budget) == ("random", "30s")
    assert repr(clf) == "AutoClassifier(space='residual-mlp', searcher='random', budget='30s', " \
        "seed=3)"
    assert clf.get_params()["ensemble"] == 10
    with pytest.raises(UserError, match="no parameter 'lr'"):
        clf.set_params(lr=0.1)
    from sklearn.base import clone
    copy = clone(clf)
    assert copy is not clf and copy.get_params() == clf.get_params()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"searcher": "nope"}, "unknown searcher 'nope'"),
    ({"space": "nope"}, "unknown space 'nope'"),
    ({"budget": "lots"}, "budget"),
    ({"seed": -1}, "seed must be a non-negative integer"),
])
def test_bad_parameters_are_user_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        AutoClassifier(**kwargs)


def test_bad_data_is_a_user_error(tmp_path) -> None:
    clf = AutoClassifier(searcher="random", budget="1trials", trial_budget="1ep",
                         storage=tmp_path / "x.db")
    with pytest.raises(UserError, match="need at least 2"):
        clf.fit(np.zeros((20, 4)), np.zeros(20))
    with pytest.raises(UserError, match="samples but y has"):
        clf.fit(np.zeros((20, 4)), np.arange(10) % 2)


@pytest.mark.parametrize(("x_val", "y", "y_val", "message"), [
    (None, [0.0, 1.0, np.nan] * 10, None, "missing label"),
    (None, [0, 1, None] * 10, None, "missing label"),
    (None, [0, "a", 1] * 10, None, "mixes kinds of labels"),
    (np.zeros((5, 10)), [0, 1] * 15, [0, 1] * 5, "samples of shape (10,), X of shape (5,)"),
    (np.zeros((10, 5)), [0, 1] * 15, [0, 1] * 4, "validation X has 10 samples"),
])
def test_labels_and_validation_data_are_checked(tmp_path, x_val, y, y_val, message) -> None:
    # NaN became a class, (5, 10) validation features were reshaped to (10, 5), and mixed
    # labels raised numpy's TypeError.
    clf = AutoClassifier(searcher="random", budget="1trials", trial_budget="1ep",
                         storage=tmp_path / "x.db")
    y = np.array(y, dtype=object) if any(v is None or isinstance(v, str) for v in y) \
        else np.array(y)
    validation = None if x_val is None else (x_val, np.array(y_val))
    with pytest.raises(UserError, match=re.escape(message)):
        clf.fit(np.zeros((30, 5)), y, validation_data=validation)
    assert not (tmp_path / "x.db").exists()


def test_search_space_is_printable_and_narrowable() -> None:
    clf = AutoClassifier(space=spaces.residual_mlp(width=(64, 512)))
    assert clf.search_space.get("width").lower == 64
    assert "width" in str(clf.search_space)
    # One line per hyperparameter, not ConfigSpace's dump.
    assert str(clf.search_space).splitlines()[0].startswith("space ")
    assert "  width            integer      [64, 512] log" in repr(clf.search_space)
    assert "n_blocks" in str(AutoClassifier(space="residual-mlp").search_space)
    with pytest.raises(UserError, match="chosen from the data"):
        _ = AutoClassifier().search_space


def test_auto_gets_the_default_plan_of_nas_search(tmp_path, digits: tuple) -> None:
    # Flat features stay features; a sample of two or more axes is an image.
    assert _layout("auto", (64,)) == (64,)
    assert _layout("auto", (8, 8)) == (1, 8, 8)
    assert _layout("auto", (3, 32, 32)) == (3, 32, 32)
    assert _layout("residual-mlp", (8, 8)) == (8, 8)
    x, y, xt, yt = digits
    clf = AutoClassifier(budget="1ep", storage=tmp_path / "auto.db")
    # A few hundred images: the default plan's wide conv models train slowly on one thread.
    clf.fit(x[:300].reshape(-1, 8, 8), y[:300], validation_data=(xt.reshape(-1, 8, 8), yt))
    plan = JournalView.load(tmp_path / "auto.db").settings
    # The same plan `nas search --budget 1ep` makes: the space, searcher and trials of
    # nas.defaults, chosen from the data's shape and the budget.
    assert clf.space_name_ == "residual-conv" and clf.input_shape_ == (1, 8, 8)
    assert plan.searcher.name == DEFAULT_SEARCHER and plan.auto is not None
    assert plan.searcher.options["include_default"] is True
    assert clf.search_space_["channels"].lower == TINY_CHANNELS[0]


def test_images_with_the_conv_space(tmp_path, digits: tuple) -> None:
    x, y, xt, yt = digits
    images = x.reshape(-1, 8, 8)
    clf = AutoClassifier(searcher="random", budget="2trials", trial_budget="1ep",
                         storage=tmp_path / "conv.db",
                         space=spaces.residual_conv(n_stages=1, n_cells=1, channels=8))
    clf.fit(images, y, validation_data=(xt.reshape(-1, 8, 8), yt))
    assert clf.best_config_["architecture"] == "residual-conv"
    assert clf.input_shape_ == (1, 8, 8)
    assert clf.predict(xt.reshape(-1, 8, 8)).shape == (len(xt),)


def test_results_as_records_without_pandas(fitted: AutoClassifier,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    frame = fitted.results_
    pd = pytest.importorskip("pandas")
    assert isinstance(frame, pd.DataFrame)
    assert {"trial", "loss", "val_accuracy", "budget", "config"} <= set(frame.columns)
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)  # as if not installed
    records = fitted.results_
    assert isinstance(records, list) and records == frame.to_dict("records")


def test_constraints_make_it_the_best_model_within_the_limits(tmp_path, digits: tuple) -> None:
    x, y, x_test, y_test = digits
    clf = AutoClassifier(space=spaces.residual_mlp(width=(16, 256), n_blocks=(1, 3)),
                         searcher="random", budget="4trials", trial_budget="2ep", seed=0,
                         storage=tmp_path / "small.db",
                         constraints={"max_params": "6k"})
    clf.fit(x, y, validation_split=0.2)
    assert sum(p.numel() for p in clf.model_.parameters()) <= 6000
    assert clf.search_result_.ensemble is None and clf.score(x_test, y_test) > 0.2
    with pytest.raises(UserError, match="unknown constraint"):
        AutoClassifier(constraints={"params": 5})


def test_objectives_search_a_front_and_predict_with_its_most_accurate_model(
        tmp_path, digits: tuple) -> None:
    x, y, x_test, y_test = digits
    clf = AutoClassifier(space=spaces.residual_mlp(width=(16, 128), n_blocks=(1, 2)),
                         budget="8trials", trial_budget="3ep", seed=0,
                         storage=tmp_path / "front.db",
                         objectives="val_error,params")
    clf.fit(x, y, validation_split=0.2)
    result = clf.search_result_
    assert result.objectives == ("val_error", "params") and result.ensemble is None
    # "auto" searcher: the default multi-objective one, on the default plan's rungs.
    from nas.journal import JournalView

    settings = JournalView.load(result.path).settings
    assert settings.searcher.name == "mobohb" and settings.searcher.options["n_objectives"] == 2
    assert clf.pareto_front_ and clf.pareto_front_[0].record.id == result.best.id
    assert sum(p.numel() for p in clf.model_.parameters()) == clf.pareto_front_[0].values[1]
    assert clf.score(x_test, y_test) > 0.2
    with pytest.raises(UserError, match="must include val_error"):
        AutoClassifier(objectives="params,latency")


def test_quiet_without_files_by_default_and_sklearn_conventions(tmp_path, digits: tuple,
                                                                capsys, monkeypatch) -> None:
    x, y, x_test, y_test = digits
    monkeypatch.chdir(tmp_path)
    clf = AutoClassifier(space="residual-mlp", searcher="random", budget="2trials",
                         trial_budget="1ep", seed=0)
    with pytest.raises(NotFittedError):
        clf.predict(x_test)
    sklearn_exceptions = pytest.importorskip("sklearn.exceptions")
    with pytest.raises(sklearn_exceptions.NotFittedError):  # scikit-learn's own, too
        clf.predict(x_test)
    clf.fit(x, y, validation_split=0.2)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # quiet unless verbose
    assert list(tmp_path.iterdir()) == [] and clf.journal_ is None  # no file left anywhere
    assert clf.score(x_test, y_test) > 0.2
    records = clf.results_
    rows = records.to_dict("records") if hasattr(records, "to_dict") else records
    assert all(r["budget"] == 1.0 for r in rows)  # the full budget, not None


def test_a_tiny_validation_split_is_warned_about(tmp_path, digits: tuple) -> None:
    x, y, _, _ = digits
    clf = AutoClassifier(space="residual-mlp", searcher="random", budget="1trials",
                         trial_budget="1ep", seed=0, storage=tmp_path / "t.db")
    with pytest.warns(UserWarning, match="validation split holds 30 samples"):
        clf.fit(x[:300], y[:300], validation_split=0.1)
