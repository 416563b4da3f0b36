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
    units), the cluster's most common value for the categorical ones; its weight
    is the cluster's share of the table's rows.
    """
    num = table[numeric].to_numpy(dtype=np.float64) if numeric else np.zeros((len(table), 0))
    z_num, mean, std = standardize(num)
    parts = [z_num]
    for c in categorical:
        parts.append(pd.get_dummies(table[c].astype(str)).to_numpy(dtype=np.float64))
    km = kmeans_clusters(np.concatenate(parts, axis=1), k, seed)
    k = km.n_clusters
    rows = []
    weights = np.bincount(km.labels, minlength=k).astype(float)
    for j in range(k):
        members = km.labels == j
        row: dict[str, Any] = {}
        centre = km.centers[j, : len(numeric)] * std + mean
        row.update(dict(zip(numeric, centre)))
        for c in categorical:
            row[c] = table.loc[members, c].astype(str).mode().iloc[0]
        rows.append(row)
    return pd.DataFrame(rows, columns=numeric + categorical), weights / weights.sum()
