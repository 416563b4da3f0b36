"""The perovskite chemistry: compositions (parsing, validation), descriptors, and device physics.

* :mod:`.composition`: formulas and site fractions -> :class:`Composition`.
* :mod:`.features`: the ion property table -> composition-weighted site descriptors,
  tolerance and octahedral factors.
* :mod:`.physics`: the Shockley-Queisser detailed-balance limit.
"""
from __future__ import annotations

from .composition import Composition, composition_grid, mix, parse_formula
from .features import featurize, featurize_fractions, featurize_many, featurize_table, octahedral_factor, tolerance_factor
from .physics import sq_limit

__all__ = [
    "Composition",
    "parse_formula",
    "mix",
    "composition_grid",
    "featurize",
    "featurize_fractions",
    "featurize_many",
    "featurize_table",
    "tolerance_factor",
    "octahedral_factor",
    "sq_limit",
]
