"""User priors: where the user expects good configurations, and how sure they are.

`parse_prior` reads one ("default", a JSON file, a mapping) into a `Prior`; `PriorDistribution`
samples it and gives its log-density on `SpaceCoder` vectors (πBO's weight, Hvarfner et al.
2022); `PriorEvidence` turns told results into the share of new configurations that should still
come from the prior, and `PriorMixture` draws that share (PriorBand, Mallik et al. 2023).
"""

from __future__ import annotations

import bisect
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeAlias

import numpy as np
from ConfigSpace import ConfigurationSpace
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    Hyperparameter,
    OrdinalHyperparameter,
)
from scipy.special import ndtr, ndtri

from nas.types import plain
from searchers import _fp
from searchers.encoding import SpaceCoder
from searchers.proposers import Proposal, Proposer
from searchers.rankings import Outcome

#: A confidence: a named level or a number in (0, 1].
Level: TypeAlias = str | float
#: The named confidence levels as numbers.
CONFIDENCE_LEVELS: Mapping[str, float] = MappingProxyType(
    {"low": 0.5, "medium": 0.75, "high": 0.9})
#: Confidence of a preference the prior gives no level for.
DEFAULT_CONFIDENCE = "medium"
#: Standard deviation, in the unit interval (log-scaled where the hyperparameter is), of a numeric
#: preference at confidence 1 and as confidence nears 0; linear between. "low" is 0.255,
#: "medium" 0.13, "high" 0.059: a high-confidence draw stays within a tenth of the range.
NARROWEST_WIDTH, WIDEST_WIDTH = 0.01, 0.5
#: Share of new configurations drawn from the prior before any result is in. Not 1: the uniform
#: rest is what a misleading prior is found out against.
PRIOR_SHARE = 0.8
#: Evidence (told results, each weighted by its budget's share of the full budget) after which
#: the share has halved, for a prior whose samples do as well as uniform ones. Better samples
#: slow the decay, worse ones speed it up (`PriorEvidence.share`).
HALF_EVIDENCE = 10.0
#: Pseudo-comparisons that pull `PriorEvidence.trust` to 1/2 while few results are in.
TRUST_SHRINK = 2.0
#: πBO's β: a model-based proposer weights its acquisition l(x)/g(x) by π(x)^(β/n), n the
#: results in its model (the paper's default of N/10 for a run of N = 100 evaluations).
PIBO_BETA = 10.0
# Prior draws an ask tries before the space's own sampler (each may land on a forbidden one).
_DRAWS = 16
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
# Floor of a categorical mismatch's probability in the log-density: a confidence of 1 gives
# other values probability 0, and -inf would turn a candidate's score into NaN.
_MIN_OTHER = 1e-6


def confidence_value(level: Level, name: str | None = None) -> float:
    """`level` ("low", "medium", "high" or a number in (0, 1]) as a number; ValueError if not."""
    where = f" of {name!r}" if name else ""
    if isinstance(level, str) and level in CONFIDENCE_LEVELS:
        return CONFIDENCE_LEVELS[level]
    if isinstance(level, (int, float)) and not isinstance(level, bool) and 0 < level <= 1:
        return float(level)
    raise ValueError(f"the prior's confidence{where} must be 'low', 'medium', 'high' or a number "
                     f"in (0, 1], got {level!r}")


@dataclass(frozen=True)
class Prior:
    """Preferred values by hyperparameter name (those left out: no preference) and the
    confidence in them: one level for all, or a level per name (others "medium")."""

    values: Mapping[str, Any]
    confidence: Level | Mapping[str, Level] = DEFAULT_CONFIDENCE

    def __post_init__(self) -> None:
        if not isinstance(self.values, Mapping):
            raise ValueError(f"a prior's values must be a mapping of names to values, got "
                             f"{type(self.values).__name__}")
        object.__setattr__(self, "values", MappingProxyType(plain(dict(self.values))))
        if isinstance(self.confidence, Mapping):
            for name, level in self.confidence.items():
                confidence_value(level, name)
            unknown = sorted(set(self.confidence) - set(self.values))
            if unknown:
                raise ValueError(f"the prior gives a confidence for {', '.join(unknown)} but no "
                                 "preferred value")
            object.__setattr__(self, "confidence", MappingProxyType(dict(self.confidence)))
        else:
            confidence_value(self.confidence)

    def level(self, name: str) -> float:
        """The confidence in the preference for `name`, as a number in (0, 1]."""
        if isinstance(self.confidence, Mapping):
            return confidence_value(self.confidence.get(name, DEFAULT_CONFIDENCE), name)
        return confidence_value(self.confidence)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, which `parse_prior` reads back into an equal prior."""
        confidence = self.confidence
        return {"values": dict(self.values),
                "confidence": dict(confidence) if isinstance(confidence, Mapping) else confidence}


def parse_prior(spec: Prior | Mapping[str, Any] | str | os.PathLike[str],
                space: ConfigurationSpace) -> Prior:
    """A `Prior` over `space` from "default" (the space's defaults, medium confidence), a JSON
    file's path, a mapping (``{"lr": 0.01}`` or ``{"values": {...}, "confidence": ...}``) or a
    `Prior`; ValueError with one sentence saying what is wrong."""
    if isinstance(spec, Prior):
        prior = spec
    elif isinstance(spec, Mapping):
        prior = _from_mapping(spec, space)
    elif isinstance(spec, str) and spec == "default":
        prior = Prior(dict(space.get_default_configuration()))
    elif isinstance(spec, (str, os.PathLike)):
        prior = _from_mapping(_read(Path(spec)), space)
    else:
        raise ValueError(f"a prior is 'default', a JSON file's path or a mapping, got "
                         f"{type(spec).__name__}")
    check_prior(prior, space)
    return prior


def _read(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise ValueError(f"the prior file {str(path)!r} does not exist (a prior is 'default', a "
                         "JSON file's path or a mapping)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the prior file {str(path)!r} is not readable JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"the prior file {str(path)!r} must hold a JSON object, not "
                         f"{type(data).__name__}")
    return data


def _from_mapping(spec: Mapping[str, Any], space: ConfigurationSpace) -> Prior:
    # The structured form, unless "values" is itself a hyperparameter given a plain value.
    if isinstance(spec.get("values"), Mapping):
        extra = sorted(set(spec) - {"values", "confidence"})
        if extra:
            raise ValueError(f"a prior of the form {{'values': ..., 'confidence': ...}} has no "
                             f"other keys, got {', '.join(map(repr, extra))}")
        return Prior(spec["values"], spec.get("confidence", DEFAULT_CONFIDENCE))
    if "confidence" in spec and "confidence" not in space:
        raise ValueError("a prior with a confidence puts its values under 'values': "
                         "{'values': {...}, 'confidence': ...}")
    return Prior(spec)


def check_prior(prior: Prior, space: ConfigurationSpace) -> None:
    """ValueError unless every name in `prior` is a hyperparameter of `space` and its value a
    legal one (the message lists the valid names, or the legal values)."""
    for name, value in prior.values.items():
        if name not in space:
            raise ValueError(f"the prior names {name!r}, which is not a hyperparameter of the "
                             f"space; valid names: {', '.join(space.keys())}")
        hp = space[name]
        try:
            legal = bool(hp.legal_value(value))
        except (TypeError, ValueError):
            legal = False
        if not legal:
            raise ValueError(f"the prior's {name}={value!r} is not a legal value of {name} "
                             f"({_legal(hp)})")


def _legal(hp: Hyperparameter) -> str:
    if isinstance(hp, (CategoricalHyperparameter, OrdinalHyperparameter)):
        choices = hp.choices if isinstance(hp, CategoricalHyperparameter) else hp.sequence
        return "one of " + ", ".join(map(repr, choices))
    if hasattr(hp, "lower"):
        return f"from {hp.lower} to {hp.upper}"
    return f"the constant {getattr(hp, 'value', '?')!r}"


class PriorDistribution:
    """A prior over one space's `SpaceCoder` vectors.

    A numeric preference is a normal around the preferred value in the unit interval (log-scaled
    where the hyperparameter is), truncated to it; a categorical or ordinal one keeps the
    preferred value with probability c (the confidence), else draws uniformly. Hyperparameters
    without a preference are uniform.
    """

    def __init__(self, prior: Prior, coder: SpaceCoder) -> None:
        self.prior = prior
        self.coder = coder
        hps = [coder.hps[pos] for pos in coder.columns]
        centre = coder.encode(dict(prior.values))
        self.preferred = ~np.isnan(centre)
        self.centre = np.nan_to_num(centre)
        self.confidence = np.array([prior.level(hp.name) if pref else 0.0
                                    for hp, pref in zip(hps, self.preferred, strict=True)])
        self.width = WIDEST_WIDTH * (1 - self.confidence) + NARROWEST_WIDTH * self.confidence
        ordinal = np.array([isinstance(hp, OrdinalHyperparameter) for hp in hps], dtype=bool)
        self.is_choice = coder.is_categorical | ordinal
        self.n_choices = np.maximum(coder.n_choices, 1)
        # Ordinal dims are index / (size - 1) in the vector, categorical ones the index itself.
        self._scale = np.where(ordinal, np.maximum(self.n_choices - 1, 1), 1).astype(np.float64)
        self._index = np.round(self.centre * self._scale)
        mass = ndtr((1 - self.centre) / self.width) - ndtr(-self.centre / self.width)
        self._log_norm = -_fp.log(self.width) - _LOG_SQRT_2PI - _fp.log(np.maximum(mass, 1e-300))

    def sample_vectors(self, m: int, rng: np.random.Generator) -> np.ndarray:
        """`m` vectors (m x dim), every dim drawn whether or not it will be active."""
        d = self.coder.dim
        u = rng.random((m, d))
        keep = rng.random((m, d)) < self.confidence
        c, w = self.centre, self.width
        lo, hi = ndtr(-c / w), ndtr((1 - c) / w)
        normal = np.clip(c + w * ndtri(np.clip(lo + u * (hi - lo), 1e-12, 1 - 1e-12)), 0.0, 1.0)
        numeric = np.where(self.preferred, normal, u)
        index = np.where(keep & self.preferred, self._index, np.floor(u * self.n_choices))
        return np.where(self.is_choice, index / self._scale, numeric)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A valid configuration drawn from the prior (conditions and forbidden clauses
        respected); after `_DRAWS` forbidden draws, one from the space's own sampler."""
        for _ in range(_DRAWS):
            config = self.coder.decode(self.sample_vectors(1, rng)[0], rng)
            if config is not None:
                return config
        return dict(self.coder.space.sample_configuration())

    def logpdf(self, vectors: np.ndarray) -> np.ndarray:
        """Log of the prior's density relative to the uniform one at each row of `vectors`
        (NaN = inactive, which like a dim without preference adds 0)."""
        v = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        x = np.nan_to_num(v)
        numeric = -0.5 * ((x - self.centre) / self.width) ** 2 + self._log_norm
        c, k = self.confidence, self.n_choices
        match = np.round(x * self._scale) == self._index
        choice = np.where(match, _fp.log(c * k + (1 - c)),
                          _fp.log(np.maximum(1 - c, _MIN_OTHER)))
        per_dim = np.where(self.is_choice, choice, numeric)
        return np.where(self.preferred & ~np.isnan(v), per_dim, 0.0).sum(axis=1)


class PriorEvidence:
    """What told results say of the prior: how much evidence is in, and how the prior's samples
    ("prior") fared against uniform ones ("random") told at the same budget.

    `full_budget`: a result at budget b weighs min(1, b / full_budget) (None: each weighs 1).
    """

    def __init__(self, full_budget: float | None = None) -> None:
        self.full_budget = full_budget
        self.evidence = 0.0
        # Sorted losses of each origin's samples, by budget.
        self._losses: dict[float | None, tuple[list[float], list[float]]] = {}
        self._wins = 0.0
        self._pairs = 0

    def record(self, origin: str | None, budget: float | None, loss: Outcome) -> None:
        """A told result; `origin` is that of the sample it started from (a promoted trial's
        root's). Only "prior" and "random" samples are compared; every result adds evidence."""
        full = self.full_budget
        self.evidence += 1.0 if budget is None or not full else min(1.0, budget / full)
        if origin not in ("prior", "random"):
            return
        value = _scalar(loss)
        prior, uniform = self._losses.setdefault(budget, ([], []))
        other = uniform if origin == "prior" else prior
        below = bisect.bisect_left(other, value)
        above = len(other) - bisect.bisect_right(other, value)
        ties = len(other) - below - above
        # Pairs won by the prior's sample: those where its loss is the lower one.
        self._wins += (above if origin == "prior" else below) + 0.5 * ties
        self._pairs += len(other)
        bisect.insort(prior if origin == "prior" else uniform, value)

    def trust(self) -> float:
        """The chance that a prior sample beats a uniform one at the same budget, pulled to 1/2
        by `TRUST_SHRINK` pseudo-comparisons (its weight: the smaller group's size)."""
        m = sum(min(len(p), len(u)) for p, u in self._losses.values())
        won = self._wins / self._pairs if self._pairs else 0.5
        return (won * m + 0.5 * TRUST_SHRINK) / (m + TRUST_SHRINK)

    def belief(self) -> float:
        """How far the prior is still believed, 1 before any result: min(1, o)^2 / (1 +
        evidence / (`HALF_EVIDENCE` o^2)), o = t / (1 - t) the odds of t = `trust`. A prior
        whose samples win 80% of comparisons (o = 4) decays 16 times slower than an even one;
        one that wins 20% is cut to 1/16 at once and decays 16 times faster."""
        t = min(max(self.trust(), 1e-6), 1 - 1e-6)
        odds = t / (1 - t)
        return min(1.0, odds) ** 2 / (1 + self.evidence / (HALF_EVIDENCE * odds**2))

    def share(self) -> float:
        """Probability that a new configuration comes from the prior: `PRIOR_SHARE` x
        `belief`."""
        return PRIOR_SHARE * self.belief()


def _scalar(loss: Outcome) -> float:
    # Several objectives are judged by the first (a multi-objective result's loss).
    if loss is None:
        return math.inf
    value = float(loss[0]) if isinstance(loss, Sequence) else float(loss)
    return value if not math.isnan(value) else math.inf


class PriorMixture:
    """`proposer`, but a new configuration comes from the prior with `evidence.share()`'s
    probability (origin "prior"); for a proposer with a model (`has_model`), only while it has
    none (πBO's start-up): its model then weighs candidates by `log_prior`."""

    def __init__(self, proposer: Proposer, prior: PriorDistribution, rng: np.random.Generator,
                 evidence: PriorEvidence) -> None:
        self.proposer = proposer
        self.prior = prior
        self.rng = rng
        self.evidence = evidence

    def propose(self, budget: float | None,
                pending: Sequence[Mapping[str, Any]] = ()) -> Proposal:
        """A prior sample with the evidence's share, else the wrapped proposer's choice."""
        has_model = getattr(self.proposer, "has_model", None)
        if (has_model is None or not has_model()) \
                and self.rng.random() < self.evidence.share():
            return Proposal(self.prior.sample(self.rng), "prior")
        return self.proposer.propose(budget, pending)

    def observe(self, config: Mapping[str, Any], budget: float | None, loss: Outcome) -> None:
        """Pass the result on to the wrapped proposer."""
        self.proposer.observe(config, budget, loss)

    def log_prior(self, vectors: np.ndarray) -> np.ndarray:
        """The prior's log-density (`PriorDistribution.logpdf`) times the evidence's `belief`:
        a prior whose samples lose to uniform ones soon stops steering a model."""
        return self.evidence.belief() * self.prior.logpdf(vectors)
