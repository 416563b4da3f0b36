"""The background of an explanation: the reference rows a masked feature takes its values from.

The masker's background is the k-means summary stored in the bundle
(``model.backgrounds[i]``, ``model.background_weights[i]``), so a shipped model
explains without its data set. Explanations of a stage's own inputs build the
background latents by running the upstream stages on that stage's (chain)
background. shap's maskers average uniformly over background rows, so the
weighted rows are turned into a multiset of ``background_size`` rows by
largest-remainder rounding of ``weight x size`` (a cluster of weight 0.1 appears
3 times out of 32); every method, including ``gradient``, uses the same multiset,
so their base values agree. Shapley values here are *interventional*: a masked
feature takes background values independently of the kept ones.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from ..model.chain import NestedAE
from .settings import ExplainSettings

__all__ = ["weighted_multiset", "MIN_EXACT_BACKGROUND"]

#: Fewest background rows an exact explanation may be cut down to.
MIN_EXACT_BACKGROUND = 4


def weighted_multiset(weights: np.ndarray, size: int) -> np.ndarray:
    """Integer counts (sum ``size``) approximating ``weights`` by largest-remainder rounding.

    Row ``i`` of a weighted background appears ``counts[i]`` times in the
    unweighted multiset handed to shap's maskers.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or len(w) == 0 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise InputError("background weights must be a non-empty vector of finite non-negative numbers")
    if size < 1:
        raise InputError("background size must be at least 1")
    target = w / w.sum() * size
    counts = np.floor(target).astype(np.int64)
    rest = size - int(counts.sum())
    if rest > 0:
        order = np.lexsort((np.arange(len(w)), -(target - counts)))
        counts[order[:rest]] += 1
    return counts


def multiset_size(settings: ExplainSettings, n_background: int, method: str, n_features: int) -> int:
    """Rows of the background multiset: ``settings.background_size`` (default: the
    ``n_background`` stored rows), cut for ``exact`` so that ``2**F x rows`` stays
    within :attr:`ExplainSettings.exact_max_rows` (InputError below
    :data:`MIN_EXACT_BACKGROUND` rows)."""
    size = settings.background_size or n_background
    if method == "exact":
        cap = settings.exact_max_rows >> n_features
        if cap < min(size, MIN_EXACT_BACKGROUND):
            raise InputError(
                f"the exact explainer needs 2^{n_features} evaluations per background row, too many for "
                f"exact_max_rows={settings.exact_max_rows}; use method='permutation' (or raise exact_max_rows)"
            )
        size = min(size, cap)
    return size


def background_multiset(rows: np.ndarray, weights: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The weighted ``rows`` (B, F) as a multiset of ``size`` rows.

    Returns ``(distinct, shares, multiset)``: the rows that appear at least once,
    their shares of the multiset (sum 1; the baselines' weights of the gradient
    method) and the (size, F) multiset itself (shap's masker background).
    """
    counts = weighted_multiset(weights, size)
    keep = counts > 0
    return rows[keep], counts[keep] / counts.sum(), np.repeat(rows[keep], counts[keep], axis=0)


def stored_background(model: NestedAE, stage: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The k-means background of a stage stored in the bundle: raw rows and their weights (sum 1)."""
    if len(model.backgrounds) <= stage or len(model.background_weights) <= stage:
        raise InputError("this model has no stored background for attributions; retrain or re-save it with a current version")
    return model.backgrounds[stage], np.asarray(model.background_weights[stage], dtype=np.float64)
