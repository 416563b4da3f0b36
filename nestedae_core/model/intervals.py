"""Prediction intervals that hold: CV+ conformal intervals from the k-fold ensemble.

A cross-validated chain has, for every target, the out-of-fold absolute
residuals ``r_i = |y_i - mu_{k(i)}(x_i)|`` of its training rows, each from the
fold model ``k(i)`` that did not see row ``i`` (the *calibration*; the targets
themselves are not kept). For a new input ``x``, the CV+ interval of Barber,
Candès, Ramdas and Tibshirani (2021, "Predictive inference with the jackknife+",
Ann. Statist. 49, 486-507, section 4) at level ``1 - alpha`` is::

    [ q-_alpha { mu_{k(i)}(x) - r_i },  q+_alpha { mu_{k(i)}(x) + r_i } ]

over the ``n`` calibration rows ``i``, where ``q-_alpha`` is the
``floor(alpha (n + 1))``-th smallest value and ``q+_alpha`` the
``ceil((1 - alpha)(n + 1))``-th smallest (minus / plus infinity when that rank
is below 1 / above n). Its coverage is guaranteed to be at least ``1 - 2 alpha``
for exchangeable data and is close to ``1 - alpha`` in practice.

Units: residuals, predictions and intervals are in the target's units. A target
whose ``bounds`` are ``positive`` has its interval clipped to ``[0, inf)``, a
``fraction`` to ``[0, 1]``.

Two refinements, stored with each target's calibration (a calibration without
them, as in older bundles, is the plain CV+ interval above):

* ``transform="logit"`` (a target with a finite upper end ``cap``: a fraction,
  cap 1, a target with a ceiling, or a product of such targets): residuals and
  intervals live in ``g(y) = logit(y / cap)`` and the interval is mapped back by
  ``cap * expit(.)``. The interval then lies in (0, cap) because of how it is built,
  never by clipping: every member obeys the cap and so does every bound.
* ``normalised=True`` (locally adaptive, "normalised" conformal prediction;
  Papadopoulos et al. 2011, J. Artif. Intell. Res. 40, 815; Lei et al. 2018,
  JASA 113, 1094): each residual is divided by a difficulty ``s(x) = sd_m g(mu_m(x)) + floor``,
  the ensemble members' disagreement plus ``floor`` (the median disagreement
  over the calibration rows), and a query's interval is
  ``[q- {g(mu_k(i)(x)) - s(x) r_i}, q+ {g(mu_k(i)(x)) + s(x) r_i}]``: narrow where
  the fold models agree, wide where they do not (an extrapolation).
* ``distance_coef=(c0, c1)`` (distance-scaled conformal; Papadopoulos et al. 2011 scale by
  nearest-neighbour distances): the difficulty is ``s(x) = c0 + c1 d(x)``, ``d`` the distance
  of the input to the nearest training row (a calibration row: to the nearest row outside its
  own fold, which its fold model trained on), ``c0, c1 >= 0`` the non-negative least-squares
  fit of the calibration rows' absolute residuals on ``(1, d)``. Fold models that all miss
  the same ion family agree with each other, so their disagreement does not see that
  extrapolation; the distance to what they were trained on does.

A chain fitted on all rows (:func:`nestedae_core.train.fit`) has no out-of-fold
residuals, hence no calibration and no intervals.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = [
    "CALIBRATION_METHOD",
    "DEFAULT_LEVEL",
    "TargetCalibration",
    "calibration_from_json",
    "calibration_to_json",
    "check_level",
    "clip_to_bounds",
    "distance_difficulty",
    "cv_plus_interval",
    "cv_plus_ranks",
    "calibrate_target",
    "conformal_interval",
    "interval_space",
]

#: Default level of the prediction intervals (a 90 % interval).
DEFAULT_LEVEL = 0.90
#: Name of the method, stored with the calibration.
CALIBRATION_METHOD = "CV+"


@dataclass
class TargetCalibration:
    """Out-of-fold absolute residuals of one target and the fold (ensemble member) of each.

    Residuals are in target units (``transform="identity"``, ``normalised=False``),
    or in the space named by ``transform`` and divided by the difficulty when
    ``normalised`` (see the module docstring; ``floor`` is added to the ensemble
    disagreement). Kept sorted by fold, then residual: CV+ needs only each fold's
    residuals, and the order no longer tells which training row a residual belongs to.
    """

    fold: np.ndarray
    residual: np.ndarray
    transform: str = "identity"
    normalised: bool = False
    floor: float = 0.0
    #: (c0, c1): residuals divided by the difficulty ``c0 + c1 * distance`` (see the module docstring); None: not distance-scaled
    distance_coef: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        self.fold = np.asarray(self.fold, dtype=np.int64).ravel()
        self.residual = np.abs(np.asarray(self.residual, dtype=np.float64).ravel())
        if self.fold.shape != self.residual.shape:
            raise ValueError(f"{len(self.fold)} fold ids for {len(self.residual)} residuals")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"unknown interval transform {self.transform!r}; known: {', '.join(TRANSFORMS)}")
        self.normalised, self.floor = bool(self.normalised), float(self.floor)
        if not math.isfinite(self.floor) or self.floor < 0:
            raise ValueError(f"the difficulty floor must be a finite number >= 0, got {self.floor}")
        if self.distance_coef is not None:
            c0, c1 = (float(v) for v in self.distance_coef)
            if not (math.isfinite(c0) and math.isfinite(c1) and c0 > 0 and c1 >= 0):
                raise ValueError(f"distance coefficients must be finite, c0 > 0 and c1 >= 0, got {self.distance_coef}")
            if self.normalised:
                raise ValueError("a calibration is scaled by the disagreement or by the distance, not both")
            self.distance_coef = (c0, c1)
        order = np.lexsort((self.residual, self.fold))  # by fold, then residual: no trace of the row order
        self.fold, self.residual = self.fold[order], self.residual[order]

    @classmethod
    def from_out_of_fold(cls, fold: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> "TargetCalibration":
        """Calibration from out-of-fold predictions: rows where the target or its prediction is missing are left out."""
        fold, y_true, y_pred = np.asarray(fold), np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
        ok = np.isfinite(y_true) & np.isfinite(y_pred)
        return cls(fold[ok], np.abs(y_true[ok] - y_pred[ok]))

    def __len__(self) -> int:
        return len(self.residual)


#: Spaces the residuals can live in: target units, or logit of the value over its cap.
TRANSFORMS = ("identity", "logit")
#: Fractions of the cap are kept in [_EPS, 1 - _EPS] before the logit (a value at its cap is finite).
_EPS = 1e-6


def interval_space(values: np.ndarray, caps: np.ndarray | None, transform: str) -> np.ndarray:
    """Values (target units) in the space of ``transform``: themselves, or ``logit(values / caps)``
    (fractions kept in [1e-6, 1 - 1e-6]; a cap of 0 gives fraction 1e-6)."""
    v = np.asarray(values, dtype=np.float64)
    if transform == "identity":
        return v
    c = np.broadcast_to(np.asarray(caps, dtype=np.float64), v.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(c > 0, v / np.where(c > 0, c, 1.0), _EPS)
    f = np.clip(np.where(np.isfinite(v), f, np.nan), _EPS, 1.0 - _EPS)
    return np.log(f) - np.log1p(-f)


def _from_space(g: np.ndarray, caps: np.ndarray | None, transform: str) -> np.ndarray:
    """Inverse of :func:`interval_space`: ``caps * expit(g)`` (in [0, caps]; infinite ``g`` gives 0 or the cap)."""
    if transform == "identity":
        return g
    c = np.maximum(np.asarray(caps, dtype=np.float64), 0.0)
    with np.errstate(over="ignore"):
        e = np.where(g >= 0, 1.0 / (1.0 + np.exp(-np.abs(g))), np.exp(-np.abs(g)) / (1.0 + np.exp(-np.abs(g))))
    return c * e


def _disagreement(g: np.ndarray) -> np.ndarray:
    """Standard deviation over members (axis 0, ddof 1; 0 with one member)."""
    return g.std(axis=0, ddof=1) if g.shape[0] > 1 else np.zeros(g.shape[1:])


def distance_difficulty(residual: np.ndarray, distance: np.ndarray) -> tuple[float, float]:
    """``(c0, c1)``: the non-negative least-squares fit ``|residual| ~ c0 + c1 * distance`` (residual units; distance
    in the units the queries' distances will have), with ``c0`` kept above 1e-3 of the median absolute residual (and
    1e-12) so that the difficulty is positive at distance 0."""
    r = np.abs(np.asarray(residual, dtype=np.float64))
    d = np.asarray(distance, dtype=np.float64)
    ok = np.isfinite(r) & np.isfinite(d)
    if not ok.any():
        return 1.0, 0.0
    a0, a1 = _nonnegative_line(d[ok], r[ok])
    c0 = max(a0, 1e-3 * float(np.median(r[ok])), 1e-12)
    return float(c0), float(a1)


def _nonnegative_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(a0, a1)`` minimising ``sum((y - a0 - a1 x)^2)`` with ``a0, a1 >= 0``: the least-squares line when both
    are non-negative, else the better of the best ``a1 = 0`` and best ``a0 = 0`` fits (the optimum of a convex
    problem with two bounds lies inside or on one of them). The same answer as non-negative least squares on the
    columns ``[1, x]`` (e.g. ``scipy.optimize.nnls``; a test compares them) whenever that answer is unique, without
    importing SciPy. When every ``x`` is equal (one row included) every line through ``(x, mean y)`` fits as well:
    this returns the flat one ``(max(mean y, 0), 0)``, where ``nnls`` returns ``(0, mean y / x)`` for ``x > 1``."""
    n = len(x)
    sx, sy, sxx, sxy = x.sum(), y.sum(), x @ x, x @ y
    det = n * sxx - sx * sx
    if det > 1e-12 * max(n * sxx, 1e-300):
        a1 = (n * sxy - sx * sy) / det
        a0 = (sy - a1 * sx) / n
        if a0 >= 0 and a1 >= 0:
            return float(a0), float(a1)
    candidates = [(max(sy / n, 0.0), 0.0), (0.0, max(sxy / sxx, 0.0) if sxx > 0 else 0.0)]
    return min(candidates, key=lambda c: float(np.sum((y - c[0] - c[1] * x) ** 2)))


def calibrate_target(
    fold: np.ndarray,
    y_true: np.ndarray,
    member_predictions: np.ndarray,
    *,
    caps: np.ndarray | None = None,
    normalised: bool = False,
    distance: np.ndarray | None = None,
) -> TargetCalibration:
    """Calibration of one target from a cross-validation.

    ``fold``: (n,) fold of each row (the member that did not train on it);
    ``y_true``: (n,) targets; ``member_predictions``: (members, n) every member's
    prediction of every row (target units); ``caps``: (members, n) the upper end of
    the target's range for each member's prediction (finite everywhere: residuals in
    the logit space; None or infinite: target units). ``normalised``: divide residuals
    by the difficulty (the disagreement of the members plus the median disagreement).
    ``distance``: (n,) each row's distance to the nearest row outside its own fold
    (the rows its fold model trained on): residuals are divided by the difficulty
    ``c0 + c1 * distance`` (:func:`distance_difficulty`; not with ``normalised``).
    Rows where the target or its prediction is missing are left out.
    """
    fold = np.asarray(fold, dtype=np.int64)
    y = np.asarray(y_true, dtype=np.float64)
    mu = np.asarray(member_predictions, dtype=np.float64)
    n = len(y)
    transform = "logit" if caps is not None and np.isfinite(caps).all() else "identity"
    caps_m = None if transform == "identity" else np.broadcast_to(np.asarray(caps, dtype=np.float64), mu.shape)
    g = interval_space(mu, caps_m, transform)  # (members, n)
    g_oof = g[fold, np.arange(n)]
    g_true = interval_space(y, None if caps_m is None else caps_m[fold, np.arange(n)], transform)
    ok = np.isfinite(g_true) & np.isfinite(g_oof)
    residual = np.abs(g_true - g_oof)
    floor = 0.0
    if normalised:
        spread = _disagreement(g)
        floor = float(np.median(spread[ok])) if ok.any() else 0.0
        floor = floor if floor > 0 else 1e-12
        residual = residual / (spread + floor)
    coef = None
    if distance is not None:
        if normalised:
            raise ValueError("a calibration is scaled by the disagreement or by the distance, not both")
        d = np.asarray(distance, dtype=np.float64)
        if d.shape != (n,):
            raise ValueError(f"distance must hold one value per row ({n}), got shape {d.shape}")
        ok &= np.isfinite(d)
        coef = distance_difficulty(residual[ok], d[ok])
        residual = residual / (coef[0] + coef[1] * np.where(np.isfinite(d), d, 0.0))
    return TargetCalibration(fold[ok], residual[ok], transform=transform, normalised=normalised, floor=floor, distance_coef=coef)


def conformal_interval(
    member_predictions: np.ndarray, calibration: TargetCalibration, level: float = DEFAULT_LEVEL, caps: np.ndarray | None = None,
    distance: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The CV+ interval (lower, upper), each (q,) in target units, in the calibration's space and scale.

    ``member_predictions``: (members, q); ``caps``: (q,) the upper end of the target's
    range at each query (needed by a ``logit`` calibration); ``distance``: (q,) each
    query's distance to the nearest training row (needed by a distance-scaled
    calibration, in the units its rows' distances had). See the module docstring.
    """
    mu = np.asarray(member_predictions, dtype=np.float64)
    if calibration.transform == "identity" and not calibration.normalised and calibration.distance_coef is None:
        return cv_plus_interval(mu, calibration, level)
    if calibration.distance_coef is not None and distance is None:
        raise ValueError("a distance-scaled calibration needs the queries' distances to the training rows")
    if calibration.transform != "identity" and caps is None:
        raise ValueError("a logit calibration needs the caps of the queries")
    caps_q = None if calibration.transform == "identity" else np.broadcast_to(np.asarray(caps, dtype=np.float64), mu.shape[1:])
    g = interval_space(mu, caps_q, calibration.transform)
    if calibration.distance_coef is not None:
        c0, c1 = calibration.distance_coef
        s = c0 + c1 * np.broadcast_to(np.asarray(distance, dtype=np.float64), mu.shape[1:])
    else:
        s = _disagreement(g) + calibration.floor if calibration.normalised else np.ones(mu.shape[1])
    lo, hi = cv_plus_interval(g / s, calibration, level)
    return _from_space(lo * s, caps_q, calibration.transform), _from_space(hi * s, caps_q, calibration.transform)


def check_level(level: float) -> float:
    """``level`` as a float strictly between 0 and 1 (InputError otherwise), e.g. 0.9 for a 90 % interval."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise InputError(f"the interval level must be a number between 0 and 1 (e.g. 0.9), got {level!r}") from None
    if not 0.0 < value < 1.0:
        raise InputError(f"the interval level must lie strictly between 0 and 1 (e.g. 0.9 for 90 %), got {level!r}")
    return value


def cv_plus_ranks(n: int, level: float) -> tuple[int, int]:
    """1-based ranks (lower, upper) of the CV+ quantiles among ``n`` calibration values.

    ``lower = floor(alpha (n + 1))`` (0: minus infinity), ``upper = ceil((1 - alpha)(n + 1))``
    (``n + 1``: plus infinity), ``alpha = 1 - level``; a tiny tolerance keeps
    exact products (e.g. 0.1 x 100) from rounding the wrong way.
    """
    alpha = 1.0 - check_level(level)
    lo = int(math.floor(alpha * (n + 1) + 1e-9))
    hi = int(math.ceil((1.0 - alpha) * (n + 1) - 1e-9))
    return max(lo, 0), min(hi, n + 1)


def _kth_smallest_plus(shift: np.ndarray, sorted_values: list[np.ndarray], k: int) -> np.ndarray:
    """The ``k``-th smallest (1-based) of the union over members ``m`` of ``shift[m] + sorted_values[m]``, per query.

    ``shift``: (members, q); ``sorted_values[m]``: member ``m``'s residuals, sorted
    ascending (``n`` in all, ``1 <= k <= n``). Exact (the value is one of the sums
    ``shift[m] + v``): an elimination on the ranks, all queries at once. With ``k``
    left to find and ``A`` members not used up, each member offers its next
    ``s = (k - 2) // A + 1`` candidates; the member whose last offered candidate is
    smallest has all of them among the ``k - 1`` smallest (at most ``A (s - 1) + 1 <= k - 1``
    candidates can come before it), so they are dropped and ``k`` falls by ``s``, about
    ``k / A`` a step, until ``k`` is 1 (the smallest next candidate). Ranks past the middle are searched
    from the top (the ``(n + 1 - k)``-th smallest of the negated values).
    """
    members = [(shift[m], v) for m, v in enumerate(sorted_values) if len(v)]
    n = sum(len(v) for _, v in members)
    if 2 * k > n + 1:  # -(a + b) == (-a) + (-b) exactly: the same sums, negated
        return -_kth_smallest_plus(-shift, [-v[::-1] for v in sorted_values], n + 1 - k)
    lens = np.array([len(v) for _, v in members], dtype=np.int64)[:, None]
    width = int(lens.max())
    table = np.full((len(members), width), np.inf)  # member m's sorted values in row m
    for m, (_, v) in enumerate(members):
        table[m, : len(v)] = v
    flat = table.ravel()
    base = np.arange(len(members), dtype=np.int64)[:, None] * width
    sh = np.stack([s for s, _ in members])  # (members, q)
    out = np.full(shift.shape[1], np.nan)
    query = np.arange(shift.shape[1])  # the queries still searching
    used = np.zeros(sh.shape, dtype=np.int64)  # candidates dropped, per member and query
    left = np.full(len(query), k, dtype=np.int64)  # rank still to find among the rest
    while len(query):
        rest = lens - used
        if (done := left == 1).any():  # the smallest of the members' next candidates
            cols = np.flatnonzero(done)
            nxt = np.where(rest[:, cols] > 0, sh[:, cols] + flat[base + np.minimum(used[:, cols], width - 1)], np.inf)
            out[query[cols]] = nxt.min(axis=0)
            keep = ~done
            query, used, left, sh, rest = query[keep], used[:, keep], left[keep], sh[:, keep], rest[:, keep]
            if not len(query):
                break
        active = (rest > 0).sum(axis=0, dtype=np.int64)
        offer = np.minimum(rest, (left - 2) // active + 1)
        last = sh + flat[base + np.maximum(used + offer - 1, 0)]
        last[offer <= 0] = np.inf
        best = np.zeros(len(query), dtype=np.int64)  # the member of the smallest last offer (the first, in a tie)
        low = last[0]
        for m in range(1, len(members)):
            below = last[m] < low
            best[below], low = m, np.where(below, last[m], low)
        col = np.arange(len(query))
        step = offer[best, col]
        used[best, col] += step
        left -= step
    out[np.isnan(shift).any(axis=0)] = np.nan
    return out


def cv_plus_interval(member_predictions: np.ndarray, calibration: TargetCalibration, level: float = DEFAULT_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """CV+ prediction interval (lower, upper), each (q,), in target units.

    ``member_predictions``: (members, q) predictions of every fold model at the
    ``q`` queries; ``calibration``: the target's out-of-fold residuals with their
    folds (each fold id indexes a member). See the module docstring for the
    formula. Bounds are infinite when the calibration is too small for the level
    (fewer than ``1 / (1 - level) - 1`` rows).
    """
    level = check_level(level)
    mu = np.asarray(member_predictions, dtype=np.float64)
    if mu.ndim != 2:
        raise ValueError(f"member_predictions must be (members, queries), got shape {mu.shape}")
    n = len(calibration)
    if n and calibration.fold.max() >= mu.shape[0]:
        raise ValueError(f"calibration fold {int(calibration.fold.max())} has no ensemble member (the model has {mu.shape[0]})")
    k_lo, k_hi = cv_plus_ranks(n, level)
    by_member = [np.sort(calibration.residual[calibration.fold == m]) for m in range(mu.shape[0])]
    q = mu.shape[1]
    # the k-th smallest of mu - r is minus the (n + 1 - k)-th smallest of -mu + r
    lower = np.full(q, -np.inf) if k_lo < 1 else -_kth_smallest_plus(-mu, by_member, n + 1 - k_lo)
    upper = np.full(q, np.inf) if k_hi > n else _kth_smallest_plus(mu, by_member, k_hi)
    return lower, upper


def clip_to_bounds(lower: np.ndarray, upper: np.ndarray, bounds: str) -> tuple[np.ndarray, np.ndarray]:
    """An interval clipped to a target's physical range: ``positive`` to [0, inf), ``fraction`` to [0, 1], ``real`` unchanged."""
    if bounds == "positive":
        return np.maximum(lower, 0.0), np.maximum(upper, 0.0)
    if bounds == "fraction":
        return np.clip(lower, 0.0, 1.0), np.clip(upper, 0.0, 1.0)
    return lower, upper


def calibration_to_json(calibration: Mapping[str, Mapping[str, TargetCalibration]]) -> dict[str, Any]:
    """JSON object of a model's calibration: ``{"method": "CV+", "stages": {stage: {target: {"fold": [...], "residual": [...]}}}}``."""
    return {
        "method": CALIBRATION_METHOD,
        "stages": {
            stage: {t: _target_json(c) for t, c in targets.items()}
            for stage, targets in calibration.items()
        },
    }


def _target_json(c: TargetCalibration) -> dict[str, Any]:
    out: dict[str, Any] = {"fold": c.fold.tolist(), "residual": c.residual.tolist()}
    if c.transform != "identity" or c.normalised or c.distance_coef is not None:
        out.update(transform=c.transform, normalised=c.normalised, floor=c.floor)
    if c.distance_coef is not None:
        out["distance_coef"] = list(c.distance_coef)
    return out


def calibration_from_json(d: Mapping[str, Any]) -> dict[str, dict[str, TargetCalibration]]:
    """Inverse of :func:`calibration_to_json`."""
    if d.get("method", CALIBRATION_METHOD) != CALIBRATION_METHOD:
        raise ValueError(f"unknown calibration method {d.get('method')!r}")
    return {
        stage: {
            t: TargetCalibration(np.asarray(c["fold"]), np.asarray(c["residual"]), transform=str(c.get("transform", "identity")),
                                 normalised=bool(c.get("normalised", False)), floor=float(c.get("floor", 0.0)),
                                 distance_coef=None if c.get("distance_coef") is None else tuple(c["distance_coef"]))
            for t, c in targets.items()
        }
        for stage, targets in d.get("stages", {}).items()
    }
