"""nas.baselines: logistic, RBF SVM and k-NN fitted within a time cap."""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest
import torch

import nas.baselines.fitting as baselines
from nas.baselines import (
    NAMES,
    Baseline,
    best_baseline,
    estimate_seconds,
    fit_baselines,
    linear_module,
)
from nas.baselines.costs import pools_for
from nas.baselines.model import pooled
from nas.data import load
from nas.errors import UserError
from tests.helpers import blobs, shifted_images


@pytest.fixture(scope="module")
def digits():
    return load("digits")


@pytest.fixture(scope="module")
def fitted(digits):
    """All three baselines on digits, with a cap none of them comes near."""
    return {b.name: b for b in fit_baselines(digits, seconds=600.0, seed=0)}


def _flat(x: torch.Tensor) -> np.ndarray:
    return x.reshape(len(x), -1).numpy().astype(np.float64)


def _estimates(monkeypatch, costs):
    """Replace the cost model: `costs[name](n_train)` seconds."""
    def fake(name, *, n_train, **_):
        return costs[name](n_train)
    monkeypatch.setattr(baselines, "estimate_seconds", fake)


def test_every_baseline_is_sensible_on_digits(fitted, digits):
    assert set(fitted) == set(NAMES)
    n_train = len(digits.y_train)
    for b in fitted.values():
        assert b.skipped is None and b.fitted
        assert b.train_size == n_train  # the cap did not subsample
        assert b.val_accuracy > 0.9 and b.test_accuracy > 0.9, b
        assert b.seconds > 0
    assert fitted["logistic"].params["converged"]
    assert fitted["knn"].params["k"] in (1, 5)


def test_they_run_cheapest_first(digits):
    order = [b.name for b in fit_baselines(digits, seconds=600.0)]
    sizes = {"n_train": len(digits.y_train), "n_features": 64, "n_classes": 10,
             "n_val": len(digits.y_val), "n_test": len(digits.y_test)}
    assert order == sorted(NAMES, key=lambda name: estimate_seconds(name, **sizes))


def test_without_a_test_split_there_is_no_test_accuracy():
    data = dataclasses.replace(blobs(), has_test_split=False)
    runs = fit_baselines(data, seconds=600.0)
    assert [b.test_accuracy for b in runs] == [None, None, None]
    assert all(b.val_accuracy is not None for b in runs)


def test_no_time_skips_all_but_the_cheapest(digits, monkeypatch):
    runs = fit_baselines(digits, seconds=0.0)
    first, *rest = runs
    assert first.fitted and first.val_accuracy is not None
    # The one that always runs gets FIRST_SECONDS: all of digits for k-NN.
    assert first.name == "knn" and first.train_size == len(digits.y_train)
    # One that would cost more is cut to what FIRST_SECONDS buys, the smallest sample at least.
    _estimates(monkeypatch, {"knn": lambda n: n / 100, "logistic": lambda n: 50.0,
                             "svm-rbf": lambda n: 50.0})
    cut = fit_baselines(digits, seconds=0.0)[0]
    assert cut.name == "knn" and cut.train_size == 100 < len(digits.y_train)
    assert len(rest) == 2
    for b in rest:
        assert not b.fitted and b.val_accuracy is None and b.test_accuracy is None
        assert "cap" in b.skipped and "would need" in b.skipped


def test_the_cap_subsamples_what_does_not_fit_whole(digits, monkeypatch):
    # logistic and k-NN "cost" 2 s each, the SVM 1 s per 100 samples: of the 9 s cap it gets
    # the 5 s left, so 500 of the 1,146 training samples.
    _estimates(monkeypatch, {"logistic": lambda n: 2.0, "knn": lambda n: 2.0,
                             "svm-rbf": lambda n: n / 100})
    runs = {b.name: b for b in fit_baselines(digits, seconds=9.0, speed=1.0)}
    assert runs["logistic"].train_size == runs["knn"].train_size == len(digits.y_train)
    svm = runs["svm-rbf"]
    assert svm.fitted and svm.train_size == 500
    assert svm.val_accuracy > 0.85
    assert list(svm.model.classes_) == list(range(10))


def test_a_machine_faster_than_the_estimates_fits_more(digits, monkeypatch):
    # Estimates of 1 s per 1,000 (k-NN), 200 (logistic) and 100 (SVM) samples, with a 10 s cap:
    # the slowest machine's figures leave the SVM 312 samples. Each fit takes a tenth of its
    # estimate here, so the later estimates shrink (to FASTEST of themselves at most) and the
    # SVM gets the whole train split; a clock as slow as the estimates changes nothing.
    per = {"knn": 1000, "logistic": 200, "svm-rbf": 100}
    _estimates(monkeypatch, {name: (lambda n, k=k: n / k) for name, k in per.items()})
    real = baselines._fit

    def timed(share: float):
        def fit(name, common, x, y, *rest, **options):
            return dataclasses.replace(real(name, common, x, y, *rest, **options),
                                       seconds=share * len(y) / per[name])
        return fit

    n = len(digits.y_train)
    monkeypatch.setattr(baselines, "_fit", timed(0.1))
    fast = {b.name: b for b in fit_baselines(digits, seconds=10.0)}
    assert fast["svm-rbf"].train_size == n
    assert fit_baselines(digits, seconds=10.0, speed=1.0)[-1].train_size == 312
    monkeypatch.setattr(baselines, "_fit", timed(1.0))
    assert {b.name: b for b in fit_baselines(digits, seconds=10.0)}["svm-rbf"].train_size == 312


def test_the_whole_split_with_one_setting_before_all_settings_on_a_subsample(digits,
                                                                         monkeypatch):
    # The SVM on the whole split fits the cap with sklearn's default C alone, not with both
    # values: it is fitted on all of it with C=1, not on a subsample with both.
    n = len(digits.y_train)
    sizes = {"n_features": 64, "n_classes": 10, "n_val": len(digits.y_val),
             "n_test": len(digits.y_test)}
    one = baselines.estimate_seconds("svm-rbf", n_train=n, settings=1, **sizes)
    both = baselines.estimate_seconds("svm-rbf", n_train=n, **sizes)
    assert both == pytest.approx(2 * one, rel=0.05)
    monkeypatch.setattr(baselines, "NAMES", ("svm-rbf",))
    (svm,) = fit_baselines(digits, seconds=(one + both) / 2, speed=1.0)
    assert svm.train_size == n and dict(svm.params["val_accuracy_by_C"]).keys() == {1.0}
    # Fitted again from the journal: the same single setting, the same model.
    (again,) = fit_baselines(digits, seconds=0.0, only="svm-rbf", settings=1)
    assert again.params["C"] == 1.0 and again.val_accuracy == svm.val_accuracy


def test_a_journaled_baseline_is_fitted_again_exactly(digits, monkeypatch):
    _estimates(monkeypatch, {"knn": lambda n: n / 100, "logistic": lambda n: 50.0,
                             "svm-rbf": lambda n: 50.0})  # so that k-NN gets a subsample
    first = {b.name: b for b in fit_baselines(digits, seconds=0.0, seed=3)}["knn"]
    assert first.train_size < len(digits.y_train)
    (again,) = fit_baselines(digits, seconds=0.0, seed=3, only="knn",
                             train_size=first.train_size)
    assert again.train_size == first.train_size and again.params == first.params
    assert torch.equal(again.predict_proba(digits.x_test), first.predict_proba(digits.x_test))
    with pytest.raises(UserError, match="train_size"):
        fit_baselines(digits, seconds=0.0, only="knn", train_size=0)
    with pytest.raises(UserError, match="only="):
        fit_baselines(digits, seconds=0.0, train_size=100)


def test_the_subsample_is_stratified_and_seeded():
    y = np.repeat(np.arange(4), [500, 300, 150, 50])
    kept = baselines._subsample(y, 100, np.random.default_rng(0))
    assert len(kept) == len(set(kept)) == 100
    assert np.all(np.abs(np.bincount(y[kept]) - [50, 30, 15, 5]) <= 1)
    assert np.array_equal(kept, baselines._subsample(y, 100, np.random.default_rng(0)))
    assert not np.array_equal(kept, baselines._subsample(y, 100, np.random.default_rng(1)))
    # Every class keeps a sample, however rare, as long as the size allows.
    rare = np.array([0] * 995 + [1, 2, 3, 4, 5])
    assert set(rare[baselines._subsample(rare, 6, np.random.default_rng(0))]) == set(range(6))
    assert np.array_equal(baselines._subsample(y, 2000, np.random.default_rng(0)),
                          np.arange(1000))


def test_what_fits_nowhere_is_skipped_with_a_reason(digits, monkeypatch):
    _estimates(monkeypatch, {"logistic": lambda n: 0.0, "knn": lambda n: 0.0,
                             "svm-rbf": lambda n: 1e6})
    runs = {b.name: b for b in fit_baselines(digits, seconds=5.0, speed=1.0)}
    assert runs["logistic"].fitted and runs["knn"].fitted
    assert not runs["svm-rbf"].fitted
    assert "would need about 1e+06 s even on 100 of 1146 training samples" \
        in runs["svm-rbf"].skipped


def test_a_clock_behind_the_estimates_skips_but_never_resizes(monkeypatch):
    # Every estimate says 0.1 s, but the clock says each fit took 10 s: after the first, the
    # rest would pass the 1 s cap and are skipped, not refitted smaller.
    now = [0.0]

    def ticking() -> float:
        now[0] += 5.0
        return now[0]

    monkeypatch.setattr(baselines, "time", types.SimpleNamespace(perf_counter=ticking))
    _estimates(monkeypatch, dict.fromkeys(NAMES, lambda n: 0.1))
    first, *rest = fit_baselines(blobs(), seconds=1.0)
    assert first.fitted and first.train_size == 300
    assert [b.fitted for b in rest] == [False, False]
    assert all("s cap were left" in b.skipped or "the cap of 1 s would be passed" in b.skipped
               for b in rest)


def test_time_a_fit_did_not_use_goes_to_the_next(monkeypatch):
    # k-NN is estimated at 2 s of the 3 s cap but takes milliseconds: the SVM, last, still fits
    # (planned on the estimates alone, it was left 0.1 s and skipped).
    _estimates(monkeypatch, {"knn": lambda n: 2.0, "logistic": lambda n: 2.5,
                             "svm-rbf": lambda n: 2.5})
    fitted = {b.name: b for b in fit_baselines(blobs(), seconds=3.0)}
    assert fitted["knn"].seconds < 0.5
    assert all(b.fitted and b.train_size == 300 for b in fitted.values())


def test_fitting_is_deterministic_given_the_seed(digits, monkeypatch):
    # The cap leaves k-NN 4 s, so 400 samples (logistic's 2 s cover its real time).
    _estimates(monkeypatch, {"logistic": lambda n: 2.0, "knn": lambda n: n / 100,
                             "svm-rbf": lambda n: 1e6})

    def knn(seed: int) -> Baseline:
        return {b.name: b for b in fit_baselines(digits, seconds=6.0, seed=seed, speed=1.0)}["knn"]

    a, b, c = knn(0), knn(0), knn(1)
    assert a.train_size == b.train_size == c.train_size == 400
    assert a.params == b.params and a.val_accuracy == b.val_accuracy
    assert torch.equal(a.predict_proba(digits.x_test), b.predict_proba(digits.x_test))
    # Another seed draws another subsample, so another model.
    assert not torch.equal(a.predict_proba(digits.x_test), c.predict_proba(digits.x_test))


def test_linear_module_is_the_logistic_model(fitted, digits):
    logistic = fitted["logistic"]
    module = linear_module(logistic)
    assert isinstance(module, torch.nn.Sequential) and not module.training
    assert isinstance(module[0], torch.nn.Flatten)
    assert isinstance(module[1], torch.nn.Linear)
    assert (module[1].in_features, module[1].out_features) == (64, 10)
    for x in (digits.x_val, digits.x_test):
        with torch.no_grad():
            logits = module(x)
        sklearn = logistic.model.predict(_flat(x))
        assert np.array_equal(logits.argmax(1).numpy(), sklearn)
        assert torch.allclose(logits.softmax(1), logistic.predict_proba(x), atol=1e-5)


def test_linear_module_of_two_classes_and_of_a_class_missing_from_train():
    three = blobs(n=240, d=5, classes=3, seed=1)
    keep = three.y_train != 1  # class 1 is never seen in training, but is in val and test
    data = dataclasses.replace(three, x_train=three.x_train[keep], y_train=three.y_train[keep])
    for case in (blobs(n=200, d=5, classes=2, seed=2), data):
        logistic = next(b for b in fit_baselines(case, seconds=600.0) if b.name == "logistic")
        module = linear_module(logistic)
        with torch.no_grad():
            logits = module(case.x_val)
        assert np.array_equal(logits.argmax(1).numpy(), logistic.model.predict(_flat(case.x_val)))
        assert torch.allclose(logits.softmax(1), logistic.predict_proba(case.x_val), atol=1e-5)
        assert torch.isfinite(logits).all()
    proba = logistic.predict_proba(data.x_val)
    assert proba.shape == (len(data.y_val), 3) and bool((proba[:, 1] == 0).all())


def test_linear_module_needs_the_fitted_logistic(fitted, digits):
    with pytest.raises(UserError, match="logistic"):
        linear_module(fitted["knn"])
    skipped = next(b for b in fit_baselines(digits, seconds=0.0) if b.name == "logistic")
    with pytest.raises(UserError, match="skipped"):
        linear_module(skipped)


@pytest.mark.parametrize("name", NAMES)
def test_predict_proba_is_a_distribution_whose_argmax_is_predict(fitted, digits, name):
    b = fitted[name]
    proba = b.predict_proba(digits.x_test)
    assert proba.shape == (len(digits.y_test), 10) and proba.dtype == torch.float32
    assert bool((proba >= 0).all())
    assert torch.allclose(proba.sum(1), torch.ones(len(proba)), atol=1e-5)
    predicted = b.predict(digits.x_test)
    assert torch.equal(proba.argmax(1), predicted)
    assert np.array_equal(predicted.numpy(), b.model.predict(_flat(digits.x_test)))
    assert float((predicted == digits.y_test).float().mean()) == pytest.approx(b.test_accuracy)
    if name == "knn":  # vote fractions
        k = b.params["k"]
        assert torch.allclose(proba * k, (proba * k).round(), atol=1e-5)


def test_predict_refuses_what_it_cannot_read(fitted, digits):
    with pytest.raises(UserError, match=r"shaped \(1, 8, 8\)"):
        fitted["logistic"].predict_proba(digits.x_test.reshape(len(digits.x_test), -1))
    assert fitted["svm-rbf"].predict_proba(digits.x_test[:0]).shape == (0, 10)
    skipped = Baseline("svm-rbf", None, None, 0.0, skipped="no time")
    with pytest.raises(UserError, match="no time"):
        skipped.predict(digits.x_test)


def test_a_train_split_of_one_class_leaves_knn_alone():
    data = blobs(n=120, d=4, classes=2, seed=3)
    keep = data.y_train == 0
    one = dataclasses.replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep])
    runs = {b.name: b for b in fit_baselines(one, seconds=600.0)}
    assert runs["logistic"].skipped == runs["svm-rbf"].skipped == \
        "the train split holds a single class"
    assert runs["knn"].fitted
    assert bool((runs["knn"].predict_proba(one.x_val)[:, 0] == 1).all())


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf"), True, "5"])
def test_the_cap_must_be_a_finite_number(seconds):
    with pytest.raises(UserError, match="seconds"):
        fit_baselines(blobs(), seconds=seconds)


def test_best_baseline_has_the_highest_validation_accuracy():
    def b(name: str, val: float | None, seconds: float, skipped: str | None = None) -> Baseline:
        return Baseline(name, val, None, seconds, skipped=skipped,
                        model=None if skipped else object())

    runs = [b("logistic", 0.90, 0.1), b("svm-rbf", 0.95, 3.0), b("knn", 0.93, 0.2)]
    assert best_baseline(runs).name == "svm-rbf"
    # A tie goes to the faster; a skipped one never wins.
    assert best_baseline([b("logistic", 0.95, 0.5), *runs]).name == "logistic"
    assert best_baseline([b("svm-rbf", None, 0.0, skipped="no time"),
                          b("knn", 0.5, 0.2)]).name == "knn"
    assert best_baseline([b("svm-rbf", None, 0.0, skipped="no time")]) is None
    assert best_baseline([]) is None


def test_best_baseline_on_digits(fitted):
    best = best_baseline(fitted.values())
    assert best.val_accuracy == max(b.val_accuracy for b in fitted.values())


def test_images_are_tried_pooled_down_to_four_pixels_a_side():
    assert pools_for((1, 8, 8)) == (1, 2)
    assert pools_for((3, 28, 28)) == (1, 2, 4, 8)  # 28 / 8 rounds up to 4
    assert pools_for((1, 16, 30)) == (1, 2, 4)
    assert pools_for((64,)) == pools_for((1, 40)) == (1,)
    sizes = {"n_train": 500, "n_classes": 4, "n_val": 100, "n_test": 100}
    both = estimate_seconds("svm-rbf", n_features=256, also_features=(64,), **sizes)
    assert both == pytest.approx(estimate_seconds("svm-rbf", n_features=256, **sizes)
                                 + estimate_seconds("svm-rbf", n_features=64, **sizes))


@pytest.mark.parametrize("seed", [0, 1])
def test_shifted_images_are_fitted_pooled_and_read_the_same_way(seed):
    # Templates moved by up to 2 pixels: raw pixel distances punish the shifts, 2x2 means
    # much less, so k-NN is better pooled and the fit keeps that resolution.
    data = shifted_images(block=4, shift=2, noise=3.0, seed=seed)
    fitted = {b.name: b for b in fit_baselines(data, seconds=600.0, seed=0)}
    knn = fitted["knn"]
    scores = dict(knn.params["val_accuracy_by_pool"])
    assert knn.pool == knn.params["pool"] == 2 and scores.keys() == {1, 2, 4}
    assert knn.val_accuracy == max(scores.values()) >= scores[1] + 0.05
    for b in fitted.values():
        features = _flat(pooled(data.x_test, b.pool))
        assert np.array_equal(b.predict(data.x_test).numpy(), b.model.predict(features))
        assert float((b.predict(data.x_test) == data.y_test).float().mean()) == \
            pytest.approx(b.test_accuracy)
        assert b.to_dict()["pool"] == b.pool
    logistic = fitted["logistic"]
    assert logistic.pool > 1
    module = linear_module(logistic)
    assert isinstance(module[0], torch.nn.AvgPool2d)
    with torch.no_grad():
        assert torch.allclose(module(data.x_val).softmax(1), logistic.predict_proba(data.x_val),
                              atol=1e-5)
    (again,) = fit_baselines(data, seconds=0.0, seed=0, only="knn")
    assert again.pool == knn.pool and again.params == knn.params


def test_fine_detail_keeps_the_pixels():
    # Single-pixel templates, never shifted: pooling averages the signal away.
    data = shifted_images(block=1, shift=0, noise=2.0)
    for b in fit_baselines(data, seconds=600.0, seed=0):
        scores = dict(b.params["val_accuracy_by_pool"])
        assert b.pool == 1 and scores[1] > scores[4], b
