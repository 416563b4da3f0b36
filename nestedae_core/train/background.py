"""A stage's attribution background: a k-means summary of its training inputs.

Explanations measure each feature's effect against these representative rows
(see :mod:`nestedae_core.explain.background`). The clustering is the one of the
applicability domain (:func:`nestedae_core.model.domain.kmeans_clusters`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..model.domain import kmeans_clusters, standardize

__all__ = ["BACKGROUND_ROWS", "kmeans_background"]

#: At most this many background rows per stage.
BACKGROUND_ROWS = 32


def kmeans_background(table: pd.DataFrame, numeric: list[str], categorical: list[str], k: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """k-means summary of a stage's raw inputs: representative rows and their weights (sum 1).

    Numeric columns are clustered standardised, categorical ones one-hot encoded.
    Each row is a cluster: its centre for the numeric columns (in the table's
    units), the cluster's most common value for the categorical ones (missing
    values left out; missing when the cluster states none); its weight is the
    cluster's share of the table's rows.
    """
    num = table[numeric].to_numpy(dtype=np.float64) if numeric else np.zeros((len(table), 0))
    z_num, mean, std = standardize(num)
    parts = [z_num]
    coded = []
    for c in categorical:
        # a missing value (kept missing by astype(str)) is no category: code -1, an all-zero one-hot row, not counted
        codes, names = pd.factorize(table[c].astype(str).to_numpy(dtype=object), sort=True)
        coded.append((codes, np.asarray(names, dtype=object)))
        parts.append(np.eye(len(names) + 1)[codes][:, : len(names)])  # one-hot (code -1 picks the dropped last row)
    km = kmeans_clusters(np.concatenate(parts, axis=1), k, seed)
    k = km.n_clusters
    weights = np.bincount(km.labels, minlength=k).astype(float)
    columns: dict[str, Any] = dict(zip(numeric, (km.centers[:, : len(numeric)] * std + mean).T))
    for c, (codes, names) in zip(categorical, coded):
        # each cluster's most common category (ties: the first in sorted order, as pandas' mode; None when all missing)
        seen = codes >= 0
        counts = np.bincount(km.labels[seen] * len(names) + codes[seen], minlength=k * len(names)).reshape(k, len(names))
        columns[c] = np.array([names[row.argmax()] if row.any() else None for row in counts], dtype=object)
    rows = pd.DataFrame(columns, index=range(k))
    return rows.reindex(columns=numeric + categorical), weights / weights.sum()
