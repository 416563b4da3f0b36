"""Many formulas at once: each to its canonical formula and site-fraction vector, fast and exactly as :func:`parse_formula`.

:func:`canonical_fractions` returns, for a formula text, what
``parse_formula(text).formula`` and ``parse_formula(text).fraction_vector()``
return, without building :class:`~.core.Composition` objects for the plain
notation that batch files mostly hold (ASCII ion symbols and decimal amounts,
no brackets, spaces or aliases: ``Cs0.05FA0.79MA0.16PbBr0.51I2.49``). The
arithmetic is the parser's, step for step (the same sums in the same order, the
same rounding to 12 decimals, the same round trip that picks the canonical
formula's digits), so the results are identical; every other notation, and every
text the parser would reject, goes through :func:`parse_formula` itself, so
messages are its own. :func:`parse_many` does this for a sequence of texts,
parsing each distinct text once.

Units: fractions are dimensionless, IONS order, A and B amounts per formula
unit, X as fractions of the X site (the :meth:`Composition.fraction_vector`
convention).
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Union

import numpy as np

from ...errors import CompositionError
from ...vocabulary import IONS, SITE_OF_ION, SITE_TOTALS
from .core import _DECIMALS, _EXACT
from .formula import MAX_FORMULA_LENGTH, parse_formula

__all__ = ["canonical_fractions", "parse_many", "Parsed"]

#: What :func:`parse_many` gives per text: (canonical formula, fraction vector (14,)) or the parser's error.
Parsed = Union[tuple[str, np.ndarray], CompositionError]

_PLAIN = re.compile(r"(?:(?:MA|FA|[A-Z][a-z]?)(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)?)+")
_TERM = re.compile(r"(MA|FA|[A-Z][a-z]?)([0-9]+(?:\.[0-9]+)?|\.[0-9]+)?")
_INDEX = {ion: i for i, ion in enumerate(IONS)}
_SITES = ("A", "B", "X")
_SITE_INDEX = {ion: _SITES.index(site) for ion, site in SITE_OF_ION.items()}
_NOMINALS = tuple(SITE_TOTALS[site] for site in _SITES)
_X_TOTAL = SITE_TOTALS["X"]
_TOLERANCE = 0.02  # parse_formula's default
#: From this many new texts on, :func:`parse_many` computes the plain ones with arrays (below, one by one is as fast).
_BULK_ROWS = 32


def _plain_amounts(text: str) -> dict[str, float] | None:
    """Amounts of a plain formula as the parser sums them, or None when the text is not plain or not valid."""
    if len(text) > MAX_FORMULA_LENGTH or _PLAIN.fullmatch(text) is None:
        return None
    amounts: dict[str, float] = {}
    for ion, number in _TERM.findall(text):
        if ion not in SITE_OF_ION:
            return None
        multiplier = float(number) if number else 1.0
        if multiplier == 0:
            return None
        amounts[ion] = amounts.get(ion, 0.0) + 1.0 * multiplier
    return amounts


def _canonical_sites(amounts: dict[str, float]) -> list[dict[str, float]] | None:
    """Per site (A, B, X) the canonical amounts (ion -> amount, 12 decimals), or None when the parser would refuse them.

    Step for step :func:`~.core._build` (default tolerance, no renormalising) and
    then :class:`~.core.Composition`'s own check and scaling of each site.
    """
    sites: tuple[dict[str, float], ...] = ({}, {}, {})
    for ion, value in amounts.items():
        sites[_SITE_INDEX[ion]][ion] = value
    out: list[dict[str, float]] = []
    for nominal, values in zip(_NOMINALS, sites):
        total = sum(values.values())
        if total <= 0 or abs(total - nominal) > _TOLERANCE * nominal + 1e-12:
            return None
        if abs(total - nominal) > _EXACT * nominal:
            values = {ion: v * nominal / total for ion, v in values.items()}
            total = sum(values.values())  # Composition sums the scaled amounts again (all positive)
            if abs(total - nominal) > 1e-6 * nominal:
                return None
        if abs(total - nominal) <= _EXACT * nominal:
            canon = {ion: round(v, _DECIMALS) + 0.0 for ion, v in values.items()}
        else:
            scale = nominal / total
            canon = {ion: round(v * scale, _DECIMALS) + 0.0 for ion, v in values.items()}
        out.append(canon if all(v > 0 for v in canon.values()) else {ion: v for ion, v in canon.items() if v > 0})
    return out


def _formula(sites: list[dict[str, float]]) -> str | None:
    """The canonical formula of :attr:`Composition.formula` (4 to 13 significant digits), or None (not found this way)."""
    ordered = [(ion, mapping[ion]) for mapping in sites for ion in sorted(mapping)]
    # core._fmt for amounts in (0, 3] (canonical amounts always are), its decimal exponent computed once per amount
    powers = [(value, math.floor(math.log10(value))) for _, value in ordered]
    previous = None
    for digits in range(4, 14):
        texts = [_strip(f"{value:.{max(digits - 1 - power, 0)}f}") for value, power in powers]
        if texts == previous:  # the same text parses to the same composition: it failed already
            continue
        previous = texts
        back: dict[str, float] = {}
        for (ion, _), text in zip(ordered, texts):
            back[ion] = back.get(ion, 0.0) + 1.0 * (1.0 if text == "1" else float(text))
        again = _canonical_sites(back)
        if again is not None and again == sites:
            return "".join(ion if text == "1" else ion + text for (ion, _), text in zip(ordered, texts))
    return None


def _strip(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def _vector(sites: list[dict[str, float]]) -> np.ndarray:
    vec = np.zeros(len(IONS))
    for mapping in sites:
        for ion, value in mapping.items():
            vec[_INDEX[ion]] = value
    vec[[_INDEX[ion] for ion in IONS if SITE_OF_ION[ion] == "X"]] /= _X_TOTAL
    return vec


def canonical_fractions(text: str) -> tuple[str, np.ndarray]:
    """``(parse_formula(text).formula, parse_formula(text).fraction_vector())``, identical, faster for plain formulas.

    Raises the :class:`~nestedae_core.errors.CompositionError` that
    :func:`parse_formula` raises (default tolerance, no renormalising).
    """
    shown = text.strip() if isinstance(text, str) else text
    amounts = _plain_amounts(shown) if isinstance(shown, str) else None
    sites = _canonical_sites(amounts) if amounts is not None else None
    formula = _formula(sites) if sites is not None else None
    if sites is None or formula is None:
        comp = parse_formula(text)
        return comp.formula, comp.fraction_vector()
    return formula, _vector(sites)


def parse_many(texts: Iterable[str], cache: dict[str, Parsed] | None = None, *, max_cache: int = 65536) -> list[Parsed]:
    """:func:`canonical_fractions` of every text, each distinct text computed once; an error is returned, not raised.

    The distinct texts not yet known are computed together: the plain ones with array
    arithmetic (:func:`~.vectorised.canonical_fractions_many`, identical results),
    the others one by one. ``cache`` (raw text -> result) may be shared between
    calls (e.g. the chunks of one file); it is cleared when it holds ``max_cache``
    texts, so memory stays bounded.
    """
    from .vectorised import canonical_fractions_many

    memo: dict[str, Parsed] = {} if cache is None else cache
    texts = list(texts)
    missing = list(dict.fromkeys(t for t in texts if t not in memo))
    fresh: dict[str, Parsed] = {}
    bulk = canonical_fractions_many(missing) if len(missing) >= _BULK_ROWS else [None] * len(missing)
    for text, hit in zip(missing, bulk):
        if hit is None:
            try:
                hit = canonical_fractions(text)
            except CompositionError as exc:
                # kept without its traceback: a cached error must not keep the frames of the call alive (their
                # locals hold whole chunks of a batch file; memory would grow with the file)
                exc.__context__ = exc.__cause__ = None
                hit = exc.with_traceback(None)
        fresh[text] = hit
    out = [fresh[t] if t in fresh else memo[t] for t in texts]
    for text, hit in fresh.items():
        if len(memo) >= max_cache:
            memo.clear()
        memo[text] = hit
    return out
