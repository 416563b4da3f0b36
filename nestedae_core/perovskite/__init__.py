"""The perovskite layer: what the domain-free chain (:mod:`nestedae_core.model`,
:mod:`~nestedae_core.train`, :mod:`~nestedae_core.explain`) is told about perovskites.

* :mod:`.presets`: the named chains (the NestedAE paper's, the measured-scale chain, ...);
* :mod:`.fidelity`: which band gap (measured, PBE, HSE06) a target predicts;
* :mod:`.explain`: :func:`~.explain.explain_bandgap` and :func:`~.explain.explain_pce`, by column;
* :mod:`.rows`: the dataset rows a stage is analysed on (formulas, site fractions, measured columns);
* :mod:`.tables`: the registry datasets as the training tables (:data:`~.tables.PEROVSKITE_TABLES`);
* :mod:`.domain_wording`: how a stage's coverage check reads ("Cs on the A site 1.00 (the measured films reach 0.40)").

The rest of this layer lives beside it: :mod:`nestedae_core.vocabulary`,
:mod:`~nestedae_core.chemistry`, :mod:`~nestedae_core.data` and
:mod:`~nestedae_core.query`. The layers are import-linter contracts in
``pyproject.toml`` (``lint-imports``).
"""
from __future__ import annotations

from . import domain_wording as _domain_wording  # noqa: F401  (registers how inputs read in domain reasons)
from . import tables as _tables  # noqa: F401  (registers the registry datasets as the training tables)
from ..physics import ceilings as _ceilings  # noqa: F401  (registers the device ceilings the measured chain names)
from .fidelity import target_fidelity
from .presets import PRESETS, preset

__all__ = ["PRESETS", "preset", "target_fidelity"]
