"""Baseline regressors, fitted on the folds NestedAE is validated on.

Every baseline sees the same rows and the same fold ids (from
:func:`nestedae_core.train.make_folds`); inside each training fold the numeric
inputs are standardised, categorical inputs one-hot encoded, and the target
standardised (predictions are mapped back to target units). Hyperparameters are
fixed here, stated in code; the only tuning is kernel ridge's 3-fold grid search,
which runs inside the training fold.

* ``mean``: the training-fold mean.
* ``ridge``: RidgeCV over alphas 1e-4..1e3 (efficient leave-one-out, training fold only).
* ``kernel_ridge``: RBF kernel ridge, alpha and gamma by a 3-fold grid search.
* ``random_forest``: 300 trees.
* ``hist_gradient_boosting``: scikit-learn's defaults.
* ``xgboost``: 600 trees of depth 6, learning rate 0.03, rows and columns subsampled 0.8.
* ``lightgbm``: 600 trees of at most 15 leaves (at least 5 rows each), learning rate 0.03,
  rows and columns subsampled 0.8.
* ``mlp``: hidden layers 12 and 100 (the capacity of a NestedAE stage).

XGBoost and LightGBM run on one thread: on tables of a few hundred to a few thousand
rows that is several times faster than many threads, with identical results. The
random forest too: with threads its prediction sums the trees in whatever order they
finish (the last digits vary from run to run); parallelism comes from running folds
and models in worker processes instead (:mod:`.runner`).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..train import regression_metrics, summarize_folds

__all__ = ["BASELINES", "baseline_factories", "design_matrix", "fit_baseline", "fit_baseline_fold", "summarize_baseline"]

#: Names of the baseline models, in report order.
BASELINES: tuple[str, ...] = (
    "mean", "ridge", "kernel_ridge", "random_forest", "hist_gradient_boosting", "xgboost", "lightgbm", "mlp",
)


def baseline_factories(seed: int) -> dict[str, Callable[[], Any]]:
    """Name -> a function that builds a fresh, unfitted regressor (``mean`` builds none)."""
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.neural_network import MLPRegressor

    def xgboost() -> Any:
        from xgboost import XGBRegressor

        return XGBRegressor(n_estimators=600, max_depth=6, learning_rate=0.03, subsample=0.8, colsample_bytree=0.8,
                            min_child_weight=1.0, reg_lambda=1.0, tree_method="hist", random_state=seed, n_jobs=1)

    def lightgbm() -> Any:
        from lightgbm import LGBMRegressor

        return LGBMRegressor(n_estimators=600, num_leaves=15, min_child_samples=5, learning_rate=0.03, subsample=0.8,
                             subsample_freq=1, colsample_bytree=0.8, random_state=seed, n_jobs=1, verbose=-1)

    return {
        "mean": lambda: None,
        "ridge": lambda: RidgeCV(alphas=np.logspace(-4, 3, 15)),
        "kernel_ridge": lambda: GridSearchCV(
            KernelRidge(kernel="rbf"),
            {"alpha": [1e-3, 1e-2, 1e-1, 1.0], "gamma": [0.01, 0.03, 0.1, 0.3]},
            cv=KFold(3, shuffle=True, random_state=seed),
            scoring="neg_mean_absolute_error",
        ),
        "random_forest": lambda: RandomForestRegressor(n_estimators=300, random_state=seed, n_jobs=1),
        "hist_gradient_boosting": lambda: HistGradientBoostingRegressor(random_state=seed),
        "xgboost": xgboost,
        "lightgbm": lightgbm,
        "mlp": lambda: MLPRegressor(hidden_layer_sizes=(12, 100), activation="relu", max_iter=3000, learning_rate_init=1e-3, random_state=seed),
    }


def design_matrix(table: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]) -> np.ndarray:
    """Numeric columns (raw units) followed by one-hot columns of each categorical input."""
    parts = [table[list(numeric)].to_numpy(dtype=np.float64)]
    for c in categorical:
        parts.append(pd.get_dummies(table[c].astype(str)).to_numpy(dtype=np.float64))
    return np.concatenate(parts, axis=1)


def fit_baseline_fold(
    name: str, factory: Callable[[], Any], X: np.ndarray, y: np.ndarray, folds: np.ndarray, fold: int, n_numeric: int
) -> np.ndarray:
    """Train on every fold but ``fold`` (rows with a target), predict ``fold``: predictions in target units, one per row of the fold."""
    from sklearn.preprocessing import StandardScaler

    tr, va = folds != fold, folds == fold
    ok = tr & np.isfinite(y)
    if name == "mean":
        return np.full(int(va.sum()), float(np.mean(y[ok])))
    sc = StandardScaler().fit(X[ok][:, :n_numeric])
    Xtr = np.concatenate([sc.transform(X[ok][:, :n_numeric]), X[ok][:, n_numeric:]], axis=1)
    Xva = np.concatenate([sc.transform(X[va][:, :n_numeric]), X[va][:, n_numeric:]], axis=1)
    ym, ys = float(np.mean(y[ok])), float(np.std(y[ok]) or 1.0)
    est = factory().fit(Xtr, (y[ok] - ym) / ys)
    return np.asarray(est.predict(Xva), dtype=np.float64) * ys + ym


def summarize_baseline(y: np.ndarray, folds: np.ndarray, predictions: Sequence[np.ndarray]) -> tuple[dict[str, Any], np.ndarray]:
    """The fold summary (:func:`nestedae_core.train.summarize_folds`: MAE, RMSE in target units, R²) and the
    out-of-fold predictions, from ``predictions[f]`` = the predictions of fold ``f`` (:func:`fit_baseline_fold`)."""
    per_fold = []
    oof = np.full(len(y), np.nan)
    for f, pred in enumerate(predictions):
        va = folds == f
        oof[va] = pred
        m = regression_metrics(y[va], pred)
        m["fold"] = f
        per_fold.append(m)
    return summarize_folds(per_fold), oof


def fit_baseline(
    name: str, factory: Callable[[], Any], X: np.ndarray, y: np.ndarray, folds: np.ndarray, n_numeric: int
) -> tuple[dict[str, Any], np.ndarray, float]:
    """Train on all folds but one, predict that fold, for every fold.

    Returns the fold summary (:func:`nestedae_core.train.summarize_folds`: MAE, RMSE
    in target units, R²), the out-of-fold predictions (target units, NaN nowhere
    unless a fold has no training target) and the seconds spent.
    """
    t0 = time.perf_counter()
    preds = [fit_baseline_fold(name, factory, X, y, folds, f, n_numeric) for f in range(int(folds.max()) + 1)]
    summary, oof = summarize_baseline(y, folds, preds)
    return summary, oof, time.perf_counter() - t0
