"""Regression metrics of predictions (MAE, RMSE, R²) and their summary over folds."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["regression_metrics", "summarize_folds"]


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE (target units) and R² of finite pairs."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    ok = np.isfinite(y_true) & np.isfinite(y_pred)
    yt, yp = y_true[ok], y_pred[ok]
    if len(yt) == 0:
        return {"n": 0, "mae": float("nan"), "rmse": float("nan"), "r2": float("nan")}
    return {
        "n": int(len(yt)),
        "mae": float(mean_absolute_error(yt, yp)),
        "rmse": float(math.sqrt(mean_squared_error(yt, yp))),
        "r2": float(r2_score(yt, yp)) if len(yt) > 1 else float("nan"),
    }


def summarize_folds(per_fold: list[dict[str, float]]) -> dict[str, Any]:
    """Means over folds of MAE/RMSE/R², the std of the fold MAEs, and the per-fold list."""
    maes = np.array([f["mae"] for f in per_fold], dtype=float)
    return {
        "mae": float(np.nanmean(maes)),
        "mae_std": float(np.nanstd(maes, ddof=1)) if len(maes) > 1 else 0.0,
        "rmse": float(np.nanmean([f["rmse"] for f in per_fold])),
        "r2": float(np.nanmean([f["r2"] for f in per_fold])),
        "n": int(sum(f["n"] for f in per_fold)),
        "folds": per_fold,
    }
