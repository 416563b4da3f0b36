"""nestedae_core: nested autoencoders (NestedAE) for multi-scale perovskite modelling.

The library behind the ``nestedae`` command and the NestedAE Studio dashboard.
It never imports Streamlit and never prints; it logs through :mod:`logging`.

The front door, for notebooks and scripts::

    from nestedae_core import NestedAEModel
    model = NestedAEModel.load()                      # the shipped default model
    model.predict("MAPbI3", etl="SnO2-np", htl="Spiro-MeOTAD")
    model.explain("MAPbI3", etl="SnO2-np", htl="Spiro-MeOTAD").top(5)

Packages (one concept per module):

* :mod:`.vocabulary`: ions, column names, labels and units shared by everything.
* :mod:`.chemistry`: compositions (parsing), site descriptors.
* :mod:`.physics`: device physics: the Shockley-Queisser limit under AM1.5G.
* :mod:`.data`: the dataset registry, fetching, loading, stage tables, synthetic data.
* :mod:`.perovskite`: presets, band-gap fidelity, the band-gap and PCE explanations, stage rows.
* :mod:`.model`: the domain-agnostic chain: configuration, networks, preprocessing, domains.
* :mod:`.train`: folds, metrics, the fit loop, cross-validation, the job manager.
* :mod:`.explain`: SHAP attributions and latent-space analysis.
* :mod:`.query`: a composition + device stack as a model's raw inputs.
* :mod:`.predict`: predictions, line scans, screening.
* :mod:`.store`: model bundles on disk (no pickle).
* :mod:`.estimator`: :class:`NestedAEModel`, the scikit-learn-style front door.
* :mod:`.api`: the front door of the dashboard and the command: every name they use, in groups.
* :mod:`.cli`: the ``nestedae`` command.

The names below are imported lazily (on first use), so ``import nestedae_core``
stays cheap for the command line.
"""
from __future__ import annotations

from .lazy import lazy_exports

import logging

from .errors import (
    BundleError,
    CompositionError,
    ConfigError,
    DataError,
    DataMissingError,
    InputError,
    NestedAEError,
    NotFittedError,
    SchemaError,
    TrainingError,
)

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Public name -> module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "NestedAEModel": "estimator",
    "Query": "query",
    "Composition": "chemistry.composition",
    "parse_formula": "chemistry.composition",
    "ChainSpec": "model.config",
    "StageSpec": "model.config",
    "preset": "perovskite.presets",
    "NestedAE": "model.chain",
    "Attribution": "explain",
    "load_bundle": "store",
    "load_default_bundle": "store",
    "save_bundle": "store",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


__all__ = [
    "__version__",
    *_LAZY,
    "NestedAEError",
    "CompositionError",
    "ConfigError",
    "DataError",
    "DataMissingError",
    "SchemaError",
    "TrainingError",
    "BundleError",
    "InputError",
    "NotFittedError",
]
