"""Model bundles: save and load a trained chain as a directory, without pickle.

A bundle directory holds:

* ``config.json``: the :class:`~nestedae_core.model.config.ChainSpec`, the bundle format
  version and the package version that wrote it;
* ``weights.safetensors``: the networks' weights (``stage<i>.<parameter>``);
* ``preprocessing.json``: fitted standardisation, categories, domain models and
  background summaries (means, scales, category lists: plain numbers and strings);
* ``metrics.json``: cross-validation metrics per stage, target and fold;
* ``record.json``: the run record (seed, versions, device, dataset checksums, time, folds);
* ``oof.csv``: out-of-fold predictions (no target values: the datasets stay unshipped);
* ``calibration.json``: the out-of-fold absolute residuals per stage and target, with
  their fold ids (the CV+ prediction intervals, :mod:`nestedae_core.model.intervals`);
  bundles written before it, and models fitted on all rows, have none and give no intervals;
* ``manifest.json``: SHA-256 of every other file, checked on load (tampering or
  corruption is an error).

Saving writes to a hidden temporary directory next to the target and renames it into
place, so a bundle is never half-written; :func:`clean_stale_temp` removes the ones
killed saves left. A bundle holds no symbolic links; its numbers are finite.

Modules (one concept each; the names below are importable from here):

* :mod:`.layout`: the files of a bundle, its manifest, where bundles live;
* :mod:`.folders`: temporary folders of saves, replacing and removing a bundle folder, stale temporaries;
* :mod:`.saving`: :func:`save_bundle`;
* :mod:`.loading`: :func:`load_bundle`, :func:`load_default_bundle`;
* :mod:`.listing`: :func:`list_bundles`, :func:`bundle_info`, :class:`BundleInfo`;
* :mod:`.overview`: :func:`bundle_overview`, a bundle's chain and summary without its weights (nor torch).
"""
from __future__ import annotations

from typing import Any

from .folders import check_save_target, clean_stale_temp, remove_bundle_folder
from .layout import (
    BUNDLE_FORMAT,
    DEFAULT_BUNDLE_NAME,
    MANIFEST_KIND,
    MODELS_DIR_ENV,
    SHIPPED_BUNDLE_NAMES,
    bundle_files,
    default_bundle_path,
    foreign_entries,
    models_dir,
    shipped_bundle_path,
)
from .listing import BundleInfo, bundle_info, list_bundles
from .loading import load_bundle, load_default_bundle
from .overview import BundleOverview, bundle_overview


def __getattr__(name: str) -> Any:
    """:func:`save_bundle` is imported on first use: its module loads torch, which listing and describing bundles need not."""
    if name == "save_bundle":
        from .saving import save_bundle

        globals()[name] = save_bundle
        return save_bundle
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BUNDLE_FORMAT",
    "DEFAULT_BUNDLE_NAME",
    "SHIPPED_BUNDLE_NAMES",
    "shipped_bundle_path",
    "MODELS_DIR_ENV",
    "save_bundle",
    "check_save_target",
    "load_bundle",
    "default_bundle_path",
    "load_default_bundle",
    "models_dir",
    "list_bundles",
    "BundleInfo",
    "bundle_info",
    "BundleOverview",
    "bundle_overview",
    "clean_stale_temp",
    "MANIFEST_KIND",
    "bundle_files",
    "foreign_entries",
    "remove_bundle_folder",
]
