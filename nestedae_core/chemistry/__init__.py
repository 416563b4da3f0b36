"""The perovskite chemistry: compositions (parsing, validation) and descriptors.

* :mod:`.composition`: formulas and site fractions -> :class:`Composition`.
* :mod:`.features`: the ion property table -> composition-weighted site descriptors,
  tolerance and octahedral factors.

Device physics (the Shockley-Queisser limit) lives in :mod:`nestedae_core.physics`.
"""
from __future__ import annotations

from .composition import Composition, composition_grid, mix, parse_formula
from .features import featurize, featurize_fractions, featurize_many, featurize_table, octahedral_factor, tolerance_factor

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
]
