"""Plain formulas in bulk: the canonical formula and fraction vector of many texts with array arithmetic.

:func:`canonical_fractions_many` gives, for each text of a sequence, what
:func:`~.fast.canonical_fractions` gives (so what :func:`~.formula.parse_formula`
gives), computed for all texts of one shape at once: texts whose terms name the
same ions in the same order (``Cs FA MA Pb Sn Br I``) form one block, and every
step of the parser (the site sums in the parser's order, the scaling to the
nominal totals, the rounding to 12 decimals, the search for the fewest digits
whose formula reads back as the same composition) is one array operation on the
block. The arithmetic is the parser's, operation for operation, so the results
are identical:

* sums are taken term by term in the parser's order (IEEE additions, as Python's
  ``sum`` of floats in Python 3.11);
* Python's ``round(x, p)`` (and ``float(f"{x:.{p}f}")``) is the integer nearest to
  ``x 10^p`` divided by ``10^p``: the integer is found with ``rint`` where the
  product is not within 0.01 of a half (exact there, the product's rounding error
  being under 0.001), and with ``round`` itself elsewhere; the division of two exact
  doubles is correctly rounded, as ``round`` is;
* decimal exponents are ``floor(log10(x))`` with ``math.log10`` wherever ``np.log10``
  lies within 1e-9 of an integer.

Texts that are not plain (brackets, aliases, an ion twice, an unknown symbol), and
rows whose sites the parser would refuse or round to zero, get None: the caller
parses them one by one (and gets the parser's own messages).

Units: fractions are dimensionless, IONS order, A and B amounts per formula unit,
X as fractions of the X site (the :meth:`Composition.fraction_vector` convention).
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from ...vocabulary import IONS, SITE_OF_ION, SITE_TOTALS
from .core import _DECIMALS, _EXACT
from .fast import _PLAIN
from .formula import MAX_FORMULA_LENGTH

__all__ = ["canonical_fractions_many"]

_SITES = ("A", "B", "X")
_INDEX = {ion: i for i, ion in enumerate(IONS)}
_X_COLUMNS = np.array([_INDEX[ion] for ion in IONS if SITE_OF_ION[ion] == "X"])
_TOLERANCE = 0.02  # parse_formula's default
_KNOWN = frozenset(SITE_OF_ION)
_ION = re.compile(r"(MA|FA|[A-Z][a-z]?)")  # the ion of fast._TERM
#: 10**k as exact doubles, k = 0..22 (every power of ten up to 1e22 is a double).
_POW10 = np.array([float(10**k) for k in range(23)])


def _terms(text: str) -> tuple[tuple[str, ...], list[float]] | None:
    """The ions (in order) and amounts of a plain formula, or None (not plain, an ion twice, or not valid)."""
    if len(text) > MAX_FORMULA_LENGTH or _PLAIN.fullmatch(text) is None:
        return None
    parts = _ION.split(text)  # '', ion, amount, ion, amount, ...: the terms of _TERM in a text _PLAIN matched
    ions = tuple(parts[1::2])
    if not _KNOWN.issuperset(ions) or len(set(ions)) != len(ions):
        return None
    amounts = [float(number) if number else 1.0 for number in parts[2::2]]
    if 0.0 in amounts:
        return None
    return ions, amounts


def round_decimals(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``round(x, p)`` of every element (Python's correctly rounded decimal rounding), for ``0 < x`` and ``x 10^p < 1e13``.

    ``p``: decimals per element (0..22), broadcast against ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    p = np.broadcast_to(np.asarray(p, dtype=np.int64), x.shape)
    scale = _POW10[p]
    y = x * scale
    n = np.rint(y)
    doubtful = (np.abs(y - np.floor(y) - 0.5) <= 0.01) | ~(y < 1e13)
    out = n / scale
    if doubtful.any():
        for i in zip(*np.nonzero(doubtful)):
            out[i] = round(float(x[i]), int(p[i]))
    return out


def _canonical_site(values: np.ndarray, nominal: float) -> tuple[np.ndarray, np.ndarray]:
    """One site's canonical amounts (rows, ions) and whether the parser accepts each row.

    ``values``: (rows, ions) in the order the parser sums them. Step for step
    :func:`~.fast._canonical_sites` (default tolerance, no renormalising).
    """
    total = values[:, 0].copy()
    for j in range(1, values.shape[1]):
        total = total + values[:, j]
    ok = (total > 0) & ~(np.abs(total - nominal) > _TOLERANCE * nominal + 1e-12)
    rescale = np.abs(total - nominal) > _EXACT * nominal
    if rescale.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = values * nominal / total[:, None]
        values = np.where(rescale[:, None], scaled, values)
        again = values[:, 0].copy()
        for j in range(1, values.shape[1]):
            again = again + values[:, j]
        total = np.where(rescale, again, total)
        ok &= ~(rescale & (np.abs(total - nominal) > 1e-6 * nominal))
    exact = np.abs(total - nominal) <= _EXACT * nominal
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(exact, 1.0, nominal / total)
    canon = np.where(exact[:, None], values, values * scale[:, None])
    canon = round_decimals(np.where(ok[:, None], canon, 1.0), _DECIMALS) + 0.0
    ok &= (canon > 0).all(axis=1)
    return canon, ok


def _powers(values: np.ndarray) -> np.ndarray:
    """``math.floor(math.log10(v))`` of every element (positive values)."""
    logs = np.log10(values)
    powers = np.floor(logs).astype(np.int64)
    near = np.abs(logs - np.round(logs)) < 1e-9
    for i in zip(*np.nonzero(near)):
        powers[i] = math.floor(math.log10(float(values[i])))
    return powers


def _strip(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def _block(ions: tuple[str, ...], amounts: np.ndarray) -> tuple[list[str | None], np.ndarray]:
    """Formulas (None where the rows must be parsed one by one) and fraction vectors of rows with the same ``ions``."""
    rows = len(amounts)
    ok = np.ones(rows, dtype=bool)
    sites: list[tuple[list[str], np.ndarray]] = []  # per site: ions sorted, canonical amounts in that order
    for site in _SITES:
        cols = [j for j, ion in enumerate(ions) if SITE_OF_ION[ion] == site]
        if not cols:
            return [None] * rows, np.zeros((rows, len(IONS)))  # an empty site: the parser says why
        canon, good = _canonical_site(amounts[:, cols], SITE_TOTALS[site])
        ok &= good
        order = sorted(range(len(cols)), key=lambda k: ions[cols[k]])
        sites.append(([ions[cols[k]] for k in order], canon[:, order]))
    values = np.concatenate([c for _, c in sites], axis=1)  # (rows, ions) in formula order: A, B, X, each sorted
    names = [ion for site_ions, _ in sites for ion in site_ions]
    values = np.where(ok[:, None], values, 1.0)
    powers = _powers(values)
    chosen = np.full(rows, -1)
    for digits in range(4, 14):
        todo = ok & (chosen < 0)
        if not todo.any():
            break
        back = round_decimals(values[todo], np.maximum(digits - 1 - powers[todo], 0))
        match = np.ones(int(todo.sum()), dtype=bool)
        start = 0
        for (site_ions, canon), site in zip(sites, _SITES):
            width = len(site_ions)
            again, good = _canonical_site(back[:, start : start + width], SITE_TOTALS[site])  # summed in sorted order
            match &= good & (again == canon[todo]).all(axis=1)
            start += width
        chosen[np.flatnonzero(todo)[match]] = digits
    vectors = np.zeros((rows, len(IONS)))
    vectors[:, [_INDEX[ion] for ion in names]] = values
    vectors[:, _X_COLUMNS] /= SITE_TOTALS["X"]
    formulas: list[str | None] = [None] * rows
    done = np.flatnonzero(chosen >= 0)
    if len(done):
        decimals = np.maximum(chosen[done, None] - 1 - powers[done], 0)  # >= 3: amounts are at most 3
        columns = []
        for j, ion in enumerate(names):
            texts = ["%.*f" % pv for pv in zip(decimals[:, j].tolist(), values[done, j].tolist())]
            stripped = [t.rstrip("0").rstrip(".") for t in texts] if decimals[:, j].min() > 0 else [_strip(t) for t in texts]
            columns.append([ion if t == "1" else ion + t for t in stripped])
        for r, formula in zip(done.tolist(), map("".join, zip(*columns))):
            formulas[r] = formula
    return formulas, vectors


def canonical_fractions_many(texts: Sequence[str]) -> list[tuple[str, np.ndarray] | None]:
    """``canonical_fractions(text)`` of every plain formula text, identical, with array arithmetic; None for the others.

    A None asks the caller to parse that text one by one (:func:`~.fast.canonical_fractions`):
    a notation that is not plain, or a text the parser refuses or treats specially.
    """
    out: list[tuple[str, np.ndarray] | None] = [None] * len(texts)
    blocks: dict[tuple[str, ...], tuple[list[int], list[list[float]]]] = {}
    for i, text in enumerate(texts):
        terms = _terms(text.strip()) if isinstance(text, str) else None
        if terms is not None:
            where, amounts = blocks.setdefault(terms[0], ([], []))
            where.append(i)
            amounts.append(terms[1])
    for ions, (where, amounts) in blocks.items():
        formulas, vectors = _block(ions, np.asarray(amounts, dtype=np.float64))
        for k, (i, formula) in enumerate(zip(where, formulas)):
            if formula is not None:
                out[i] = (formula, vectors[k])
    return out
