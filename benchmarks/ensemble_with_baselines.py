"""Would a search's final ensemble gain from its plain baselines as candidates? Offline, on
finished journals (e.g. `bench_anytime.py`'s).

For each journal: the greedy ensemble (Caruana) over its top-budget trials (up to 8) alone, and
over those trials plus the baselines (logistic regression, RBF SVM, k-NN, fitted on the whole
train split), each chosen on validation and scored on test, beside the best baseline alone.

    python benchmarks/ensemble_with_baselines.py "runs/anytime/journals/*-30s-*.db"
"""

from __future__ import annotations

import argparse
import glob
from collections.abc import Mapping

import torch
from torch import nn

import spaces
from nas.baselines import BaselineModel, fit_baselines
from nas.data import Dataset, load
from nas.ensemble import ROUNDS_PER_CANDIDATE, greedy_selection
from nas.journal import JournalView
from nas.storage import Storage


def _probs(model: nn.Module, data: Dataset, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():  # the models take raw inputs; the dataset's splits are standardised
        return torch.softmax(model(x * data.std + data.mean).float(), 1)


def _ensemble(members: Mapping[str, nn.Module], data: Dataset) -> tuple[float, float, str]:
    """Validation and test accuracy of the greedy ensemble of `members`, and its weights."""
    keys = list(members)
    val = [_probs(members[k], data, data.x_val) for k in keys]
    test = [_probs(members[k], data, data.x_test) for k in keys]
    counts = greedy_selection(val, data.y_val, ROUNDS_PER_CANDIDATE * len(keys))
    total = sum(counts)
    mixed_val = sum(c / total * p for c, p in zip(counts, val, strict=True))
    mixed_test = sum(c / total * p for c, p in zip(counts, test, strict=True))
    assert isinstance(mixed_val, torch.Tensor) and isinstance(mixed_test, torch.Tensor)
    weights = " ".join(f"{k}:{c}" for k, c in zip(keys, counts, strict=True) if c)
    return (float((mixed_val.argmax(1) == data.y_val).float().mean()),
            float((mixed_test.argmax(1) == data.y_test).float().mean()), weights)


def main() -> None:
    """Print one line per journal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("journals", help="a glob of finished search journals")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for path in sorted(glob.glob(args.journals)):
        view = JournalView.load(path)
        if view.summary is None or view.settings.data is None:
            continue
        data = load(view.settings.data.name, **dict(view.settings.data.options))
        with Storage.open(path) as store:
            checkpoints = store.checkpoints()
        done = [r for r in view.records if r.result is not None and r.result.ok
                and r.id in checkpoints]
        if not done or not data.has_test_split:
            continue
        top = max(view.budget_of(r) for r in done)
        chosen = sorted((r for r in done if view.budget_of(r) == top),
                        key=lambda r: r.rank_key())[:8]
        nets = {str(r.id): spaces.load_model(checkpoints[r.id]).eval() for r in chosen}
        fitted = fit_baselines(data, seconds=60.0, seed=0)
        plain = {b.name: BaselineModel(b, data.mean, data.std).eval() for b in fitted}
        alone = _ensemble(nets, data)
        mixed = _ensemble({**nets, **plain}, data)
        best = max(fitted, key=lambda b: b.val_accuracy)
        print(f"{path.rsplit('/', 1)[-1]}: trials {alone[0]:.3f}/{alone[1]:.3f}; "
              f"with baselines {mixed[0]:.3f}/{mixed[1]:.3f} ({mixed[2]}); best baseline "
              f"{best.name} {best.val_accuracy:.3f}/{best.test_accuracy:.3f}", flush=True)


if __name__ == "__main__":
    main()
