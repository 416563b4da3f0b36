"""Halide-perovskite compositions ABX3: parse, validate, normalise, mix, enumerate.

* :mod:`.core`: the :class:`Composition` type (amounts per formula unit; site totals
  checked, :class:`SiteTotalError`), :class:`IonAmounts`;
* :mod:`.formula`: :func:`parse_formula`, the notations of the data sets and the literature;
* :mod:`.fast`: :func:`parse_many` / :func:`canonical_fractions`, many formulas to canonical formulas and
  fraction vectors, each distinct text once, results identical to :func:`parse_formula`'s;
* :mod:`.vectorised`: :func:`~.vectorised.canonical_fractions_many`, the plain formulas of a batch with array
  arithmetic (what :func:`parse_many` uses for the new texts of a chunk), identical results;
* :mod:`.mixing`: :func:`mix`, weighted mixtures of end members (line scans);
* :mod:`.grids`: :func:`composition_grid` and :func:`grid_size`, compositions on a step.

The names below (and the ion lists of :mod:`nestedae_core.vocabulary`) are
importable from here, e.g. ``from nestedae_core.chemistry.composition import parse_formula``.
"""
from __future__ import annotations

from ...vocabulary import A_SITE_IONS, B_SITE_IONS, IONS, SITE_IONS, SITE_OF_ION, SITE_TOTALS, X_SITE_IONS
from .core import Composition, IonAmounts, SiteTotalError
from .fast import canonical_fractions, parse_many
from .formula import MAX_FORMULA_LENGTH, parse_formula
from .grids import MAX_GRID_ROWS, composition_grid, grid_size
from .mixing import mix

__all__ = [
    "A_SITE_IONS",
    "B_SITE_IONS",
    "X_SITE_IONS",
    "IONS",
    "SITE_OF_ION",
    "SITE_IONS",
    "SITE_TOTALS",
    "MAX_FORMULA_LENGTH",
    "MAX_GRID_ROWS",
    "IonAmounts",
    "Composition",
    "SiteTotalError",
    "parse_formula",
    "parse_many",
    "canonical_fractions",
    "mix",
    "composition_grid",
    "grid_size",
]
