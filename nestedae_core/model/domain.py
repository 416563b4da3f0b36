"""Applicability domain of a stage: is a query inside the region its training data covers?

The k-means summary behind it (:func:`standardize` + :func:`kmeans_clusters`) is
also the one that picks a stage's attribution background rows
(:func:`nestedae_core.train.background.kmeans_background`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sklearn.cluster import KMeans

__all__ = ["DomainModel", "kmeans_clusters", "standardize"]


def standardize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns shifted to mean 0 and scaled to sd 1: ``(z, mean, scale)``, in the values' units.

    A constant column (sd below 1e-12) keeps scale 1, so it becomes all zeros.
    """
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(axis=0)
    scale = values.std(axis=0)
    scale[scale < 1e-12] = 1.0
    return (values - mean) / scale, mean, scale


def kmeans_clusters(z: np.ndarray, max_clusters: int, seed: int) -> "KMeans":
    """k-means (one seeded initialisation) of the rows of ``z`` with at most ``max_clusters`` clusters.

    Fewer clusters are used when ``z`` has fewer distinct rows (compared to 6
    decimals), so no cluster is empty. Returns the fitted ``sklearn`` estimator
    (``cluster_centers_`` in the units of ``z``, ``labels_`` per row).
    """
    from sklearn.cluster import KMeans

    n_distinct = len(np.unique(np.round(z, 6), axis=0))
    k = max(1, min(max_clusters, n_distinct))
    return KMeans(n_clusters=k, n_init=1, random_state=seed).fit(z)


@dataclass
class DomainModel:
    """Where the training data lies, as k-means centroids in a standardised space.

    A query is *inside the domain* when its distance to the nearest centroid is at
    most ``threshold`` (1.5 x the 99th percentile of the training rows' own
    distances). ``columns`` name the dimensions (upstream latents use
    ``<stage>.z<i>``). Distances are in training standard deviations.
    """

    columns: list[str]
    mean: np.ndarray
    scale: np.ndarray
    centroids: np.ndarray
    threshold: float

    def distance(self, values: np.ndarray) -> np.ndarray:
        """Distance (in training standard deviations) of each row to the nearest centroid."""
        z = (np.asarray(values, dtype=np.float64) - self.mean) / self.scale
        d2 = ((z[:, None, :] - self.centroids[None, :, :]) ** 2).sum(-1)
        return np.sqrt(d2.min(axis=1))

    @classmethod
    def fit(cls, columns: list[str], values: np.ndarray, *, max_centroids: int = 48, seed: int = 0) -> "DomainModel":
        """Fit centroids and the threshold on training values (rows x columns)."""
        z, mean, scale = standardize(values)
        km = kmeans_clusters(z, max_centroids, seed)
        dist = np.sqrt(((z[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1).min(axis=1))
        threshold = float(max(1.5 * np.quantile(dist, 0.99), 0.5))
        return cls(columns, mean, scale, km.cluster_centers_, threshold)

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "centroids": self.centroids.tolist(),
            "threshold": self.threshold,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "DomainModel":
        return cls(
            list(d["columns"]),
            np.asarray(d["mean"], dtype=np.float64),
            np.asarray(d["scale"], dtype=np.float64),
            np.asarray(d["centroids"], dtype=np.float64).reshape(-1, len(d["columns"])),
            float(d["threshold"]),
        )
