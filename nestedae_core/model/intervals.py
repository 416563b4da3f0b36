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


def _kth_smallest_plus(shift: np.ndarray, sorted_values: list[np.ndarray], k: int) -> np.ndarray:
    """The ``k``-th smallest (1-based) of the union over members ``m`` of ``shift[m] + sorted_values[m]``, per query.

    ``shift``: (members, q); ``sorted_values[m]``: member ``m``'s residuals, sorted
    ascending (``n`` in all, ``k <= n``). Exact: a search on the value with exact
    counts (``searchsorted`` per member), starting from a bracket given by the
    members' own quantiles at rank fraction ``k / n`` and alternating
    interpolation and bisection steps, until the count at one end of the bracket
    pins the ``k``-th value to the candidate next to it (or the bracket is
    narrower than 1e-12 of the largest residual: tied candidates).
    """
    q = shift.shape[1]
    members = [(shift[m], v) for m, v in enumerate(sorted_values) if len(v)]
    n = sum(len(v) for _, v in members)
    p = k / n
    scale = max(float(max(v[-1] for _, v in members)), 1e-12)

    def count(t: np.ndarray) -> np.ndarray:  # number of candidate values <= t
        c = np.zeros(q, dtype=np.int64)
        for sh, v in members:
            c += np.searchsorted(v, t - sh, side="right")
        return c

    # count(hi) >= sum_m ceil(p n_m) >= k; below every member's floor(p n_m)-th value the count is < k
    hi = np.max([sh + v[min(len(v), max(1, math.ceil(p * len(v) - 1e-9))) - 1] for sh, v in members], axis=0)
    floors = [(sh, v, math.floor(p * len(v) + 1e-9)) for sh, v in members]
    if all(r >= 1 for _, _, r in floors):
        lo = np.min([sh + v[r - 1] for sh, v, r in floors], axis=0) - 1e-9 * scale
    else:
        lo = np.min([sh + v[0] for sh, v in members], axis=0) - scale
    c_lo, c_hi = count(lo), count(hi)
    tol = 1e-12 * scale
    for step in range(400):
        done = (c_lo == k - 1) | (c_hi == k) | (hi - lo <= tol)
        if done.all():
            break
        if step % 2 == 0:  # interpolate the count linearly between the ends
            frac = (k - 0.5 - c_lo) / np.maximum(c_hi - c_lo, 1)
            t = lo + (hi - lo) * np.clip(frac, 0.01, 0.99)
        else:
            t = 0.5 * (lo + hi)
        c = count(t)
        enough = (c >= k) & ~done
        below = (c < k) & ~done
        hi, c_hi = np.where(enough, t, hi), np.where(enough, c, c_hi)
        lo, c_lo = np.where(below, t, lo), np.where(below, c, c_lo)
    # the smallest candidate above lo, or (where count(hi) == k) the largest candidate at or below hi
    above_lo = np.full(q, np.inf)
    upto_hi = np.full(q, -np.inf)
    for sh, v in members:
        i = np.searchsorted(v, lo - sh, side="right")
        above_lo = np.minimum(above_lo, np.where(i < len(v), sh + v[np.minimum(i, len(v) - 1)], np.inf))
        j = np.searchsorted(v, hi - sh, side="right") - 1
        upto_hi = np.maximum(upto_hi, np.where(j >= 0, sh + v[np.maximum(j, 0)], -np.inf))
    return np.where((c_hi == k) & (c_lo != k - 1), upto_hi, above_lo)


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
