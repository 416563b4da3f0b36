"""Grids of compositions: every composition whose site fractions are multiples of a step."""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from ...errors import CompositionError
from ...vocabulary import IONS, SITE_IONS, SITE_OF_ION
from .core import _INDEX, _KNOWN_LIST, _fmt, _site_name

__all__ = ["MAX_GRID_ROWS", "composition_grid", "grid_size"]

#: Largest grid :func:`composition_grid` builds (rows).
MAX_GRID_ROWS: int = 2_000_000


def _check_site_ions(site: str, ions: Sequence[str]) -> list[str]:
    if isinstance(ions, str):
        ions = [ions]
    names = [str(ion) for ion in ions]
    if not names:
        raise CompositionError(f"no {site}-site ions given for the grid: pass at least one of {', '.join(SITE_IONS[site])}")
    for ion in names:
        if ion not in SITE_OF_ION:
            raise CompositionError(f"unknown ion {ion!r} for the grid: known ions are {_KNOWN_LIST}")
        if SITE_OF_ION[ion] != site:
            raise CompositionError(
                f"{ion} is {_site_name(SITE_OF_ION[ion])} ion but was given as {_site_name(site)} ion: pass it in {SITE_OF_ION[ion].lower()}_ions"
            )
    duplicates = sorted({ion for ion in names if names.count(ion) > 1})
    if duplicates:
        raise CompositionError(f"ion {duplicates[0]} is listed twice for the {site} site")
    return names


def _simplex(k: int, m: int) -> np.ndarray:
    """All vectors of k non-negative integers summing to m (stars and bars), shape (C(m+k-1, k-1), k)."""
    if k == 1:
        return np.array([[m]], dtype=np.int64)
    bars = np.array(list(itertools.combinations(range(m + k - 1), k - 1)), dtype=np.int64)
    edges = np.hstack([np.full((len(bars), 1), -1), bars, np.full((len(bars), 1), m + k - 1)])
    return np.diff(edges, axis=1) - 1


def grid_size(a_ions: Sequence[str], b_ions: Sequence[str], x_ions: Sequence[str], divisions: int) -> int:
    """Number of compositions :func:`composition_grid` makes with step ``1/divisions`` (0 when a site has no ion).

    Each site contributes C(divisions + k - 1, k - 1) points for its k ions.
    """
    sites = (a_ions, b_ions, x_ions)
    if not all(sites):
        return 0
    return math.prod(math.comb(int(divisions) + len(ions) - 1, len(ions) - 1) for ions in sites)


def composition_grid(
    a_ions: Sequence[str],
    b_ions: Sequence[str],
    x_ions: Sequence[str],
    step: float,
) -> np.ndarray:
    """Every composition whose site fractions are multiples of ``step`` (dimensionless).

    Returns an array of shape (n, 14) in the :meth:`Composition.fraction_vector`
    convention (A and B amounts, X fractions; each site sums to 1), one row per
    combination of an A-site, a B-site and an X-site simplex point; e.g.
    ``composition_grid(["Cs", "FA", "MA"], ["Pb"], ["Br", "I"], 0.1)`` has
    66 x 1 x 11 = 726 rows. ``step`` must be 1/n for an integer n >= 1.
    """
    a = _check_site_ions("A", a_ions)
    b = _check_site_ions("B", b_ions)
    x = _check_site_ions("X", x_ions)
    try:
        step_f = float(step)
    except (TypeError, ValueError):
        raise CompositionError(f"grid step {step!r} is not a number: use e.g. 0.1") from None
    if not math.isfinite(step_f) or not 0 < step_f <= 1:
        raise CompositionError(f"grid step {step!r} is not in (0, 1]: use e.g. 0.1 or 0.25")
    m = round(1.0 / step_f)
    if abs(m * step_f - 1.0) > 1e-9:
        raise CompositionError(f"grid step {step!r} does not divide 1: use 1/n, e.g. {_fmt(1 / max(m, 1))}")
    counts = [math.comb(m + len(ions) - 1, len(ions) - 1) for ions in (a, b, x)]
    rows = grid_size(a, b, x, m)
    if rows > MAX_GRID_ROWS:
        raise CompositionError(f"grid would have {rows} rows (limit {MAX_GRID_ROWS}): use a larger step or fewer ions")
    out = np.zeros((rows, len(IONS)))
    blocks = [_simplex(len(ions), m) / m for ions in (a, b, x)]
    na, nb, nx = counts
    for site_index, (ions, block) in enumerate(zip((a, b, x), blocks)):
        cols = [_INDEX[ion] for ion in ions]
        if site_index == 0:
            values = np.repeat(block, nb * nx, axis=0)
        elif site_index == 1:
            values = np.tile(np.repeat(block, nx, axis=0), (na, 1))
        else:
            values = np.tile(block, (na * nb, 1))
        out[:, cols] = values
    return out
