from __future__ import annotations

import pytest
import torch

import nas
import spaces
from nas.ensemble import Ensemble, greedy_selection
from nas.errors import UserError
from nas.storage import Storage
from tests.helpers import blobs


def _onehot(labels: list[int], classes: int = 2, sure: float = 0.9) -> torch.Tensor:
    probs = torch.full((len(labels), classes), (1 - sure) / (classes - 1))
    probs[torch.arange(len(labels)), torch.tensor(labels)] = sure
    return probs


def test_greedy_selection_prefers_the_better_model_and_combines_complementary_ones() -> None:
    y = torch.tensor([0, 0, 1, 1])
    right = _onehot([0, 0, 1, 1])
    wrong = _onehot([1, 1, 0, 0])
    assert greedy_selection([wrong, right], y, 4) == [0, 1]  # repeats would add nothing
    # Each is right on half the samples: together they make as many errors but hedge them
    # (lower cross-entropy); later rounds do no better, so the best prefix, one each, stays.
    left, other = _onehot([0, 0, 0, 0], sure=0.99), _onehot([1, 1, 1, 1], sure=0.99)
    assert greedy_selection([left, other], y, 4) == [1, 1]
    # Three models, each wrong on a different sample: their vote is right everywhere.
    y3 = torch.tensor([0, 1, 2])
    votes = [_onehot(v, classes=3, sure=0.8) for v in ([1, 1, 2], [0, 0, 2], [0, 1, 0])]
    counts = greedy_selection(votes, y3, 6)
    mixed = sum(c * p for c, p in zip(counts, votes, strict=True))
    assert (mixed.argmax(1) == y3).all() and all(counts)
    assert greedy_selection([], y, 3) == []


def test_ensemble_module_averages_probabilities() -> None:
    a, b = torch.nn.Linear(3, 4), torch.nn.Linear(3, 4)
    ens = Ensemble([a, b], [3, 1])
    x = torch.randn(5, 3)
    expected = 0.75 * torch.softmax(a(x), 1) + 0.25 * torch.softmax(b(x), 1)
    torch.testing.assert_close(ens(x).exp(), expected)
    with pytest.raises(ValueError):
        Ensemble([a], [1, 2])


def _search(tmp_path, ensemble: int) -> nas.SearchResult:
    space = spaces.residual_mlp(width=(16, 48), n_blocks=1, lr=(1e-3, 1e-2))
    return nas.search(space, blobs(), "random", "6trials", trial_budget="3ep", seed=1,
                      storage=tmp_path / f"e{ensemble}.db", progress=False, ensemble=ensemble)


def test_search_keeps_the_best_checkpoints_and_builds_an_ensemble(tmp_path) -> None:
    result = _search(tmp_path, 3)
    ranked = sorted((r for r in result.trials if r.result.ok), key=lambda r: r.rank_key())
    top3 = {r.id for r in ranked[:3]}
    with Storage.open(result.path) as store:
        kept = set(store.checkpoints())
        summary = store.meta("summary")
    assert kept == top3  # exactly the candidates (the best is one of them); others deleted
    weights = {int(k): w for k, w in result.ensemble["weights"].items()}
    assert set(weights) <= top3 and sum(weights.values()) == pytest.approx(1.0)
    assert summary["ensemble"] == result.ensemble
    # The ensemble chosen on validation is at least as accurate there as the best trial.
    assert result.ensemble["val_accuracy"] >= ranked[0].result.metrics["val_accuracy"] - 1e-6
    model = result.load_ensemble()
    data = blobs()
    with torch.no_grad():
        acc = (model(data.x_test * data.std + data.mean).argmax(1) == data.y_test).float().mean()
    assert float(acc) == pytest.approx(result.ensemble["test_accuracy"], abs=1e-6)


def test_no_ensemble_keeps_only_the_best(tmp_path) -> None:
    result = _search(tmp_path, 0)
    assert result.ensemble is None
    with Storage.open(result.path) as store:
        assert set(store.checkpoints()) == {result.best.id}
    with pytest.raises(UserError, match="no ensemble"):
        result.load_ensemble()
    with pytest.raises(UserError, match="ensemble is a number"):
        _search(tmp_path, -1)


def test_ensemble_candidates_are_the_longest_trained(tmp_path) -> None:
    space = spaces.residual_mlp(width=(16, 48), n_blocks=1, lr=(1e-3, 1e-2))
    result = nas.search(space, blobs(n=120), "hyperband", "120ep", trial_budget="9ep", seed=0,
                        storage=tmp_path / "hb.db", progress=False, ensemble=4)
    budgets = {r.id: r.trial.budget for r in result.trials}
    top = max(budgets[r.id] for r in result.trials if r.result is not None and r.result.ok)
    assert result.ensemble is not None
    assert all(budgets[int(k)] == top for k in result.ensemble["weights"])
