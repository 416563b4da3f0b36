"""Applicability domain of a stage: is a query inside the region its training data covers?

A stage's domain (:class:`DomainModel`) holds its training rows in a
standardised space; a query is outside when it lies farther from every training
row than the training rows lie from each other (the leave-one-out
nearest-neighbour rule), or when one of the stage's own numeric inputs lies
beyond the range its weighted training rows reach (the *coverage* rule, input by
input: a value held by fewer than :data:`COVERAGE_SUPPORT` distinct rows does
not count as covered). Bundles written before kept k-means centroids instead;
they load and work as they did; bundles without a coverage check none.
The packages that know what an input means register how it reads in a reason
(:func:`register_coverage_wording`); this module knows no domain. :func:`standardize` and :func:`kmeans_clusters`
also serve the attribution background
(:func:`nestedae_core.train.background.kmeans_background`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np


__all__ = [
    "COVERAGE_SLACK",
    "COVERAGE_SUPPORT",
    "DOMAIN_QUANTILE",
    "Clusters",
    "CoverageWording",
    "DomainModel",
    "Uncovered",
    "kmeans_clusters",
    "nearest_points",
    "register_coverage_wording",
    "standardize",
]


def standardize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns shifted to mean 0 and scaled to sd 1: ``(z, mean, scale)``, in the values' units.

    A constant column (sd below 1e-12) keeps scale 1, so it becomes all zeros.
    """
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(axis=0)
    scale = values.std(axis=0)
    scale[scale < 1e-12] = 1.0
    return (values - mean) / scale, mean, scale


@dataclass(frozen=True)
class Clusters:
    """A k-means clustering: ``centers`` (k, d) in the units of the clustered rows, ``labels`` (n,) each row's
    cluster (0..k-1, every cluster holding at least one row)."""

    centers: np.ndarray
    labels: np.ndarray

    @property
    def n_clusters(self) -> int:
        """The number of clusters k."""
        return int(self.centers.shape[0])


def kmeans_clusters(z: np.ndarray, max_clusters: int, seed: int, max_iterations: int = 300) -> Clusters:
    """k-means (one seeded k-means++ start, then Lloyd's iterations) of the rows of ``z``, at most ``max_clusters``
    clusters.

    Fewer clusters are used when ``z`` has fewer distinct rows (compared to 6 decimals). The start is greedy
    k-means++: each next centre is the best (lowest total squared distance) of ``2 + ln k`` rows drawn with
    probability proportional to their squared distance to the centres so far. Lloyd's iterations then move each
    centre to the mean of its rows until no row changes cluster (at most ``max_iterations``); a cluster left empty
    takes the row farthest from its centre among the clusters of two or more rows. Written here rather than taken
    from scikit-learn because importing scikit-learn costs about 1 s of every training run, for a clustering of a
    few thousand rows into 32.
    """
    z = np.asarray(z, dtype=np.float64)
    n = len(z)
    n_distinct = len(np.unique(np.round(z, 6), axis=0))
    k = max(1, min(max_clusters, n_distinct))
    rng = np.random.default_rng(seed)
    centers = _kmeans_plus_plus(z, k, rng)
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(max_iterations):
        d2 = _squared_distances(z, centers)
        new = d2.argmin(axis=1)
        counts = np.bincount(new, minlength=k)
        for j in np.flatnonzero(counts == 0):
            # an empty cluster takes the row farthest from its centre among clusters of 2+ rows (a row alone in its
            # cluster would leave that one empty: 0/0 centre); k <= n, so such a cluster exists
            spread = np.where(counts[new] > 1, d2[np.arange(n), new], -1.0)
            far = int(spread.argmax())
            new[far] = j
            d2[far] = 0.0
            counts = np.bincount(new, minlength=k)
        if np.array_equal(new, labels):
            break
        labels = new
        centers = np.zeros_like(centers)
        np.add.at(centers, labels, z)
        centers /= counts[:, None]
    return Clusters(centers=centers, labels=labels)


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared Euclidean distances, never below 0."""
    return np.maximum((a * a).sum(axis=1)[:, None] - 2.0 * a @ b.T + (b * b).sum(axis=1)[None, :], 0.0)


def _kmeans_plus_plus(z: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` starting centres (rows of ``z``) by greedy k-means++ (see :func:`kmeans_clusters`)."""
    n = len(z)
    trials = 2 + int(np.log(k))
    chosen = [int(rng.integers(n))]
    closest = _squared_distances(z, z[chosen])[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # every row sits on a centre: take rows not yet chosen
            rest = np.setdiff1d(np.arange(n), chosen)
            chosen.append(int(rng.choice(rest)))
            closest = np.minimum(closest, _squared_distances(z, z[chosen[-1:]])[:, 0])
            continue
        candidates = np.searchsorted(np.cumsum(closest), rng.random(trials) * total, side="right").clip(max=n - 1)
        options = np.minimum(closest[:, None], _squared_distances(z, z[candidates]))  # (n, trials)
        best = int(options.sum(axis=0).argmin())
        chosen.append(int(candidates[best]))
        closest = options[:, best]
    return z[chosen].copy()


#: A new model's domain threshold is this quantile of its training rows' leave-one-out nearest-neighbour distances.
DOMAIN_QUANTILE = 0.99
#: Distances are computed for this many (query x training point) pairs at a time.
_CHUNK_PAIRS = 4_000_000
#: An input's covered range runs from the value of its k-th lowest to its k-th highest distinct weighted training row
#: (k = this): an input value that only one or two rows hold (e.g. two compositions with doubtful labels) is not coverage.
COVERAGE_SUPPORT = 3
#: A query may pass an input's covered range by this share of the input's full training range (0 for a constant input).
COVERAGE_SLACK = 0.05
#: Numerical slack of the coverage comparisons (input units).
_COVERAGE_EPS = 1e-6
#: A reason names at most this many uncovered inputs (in column order), then counts the rest.
_MAX_NAMED_INPUTS = 3

#: How an input reads in a reason: ``(dataset, column) -> (name of the quantity, who the training rows are)``, e.g.
#: ``("Cs on the A site", "the measured films")``, or None when the function does not know the column.
CoverageWording = Callable[[str, str], tuple[str, str] | None]
_WORDINGS: list[CoverageWording] = []


def register_coverage_wording(wording: CoverageWording) -> None:
    """Register how inputs read in coverage reasons (the latest registered function that knows a column wins)."""
    if wording not in _WORDINGS:
        _WORDINGS.append(wording)


def _wording(dataset: str, column: str) -> tuple[str, str]:
    for fn in reversed(_WORDINGS):
        found = fn(dataset, column)
        if found is not None:
            return found
    return column, "its training rows"


@dataclass(frozen=True)
class Uncovered:
    """One input of a query beyond its covered range: the column, the query's value and the range (input units)."""

    column: str
    value: float
    low: float
    high: float

    def phrase(self, dataset: str = "") -> str:
        """e.g. ``Cs on the A site 1.00 (the measured films reach 0.40)``, worded as registered for ``dataset``."""
        name, rows = _wording(dataset, self.column)
        if abs(self.low) <= _COVERAGE_EPS and abs(self.high) <= _COVERAGE_EPS:
            where = f"{rows} have none"
        elif self.high - self.low <= _COVERAGE_EPS:
            where = f"{rows} all have {self.high:.2f}"
        elif self.value > self.high:
            where = f"{rows} reach {self.high:.2f}"
        else:
            where = f"{rows} go down to {self.low:.2f}"
        return f"{name} {self.value:.2f} ({where})"


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
        d2 = zc @ points.T  # then, in place, (|z|^2 - 2 z.p) + |p|^2: the same sums in the same order
        d2 *= -2.0
        d2 += (zc**2).sum(axis=1)[:, None]
        d2 += p2[None, :]
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

    Coverage (models trained now): each of ``coverage_columns`` (raw units) must lie
    within ``[reach_low - slack, reach_high + slack]``, the range its weighted
    training rows cover (see :data:`COVERAGE_SUPPORT`, :data:`COVERAGE_SLACK`);
    :meth:`inside` combines both rules.
    """

    columns: list[str]
    mean: np.ndarray
    scale: np.ndarray
    points: np.ndarray
    threshold: float
    labels: list[str] = field(default_factory=list)
    rule: Literal["nearest_row", "kmeans"] = "kmeans"
    #: inputs (a subset of ``columns``) checked one by one against the range the weighted training rows cover
    coverage_columns: list[str] = field(default_factory=list)
    #: per coverage column: the covered range (input units) and the slack a query may pass it by
    reach_low: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reach_high: np.ndarray = field(default_factory=lambda: np.zeros(0))
    slack: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def standardise(self, values: np.ndarray) -> np.ndarray:
        """Values (rows x columns, raw units) in training standard deviations."""
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.scale

    def nearest(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance (training standard deviations) of each row to the nearest point, and that point's index."""
        return nearest_points(self.standardise(values), self.points)

    def distance(self, values: np.ndarray) -> np.ndarray:
        """Distance (in training standard deviations) of each row to the nearest point."""
        return self.nearest(values)[0]

    def uncovered(self, values: np.ndarray) -> list[list[Uncovered]]:
        """Per row of ``values`` (rows x :attr:`columns`, raw units): its inputs beyond their covered range (empty: covered)."""
        values = np.atleast_2d(np.asarray(values, dtype=np.float64))
        out: list[list[Uncovered]] = [[] for _ in range(len(values))]
        for j, col in enumerate(self.coverage_columns):
            v = values[:, self.columns.index(col)]
            lo, hi, sl = float(self.reach_low[j]), float(self.reach_high[j]), float(self.slack[j])
            for r in np.flatnonzero((v > hi + sl + _COVERAGE_EPS) | (v < lo - sl - _COVERAGE_EPS)):
                out[r].append(Uncovered(col, float(v[r]), lo, hi))
        return out

    def inside(self, values: np.ndarray) -> np.ndarray:
        """Whether each row (raw units) is inside the domain: near a training row and every input covered."""
        dist, _ = self.nearest(values)
        return (dist <= self.threshold) & np.array([not u for u in self.uncovered(values)], dtype=bool)

    def reason(self, stage: str, distance: float, nearest: int, uncovered: list[Uncovered] | None = None, dataset: str = "") -> str:
        """Why a query lies outside the domain, one sentence naming the stage ("" when it is inside).

        ``uncovered``: the query's inputs beyond their covered range (:meth:`uncovered`), named first,
        worded for the stage's ``dataset`` (:func:`register_coverage_wording`).
        """
        far = distance > self.threshold
        if not far and not uncovered:
            return ""
        parts = []
        if uncovered:
            named = ", ".join(u.phrase(dataset) for u in uncovered[:_MAX_NAMED_INPUTS])
            more = len(uncovered) - _MAX_NAMED_INPUTS
            parts.append(named + (f" and {more} more input{'s' if more > 1 else ''} beyond their range" if more > 0 else ""))
        if far:
            parts.append(f"distance {distance:.2f} > threshold {self.threshold:.2f} (standardised units)")
        text = f"outside the training data of stage '{stage}': " + "; ".join(parts)
        if far and self.labels and 0 <= nearest < len(self.labels):
            text += f"; nearest training row: {self.labels[nearest]}"
        return text

    @classmethod
    def fit(cls, columns: list[str], values: np.ndarray, labels: list[str] | None = None, *, quantile: float = DOMAIN_QUANTILE,
            coverage_columns: list[str] | None = None, weights: np.ndarray | None = None) -> "DomainModel":
        """The nearest-row domain of training values (rows x columns, raw units), with a name per row.

        Rows with equal values (to 9 decimals, standardised) count once, under
        the first row's name; the threshold is the ``quantile`` of the distinct
        rows' leave-one-out nearest-neighbour distances (0 for a single row).
        ``coverage_columns`` (a subset of ``columns``): inputs checked one by one
        against the range the rows with a positive ``weight`` cover (every row
        when ``weights`` is None): from the :data:`COVERAGE_SUPPORT`-th lowest to
        the :data:`COVERAGE_SUPPORT`-th highest value over those rows, distinct
        in the coverage columns, with a slack of :data:`COVERAGE_SLACK` of the
        input's full range.
        """
        z, mean, scale = standardize(values)
        _, first = np.unique(np.round(z, 9), axis=0, return_index=True)
        first = np.sort(first)
        points = z[first]
        names = [str(v) for v in labels] if labels is not None else [f"row {i + 1}" for i in range(len(z))]
        loo, _ = nearest_points(points, points, exclude_self=True)
        loo = loo[np.isfinite(loo)]
        threshold = float(np.quantile(loo, quantile)) if len(loo) else 0.0
        dom = cls(list(columns), mean, scale, points, threshold, [names[i] for i in first], "nearest_row")
        if coverage_columns:
            dom._fit_coverage(values, list(coverage_columns), weights)
        return dom

    def _fit_coverage(self, values: np.ndarray, coverage_columns: list[str], weights: np.ndarray | None) -> None:
        unknown = [c for c in coverage_columns if c not in self.columns]
        if unknown:
            raise ValueError(f"coverage columns not among the domain's columns: {', '.join(unknown)}")
        v = np.asarray(values, dtype=np.float64)[:, [self.columns.index(c) for c in coverage_columns]]
        span = v.max(axis=0) - v.min(axis=0) if len(v) else np.zeros(len(coverage_columns))
        if weights is not None:
            v = v[np.asarray(weights, dtype=np.float64) > 0]
        if len(v) == 0:
            return
        v = np.unique(np.round(v, 9), axis=0)
        k = min(COVERAGE_SUPPORT, len(v))
        ordered = np.sort(v, axis=0)
        self.coverage_columns = coverage_columns
        self.reach_low, self.reach_high = (np.round(ordered[i], 9) + 0.0 for i in (k - 1, len(v) - k))  # + 0.0: no -0.0
        self.slack = COVERAGE_SLACK * span

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
        if self.coverage_columns:
            out["coverage"] = {"columns": self.coverage_columns, "low": self.reach_low.tolist(),
                               "high": self.reach_high.tolist(), "slack": self.slack.tolist()}
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "DomainModel":
        """Inverse of :meth:`to_json`; reads the k-means domains of older bundles too."""
        rule = d.get("rule", "kmeans")
        points = d["centroids"] if rule == "kmeans" else d["points"]
        cov = d.get("coverage") or {}
        cov_cols = [str(c) for c in cov.get("columns", [])]
        if any(c not in d["columns"] for c in cov_cols):
            raise ValueError("domain coverage names a column the domain does not have")
        return cls(
            list(d["columns"]),
            np.asarray(d["mean"], dtype=np.float64),
            np.asarray(d["scale"], dtype=np.float64),
            np.asarray(points, dtype=np.float64).reshape(-1, len(d["columns"])),
            float(d["threshold"]),
            [str(v) for v in d.get("labels", [])],
            rule,
            cov_cols,
            *(np.asarray(cov.get(k, []), dtype=np.float64).reshape(len(cov_cols)) for k in ("low", "high", "slack")),
        )
