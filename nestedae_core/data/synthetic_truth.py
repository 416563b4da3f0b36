"""The synthetic data set's known y1 function and input distribution, and its ground-truth Shapley values.

:mod:`nestedae_core.data.synthetic` generates the tables; this module hands out
what it knows about them, in the form the chemistry-free ground-truth machinery of
:mod:`nestedae_core.explain.ground_truth` needs:

* :func:`material_input_distribution`: the material features ``x0 ..`` (and
  ``x_dup``) are jointly Gaussian, mean 0, identity covariance except
  ``corr(x0, x_dup) = dup_correlation``;
* :func:`true_material_function`: the noise-free ``true_y1`` as a vectorised
  function of those features (``x_dup`` unused);
* :func:`ground_truth`: its exact interventional and observational Shapley values
  on chosen rows (a.u., the unit of y1).
* :func:`explainer_errors`: every explainer of a trained model's y1 (or of the
  true function itself) against both games' ground truth, with its time;
* :func:`correlation_study`: for a chosen correlation of the pair, both games'
  credit of x0 and x_dup beside the accuracy of the best possible predictor.

Units: y1 and its attributions in arbitrary units (a.u.); features standardised.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..explain import explain_function, explain_stage_output
from ..explain.ground_truth import GAMES, attribution_error, gaussian_shapley
from ..model.chain import NestedAE
from .synthetic import DUP_FEATURE, SyntheticData, _true_y1, generate, material_feature_names

__all__ = [
    "EXPLAINERS",
    "correlation_study",
    "explainer_errors",
    "ground_truth",
    "material_input_distribution",
    "true_material_function",
]

#: The explainers scored against the ground truth (``gradient`` needs a torch model).
EXPLAINERS: tuple[str, ...] = ("exact", "permutation", "kernel", "gradient")


def material_input_distribution(data: SyntheticData) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(names, mean, cov)`` of the material features of ``data``: exact, from the generator.

    ``names`` in :func:`~nestedae_core.data.synthetic.material_feature_names` order;
    ``mean`` zeros; ``cov`` the identity except ``cov[x0, x_dup] = dup_correlation``.
    """
    names = material_feature_names(data)
    cov = np.eye(len(names))
    if DUP_FEATURE in names:
        j = names.index(DUP_FEATURE)
        cov[0, j] = cov[j, 0] = float(data.config.dup_correlation)
    return names, np.zeros(len(names)), cov


def true_material_function(data: SyntheticData) -> Callable[[np.ndarray], np.ndarray]:
    """The noise-free ``true_y1`` (a.u.) as ``f: (N, F) -> (N,)`` of the material features in
    :func:`~nestedae_core.data.synthetic.material_feature_names` order (``x_dup`` is not used)."""
    w = np.asarray(data.truth.factor_loadings, dtype=np.float64)
    r = w.shape[1]

    def f(X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return _true_y1(np.tanh(X[:, :r] @ w.T))

    return f


def ground_truth(data: SyntheticData, rows: pd.DataFrame, game: str = "interventional", *,
                 n_draws: int = 256, seed: int = 0) -> pd.DataFrame:
    """Exact Shapley values (a.u.) of ``true_y1`` on ``rows`` (a frame holding the material features).

    ``game``: ``interventional`` or ``observational``
    (:func:`~nestedae_core.explain.ground_truth.gaussian_shapley`, all ``2**F``
    coalitions, ``n_draws`` antithetic Gaussian draws each). Returns one column
    per material feature, indexed like ``rows``.
    """
    names, mean, cov = material_input_distribution(data)
    missing = [n for n in names if n not in rows.columns]
    if missing:
        raise InputError(f"the rows lack the material feature(s) {', '.join(missing)}")
    X = rows[names].to_numpy(dtype=np.float64)
    phi = gaussian_shapley(true_material_function(data), X, mean, cov, game, n_draws=n_draws, seed=seed)  # type: ignore[arg-type]
    return pd.DataFrame(phi, columns=names, index=rows.index)


def correlation_study(data: SyntheticData, correlations: Sequence[float], *, n_rows: int = 40,
                      n_draws: int = 64, folds: int = 5) -> pd.DataFrame:
    """How the two games split x0's credit as the pair's correlation grows, while accuracy does not move.

    For each correlation ``rho`` the data set is generated again (same seed, with
    ``x_dup`` at that correlation; x0 and every other column unchanged) and, on
    its first ``n_rows`` materials, the mean |Shapley value| (a.u.) of x0, of
    x_dup and of their per-row sum is computed in both games. Beside them,
    ``mae_with_pair``: the k-fold validation MAE (a.u.) of an RBF kernel ridge
    regression on all material features (x_dup included; scikit-learn, a fast
    stand-in for "any model"): it hardly changes with rho, since x_dup carries no
    information beyond x0.

    Returns:
        one row per (rho, game): ``correlation``, ``game``, ``x0``, ``x_dup``,
        ``pair_sum`` (mean |phi_x0 + phi_x_dup|), ``mae_with_pair``.
    """
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.model_selection import KFold

    out = []
    for rho in correlations:
        cfg = dataclasses.replace(data.config, correlated_pair=True, dup_correlation=float(rho))
        d = generate(cfg)
        rows = d.materials.iloc[:n_rows]
        names = material_feature_names(d)
        X, y = d.materials[names].to_numpy(dtype=np.float64), d.materials["y1"].to_numpy(dtype=np.float64)
        pred = np.empty_like(y)
        for fit_idx, val_idx in KFold(folds, shuffle=True, random_state=0).split(X):
            pred[val_idx] = KernelRidge(alpha=0.01, kernel="rbf", gamma=0.02).fit(X[fit_idx], y[fit_idx]).predict(X[val_idx])
        mae = float(np.mean(np.abs(pred - y)))
        for game in GAMES:
            phi = ground_truth(d, rows, game, n_draws=n_draws)
            out.append({"correlation": float(rho), "game": game, "x0": float(phi["x0"].abs().mean()),
                        DUP_FEATURE: float(phi[DUP_FEATURE].abs().mean()),
                        "pair_sum": float((phi["x0"] + phi[DUP_FEATURE]).abs().mean()), "mae_with_pair": mae})
    return pd.DataFrame(out)


def explainer_errors(data: SyntheticData, rows: pd.DataFrame, model: NestedAE | None = None, *,
                     methods: Sequence[str] = EXPLAINERS, truth: dict[str, pd.DataFrame] | None = None,
                     n_draws: int = 128, background_rows: int = 32) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Each explainer's attributions of y1 on ``rows`` and their error (a.u.) against both games' ground truth.

    With ``model``: the trained chain's stage-1 first target (its fold-ensemble mean)
    w.r.t. the material features, by :func:`~nestedae_core.explain.explain_stage_output`
    (its stored background); the error then mixes the model's error and the
    explainer's. Without: the *true* function itself, by
    :func:`~nestedae_core.explain.explain_function` with the first ``background_rows``
    materials as background (``gradient`` is skipped: it needs a torch model), which
    isolates the explainer's own error (its background sample included).

    Args:
        data: the synthetic data set.
        rows: the explained materials (a frame holding the material features).
        model: a chain trained on ``data`` (stage 0 predicts y1), or None.
        methods: explainers to run, from :data:`EXPLAINERS`.
        truth: precomputed :func:`ground_truth` per game (computed when None).
        n_draws: draws of the ground truth per coalition.
        background_rows: background size for the true function.

    Returns:
        ``(errors, attributions)``: one row per (explainer, game) with ``explainer``,
        ``game``, ``mae``, ``max``, ``relative``, ``rank_agreement`` (see
        :func:`~nestedae_core.explain.ground_truth.attribution_error`) and ``seconds``
        (the explainer's wall time); and each explainer's attributions (and each
        game's truth, keyed ``truth: <game>``) as frames with one column per feature.
    """
    names = material_feature_names(data)
    truth = truth or {g: ground_truth(data, rows, g, n_draws=n_draws) for g in GAMES}
    out: dict[str, pd.DataFrame] = {f"truth: {g}": t for g, t in truth.items()}
    errors = []
    for m in methods:
        if m not in EXPLAINERS:
            raise InputError(f"unknown explainer '{m}'; choose from {', '.join(EXPLAINERS)}")
        if model is None:
            if m == "gradient":
                continue
            bg = data.materials[names].iloc[:background_rows].to_numpy(dtype=np.float64)
            att = explain_function(true_material_function(data), rows[names].to_numpy(dtype=np.float64), bg,
                                   feature_names=names, method=m, output="y1")  # type: ignore[arg-type]
        else:
            att = explain_stage_output(model, 0, 0, rows, method=m)
        values = pd.DataFrame(att.values, columns=att.feature_names, index=rows.index)[names]
        out[m] = values
        for g, t in truth.items():
            errors.append({"explainer": m, "game": g, **attribution_error(values.to_numpy(), t.to_numpy()),
                           "seconds": float(att.seconds)})
    return pd.DataFrame(errors), out
