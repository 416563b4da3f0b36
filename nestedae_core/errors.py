"""Exception hierarchy of nestedae_core.

Every error a user can cause derives from :class:`NestedAEError`. Its message is
one line that says what went wrong and what to do about it; the CLI prints it
without a traceback and the dashboard shows it as a plain message.
"""
from __future__ import annotations


class NestedAEError(Exception):
    """Base class of all user-facing errors of nestedae_core."""


class CompositionError(NestedAEError, ValueError):
    """A formula or a set of site fractions is invalid (unknown ion, wrong site total, ...)."""


class DataError(NestedAEError):
    """A dataset is missing, unreadable, fails its checksum or its schema."""


class DataMissingError(DataError, FileNotFoundError):
    """A dataset is not available locally and cannot be downloaded."""


class SchemaError(DataError, ValueError):
    """A table lacks required columns or holds values of the wrong type."""


class ConfigError(NestedAEError, ValueError):
    """A model or training configuration is invalid."""


class TrainingError(NestedAEError, RuntimeError):
    """Training failed (non-finite or diverging loss, cancelled run, ...)."""


class BundleError(NestedAEError):
    """A model bundle is missing, corrupt, tampered with or incompatible."""


class InputError(NestedAEError, ValueError):
    """A prediction query is invalid (unknown ETL/HTL stack, bad CSV column, ...)."""


class NotFittedError(InputError):
    """A model is used before it was trained or loaded (call ``fit``, ``cross_validate`` or ``load`` first)."""
