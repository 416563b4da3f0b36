"""The search space of a design: site fractions on a lattice, summing to one by construction.

The optimiser sees a point of the unit cube: a site with k allowed ions has k - 1 coordinates
(named ``"<site>:<ion>"`` after its first k - 1 ions). Stick-breaking turns them into the site's
fractions: ion i takes the share ``1 - (1 - v_i)^(1/(k - i))`` of what the ions before it left,
the last ion the rest (uniform points of the cube give uniform points of the simplex, and no
coordinate is redundant). The ``max_ions`` largest fractions are kept, and the kept fractions are rounded to whole
multiples of ``1/divisions`` by the largest-remainder rule. Every site therefore
sums to exactly ``divisions`` steps: the sum-to-one constraint holds by construction,
never by a penalty. A Pb cap (``max_pb``) moves the excess Pb to the site's other kept
ions in proportion to their weights, again in whole steps.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..vocabulary import IONS, SITE_IONS
from .problem import DesignProblem

__all__ = ["parameter_names", "counts_from_unit", "unit_from_counts", "lattice_points", "fractions_from_counts",
           "counts_from_fractions", "round_to_lattice"]

_EPS = 1e-12


def parameter_names(problem: DesignProblem) -> list[str]:
    """The optimiser's coordinates: ``"A:Cs"``, ``"A:FA"``, ... for the first k - 1 allowed ions of each site."""
    return [f"{site}:{ion}" for site in ("A", "B", "X") for ion in problem.site_ions(site)[:-1]]


def _stick_breaking(v: np.ndarray) -> np.ndarray:
    """(n, k-1) coordinates in [0, 1] -> (n, k) fractions summing to 1 (uniform cube -> uniform simplex)."""
    n, km1 = v.shape
    out = np.zeros((n, km1 + 1))
    left = np.ones(n)
    for i in range(km1):
        share = left * (1.0 - (1.0 - np.clip(v[:, i], 0.0, 1.0)) ** (1.0 / (km1 - i)))
        out[:, i] = share
        left = left - share
    out[:, km1] = np.maximum(left, 0.0)
    return out


def round_to_lattice(weights: np.ndarray, divisions: int) -> np.ndarray:
    """Whole numbers of steps, summing to ``divisions`` per row, nearest to ``weights`` in proportion.

    ``weights``: (n, k) non-negative, each row with a positive sum. Largest-remainder rounding:
    ``floor`` of each share, then one more step to the largest remainders (ties to the first column).
    Zero weights stay zero.
    """
    w = np.asarray(weights, dtype=np.float64)
    share = w / w.sum(axis=1, keepdims=True) * divisions
    base = np.floor(share + 1e-9).astype(np.int64)
    missing = divisions - base.sum(axis=1)
    remainder = share - base
    order = np.argsort(-remainder, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(w.shape[1])[None, :].repeat(len(w), axis=0), axis=1)
    return base + (rank < missing[:, None]).astype(np.int64)


def _site_counts(u: np.ndarray, ions: Sequence[str], problem: DesignProblem) -> np.ndarray:
    m = problem.divisions
    n, k = u.shape[0], u.shape[1] + 1
    if k == 1:
        return np.full((n, 1), m, dtype=np.int64)
    w = _stick_breaking(u) + _EPS
    if problem.max_ions < k:
        order = np.argsort(-w, axis=1, kind="stable")
        drop = order[:, problem.max_ions:]
        np.put_along_axis(w, drop, 0.0, axis=1)
    counts = round_to_lattice(w, m)
    cap = problem.max_pb_steps
    if "Pb" in ions and cap is not None:
        j = list(ions).index("Pb")
        excess = counts[:, j] - cap
        raw = _stick_breaking(u) + _EPS
        for r in np.flatnonzero(excess > 0):
            others = np.where(counts[r] > 0, w[r], 0.0)
            others[j] = 0.0
            if not (others > 0).any():  # Pb sat alone: the strongest other ion takes the excess
                best = int(np.argmax(np.where(np.arange(k) == j, -np.inf, raw[r])))
                if problem.max_ions == 1:  # one ion per site: it replaces Pb
                    counts[r] = 0
                    counts[r, best] = m
                    continue
                others[best] = 1.0
            counts[r] += round_to_lattice(others[None, :], int(excess[r]))[0]
            counts[r, j] = cap
    return counts


def counts_from_unit(problem: DesignProblem, params: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Lattice steps of every ion, shape (n, 14) in IONS order, for optimiser points ``params``.

    Each row's A, B and X steps sum to ``problem.divisions`` exactly; ions not allowed are 0.
    """
    n = len(params)
    out = np.zeros((n, len(IONS)), dtype=np.int64)
    for site in ("A", "B", "X"):
        ions = problem.site_ions(site)
        u = np.array([[float(p.get(f"{site}:{ion}", 0.5)) for ion in ions[:-1]] for p in params], dtype=np.float64).reshape(n, len(ions) - 1)
        counts = _site_counts(u, ions, problem)
        for col, ion in enumerate(ions):
            out[:, IONS.index(ion)] = counts[:, col]
    return out


def fractions_from_counts(counts: np.ndarray, divisions: int) -> np.ndarray:
    """Site fractions (mol/mol; X as fractions of the X site) from lattice steps: ``counts / divisions``."""
    return np.asarray(counts, dtype=np.float64) / float(divisions)


def counts_from_fractions(fractions: np.ndarray, divisions: int) -> np.ndarray:
    """Lattice steps nearest to site fractions (each site re-rounded to sum to ``divisions``)."""
    arr = np.asarray(fractions, dtype=np.float64).reshape(-1, len(IONS))
    out = np.zeros(arr.shape, dtype=np.int64)
    for ions in SITE_IONS.values():
        cols = [IONS.index(i) for i in ions]
        sub = arr[:, cols]
        sub = np.where(sub.sum(axis=1, keepdims=True) > 0, sub, 1.0)
        out[:, cols] = round_to_lattice(sub, divisions)
    return out


def unit_from_counts(problem: DesignProblem, counts: np.ndarray) -> list[dict[str, float]]:
    """Optimiser points (cube coordinates, see :func:`parameter_names`) that :func:`counts_from_unit` turns back
    into exactly ``counts`` ((n, 14) lattice steps of the problem's lattice: within ``max_ions`` and the Pb cap)."""
    arr = np.asarray(counts, dtype=np.float64).reshape(-1, len(IONS))
    out: list[dict[str, float]] = [{} for _ in range(len(arr))]
    for site in ("A", "B", "X"):
        ions = problem.site_ions(site)
        share = arr[:, [IONS.index(i) for i in ions]] / float(problem.divisions)
        km1 = len(ions) - 1
        left = np.ones(len(arr))
        for i, ion in enumerate(ions[:-1]):
            part = np.divide(share[:, i], left, out=np.zeros(len(arr)), where=left > _EPS)
            v = 1.0 - (1.0 - np.clip(part, 0.0, 1.0)) ** (km1 - i)  # the inverse of the stick-breaking share
            for r in range(len(arr)):
                out[r][f"{site}:{ion}"] = float(v[r])
            left = left - share[:, i]
    return out


def _site_points(k: int, m: int, max_ions: int, cap: tuple[int, int] | None) -> np.ndarray:
    """Every way to split ``m`` steps among ``k`` ions (at most ``max_ions`` non-zero; ``cap``: (column, most steps))."""
    rows = []
    for bars in itertools.combinations(range(m + k - 1), k - 1):
        edges = (-1, *bars, m + k - 1)
        rows.append([edges[i + 1] - edges[i] - 1 for i in range(k)])
    pts = np.array(rows, dtype=np.int64).reshape(-1, k)
    keep = (pts > 0).sum(axis=1) <= max_ions
    if cap is not None:
        keep &= pts[:, cap[0]] <= cap[1]
    return pts[keep]


def lattice_points(problem: DesignProblem, limit: int) -> np.ndarray | None:
    """Every composition of the problem's lattice, (n, 14) lattice steps in IONS order, or None when the lattice
    (before the ``max_ions`` and Pb-cap filters) holds more than ``limit`` points."""
    m = problem.divisions
    sites = [problem.site_ions(s) for s in ("A", "B", "X")]
    if math.prod(math.comb(m + len(ions) - 1, len(ions) - 1) for ions in sites) > limit:
        return None
    parts = []
    for ions in sites:
        cap = (ions.index("Pb"), problem.max_pb_steps) if "Pb" in ions and problem.max_pb_steps is not None else None
        pts = _site_points(len(ions), m, problem.max_ions, cap)  # type: ignore[arg-type]
        full = np.zeros((len(pts), len(IONS)), dtype=np.int64)
        full[:, [IONS.index(i) for i in ions]] = pts
        parts.append(full)
    a, b, x = parts
    ia, ib, ix = np.meshgrid(np.arange(len(a)), np.arange(len(b)), np.arange(len(x)), indexing="ij")
    return a[ia.ravel()] + b[ib.ravel()] + x[ix.ravel()]
