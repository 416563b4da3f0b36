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

from collections.abc import Mapping, Sequence

import numpy as np

from ..vocabulary import IONS, SITE_IONS
from .problem import DesignProblem

__all__ = ["parameter_names", "counts_from_unit", "fractions_from_counts", "counts_from_fractions", "round_to_lattice"]

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
