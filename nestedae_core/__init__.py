"""nestedae_core: nested autoencoders (NestedAE) for multi-scale perovskite modelling.

The library behind the ``nestedae`` command and the NestedAE Studio dashboard.
It never imports Streamlit and never prints; it logs through :mod:`logging`.
"""
from __future__ import annotations

import logging

from .errors import (
    BundleError,
    CompositionError,
    ConfigError,
    DataError,
    DataMissingError,
    InputError,
    NestedAEError,
    SchemaError,
    TrainingError,
)

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    "NestedAEError",
    "CompositionError",
    "ConfigError",
    "DataError",
    "DataMissingError",
    "SchemaError",
    "TrainingError",
    "BundleError",
    "InputError",
]
