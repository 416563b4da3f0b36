"""The :mod:`shap` explainers (``exact``, ``permutation``, ``kernel``) run on a numpy callable.

shap is imported on first use, and only for ``exact`` and ``kernel``: the
``permutation`` method (the default) computes shap.PermutationExplainer's values
in numpy (:mod:`.permutation`). shap's exact explainer compiles numba kernels on
its first use in a process (5-10 s): :func:`warm_up` pays that ahead of time.
The global numpy random state is left as it was.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import InputError
from .permutation import permutation_shapley
from .settings import ExplainSettings

__all__ = ["shap_values", "warm_up"]


def shap_values(
    f: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    background: np.ndarray,
    method: str,
    settings: ExplainSettings,
    n_outputs: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Run a shap explainer of ``f`` at the rows ``X`` (n, F) with the (unweighted)
    ``background`` multiset: values (n, F, K), base values (n, K) (``f``'s unit) and
    details (evaluations per row, permutations)."""
    n, F = X.shape
    details: dict[str, Any] = {}
    state = np.random.get_state()
    try:
        if method == "exact":
            import shap

            masker = shap.maskers.Independent(background, max_samples=len(background))
            varying = int((~np.isclose(X[:, None, :], background[None, :, :])).any(axis=(0, 1)).sum())
            details["evaluations_per_row"] = 2**varying
            ex = shap.explainers.Exact(f, masker)
            e = ex(X, max_evals=2**F + 1, silent=True)
            values, base = np.asarray(e.values), np.asarray(e.base_values)
        elif method == "permutation":
            perms = settings.permutations if n <= settings.many_rows else settings.permutations_many
            max_evals = perms * (2 * F + 1)
            details["permutations"] = perms
            details["evaluations_per_row"] = max_evals
            # shap.PermutationExplainer's values, computed without its numba kernels (no compile per process)
            values, base = permutation_shapley(f, X, background, max_evals=max_evals, seed=settings.seed)
        elif method == "kernel":
            import shap

            np.random.seed(settings.seed)
            ke = shap.KernelExplainer(f, background)
            raw = ke.shap_values(X, nsamples=settings.kernel_samples, silent=True)
            values = np.stack(raw, axis=-1) if isinstance(raw, list) else np.asarray(raw)
            base = np.broadcast_to(np.asarray(ke.expected_value, dtype=np.float64), (n,) + ((n_outputs,) if n_outputs > 1 else ()))
            details["evaluations_per_row"] = settings.kernel_samples
        else:  # pragma: no cover - validated by the callers
            raise InputError(f"unknown method '{method}'")
    finally:
        np.random.set_state(state)
    values = values.reshape(n, F, n_outputs)
    base = np.asarray(base, dtype=np.float64).reshape(n, n_outputs)
    return values, base, details


def warm_up() -> float:
    """Import shap and compile its exact explainer's numba kernels now (one and many outputs).

    The first shap explanation in a process pays a one-off compilation (several
    seconds); a long-running app can call this in the background at start-up.
    Returns the seconds spent.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    bg = rng.normal(size=(4, 3))
    x = rng.normal(size=(1, 3))
    w = np.array([1.0, -2.0, 0.5])
    settings = ExplainSettings(permutations=1)
    shap_values(lambda a: a @ w, x, bg, "exact", settings, 1)
    shap_values(lambda a: np.stack([a @ w, a @ -w], axis=1), x, bg, "exact", settings, 2)
    return time.perf_counter() - t0
