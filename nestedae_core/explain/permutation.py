"""Permutation Shapley values in plain numpy: the estimator of :class:`shap.PermutationExplainer`
with an independent (background) masker, without shap's numba kernels.

shap compiles those kernels on the first explanation in every process, 10-30 s on
a 2-core machine: most of a cold ``nestedae explain``. This module computes the same
values (the same permutations, drawn from the same seeded numpy stream, and the same
antithetic forward and backward passes), so the two agree to float rounding
(``tests/test_permutation_explainer.py`` checks it against shap).

For each explained row ``x``: the varying features are those where ``x`` differs
from at least one background row (:func:`numpy.isclose`, as shap); with
``P = max_evals // (2V + 1)`` permutations of the ``V`` varying features, each
permutation switches them on one by one (from the background to ``x``) and then off
again in the same order. A feature's value is the mean of the ``2P`` output changes
when it switched; the value of a coalition ``S`` is the mean over the background rows
``b`` of ``f(x_S, b_rest)``. Each pass telescopes from the base value (the mean of
``f`` over the background) to ``f(x)``, so ``base + sum(values) = f(x)`` holds exactly
up to rounding.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import InputError

__all__ = ["permutation_shapley"]


def permutation_shapley(
    f: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    background: np.ndarray,
    *,
    max_evals: int,
    seed: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Permutation Shapley values of ``f`` at the rows ``X`` (n, F) against the ``background`` multiset (B, F).

    ``f`` maps (rows, F) to (rows,) or (rows, K), in the output's unit; ``max_evals``
    bounds the coalitions per row (as shap's ``max_evals``: ``P = max_evals // (2V + 1)``
    permutations of the V varying features); ``seed`` seeds the permutations (a
    private :class:`numpy.random.RandomState`: the global state is untouched).
    Returns values (n, F, K) and base values (n, K), in ``f``'s unit.
    """
    X = np.asarray(X)
    background = np.asarray(background)
    n, F = X.shape
    rng = np.random.RandomState(seed)
    values: list[np.ndarray] = []
    bases: list[np.ndarray] = []
    for x in X:
        varying = np.flatnonzero(np.any(~np.isclose(x, background), axis=0))
        V = len(varying)
        if V == 0:  # x equals every background row: nothing to attribute
            out = _evaluate(f, background[None, None], background)
            bases.append(out[0, 0])
            values.append(np.zeros((F, out.shape[-1])))
            continue
        P = max_evals // (2 * V + 1)
        if P == 0:
            raise InputError(f"max_evals={max_evals} is too low for the permutation explainer: it needs at least 2 x {V} + 1")
        inds = varying.copy()
        orders = np.empty((P, V), dtype=np.int64)
        for p in range(P):
            rng.shuffle(inds)  # in place, carried over from one permutation to the next (as shap does)
            orders[p] = inds
        # rank[p, j]: position of varying feature j in permutation p
        rank = np.empty((P, V), dtype=np.int64)
        rank[np.arange(P)[:, None], np.searchsorted(varying, orders)] = np.arange(V)[None, :]
        steps = np.arange(2 * V + 1)[None, :, None]
        r = rank[:, None, :]
        # step s <= V: the first s features of the permutation are on; step V + j: the first j are off again
        on_varying = np.where(steps <= V, r < steps, r >= steps - V)  # (P, 2V+1, V)
        on = np.zeros((P, 2 * V + 1, F), dtype=bool)
        on[..., varying] = on_varying
        masked = np.where(on[:, :, None, :], x[None, None, None, :], background[None, None, :, :])  # (P, 2V+1, B, F)
        out = _evaluate(f, masked, background)  # (P, 2V+1, K)
        K = out.shape[-1]
        forward = out[:, 1 : V + 1] - out[:, :V]  # switching orders[p, i] on
        backward = out[:, V : 2 * V] - out[:, V + 1 :]  # switching orders[p, i] off
        row = np.zeros((F, K))
        np.add.at(row, orders.reshape(-1), (forward + backward).reshape(-1, K))
        values.append(row / (2 * P))
        bases.append(out[-1, 0])
    K = bases[0].shape[-1] if bases else 1
    return (np.stack(values) if values else np.zeros((0, F, K))), (np.stack(bases) if bases else np.zeros((0, K)))


def _evaluate(f: Callable[[np.ndarray], np.ndarray], masked: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Mean of ``f`` over the background axis of ``masked`` (..., B, F) -> (..., K), in float64."""
    lead, (B, F) = masked.shape[:-2], masked.shape[-2:]
    y = np.asarray(f(masked.reshape(-1, F)), dtype=np.float64)
    return y.reshape(*lead, B, -1).mean(axis=-2)
