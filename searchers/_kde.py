"""A Parzen (kernel density) estimator over model vectors, shared by TPE and BOHB.

Continuous dims use Gaussians truncated to [0, 1], categorical dims the Aitchison-Aitken kernel,
and an inactive (NaN) value is a state of its own: it matches only another inactive value. The
multivariate density is a product kernel (over every dim, or over the continuous ones times one
density per categorical dim); its log is evaluated for all candidates against all observations
with matrix products (the squared distance expanded), so a call costs a few BLAS operations
however long the history is.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.special import ndtr, ndtri

from searchers import _fp
from searchers.rankings import pareto_order

#: The ways a `ParzenEstimator` sets its continuous bandwidths.
BANDWIDTH_RULES = ("normal", "neighbors")
#: How a multivariate `ParzenEstimator` models categorical dims: in the product kernel with the
#: others ("joint"), or each with its own one-dimensional density ("independent").
CATEGORICAL_MODELS = ("joint", "independent")
#: How a model weighs its good observations: all alike ("uniform"), or each by how far its loss
#: lies below the first loss above them all ("ei", Watanabe 2023's expected-improvement weights;
#: `Observations.improvements`).
WEIGHTINGS = ("uniform", "ei")
# Kernel value when exactly one of two values is inactive: unlike, but not impossible.
_MISMATCH = 1e-3
_LOG_MISMATCH = math.log(_MISMATCH)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
# Further than this many widths from both ends of [0, 1], a Gaussian's mass outside is below
# 1e-17: its truncation changes nothing in double precision.
_EDGE = 8.5


def check_weighting(value: str) -> str:
    """`value` if it names one of `WEIGHTINGS`; else a ValueError saying which do."""
    if value not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}")
    return value


def check_categoricals(value: str) -> str:
    """`value` if it names one of `CATEGORICAL_MODELS`; else a ValueError saying which do."""
    if value not in CATEGORICAL_MODELS:
        raise ValueError(f"categoricals must be one of {', '.join(CATEGORICAL_MODELS)}")
    return value


class ParzenEstimator:
    """Kernel density over observations `data` (n x d, NaN = inactive).

    `prior_weight` mixes in a uniform density as that many extra pseudo-observations, so a
    model of few points never rules a region out. `magic_clip` floors continuous bandwidths at
    1 / min(100, 1 + n) as in Bergstra et al.'s implementation, keeping early models broad.
    `bandwidth_rule`: "normal" gives each dim one bandwidth (the normal-reference rule);
    "neighbors" gives each observation its own, its distance to the farther of its two
    neighbours along that dim (Bergstra et al.'s rule, also Optuna's): wide where observations
    are sparse, narrow where they crowd. `bandwidth_scale` multiplies every continuous kernel's
    width (floor included): below 1, the density hugs its observations more tightly.
    `categoricals` ("joint" or "independent", see `CATEGORICAL_MODELS`): with "independent" a
    multivariate density is joint over the continuous dims only, times one density per
    categorical dim (a categorical value is then drawn from any observation, not only from the
    one whose continuous values were drawn).
    `weights` (one per observation, positive): each kernel's share of the mixture, and how often
    a draw starts from it; None weighs them alike. The bandwidths ignore them.
    """

    def __init__(self, data: np.ndarray, is_categorical: np.ndarray, n_choices: np.ndarray, *,
                 multivariate: bool = True, min_bandwidth: float = 1e-3,
                 prior_weight: float = 0.0, magic_clip: bool = False,
                 bandwidth_rule: str = "normal", bandwidth_scale: float = 1.0,
                 categoricals: str = "joint", weights: np.ndarray | None = None) -> None:
        if bandwidth_rule not in BANDWIDTH_RULES:
            raise ValueError(f"bandwidth_rule must be one of {BANDWIDTH_RULES}")
        check_categoricals(categoricals)
        if not bandwidth_scale > 0:
            raise ValueError(f"bandwidth_scale must be positive, got {bandwidth_scale!r}")
        data = np.atleast_2d(np.asarray(data, dtype=np.float64))
        if data.shape[0] == 0:
            raise ValueError("a Parzen estimator needs at least one observation")
        self.data = data
        self.n, self.d = data.shape
        # Scaled to sum to n, so the prior keeps its share w / (n + w) and its normalisation.
        self.weights: np.ndarray | None = None
        self._log_w: np.ndarray | None = None
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (self.n,) or not (np.all(np.isfinite(w)) and np.all(w > 0)):
                raise ValueError("weights must be one positive number per observation")
            self.weights = w * (self.n / w.sum())
            self._log_w = np.log(self.weights)
        self.multivariate = multivariate
        self.prior_weight = float(prior_weight)
        self.cat = np.asarray(is_categorical, dtype=bool)
        self.cont = ~self.cat
        self.n_choices = np.asarray(n_choices, dtype=np.int64)
        #: True when categorical dims have densities of their own (see `categoricals`).
        self.split_categoricals = multivariate and categoricals == "independent" \
            and bool(self.cat.any())
        # Whether categorical dims have columns in the kernel features (`_prepare`).
        self._joint_categoricals = bool(self.cat.any()) and not self.split_categoricals
        self.bandwidth_scale = float(bandwidth_scale)
        self.bandwidth = self._bandwidths(min_bandwidth, magic_clip)
        #: Bandwidth of each observation's kernel in each dim (n x d; read-only).
        self.kernel_bandwidth = np.broadcast_to(self.bandwidth, (self.n, self.d))
        # The continuous widths as `_prepare` broadcasts them: one row when they are per dim.
        self._cont_widths = self.bandwidth[None, self.cont]
        if bandwidth_rule == "neighbors":
            floor = self._floor(min_bandwidth, magic_clip)
            widths = self.kernel_bandwidth.copy()
            for j in np.flatnonzero(self.cont):
                widths[:, j] = _neighbor_widths(data[:, j], floor[j]) * self.bandwidth_scale
            widths.flags.writeable = False
            self.kernel_bandwidth = widths
            self._cont_widths = widths[:, self.cont]
        self._prepare()

    # -- bandwidths ----------------------------------------------------------------------------

    def _bandwidths(self, min_bandwidth: float, magic_clip: bool) -> np.ndarray:
        """Normal-reference rule per dim: 1.06 * std * n ** (-1 / (d + 4)), over active values."""
        active = ~np.isnan(self.data)
        counts = active.sum(axis=0)
        filled = np.where(active, self.data, 0.0)
        mean = filled.sum(axis=0) / np.maximum(counts, 1)
        var = (np.where(active, self.data - mean, 0.0) ** 2).sum(axis=0) / np.maximum(counts, 1)
        bw = 1.06 * np.sqrt(var) * _fp.power(np.maximum(counts, 1), -1.0 / (self.d + 4))
        bw = np.maximum(bw, self._floor(min_bandwidth, magic_clip)) * np.where(
            self.cat, 1.0, self.bandwidth_scale)
        # A categorical bandwidth is the chance of switching to another value: at most uniform.
        k = np.maximum(self.n_choices, 2)
        return np.where(self.cat, np.minimum(bw, (k - 1) / k), bw)

    def _floor(self, min_bandwidth: float, magic_clip: bool) -> np.ndarray:
        floor = np.full(self.d, min_bandwidth)
        return np.maximum(floor, 1.0 / min(100, 1 + self.n)) if magic_clip else floor

    def _prepare(self) -> None:
        """The observations' side of the log kernel as one matrix: `_pair_logk` is then a single
        matrix product with the candidates' features (`_features`), however many terms it has."""
        x = self.data
        cont, cat = self.cont, self.cat
        c = int(cont.sum())
        k = self.n_choices[cat]
        self._cat_k = k
        self._cat_offsets = np.concatenate([[0], np.cumsum(k)[:-1]]).astype(np.int64)
        # Split off, categorical dims have tables of their own and no columns here.
        joint_cat = self._joint_categoricals
        out = np.empty((self.n, 4 * c + (int(k.sum()) + 2 * len(k) if joint_cat else 0)))
        if self.split_categoricals:
            self._cat_tables = [self._categorical_table(j) for j in np.flatnonzero(cat)]
        # Per continuous dim, with a = active, the log kernel is
        #   a_y a_x (-(y - x)^2 / (2 bw^2) + log_norm) + mismatch * (a_y (1 - a_x) + (1 - a_y) a_x)
        # and the square expanded gives four candidate features: -a y^2, a y, a, 1 - a.
        xc = x[:, cont]
        ax = (~np.isnan(xc)).astype(np.float64)
        x0 = np.nan_to_num(xc)
        bw = self._cont_widths
        inv2 = 0.5 / bw**2
        # Scores from these are ranked rounded (`density_ratio_candidates`): NumPy's log.
        log_norm = -np.log(bw) - _LOG_SQRT_2PI - self._log_mass(x0, bw)
        a_inv2 = np.multiply(ax, inv2, out=out[:, :c])
        np.multiply(2.0 * a_inv2, x0, out=out[:, c:2 * c])
        out[:, 2 * c:3 * c] = ax * (log_norm - x0**2 * inv2) + _LOG_MISMATCH * (1.0 - ax)
        np.multiply(ax, _LOG_MISMATCH, out=out[:, 3 * c:4 * c])
        if joint_cat:
            # Categorical dims: one-hot columns (inactive rows all zero); candidate features
            # one-hot, a, 1 - a.
            lam = self.bandwidth[cat]
            log_other = _fp.log(lam / np.maximum(k - 1, 1))
            gain = np.repeat(_fp.log1p(-lam) - log_other, k)
            hot, acx = self._onehot(x[:, cat])
            h, m = 4 * c + int(k.sum()), len(k)
            np.multiply(hot, gain, out=out[:, 4 * c:h])
            out[:, h:h + m] = acx * log_other + _LOG_MISMATCH * (1.0 - acx)
            np.multiply(acx, _LOG_MISMATCH, out=out[:, h + m:])
        self._x_features = out

    def _categorical_table(self, j: int) -> np.ndarray:
        """Log of categorical dim `j`'s mixture (times n + prior weight) at each of its values,
        and last when inactive. One bandwidth for all its kernels, so the mixture over the
        observations only needs how many hold each value: O(k), not O(n), per candidate."""
        k = int(self.n_choices[j])
        column = self.data[:, j]
        active = ~np.isnan(column)
        w = np.ones(self.n) if self.weights is None else self.weights
        counts = np.bincount(column[active].astype(np.int64), weights=w[active], minlength=k)
        n_active, n_inactive = float(w[active].sum()), float(w[~active].sum())
        lam = self.bandwidth[j]
        same, other = 1.0 - lam, lam / max(k - 1, 1)
        mix = np.empty(k + 1)
        mix[:k] = counts * same + (n_active - counts) * other + n_inactive * _MISMATCH
        mix[k] = n_active * _MISMATCH + n_inactive
        if self.prior_weight > 0:
            mix[:k] += self.prior_weight / max(k, 2)
            mix[k] += self.prior_weight
        with np.errstate(divide="ignore"):
            return np.log(mix)

    @staticmethod
    def _log_mass(x0: np.ndarray, bw: np.ndarray) -> np.ndarray:
        """Log of each truncated Gaussian's mass inside [0, 1]: 0 (to the last bit) unless the
        centre lies within _EDGE widths of an end, so only those pay for ndtr."""
        out = np.zeros_like(x0)
        reach = _EDGE * bw
        near = np.nonzero((x0 < reach) | (x0 > 1.0 - reach))
        if len(near[0]):
            width = np.broadcast_to(bw, x0.shape)[near]
            centre = x0[near]
            mass = ndtr((1.0 - centre) / width) - ndtr(-centre / width)
            out[near] = np.log(np.maximum(mass, 1e-300))
        return out

    def _onehot(self, xk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        active = ~np.isnan(xk)
        hot = np.zeros((xk.shape[0], int(self._cat_k.sum())))
        rows, cols = np.nonzero(active)
        hot[rows, self._cat_offsets[cols] + xk[rows, cols].astype(np.int64)] = 1.0
        return hot, active.astype(np.float64)

    def _features(self, y: np.ndarray) -> np.ndarray:
        """The candidates' side of the log kernel (see `_prepare`)."""
        yc = y[:, self.cont]
        ay = (~np.isnan(yc)).astype(np.float64)
        y0 = np.nan_to_num(yc)
        columns = [-ay * y0**2, ay * y0, ay, 1.0 - ay]
        if self._joint_categoricals:
            hot, acy = self._onehot(y[:, self.cat])
            columns += [hot, acy, 1.0 - acy]
        return np.concatenate(columns, axis=1)

    def _pair_logk(self, y: np.ndarray) -> np.ndarray:
        """Log product kernel between each candidate (rows) and each observation (columns),
        plus each observation's log weight when it has one."""
        logk = self._features(y) @ self._x_features.T
        if self._log_w is not None:
            logk += self._log_w
        return logk

    def _dim_logk(self, y: np.ndarray, j: int) -> np.ndarray:
        """Log kernel of dim `j` alone, candidates x observations."""
        yj, xj = y[:, j][:, None], self.data[:, j][None, :]
        ny, nx = np.isnan(yj), np.isnan(xj)
        if self.cat[j]:
            bw = self.bandwidth[j]
            k = max(int(self.n_choices[j]), 2)
            both = np.where(yj == xj, math.log1p(-bw), math.log(bw / (k - 1)))
        else:
            bw = self.kernel_bandwidth[:, j][None, :]
            x0 = np.nan_to_num(xj)
            mass = ndtr((1.0 - x0) / bw) - ndtr(-x0 / bw)
            both = (-0.5 * ((np.nan_to_num(yj) - x0) / bw) ** 2 - np.log(bw) - _LOG_SQRT_2PI
                    - np.log(np.maximum(mass, 1e-300)))
        return np.where(ny & nx, 0.0, np.where(ny | nx, _LOG_MISMATCH, both))

    def logpdf(self, y: np.ndarray) -> np.ndarray:
        """Log density at each row of `y` (m x d)."""
        y = np.atleast_2d(np.asarray(y, dtype=np.float64))
        log_n = math.log(self.n + self.prior_weight)
        if self.split_categoricals:
            return self._split_logpdf(y, log_n)
        if self.multivariate:
            extra = None
            if self.prior_weight > 0:
                extra = self._log_uniform(y) + math.log(self.prior_weight)
            return _logsumexp_rows(self._pair_logk(y), extra) - log_n
        total = np.zeros(y.shape[0])
        for j in range(self.d):
            extra = None
            if self.prior_weight > 0:
                u = 0.0 if not self.cat[j] else -math.log(max(int(self.n_choices[j]), 2))
                extra = np.where(np.isnan(y[:, j]), 0.0, u) + math.log(self.prior_weight)
            logk = self._dim_logk(y, j)
            if self._log_w is not None:
                logk += self._log_w
            total += _logsumexp_rows(logk, extra) - log_n
        return total

    def _split_logpdf(self, y: np.ndarray, log_n: float) -> np.ndarray:
        """Log density joint over the continuous dims (a logsumexp over the observations of their
        kernel features), plus each categorical dim's own, read from its table."""
        total = np.zeros(y.shape[0])
        c = int(self.cont.sum())
        if c:
            # The uniform prior's density on [0, 1]^c is 1.
            extra = None if self.prior_weight <= 0 else np.full(
                y.shape[0], math.log(self.prior_weight))
            total += _logsumexp_rows(self._pair_logk(y), extra)
        for j, table in zip(np.flatnonzero(self.cat), self._cat_tables, strict=True):
            values = y[:, j]
            at = np.where(np.isnan(values), len(table) - 1, np.nan_to_num(values))
            total += table[np.clip(at.astype(np.int64), 0, len(table) - 1)]
        return total - (bool(c) + len(self._cat_tables)) * log_n

    def _log_uniform(self, y: np.ndarray) -> np.ndarray:
        k = np.maximum(self.n_choices, 2)
        per_dim = np.where(self.cat & ~np.isnan(y), -_fp.log(k), 0.0)
        return per_dim.sum(axis=1)

    # -- sampling ------------------------------------------------------------------------------

    def sample(self, m: int, rng: np.random.Generator, *, bandwidth_factor: float = 1.0
               ) -> np.ndarray:
        """Draw `m` vectors: pick an observation, then perturb each dim with its kernel.

        With a prior, a draw comes from the uniform density with probability w / (n + w).
        Multivariate draws perturb one observation in every dim; univariate ones pick an
        observation per dim; with independent categoricals, each categorical dim takes the
        value of an observation of its own, among those where it is active.
        """
        n, d = self.n, self.d
        shape = (m, 1) if self.multivariate else (m, d)
        idx = rng.integers(n, size=shape) if self.weights is None \
            else rng.choice(n, size=shape, p=self.weights / self.weights.sum())
        out = self.data[idx, np.arange(d)[None, :]] if not self.multivariate \
            else self.data[idx[:, 0]].copy()
        if self.split_categoricals:
            for j in np.flatnonzero(self.cat):
                active = np.flatnonzero(~np.isnan(self.data[:, j]))
                if active.size:
                    # Where the drawn observation has it inactive it stays so: the vector's
                    # activity is settled when it is decoded.
                    if self.weights is None:
                        pick = rng.integers(active.size, size=m)
                    else:
                        w = self.weights[active]
                        pick = rng.choice(active.size, size=m, p=w / w.sum())
                    value = self.data[active[pick], j]
                    out[:, j] = np.where(np.isnan(out[:, j]), np.nan, value)
        bw = self.bandwidth
        # Continuous: inverse-CDF draw from the truncated Gaussian around each value.
        cont = self.cont[None, :] & ~np.isnan(out)
        widths = self.kernel_bandwidth[idx[:, 0]] if self.multivariate \
            else self.kernel_bandwidth[idx, np.arange(d)[None, :]]
        scale = widths * bandwidth_factor
        centre = np.nan_to_num(out)
        lo, hi = ndtr(-centre / scale), ndtr((1.0 - centre) / scale)
        u = lo + rng.random(out.shape) * (hi - lo)
        drawn = np.clip(centre + scale * ndtri(np.clip(u, 1e-12, 1 - 1e-12)), 0.0, 1.0)
        out = np.where(cont, drawn, out)
        # Categorical: keep the value with probability 1 - bandwidth, else a uniform choice.
        cat = self.cat[None, :] & ~np.isnan(out)
        switch = rng.random(out.shape) < np.broadcast_to(bw, out.shape)
        uniform = np.floor(rng.random(out.shape) * np.maximum(self.n_choices, 1))
        out = np.where(cat & switch, uniform, out)
        if self.prior_weight > 0:
            from_prior = rng.random(m) < self.prior_weight / (n + self.prior_weight)
            if from_prior.any():
                out[from_prior] = self._uniform(int(from_prior.sum()), rng, out[from_prior])
        return out

    def _uniform(self, m: int, rng: np.random.Generator, like: np.ndarray) -> np.ndarray:
        draw = rng.random((m, self.d))
        draw = np.where(self.cat, np.floor(draw * np.maximum(self.n_choices, 1)), draw)
        # Activity is settled when the vector is decoded; keep the pattern of `like`.
        return np.where(np.isnan(like), np.nan, draw)


def _logsumexp_rows(a: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
    """log(sum(exp(row)) [+ exp(extra)]) of each row, overwriting `a`: no concatenated copy
    (scipy's logsumexp was a quarter of an ask at 5,000 observations)."""
    top = a.max(axis=1)
    if extra is not None:
        top = np.maximum(top, extra)
    top = np.where(np.isfinite(top), top, 0.0)
    a -= top[:, None]
    # NumPy's own (SIMD) exp: the one large array of an ask. Its last bit may differ between
    # CPUs; `density_ratio_candidates` ranks on rounded scores, so decisions do not.
    np.exp(a, out=a)
    total = a.sum(axis=1)
    if extra is not None:
        total += np.exp(extra - top)
    with np.errstate(divide="ignore"):
        return np.log(total) + top


def _neighbor_widths(values: np.ndarray, floor: float) -> np.ndarray:
    """Each value's distance to the farther of its two neighbours among the active values,
    the ends of [0, 1] counting as neighbours of the outermost, clipped to [floor, 1]."""
    out = np.ones(len(values))
    active = np.flatnonzero(~np.isnan(values))
    if active.size == 0:
        return out
    order = active[np.argsort(values[active], kind="stable")]
    line = np.concatenate([[0.0], values[order], [1.0]])
    gaps = np.diff(line)
    width = np.maximum(gaps[:-1], gaps[1:])
    if len(order) >= 2:
        # The outermost reach only inwards: the distance to the edge says nothing of the data.
        width[0], width[-1] = gaps[1], gaps[-2]
    out[order] = np.clip(width, floor, 1.0)
    return out


class Observations:
    """Model vectors and losses of told trials, stored in arrays that grow by doubling."""

    def __init__(self, dim: int) -> None:
        self._x = np.empty((16, dim))
        self._y = np.empty(16)
        self.n = 0

    def add(self, vector: np.ndarray, loss: float) -> None:
        """Append one observation (an infinite loss marks a failure: always among the bad)."""
        if self.n == len(self._y):
            self._x = np.concatenate([self._x, np.empty_like(self._x)])
            self._y = np.concatenate([self._y, np.empty_like(self._y)])
        self._x[self.n] = vector
        self._y[self.n] = loss if math.isfinite(loss) else np.inf
        self.n += 1

    @property
    def vectors(self) -> np.ndarray:
        """All vectors, oldest first."""
        return self._x[: self.n]

    @property
    def losses(self) -> np.ndarray:
        """All losses, oldest first."""
        return self._y[: self.n]

    def split(self, n_good: int, n_bad: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The `n_good` lowest-loss vectors and the `n_bad` highest (default: all the rest).

        Ties are broken by age (the older first), so the split is deterministic.
        """
        order = np.argsort(self.losses, kind="stable")
        n_bad = self.n - n_good if n_bad is None else n_bad
        return self.vectors[order[:n_good]], self.vectors[order[self.n - n_bad:]]

    def improvements(self, n_good: int) -> np.ndarray | None:
        """How far each of the `n_good` best losses lies below the first loss above them all (the
        best bad one, past any that tie with the worst good one), in `split`'s order: the "ei"
        weights. None where no finite loss lies above them."""
        if n_good >= self.n:
            return None
        order = np.argsort(self.losses, kind="stable")
        good, rest = self.losses[order[:n_good]], self.losses[order[n_good:]]
        # A tie across the split would leave its good members with nothing: on losses counted
        # in whole validation images, most of the good ones.
        above = rest[rest > good[-1]]
        if above.size == 0 or not math.isfinite(above[0]):
            return None
        return above[0] - good


def density_ratio_candidates(good: ParzenEstimator, bad: ParzenEstimator, n_candidates: int,
                             rng: np.random.Generator, *, bandwidth_factor: float = 1.0,
                             log_weight: Callable[[np.ndarray], np.ndarray] | None = None
                             ) -> np.ndarray:
    """Candidates drawn from the good density, best ratio l(x) / g(x) first; with `log_weight`,
    the ratio times exp(log_weight(x)) (πBO's prior weight)."""
    candidates = good.sample(n_candidates, rng, bandwidth_factor=bandwidth_factor)
    score = good.logpdf(candidates) - bad.logpdf(candidates)
    if log_weight is not None:
        score = score + log_weight(candidates)
    return candidates[np.argsort(-_rounded(score), kind="stable")]


#: Significant digits the density-ratio scores are ranked on: far more than the models can
#: tell apart, and few enough that another CPU's last-bit rounding of exp and log (AVX-512's
#: SVML against libm) gives the same ranking.
SCORE_DIGITS = 10


def _rounded(score: np.ndarray) -> np.ndarray:
    """`score` to `SCORE_DIGITS` significant digits (infinities and NaN as they are), by
    decimal formatting: correctly rounded everywhere, unlike a SIMD log10 or power."""
    return np.array([float(f"{v:.{SCORE_DIGITS}g}") for v in score.tolist()])


class ParetoObservations(Observations):
    """`Observations` of objective vectors (MOTPE, Ozaki et al. 2020): the good are whole
    non-dominated fronts, best first, and the last front that fits only in part gives the
    points adding the most hypervolume (objectives normalised to the observed range)."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self._values: list[tuple[float, ...] | None] = []

    def add(self, vector: np.ndarray, loss: float | tuple[float, ...] | None) -> None:
        """Append one observation; `loss` is its objective values (None or a non-finite value:
        a failure, always among the bad)."""
        values = None if loss is None else (
            (float(loss),) if isinstance(loss, (int, float)) else tuple(float(v) for v in loss))
        if values is not None and not all(math.isfinite(v) for v in values):
            values = None
        # The scalar column holds the first objective, for readers of `losses`.
        super().add(vector, math.inf if values is None else values[0])
        self._values.append(values)

    def split(self, n_good: int, n_bad: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The `n_good` best vectors by Pareto rank and the `n_bad` worst (default: the rest)."""
        usable = [k for k, v in enumerate(self._values) if v is not None]
        failed = [k for k, v in enumerate(self._values) if v is None]
        ranked = [usable[k] for k in pareto_order([self._values[k] for k in usable])]
        order = np.array(ranked + failed, dtype=np.int64)
        n_bad = self.n - n_good if n_bad is None else n_bad
        return self.vectors[order[:n_good]], self.vectors[order[self.n - n_bad:]]

    def improvements(self, n_good: int) -> np.ndarray | None:
        """None: the good are whole fronts, with no one loss to measure a distance from."""
        return None
