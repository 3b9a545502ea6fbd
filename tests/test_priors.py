"""User priors (`searchers.priors`): parsing, sampling, and every `takes_prior` searcher."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ConfigSpace import ConfigurationSpace

import searchers
from nas.testing import (
    assert_valid_config,
    check_deterministic,
    check_global_rng_untouched,
    check_options_roundtrip,
    check_replay,
    check_valid_configs,
    continuous_problem,
    make_searcher,
    mixed_problem,
    mixed_space,
)
from nas.testing.driver import _drive
from nas.testing.validity import _key
from nas.types import Result
from searchers.base import Searcher
from searchers.encoding import SpaceCoder
from searchers.priors import (
    CONFIDENCE_LEVELS,
    Prior,
    PriorDistribution,
    PriorEvidence,
    parse_prior,
)
from searchers.proposers import GammaSplit, KDEProposer, SingleModel

#: A prior on the mixed space: a conditional child (momentum, active for sgd), an ordinal, and
#: values next to a forbidden clause (sgd with gelu or elu).
MIXED_PRIOR: dict[str, Any] = {
    "values": {"n_layers": 5, "lr": 1e-4, "optimizer": "sgd", "momentum": 0.2,
               "activation": "relu", "batch_size": 256},
    "confidence": "high",
}
PRIOR_CLASSES = [searchers.get_class(n) for n in searchers.available()
                 if searchers.get_class(n).takes_prior]
#: A corner of the continuous space (x in [-5, 5], y in [1e-3, 1] log), far from its optimum
#: at x = 1.5, y = 0.01: a misleading prior.
CORNER = {"x": -4.5, "y": 0.9}
OPTIMUM = {"x": 1.5, "y": 0.01}


def _space() -> ConfigurationSpace:
    return mixed_space()


# -- parsing -----------------------------------------------------------------------------------

def test_every_form_parses_to_the_same_prior(tmp_path: Path) -> None:
    space = _space()
    flat = parse_prior({"lr": 0.01, "width": 128}, space)
    assert flat == Prior({"lr": 0.01, "width": 128}, "medium")
    assert flat.level("lr") == CONFIDENCE_LEVELS["medium"]
    structured = parse_prior({"values": {"lr": 0.01}, "confidence": "high"}, space)
    assert structured.level("lr") == CONFIDENCE_LEVELS["high"]
    assert parse_prior({"values": {"lr": 0.01}, "confidence": 0.7}, space).level("lr") == 0.7
    per = parse_prior({"values": {"lr": 0.01, "width": 64}, "confidence": {"lr": "low"}}, space)
    assert per.level("lr") == CONFIDENCE_LEVELS["low"]
    assert per.level("width") == CONFIDENCE_LEVELS["medium"]
    path = tmp_path / "prior.json"
    path.write_text(json.dumps({"values": {"lr": 0.01}, "confidence": "high"}))
    assert parse_prior(str(path), space) == parse_prior(path, space) == structured
    assert parse_prior(structured, space) is structured


def test_default_is_the_spaces_default_configuration_at_medium_confidence() -> None:
    space = _space()
    prior = parse_prior("default", space)
    assert dict(prior.values) == dict(space.get_default_configuration())
    assert prior.confidence == "medium"


@pytest.mark.parametrize("spec", [
    {"lr": 0.01},
    {"values": {"lr": 0.01, "optimizer": "sgd"}, "confidence": 0.3},
    {"values": {"lr": 0.01, "batch_size": 32}, "confidence": {"batch_size": "high"}},
    "default",
])
def test_to_dict_round_trips_through_json(spec: Any) -> None:
    space = _space()
    prior = parse_prior(spec, space)
    again = parse_prior(json.loads(json.dumps(prior.to_dict())), space)
    assert again == prior and again.to_dict() == prior.to_dict()


@pytest.mark.parametrize(("spec", "words"), [
    ({"lrr": 0.01}, ["'lrr'", "valid names", "lr", "width", "optimizer"]),
    ({"lr": 5.0}, ["lr=5.0", "legal", "1e-05"]),
    ({"optimizer": "adamw"}, ["optimizer='adamw'", "'adam'", "'sgd'"]),
    ({"values": {"lr": 0.01}, "confidence": "very"}, ["'low', 'medium', 'high'"]),
    ({"values": {"lr": 0.01}, "confidence": 0}, ["(0, 1]"]),
    ({"values": {"lr": 0.01}, "confidence": 1.5}, ["(0, 1]"]),
    ({"values": {"lr": 0.01}, "confidence": True}, ["(0, 1]"]),
    ({"values": {"lr": 0.01}, "confidence": {"width": "low"}}, ["width", "no preferred value"]),
    ({"values": {"lr": 0.01}, "weights": 1}, ["'weights'"]),
    ({"lr": 0.01, "confidence": "high"}, ["under 'values'"]),
    ("no/such/prior.json", ["does not exist"]),
    (42, ["'default'"]),
])
def test_a_bad_prior_is_one_clear_value_error(spec: Any, words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        parse_prior(spec, _space())
    message = str(info.value)
    assert all(word in message for word in words), message
    assert "\n" not in message


def test_a_bad_json_file_is_a_value_error(tmp_path: Path) -> None:
    broken, listed = tmp_path / "broken.json", tmp_path / "list.json"
    broken.write_text("{lr: 0.01")
    listed.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not readable JSON"):
        parse_prior(broken, _space())
    with pytest.raises(ValueError, match="JSON object"):
        parse_prior(listed, _space())


# -- sampling and density ----------------------------------------------------------------------

def _samples(spec: Any, n: int = 300, seed: int = 0) -> list[dict[str, Any]]:
    space = _space()
    distribution = PriorDistribution(parse_prior(spec, space), SpaceCoder(space))
    rng = np.random.default_rng(seed)
    return [distribution.sample(rng) for _ in range(n)]


def test_samples_are_valid_and_concentrate_at_the_prior() -> None:
    space = _space()
    before = json.dumps(space.to_serialized_dict(), sort_keys=True)
    drawn = _samples(MIXED_PRIOR)
    for config in drawn:
        assert_valid_config(space, config)
    assert json.dumps(space.to_serialized_dict(), sort_keys=True) == before
    sgd = [c for c in drawn if c["optimizer"] == "sgd"]
    # Categorical: kept with probability c, else uniform over 3 (c = 0.9: 0.93).
    assert 0.85 < len(sgd) / len(drawn) < 0.99
    # The child is drawn around its preference whenever its parent makes it active.
    assert abs(np.median([c["momentum"] for c in sgd]) - 0.2) < 0.05
    assert all("momentum" not in c for c in drawn if c["optimizer"] != "sgd")
    # Log-scale numeric: within a tenth of the log range (5 decades) of 1e-4 at high confidence.
    assert np.median([abs(math.log10(c["lr"]) + 4) for c in drawn]) < 0.5
    assert sum(c["batch_size"] == 256 for c in drawn) / len(drawn) > 0.85
    space.seed(0)
    uniform = [dict(c) for c in space.sample_configuration(300)]
    assert np.median([abs(math.log10(c["lr"]) + 4) for c in uniform]) > 0.8


def test_higher_confidence_samples_closer() -> None:
    spread = {}
    for level in ("low", "medium", "high"):
        drawn = _samples({"values": {"lr": 1e-3}, "confidence": level}, n=200)
        spread[level] = float(np.mean([abs(math.log10(c["lr"]) + 3) for c in drawn]))
    assert spread["high"] < spread["medium"] < spread["low"]


def test_samples_respect_forbidden_clauses() -> None:
    # The preferred activation is forbidden with the preferred optimizer.
    drawn = _samples({"values": {"optimizer": "sgd", "activation": "gelu"}, "confidence": 0.9})
    assert not any(c["optimizer"] == "sgd" and c["activation"] in ("gelu", "elu") for c in drawn)
    assert sum(c["activation"] == "gelu" for c in drawn) > 30


def test_log_density_peaks_at_the_prior_and_ignores_inactive_dims() -> None:
    space = _space()
    coder = SpaceCoder(space)
    distribution = PriorDistribution(parse_prior(MIXED_PRIOR, space), coder)
    at = coder.encode({**MIXED_PRIOR["values"], "width": 64, "nesterov": "off"})
    away = coder.encode({**MIXED_PRIOR["values"], "lr": 1e-2, "optimizer": "adam",
                         "width": 64, "nesterov": "off"})
    del_momentum = at.copy()
    del_momentum[coder.columns.index(list(space).index("momentum"))] = np.nan
    dens = distribution.logpdf(np.stack([at, away, del_momentum]))
    assert dens[0] > dens[2] > dens[1]
    # Dims without a preference add nothing: a prior on nothing is flat.
    flat = PriorDistribution(Prior({}), coder)
    assert np.all(flat.logpdf(np.stack([at, away])) == 0.0)


# -- the evidence ------------------------------------------------------------------------------

def test_the_prior_share_decays_faster_when_its_samples_lose() -> None:
    shares = {}
    for case, prior_loss in (("better", 0.0), ("worse", 2.0)):
        evidence = PriorEvidence()
        share0 = evidence.share()
        for k in range(10):
            evidence.record("prior", None, prior_loss + 0.01 * k)
            evidence.record("random", None, 1.0 + 0.01 * k)
        shares[case] = evidence.share()
    assert share0 > shares["better"] > 0.5 * share0
    assert shares["worse"] < 0.05 * share0
    # Results of other origins add evidence but no comparison.
    evidence = PriorEvidence(full_budget=27)
    evidence.record("model", 9.0, 0.0)
    assert evidence.evidence == pytest.approx(1 / 3) and evidence.trust() == 0.5


# -- the searchers -----------------------------------------------------------------------------

def _distance(config: dict[str, Any], to: dict[str, float]) -> float:
    """Normalised distance in (x, log10 y)."""
    return abs(config["x"] - to["x"]) / 10 + abs(math.log10(config["y"] / to["y"])) / 3


@pytest.mark.parametrize("name", ["random", "tpe", "hyperband", "bohb", "asha"])
def test_a_prior_draws_early_asks_to_it(name: str) -> None:
    problem = continuous_problem()
    cls = searchers.get_class(name)
    mean: dict[bool, float] = {}
    for with_prior in (False, True):
        distances = []
        for seed in range(3):
            options = {"prior": {"values": OPTIMUM, "confidence": "high"}} if with_prior else {}
            searcher = make_searcher(cls, problem.space, seed=seed, **options)
            pairs, _ = _drive(searcher, problem, 12)
            new = [t.config for t, _ in pairs if t.parent is None][:8]
            distances += [_distance(c, OPTIMUM) for c in new]
        mean[with_prior] = float(np.mean(distances))
    assert mean[True] < 0.5 * mean[False], mean


@pytest.mark.parametrize("name", ["random", "hyperband"])
def test_a_misleading_prior_is_sampled_less_and_less(name: str) -> None:
    problem = continuous_problem()
    cls = searchers.get_class(name)
    share = {}
    for label, values in (("good", OPTIMUM), ("misleading", CORNER)):
        late = []
        for seed in range(2):
            searcher = make_searcher(cls, problem.space, seed=seed,
                                     prior={"values": values, "confidence": "high"})
            pairs, _ = _drive(searcher, problem, 60)
            late += [t.info["origin"] for t, _ in pairs[20:] if t.parent is None]
        share[label] = late.count("prior") / len(late)
    assert share["misleading"] < 0.1 < 0.4 < share["good"], share


def test_a_model_weighs_its_candidates_by_the_prior() -> None:
    # Same results, same draws: weighted by a prior that falls with x, the model's picks move
    # down from where its good results (x near 0) put them.
    picks = {}
    for weighted in (False, True):
        space = continuous_problem().space
        space.seed(0)
        proposer = KDEProposer(SpaceCoder(space), np.random.default_rng(0),
                               models=SingleModel(5), split=GammaSplit(0.3), n_candidates=64)
        if weighted:
            proposer.weigh_by_prior(lambda v: -20.0 * np.nan_to_num(v[:, 0]), 10.0)
        for config in space.sample_configuration(20):
            proposer.observe(dict(config), None, abs(config["x"]))
        assert proposer.has_model()
        picks[weighted] = np.mean([proposer.propose(None).config["x"] for _ in range(20)])
    assert picks[True] < picks[False] - 0.5, picks


def test_the_prior_is_journaled_only_when_set_and_options_rebuild_the_searcher() -> None:
    problem = mixed_problem()
    for cls in PRIOR_CLASSES:
        assert "prior" not in make_searcher(cls, problem.space).options, cls.name
        searcher = make_searcher(cls, problem.space, seed=3, prior=MIXED_PRIOR)
        stored = json.loads(json.dumps(searcher.options))
        assert parse_prior(stored["prior"], problem.space) == parse_prior(MIXED_PRIOR,
                                                                          problem.space)
        rebuilt = cls(problem.space, seed=3, **stored)
        runs = [[_key(t) for t, _ in _drive(s, problem, 15)[0]] for s in (searcher, rebuilt)]
        assert runs[0] == runs[1], cls.name


def test_only_scheduled_searchers_take_a_prior() -> None:
    assert {c.name for c in PRIOR_CLASSES} >= {"random", "tpe", "hyperband", "bohb", "asha",
                                              "async-bohb", "mo-random", "motpe", "moasha",
                                              "mobohb"}
    assert Searcher.takes_prior is False


def _with_prior(cls: type[Searcher]) -> type[Searcher]:
    """`cls` whose constructor adds `MIXED_PRIOR` unless given a prior (options carry it)."""

    def __init__(self: Searcher, space: ConfigurationSpace, **options: Any) -> None:
        cls.__init__(self, space, **{"prior": MIXED_PRIOR, **options})

    return type(f"{cls.__name__}WithPrior", (cls,), {"__init__": __init__})


@pytest.mark.parametrize("check", [check_valid_configs, check_deterministic, check_replay,
                                   check_options_roundtrip, check_global_rng_untouched])
@pytest.mark.parametrize("cls", PRIOR_CLASSES, ids=lambda c: c.name)
def test_a_prior_keeps_every_searcher_reproducible(
        cls: type[Searcher], check: Callable[[type[Searcher]], None]) -> None:
    check(_with_prior(cls))


@pytest.mark.parametrize("name", ["random", "tpe", "bohb", "asha"])
def test_a_fast_replay_with_a_prior_resumes_identically(name: str) -> None:
    # As a resume does: the journaled asks up to a cut taken without proposing, the generators
    # then restored to their state after the cut's ask, and the rest asked for real.
    problem = mixed_problem()
    cls = searchers.get_class(name)
    original = make_searcher(cls, problem.space, seed=5, prior=MIXED_PRIOR)
    _, logged = _drive(original, problem, 40, fail_every=5)
    events = [e for e in logged if e.trial is not None]
    cut = [e.trial.id for e in events if e.kind == "ask"][20]
    probe = make_searcher(cls, problem.space, seed=5, prior=MIXED_PRIOR)
    replica = make_searcher(cls, problem.space, seed=5, prior=MIXED_PRIOR)
    state = None
    for event in events:
        assert event.trial is not None
        if event.kind == "ask":
            if state is None:
                probe.ask()
                if event.trial.id == cut:
                    state = probe.random_state()
            if event.trial.id <= cut:
                got = replica.replay_ask(event.trial)
            else:
                assert state is not None
                if event.trial.id == cut + 1:
                    replica.set_random_state(state)
                got = replica.ask()
            assert _key(got) == _key(event.trial), f"{name}: ask {event.trial.id}"
        else:
            assert event.result is not None
            result = Result.from_dict(event.result.to_dict())
            replica.tell(event.trial, result)
            if state is None:
                probe.tell(event.trial, result)
    assert _key(original.ask()) == _key(replica.ask())


# -- the engine and the CLI ----------------------------------------------------------------------

def _near(config: dict[str, Any], budget: float) -> float:
    return (config["x"] - 4.0) ** 2 + config["y"] ** 2


def _xy() -> ConfigurationSpace:
    return ConfigurationSpace({"x": (-5.0, 5.0), "y": (-5.0, 5.0)}, seed=0)


def test_optimize_takes_a_prior_journals_it_and_resumes_alike(tmp_path) -> None:
    import nas
    from nas.journal import JournalView

    db = tmp_path / "p.db"
    result = nas.optimize(_near, _xy(), "random", "12trials", seed=0, storage=db,
                          prior={"x": 4.0, "y": 0.0})
    options = JournalView.load(db).settings.searcher.options
    assert options["prior"]["values"] == {"x": 4.0, "y": 0.0}
    origins = [r.trial.info["origin"] for r in result.trials]
    assert origins.count("prior") >= 6
    cold = nas.optimize(_near, _xy(), "random", "12trials", seed=0, storage=tmp_path / "c.db")
    assert result.best.result.loss < cold.best.result.loss


def test_a_prior_for_a_searcher_without_one_is_one_line(tmp_path, capsys) -> None:
    from nas.cli import main

    code = main(["search", "--data", "synthetic", "--budget", "2trials", "--searcher",
                 "hyperband", "--prior", str(tmp_path / "missing.json"),
                 "--db", str(tmp_path / "a.db"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "missing.json" in err[0]
    import nas
    from nas.errors import UserError

    with pytest.raises(UserError, match="takes no prior"):
        nas.optimize(_near, _xy(), "regularized-evolution", "3trials",
                     storage=tmp_path / "b.db", prior="default")
