"""Ground-truth Shapley values of a *known* function of Gaussian inputs (teaching, benchmarks).

When the function that generated the data is known (a synthetic set), its Shapley
values can be computed exactly and every explainer of a trained model can be
scored against them. Two games, both for ``f`` of inputs ``X ~ N(mean, cov)``:

* **interventional**: ``v(S) = E[f(x_S, X_notS)]`` with ``X_notS`` drawn from its
  *marginal* distribution (the features outside S are set independently of ``x_S``,
  as the ``exact``/``permutation``/``kernel`` explainers do with their background);
* **observational** (conditional): ``v(S) = E[f(X) | X_S = x_S]``, ``X_notS`` drawn
  from the Gaussian *conditional* ``N(mu_notS + C_nS C_SS^-1 (x_S - mu_S), C_nn - C_nS C_SS^-1 C_Sn)``.

The Shapley values are then computed by full enumeration of the ``2**F`` coalitions
(:func:`shapley_from_game`, exact for the game). The expectations are closed form for
a linear ``f`` (:func:`linear_shapley`) and otherwise estimated with ``n_draws``
antithetic Gaussian draws shared by every coalition (the documented estimator):
antithetic pairs make the estimate exact for any ``f`` linear in the features, and
with independent blocks of features a feature that ``f`` does not use gets exactly
zero in both games. The error of a non-linear ``f`` shrinks as ``1/sqrt(n_draws)``.

Nothing here knows the meaning of a feature; the synthetic data set supplies its
functions and input distribution (:mod:`nestedae_core.data.synthetic`).

Units: Shapley values in the unit of ``f``'s output; inputs in their own units.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = [
    "GAMES",
    "MAX_FEATURES",
    "attribution_error",
    "gaussian_shapley",
    "linear_shapley",
    "shapley_from_game",
]

Game = Literal["interventional", "observational"]
#: The two games of a ground truth.
GAMES: tuple[str, ...] = ("interventional", "observational")
#: Most features enumerated (2**F coalitions).
MAX_FEATURES = 14


def _check_game(game: str) -> str:
    if game not in GAMES:
        raise InputError(f"unknown game '{game}'; choose one of {', '.join(GAMES)}")
    return game


def linear_shapley(weights: np.ndarray, X: np.ndarray, mean: np.ndarray, cov: np.ndarray | None = None,
                   game: Game = "interventional") -> np.ndarray:
    """Closed-form Shapley values of ``f(x) = w.x + c`` for inputs ``N(mean, cov)``.

    Interventional: ``phi_i = w_i (x_i - E x_i)``. Observational: the game
    ``v(S) = w.E[X | x_S]`` is enumerated exactly (:func:`shapley_from_game`), since
    conditioning moves the credit between correlated features.

    Args:
        weights: ``w`` (F,), output unit per input unit.
        X: explained rows (n, F).
        mean: ``E X`` (F,).
        cov: covariance (F, F); needed for ``observational`` only.
        game: ``interventional`` or ``observational``.

    Returns:
        (n, F) Shapley values in the output's unit.
    """
    _check_game(game)
    w = np.asarray(weights, dtype=np.float64)
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    mu = np.asarray(mean, dtype=np.float64)
    if game == "interventional":
        return w[None, :] * (X - mu[None, :])
    if cov is None:
        raise InputError("the observational game needs the covariance of the inputs")
    C = np.asarray(cov, dtype=np.float64)
    F = len(w)
    v = np.empty((len(X), 2**F))
    for mask in range(2**F):
        S = [j for j in range(F) if mask >> j & 1]
        cond = np.broadcast_to(mu, X.shape).copy()
        if S:
            n = [j for j in range(F) if not mask >> j & 1]
            cond[:, S] = X[:, S]
            if n:
                gain = np.linalg.solve(C[np.ix_(S, S)], C[np.ix_(S, n)]).T
                cond[:, n] = mu[n] + (X[:, S] - mu[S]) @ gain.T
        v[:, mask] = cond @ w
    return shapley_from_game(v)


def shapley_from_game(v: np.ndarray) -> np.ndarray:
    """Exact Shapley values from a game's value table, by enumeration of every coalition.

    Args:
        v: (n, 2**F) values; column ``mask`` holds ``v(S)`` for the coalition whose
            members are the set bits of ``mask`` (bit j = feature j).

    Returns:
        (n, F): ``phi_i = sum_S |S|! (F-|S|-1)! / F! (v(S + i) - v(S))``; they sum to
        ``v(all) - v(empty)`` (efficiency).
    """
    v = np.atleast_2d(np.asarray(v, dtype=np.float64))
    F = int(round(math.log2(v.shape[1])))
    if 2**F != v.shape[1]:
        raise InputError(f"a game table needs 2**F columns, got {v.shape[1]}")
    masks = np.arange(2**F)
    sizes = np.array([bin(m).count("1") for m in masks])
    weight = np.array([math.factorial(s) * math.factorial(F - s - 1) / math.factorial(F) if s < F else 0.0 for s in sizes])
    phi = np.zeros((v.shape[0], F))
    for i in range(F):
        without = masks[(masks >> i & 1) == 0]
        phi[:, i] = (v[:, without | (1 << i)] - v[:, without]) @ weight[without]
    return phi


def _draws(F: int, n_draws: int, seed: int) -> np.ndarray:
    """Antithetic standard-normal draws (n_draws, F): each draw followed by its negative."""
    half = max(1, n_draws // 2)
    z = np.random.default_rng(seed).standard_normal((half, F))
    return np.concatenate([z, -z])


def gaussian_shapley(f: Callable[[np.ndarray], np.ndarray], X: np.ndarray, mean: np.ndarray, cov: np.ndarray,
                     game: Game = "interventional", *, n_draws: int = 256, seed: int = 0) -> np.ndarray:
    """Shapley values of a known vectorised ``f: (N, F) -> (N,)`` for inputs ``X ~ N(mean, cov)``.

    Every one of the ``2**F`` coalitions is evaluated (exact enumeration); each
    coalition's expectation uses the same ``n_draws`` antithetic draws (see the
    module docstring): exact for a linear ``f``, Monte-Carlo otherwise.

    Args:
        f: the function, vectorised over rows, output in its own unit.
        X: explained rows (n, F).
        mean: (F,) input means.
        cov: (F, F) input covariance (positive definite).
        game: ``interventional`` (marginal draws) or ``observational`` (conditional draws).
        n_draws: draws per coalition and row (even; >= 2).
        seed: seed of the draws.

    Returns:
        (n, F) Shapley values in ``f``'s unit; each row sums to ``v(all) - v(empty)``,
        i.e. ``f(x) - E f(X)`` up to the Monte-Carlo error of ``E f``.

    Raises:
        InputError: on mismatched shapes, more than :data:`MAX_FEATURES` features or a bad game.
    """
    _check_game(game)
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    mu = np.asarray(mean, dtype=np.float64)
    C = np.asarray(cov, dtype=np.float64)
    n, F = X.shape
    if mu.shape != (F,) or C.shape != (F, F):
        raise InputError(f"mean and cov must match the {F} features of X")
    if F > MAX_FEATURES:
        raise InputError(f"exact enumeration of {F} features (2**{F} coalitions) is too large; at most {MAX_FEATURES}")
    if n_draws < 2:
        raise InputError("n_draws must be at least 2")
    z = _draws(F, n_draws, seed)
    D = len(z)
    v = np.empty((n, 2**F))
    for mask in range(2**F):
        S = [j for j in range(F) if mask >> j & 1]
        out = [j for j in range(F) if not mask >> j & 1]
        if not out:
            v[:, mask] = np.asarray(f(X), dtype=np.float64).reshape(n)
            continue
        if S and game == "observational":
            gain = np.linalg.solve(C[np.ix_(S, S)], C[np.ix_(S, out)]).T  # (|out|, |S|)
            cmean = mu[out][None, :] + (X[:, S] - mu[S][None, :]) @ gain.T  # (n, |out|)
            ccov = C[np.ix_(out, out)] - gain @ C[np.ix_(S, out)]
        else:
            cmean = np.broadcast_to(mu[out], (n, len(out)))
            ccov = C[np.ix_(out, out)]
        L = np.linalg.cholesky(ccov + 1e-12 * np.eye(len(out)))
        rows = np.repeat(X, D, axis=0)
        rows[:, out] = np.repeat(cmean, D, axis=0) + np.tile(z[:, out] @ L.T, (n, 1))
        v[:, mask] = np.asarray(f(rows), dtype=np.float64).reshape(n, D).mean(axis=1)
    return shapley_from_game(v)


def attribution_error(values: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """How far attributions are from the ground truth (both (n, F), same unit).

    Returns:
        ``mae``: mean absolute difference over rows and features; ``max``: the largest
        absolute difference; ``relative``: ``mae`` over the truth's mean absolute value
        (dimensionless); ``rank_agreement``: Spearman correlation of the global
        importances (mean |value| per feature), 1 = same order.
    """
    a = np.atleast_2d(np.asarray(values, dtype=np.float64))
    t = np.atleast_2d(np.asarray(truth, dtype=np.float64))
    if a.shape != t.shape:
        raise InputError(f"attributions {a.shape} and ground truth {t.shape} differ in shape")
    diff = np.abs(a - t)
    scale = float(np.mean(np.abs(t)))
    ia, it = np.abs(a).mean(axis=0), np.abs(t).mean(axis=0)
    # importances below 1e-9 of the largest are ties at zero (float noise of an unused feature)
    ia, it = (np.where(v < 1e-9 * max(float(v.max()), 1e-300), 0.0, v) for v in (ia, it))
    rank = pd.Series(ia).corr(pd.Series(it), method="spearman")
    return {"mae": float(diff.mean()), "max": float(diff.max()),
            "relative": float(diff.mean() / scale) if scale > 0 else float("nan"),
            "rank_agreement": float(rank) if np.isfinite(rank) else float("nan")}
