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
    "cv_plus_interval",
    "cv_plus_ranks",
]

#: Default level of the prediction intervals (a 90 % interval).
DEFAULT_LEVEL = 0.90
#: Name of the method, stored with the calibration.
CALIBRATION_METHOD = "CV+"


@dataclass
class TargetCalibration:
    """Out-of-fold absolute residuals of one target (target units) and the fold (ensemble member) of each.

    Kept sorted by fold, then residual: CV+ needs only each fold's residuals, and
    the order no longer tells which training row a residual belongs to.
    """

    fold: np.ndarray
    residual: np.ndarray

    def __post_init__(self) -> None:
        self.fold = np.asarray(self.fold, dtype=np.int64).ravel()
        self.residual = np.abs(np.asarray(self.residual, dtype=np.float64).ravel())
        if self.fold.shape != self.residual.shape:
            raise ValueError(f"{len(self.fold)} fold ids for {len(self.residual)} residuals")
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


def _kth_smallest_shifted(shift: np.ndarray, sorted_values: list[np.ndarray], k: int, sign: float) -> np.ndarray:
    """The ``k``-th smallest (1-based) of the union over members ``m`` of ``shift[m] + sign * sorted_values[m]``, per query.

    ``shift``: (members, q); ``sorted_values[m]``: member ``m``'s residuals, sorted
    ascending (``n`` in all). Bisection on the value with exact counts
    (``searchsorted``) inside a bracket from the members' own quantiles at rank
    fraction ``k / n``, to 1e-10 of the largest residual, then snapped to the
    nearest candidate value (exact unless two candidates lie closer than that).
    """
    q = shift.shape[1]
    members = [(m, v) for m, v in enumerate(sorted_values) if len(v)]
    n = sum(len(v) for _, v in members)
    p = k / n

    def member_value(m: int, v: np.ndarray, rank: int) -> np.ndarray:  # rank-th smallest (1-based) of member m's candidates
        r = v[rank - 1] if sign > 0 else v[len(v) - rank]
        return shift[m] + sign * r

    # count(hi) >= sum_m ceil(p n_m) >= k; count(t) < k for every t < lo
    hi = np.max([member_value(m, v, min(len(v), max(1, math.ceil(p * len(v) - 1e-9)))) for m, v in members], axis=0)
    floor_ranks = [(m, v, math.floor(p * len(v) + 1e-9)) for m, v in members]
    lows = [member_value(m, v, r) for m, v, r in floor_ranks if r >= 1]
    scale = max(float(max(v[-1] for _, v in members)), 1e-12)
    lo = (np.min(lows, axis=0) if len(lows) == len(members) else shift.min(axis=0) - scale) - 1e-9 * scale - 1e-300

    def count(t: np.ndarray) -> np.ndarray:  # number of candidate values <= t
        c = np.zeros(q, dtype=np.int64)
        for m, v in members:
            if sign > 0:  # shift + r <= t  <=>  r <= t - shift
                c += np.searchsorted(v, t - shift[m], side="right")
            else:  # shift - r <= t  <=>  r >= shift - t
                c += len(v) - np.searchsorted(v, shift[m] - t, side="left")
        return c

    tol = 1e-10 * scale
    for _ in range(200):
        if np.all(hi - lo <= tol):
            break
        mid = 0.5 * (lo + hi)
        enough = count(mid) >= k
        hi = np.where(enough, mid, hi)
        lo = np.where(enough, lo, mid)
    # snap to the candidate value nearest to hi (the k-th smallest, up to the tolerance)
    best = hi.copy()
    gap = np.full(q, np.inf)
    for m, v in members:
        at = np.searchsorted(v, sign * (hi - shift[m]))
        for idx in (at - 1, at):
            ok = (idx >= 0) & (idx < len(v))
            cand = shift[m] + sign * v[np.clip(idx, 0, len(v) - 1)]
            d = np.where(ok, np.abs(cand - hi), np.inf)
            closer = d < gap
            best, gap = np.where(closer, cand, best), np.where(closer, d, gap)
    return best


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
    lower = np.full(q, -np.inf) if k_lo < 1 else _kth_smallest_shifted(mu, by_member, k_lo, -1.0)
    upper = np.full(q, np.inf) if k_hi > n else _kth_smallest_shifted(mu, by_member, k_hi, +1.0)
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
            stage: {t: {"fold": c.fold.tolist(), "residual": c.residual.tolist()} for t, c in targets.items()}
            for stage, targets in calibration.items()
        },
    }


def calibration_from_json(d: Mapping[str, Any]) -> dict[str, dict[str, TargetCalibration]]:
    """Inverse of :func:`calibration_to_json`."""
    if d.get("method", CALIBRATION_METHOD) != CALIBRATION_METHOD:
        raise ValueError(f"unknown calibration method {d.get('method')!r}")
    return {
        stage: {t: TargetCalibration(np.asarray(c["fold"]), np.asarray(c["residual"])) for t, c in targets.items()}
        for stage, targets in d.get("stages", {}).items()
    }
