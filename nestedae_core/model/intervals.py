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
    from scipy.optimize import nnls

    r = np.abs(np.asarray(residual, dtype=np.float64))
    d = np.asarray(distance, dtype=np.float64)
    ok = np.isfinite(r) & np.isfinite(d)
    if not ok.any():
        return 1.0, 0.0
    coef, _ = nnls(np.column_stack([np.ones(ok.sum()), d[ok]]), r[ok])
    c0 = max(float(coef[0]), 1e-3 * float(np.median(r[ok])), 1e-12)
    return c0, float(coef[1])


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


#: The bracket search of :func:`_kth_smallest_plus` stops for a query once at most this many candidates lie in its
#: bracket; the k-th is then picked among them directly (ties and near-ties end at once instead of by bisection).
_PICK_AMONG = 4


def _kth_smallest_plus(shift: np.ndarray, sorted_values: list[np.ndarray], k: int) -> np.ndarray:
    """The ``k``-th smallest (1-based) of the union over members ``m`` of ``shift[m] + sorted_values[m]``, per query.

    ``shift``: (members, q); ``sorted_values[m]``: member ``m``'s residuals, sorted
    ascending (``n`` in all, ``k <= n``). Exact: a search on the value with exact
    counts (``searchsorted`` per member), starting from a bracket given by the
    members' own quantiles at rank fraction ``k / n`` and alternating
    interpolation and bisection steps, each step on the queries still searching
    only. A query stops when the count at one end of its bracket pins the ``k``-th
    value to the candidate next to it, or when at most :data:`_PICK_AMONG`
    candidates lie inside its bracket: the ``k``-th is then picked among them
    (:func:`_pick_in_bracket`), ties included.
    """
    q = shift.shape[1]
    members = [(shift[m], v) for m, v in enumerate(sorted_values) if len(v)]
    n = sum(len(v) for _, v in members)
    p = k / n
    scale = max(float(max(v[-1] for _, v in members)), 1e-12)

    def count(t: np.ndarray, rows: np.ndarray) -> np.ndarray:  # number of candidate values <= t, at the queries ``rows``
        c = np.zeros(len(rows), dtype=np.int64)
        for sh, v in members:
            c += np.searchsorted(v, t - sh[rows], side="right")
        return c

    # count(hi) >= sum_m ceil(p n_m) >= k; below every member's floor(p n_m)-th value the count is < k
    hi = np.max([sh + v[min(len(v), max(1, math.ceil(p * len(v) - 1e-9))) - 1] for sh, v in members], axis=0)
    floors = [(sh, v, math.floor(p * len(v) + 1e-9)) for sh, v in members]
    if all(r >= 1 for _, _, r in floors):
        lo = np.min([sh + v[r - 1] for sh, v, r in floors], axis=0) - 1e-9 * scale
    else:
        lo = np.min([sh + v[0] for sh, v in members], axis=0) - scale
    every = np.arange(q)
    c_lo, c_hi = count(lo, every), count(hi, every)
    while (short := c_hi < k).any():  # rounding in (shift + v) - shift can drop the top candidate: widen the end
        hi = np.where(short, hi + 1e-9 * scale, hi)
        c_hi = count(hi, every)
    tol = 1e-12 * scale
    active = every
    pick = np.zeros(q, dtype=bool)  # queries whose k-th is picked among the candidates of their bracket
    for step in range(400):
        a_lo, a_hi, ac_lo, ac_hi = lo[active], hi[active], c_lo[active], c_hi[active]
        pinned = (ac_lo == k - 1) | (ac_hi == k)
        few = ~pinned & ((ac_hi - ac_lo <= _PICK_AMONG) | (a_hi - a_lo <= tol))
        pick[active[few]] = True
        searching = ~(pinned | few)
        if not searching.all():
            active, a_lo, a_hi, ac_lo, ac_hi = active[searching], a_lo[searching], a_hi[searching], ac_lo[searching], ac_hi[searching]
        if not len(active):
            break
        if step % 2 == 0:  # interpolate the count linearly between the ends
            frac = (k - 0.5 - ac_lo) / np.maximum(ac_hi - ac_lo, 1)
            t = a_lo + (a_hi - a_lo) * np.clip(frac, 0.01, 0.99)
        else:
            t = 0.5 * (a_lo + a_hi)
        c = count(t, active)
        enough = c >= k
        hi[active], c_hi[active] = np.where(enough, t, a_hi), np.where(enough, c, ac_hi)
        lo[active], c_lo[active] = np.where(enough, a_lo, t), np.where(enough, ac_lo, c)
    # the smallest candidate above lo, or (where count(hi) == k) the largest candidate at or below hi
    above_lo = np.full(q, np.inf)
    upto_hi = np.full(q, -np.inf)
    for sh, v in members:
        i = np.searchsorted(v, lo - sh, side="right")
        above_lo = np.minimum(above_lo, np.where(i < len(v), sh + v[np.minimum(i, len(v) - 1)], np.inf))
        j = np.searchsorted(v, hi - sh, side="right") - 1
        upto_hi = np.maximum(upto_hi, np.where(j >= 0, sh + v[np.maximum(j, 0)], -np.inf))
    out = np.where((c_hi == k) & (c_lo != k - 1), upto_hi, above_lo)
    if pick.any():
        rows = np.flatnonzero(pick)
        out[rows] = _pick_in_bracket([(sh[rows], v) for sh, v in members], lo[rows], hi[rows], k - c_lo[rows])
    return out


def _pick_in_bracket(members: list[tuple[np.ndarray, np.ndarray]], lo: np.ndarray, hi: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Per query, the ``rank``-th smallest (1-based) candidate ``shift + v`` in its bracket ``(lo, hi]``.

    ``members``: (shift (q,), sorted values) per member; the candidates in the bracket are
    the values between the bracket's ``searchsorted`` positions (as the counts take them),
    gathered into one flat array with their query's number and sorted by query, then value.
    """
    q = len(lo)
    rows, values = [], []
    for sh, v in members:
        start = np.searchsorted(v, lo - sh, side="right")
        length = np.searchsorted(v, hi - sh, side="right") - start
        total = int(length.sum())
        if total == 0:
            continue
        row = np.repeat(np.arange(q), length)
        ends = np.cumsum(length)
        position = np.arange(total) - np.repeat(ends - length, length) + start[row]
        rows.append(row)
        values.append(sh[row] + v[position])
    if not rows:
        return np.full(q, np.nan)
    row, value = np.concatenate(rows), np.concatenate(values)
    order = np.lexsort((value, row))
    counts = np.bincount(row, minlength=q)
    first = np.cumsum(counts) - counts
    return np.where(rank <= counts, value[order][np.minimum(first + rank - 1, len(value) - 1)], np.nan)


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
