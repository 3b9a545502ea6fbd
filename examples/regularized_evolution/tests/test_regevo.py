"""The regularized-evolution plugin: conformance, discovery through its entry point, a search."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ConfigSpace import ConfigurationSpace, Float
from nas_regevo import RegularizedEvolution

import nas
import searchers
import spaces
from nas.cli import main
from nas.errors import UserError
from nas.storage import Storage
from nas.testing import check_searcher
from nas.types import Result

torch.set_num_threads(1)  # same float sums in every run, and no fight over the cores

SEARCH = ["--space", "residual-mlp", "--data", "synthetic", "--searcher", "regularized-evolution",
          "--budget", "8trials", "--trial-budget", "1ep", "--set", "width=16:32", "--set",
          "n_blocks=1", "--seed", "3", "--option", "population_size=4", "--option",
          "sample_size=2", "--no-progress"]


def _plane() -> ConfigurationSpace:
    space = ConfigurationSpace()
    space.add([Float("x", (0.0, 1.0)), Float("y", (0.0, 1.0))])
    return space


def test_passes_the_conformance_suite() -> None:
    """Every check of `nas.testing` passes (one AssertionError would list all that fail)."""
    check_searcher(RegularizedEvolution)


def test_found_through_its_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    """Installed, the plugin is listed, loaded by name and marked in `nas searchers`."""
    assert "regularized-evolution" in searchers.available()
    assert searchers.get_class("regularized-evolution") is RegularizedEvolution
    built = searchers.get("regularized-evolution", _plane(), seed=1, population_size=8)
    assert built.options == {"population_size": 8, "sample_size": 5}
    assert main(["searchers"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("regularized-evolution "))
    assert "(plugin: nas-regularized-evolution)" in row
    with pytest.raises(UserError, match="sample_size"):
        searchers.get("regularized-evolution", _plane(), population_size=4, sample_size=5)


def test_mutates_the_tournament_winner_in_one_hyperparameter() -> None:
    """With the whole population in the tournament, each child is the best member, one value
    changed; the population keeps only the newest `population_size` results (aging)."""
    searcher = RegularizedEvolution(_plane(), seed=0, population_size=6, sample_size=6)
    for _ in range(40):
        trial = searcher.ask()
        if trial.id >= 6:
            best = min(searcher.population, key=lambda member: member[1])[0]
            same = [k for k in best if best[k] == trial.config[k]]
            assert trial.info["origin"] == "mutation" and len(same) == 1, (best, trial.config)
        else:
            assert trial.info["origin"] == "random"
        failed = trial.id % 5 == 4
        searcher.tell(trial, Result.failure(nas.TrialStatus.FAILED, "x") if failed
                      else Result(loss=trial.config["x"] + trial.config["y"]))
    assert [c for c, _ in searcher.population] == [t.config for t, _ in searcher.history[-6:]]


def test_search_and_resume_through_the_cli(tmp_path: Path) -> None:
    """`nas search --searcher regularized-evolution` runs; an interrupted search resumes to the
    same trials as an uninterrupted one (the searcher is rebuilt by name and replayed)."""
    assert main(["search", *SEARCH, "--db", str(tmp_path / "full.db")]) == 0

    class StopAtSixth(nas.Callback):
        def on_trial_start(self, trial: nas.Trial) -> None:
            if trial.id == 5:
                raise KeyboardInterrupt

    with Storage.open(tmp_path / "full.db") as store:
        space = spaces.space_from_json(store.settings["space"])  # the one the CLI searched
    with pytest.raises(KeyboardInterrupt):
        nas.search(space, "synthetic", "regularized-evolution", "8trials", trial_budget="1ep",
                   seed=3, storage=tmp_path / "cut.db", progress=False, callbacks=[StopAtSixth()],
                   searcher_options={"population_size": 4, "sample_size": 2})
    assert main(["resume", str(tmp_path / "cut.db"), "--no-progress"]) == 0

    def trials(name: str) -> list[tuple[dict, str]]:
        with Storage.open(tmp_path / name) as store:
            assert store.settings["searcher"]["name"] == "regularized-evolution"
            return [(r.trial.to_dict(), r.status.value) for r in store.trials()]

    full = trials("full.db")
    assert len(full) == 8 and {t["info"]["origin"] for t, _ in full} == {"random", "mutation"}
    assert trials("cut.db") == full
