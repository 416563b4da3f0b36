"""The attribution methods, how ``auto`` chooses one, and running one on an explained function.

Methods and how ``auto`` chooses
--------------------------------
* ``exact``: :class:`shap.ExactExplainer` with :class:`shap.maskers.Independent`.
  It enumerates all ``2**F`` coalitions (F = features that differ from some
  background row), so its values are the exact Shapley values of the game
  ``v(S) = E_background[f(x_S, b_notS)]``; additivity holds to float rounding.
  This is the only exact method. Cost: ``2**F x background`` model rows per
  explained row, all materialised at once by shap (``F x 8`` bytes each). For
  the band gap (F = 15) and the stage-2 inputs (F = 14) with the 32-row
  background that is 0.5-1 M rows; for the 17-feature chain the background is
  cut to ``exact_max_rows / 2**F`` = 8 rows to bound memory (~300 MB peak).
* ``permutation``: :class:`shap.PermutationExplainer`, antithetic permutations
  (``permutations`` = 10 per row for up to ``many_rows`` = 10 rows, else
  ``permutations_many`` = 4), ``2F+1`` evaluations each. Exactly additive
  (each permutation telescopes from base to prediction), unbiased, exact for
  models with at most pairwise interactions; otherwise a Monte-Carlo estimate
  (on the paper chain, 10 permutations differ from ``exact`` by ~3 % of the
  largest attribution).
* ``gradient``: our own integrated gradients averaged over the background rows as
  baselines (Aumann-Shapley path attributions), Gauss-Legendre quadrature with
  ``gradient_steps`` = 64 nodes (:mod:`.integrated_gradients`). Categorical inputs
  follow the straight path between one-hot vectors (the model is evaluated
  between the one-hot vertices only along that path) and the per-category terms
  are summed into one value. Equals Shapley values only for additive models;
  additivity holds up to the quadrature error (first order in 1/nodes because of
  the ReLU kinks: ~1e-3 eV, ~0.03 % here; see
  :meth:`~nestedae_core.explain.Attribution.additivity_error`). Fastest for
  global views.
* ``kernel`` (optional): :class:`shap.KernelExplainer` on the same background
  multiset; additive by construction, approximate, slower than ``permutation``.
* ``auto``: ``exact`` when the exact work (rows x ``2**F`` x background rows) is
  at most :attr:`ExplainSettings.auto_exact_rows` = 2**18 model rows (~0.3 s),
  else ``permutation``. With the paper model's 32-row background that means
  ``permutation`` for every kind (one exact band gap or chain takes ~1 s, on a
  busy machine several), ``exact`` for small models such as the synthetic set
  (F = 10).

Measured with ``benchmarks/bench_explain.py`` on the shipped paper model, 2 CPU
cores shared with other jobs (load ~2), after shap's one-off numba compilation
(5-10 s per process: :func:`~nestedae_core.explain.warm_up`). Seconds for one
composition / 200 (on a loaded machine, up to 3x more):

=========  ==========  ===========  ==========  ==========
kind       exact       permutation  gradient    kernel
=========  ==========  ===========  ==========  ==========
band gap   1.0 / -     0.03 / 0.9   0.02 / 0.9  0.03 / 3.9
PCE (c)    0.4 / -     0.02 / 1.3   0.02 / 0.7  0.04 / 5.5
chain (d)  1.0 / -     0.02 / 1.5   0.02 / 0.8  0.04 / 5.6
=========  ==========  ===========  ==========  ==========

Torch runs single-threaded inside an explanation (:attr:`ExplainSettings.threads`,
through :func:`nestedae_core.threads.limit_cpu_threads`): the layers are small,
and on the busy 2-core machine two threads were 10-15x slower.

DeepExplainer is not offered: with this library's ensemble-batched layers it
fails (``EnsembleLinear`` is an unknown module to its PyTorch hooks, which also
assume dimension 0 is the batch, while here it is the ensemble member), and its
DeepLIFT multipliers would be additive only for the activations it knows.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import InputError
from ..threads import limit_cpu_threads
from .background import background_multiset, multiset_size
from .explained_function import ExplainedFunction
from .integrated_gradients import integrated_gradients
from .settings import ExplainSettings
from .shap_backend import shap_values

__all__ = ["METHODS", "Method"]

logger = logging.getLogger(__name__)

Method = Literal["auto", "exact", "permutation", "kernel", "gradient"]
#: Explainer methods accepted by every ``explain_*`` function.
METHODS: tuple[str, ...] = ("auto", "exact", "permutation", "kernel", "gradient")


def check_method(method: str) -> str:
    """``method`` itself when it is one of :data:`METHODS` (InputError otherwise)."""
    if method not in METHODS:
        raise InputError(f"unknown explainer method '{method}'; choose one of {', '.join(METHODS)}")
    return method


def choose_auto(settings: ExplainSettings, n_rows: int, n_features: int, n_background: int) -> str:
    """What ``auto`` runs: ``exact`` when ``rows x 2**F x background rows`` is within
    :attr:`ExplainSettings.auto_exact_rows`, else ``permutation``."""
    size = min(settings.background_size or n_background, max(1, settings.exact_max_rows >> n_features))
    work = n_rows * (2**n_features) * size
    return "exact" if work <= settings.auto_exact_rows else "permutation"


@dataclass
class MethodResult:
    """Attributions of the K outputs of an explained function for n rows over F features.

    ``values`` (n, F, K) and ``base`` (n, K) and ``predictions`` (n, K) in the
    outputs' units; ``data`` (n, F) the explained inputs for display; ``method``
    the method run (``auto`` resolved); ``background_size`` rows of the multiset;
    ``seconds`` wall time of the attribution itself; ``details`` method parameters.
    """

    values: np.ndarray
    base: np.ndarray
    predictions: np.ndarray
    data: np.ndarray
    method: str
    background_size: int
    seconds: float
    details: dict[str, Any]


def run_method(fn: ExplainedFunction, frame: pd.DataFrame, method: str, background: pd.DataFrame, weights: np.ndarray) -> MethodResult:
    """Encode ``frame`` and the weighted ``background``, then run ``method`` on ``fn``."""
    settings = fn.settings
    check_method(method)
    with limit_cpu_threads(settings.threads):
        X, Bfull, disp = fn.encode_frames(frame, background)
    F = X.shape[1]
    if method == "auto":
        method = choose_auto(settings, len(X), F, len(Bfull))
    size = multiset_size(settings, len(Bfull), method, F)
    B, w, multiset = background_multiset(Bfull, weights, size)
    K = len(fn.outputs)
    with limit_cpu_threads(settings.threads):
        t0 = time.perf_counter()
        if method == "gradient":
            values, base_k = integrated_gradients(fn, X, B, w, settings.gradient_steps)
            base = np.broadcast_to(base_k, (len(X), K)).copy()
            details: dict[str, Any] = {"quadrature_nodes": settings.gradient_steps, "baselines": int(len(B))}
        else:
            values, base, details = shap_values(fn, X, multiset, method, settings, K)
        seconds = time.perf_counter() - t0
        pred = fn(X).reshape(len(X), K)
    logger.debug("%s attributions of %d rows x %d features in %.2f s", method, len(X), F, seconds)
    return MethodResult(values, base, pred, disp, method, size, seconds, details)
