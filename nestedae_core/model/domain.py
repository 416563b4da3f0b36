"""Applicability domain of a stage: is a query inside the region its training data covers?

A stage's domain (:class:`DomainModel`) holds its training rows in a
standardised space; a query is outside when it lies farther from every training
row than the training rows lie from each other (the leave-one-out
nearest-neighbour rule). Bundles written before kept k-means centroids instead;
they load and work as they did. :func:`standardize` and :func:`kmeans_clusters`
also serve the attribution background
(:func:`nestedae_core.train.background.kmeans_background`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from sklearn.cluster import KMeans

__all__ = ["DOMAIN_QUANTILE", "DomainModel", "kmeans_clusters", "nearest_points", "standardize"]


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


#: A new model's domain threshold is this quantile of its training rows' leave-one-out nearest-neighbour distances.
DOMAIN_QUANTILE = 0.99
#: Distances are computed for this many (query x training point) pairs at a time.
_CHUNK_PAIRS = 4_000_000


def nearest_points(z: np.ndarray, points: np.ndarray, *, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance from each row of ``z`` to its nearest row of ``points``, and that row's index.

    Both in the same (standardised) units. The nearest row is found with the
    expanded square (one matrix product per chunk of queries), its distance then
    recomputed exactly. ``exclude_self``: ``z`` is ``points`` and a row may not be
    its own neighbour (leave-one-out; infinite distance when there is only one row).
    """
    z = np.asarray(z, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    n, k = len(z), len(points)
    dist, index = np.full(n, np.inf), np.zeros(n, dtype=np.int64)
    if k == 0 or n == 0:
        return dist, index
    p2 = (points**2).sum(axis=1)
    step = max(1, _CHUNK_PAIRS // k)
    for a in range(0, n, step):
        zc = z[a : a + step]
        d2 = (zc**2).sum(axis=1)[:, None] - 2.0 * zc @ points.T + p2[None, :]
        if exclude_self:
            d2[np.arange(len(zc)), np.arange(a, a + len(zc))] = np.inf
        idx = d2.argmin(axis=1)
        index[a : a + len(zc)] = idx
        exact = np.sqrt(((zc - points[idx]) ** 2).sum(axis=1))
        dist[a : a + len(zc)] = np.where(np.isfinite(d2[np.arange(len(zc)), idx]), exact, np.inf)
    return dist, index


@dataclass
class DomainModel:
    """Where a stage's training data lies, in a standardised space.

    Values are standardised with the training ``mean`` and ``scale`` (distances
    are in training standard deviations); ``columns`` name the dimensions
    (upstream latents use ``<stage>.z<i>``). A query is *inside the domain* when
    its distance to the nearest of ``points`` is at most ``threshold``.

    * ``rule="nearest_row"`` (models trained now): ``points`` are the stage's
      distinct training rows (``labels``: a name for each, e.g. its formula) and
      the threshold is the :data:`DOMAIN_QUANTILE` quantile of their
      leave-one-out nearest-neighbour distances: a query is flagged when it is
      farther from every training row than 99 % of the training rows are from
      their nearest other one.
    * ``rule="kmeans"`` (bundles written before): ``points`` are k-means
      centroids and the threshold was 1.5 x the 99th percentile of the training
      rows' distances to them (at least 0.5); no labels.
    """

    columns: list[str]
    mean: np.ndarray
    scale: np.ndarray
    points: np.ndarray
    threshold: float
    labels: list[str] = field(default_factory=list)
    rule: Literal["nearest_row", "kmeans"] = "kmeans"

    def standardise(self, values: np.ndarray) -> np.ndarray:
        """Values (rows x columns, raw units) in training standard deviations."""
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.scale

    def nearest(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance (training standard deviations) of each row to the nearest point, and that point's index."""
        return nearest_points(self.standardise(values), self.points)

    def distance(self, values: np.ndarray) -> np.ndarray:
        """Distance (in training standard deviations) of each row to the nearest point."""
        return self.nearest(values)[0]

    def reason(self, stage: str, distance: float, nearest: int) -> str:
        """Why a query lies outside the domain, one sentence naming the stage ("" when it is inside)."""
        if distance <= self.threshold:
            return ""
        text = (f"outside the training data of stage '{stage}': distance {distance:.2f} > threshold "
                f"{self.threshold:.2f} (standardised units)")
        if self.labels and 0 <= nearest < len(self.labels):
            text += f"; nearest training row: {self.labels[nearest]}"
        return text

    @classmethod
    def fit(cls, columns: list[str], values: np.ndarray, labels: list[str] | None = None, *, quantile: float = DOMAIN_QUANTILE) -> "DomainModel":
        """The nearest-row domain of training values (rows x columns, raw units), with a name per row.

        Rows with equal values (to 9 decimals, standardised) count once, under
        the first row's name; the threshold is the ``quantile`` of the distinct
        rows' leave-one-out nearest-neighbour distances (0 for a single row).
        """
        z, mean, scale = standardize(values)
        _, first = np.unique(np.round(z, 9), axis=0, return_index=True)
        first = np.sort(first)
        points = z[first]
        names = [str(v) for v in labels] if labels is not None else [f"row {i + 1}" for i in range(len(z))]
        loo, _ = nearest_points(points, points, exclude_self=True)
        loo = loo[np.isfinite(loo)]
        threshold = float(np.quantile(loo, quantile)) if len(loo) else 0.0
        return cls(list(columns), mean, scale, points, threshold, [names[i] for i in first], "nearest_row")

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable dict (arrays as nested lists)."""
        out: dict[str, Any] = {
            "rule": self.rule,
            "columns": self.columns,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "threshold": self.threshold,
        }
        if self.rule == "kmeans":
            out["centroids"] = self.points.tolist()
        else:
            out["points"] = self.points.tolist()
            out["labels"] = self.labels
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "DomainModel":
        """Inverse of :meth:`to_json`; reads the k-means domains of older bundles too."""
        rule = d.get("rule", "kmeans")
        points = d["centroids"] if rule == "kmeans" else d["points"]
        return cls(
            list(d["columns"]),
            np.asarray(d["mean"], dtype=np.float64),
            np.asarray(d["scale"], dtype=np.float64),
            np.asarray(points, dtype=np.float64).reshape(-1, len(d["columns"])),
            float(d["threshold"]),
            [str(v) for v in d.get("labels", [])],
            rule,
        )
