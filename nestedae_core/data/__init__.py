"""Datasets: the registry, finding and fetching files, loading with schema checks, stage tables.

* :mod:`.registry`: what each dataset is, where it is published, whom to cite.
* :mod:`.files`: where a dataset's file is looked for (explicit path, ``$NESTEDAE_DATA_DIR``,
  download cache) and its check against the pinned SHA-256.
* :mod:`.download`: fetching a pinned file into the cache.
* :mod:`.loading`: a dataset as a DataFrame, with schema checks.
* :mod:`.derived`: datasets computed at load time from the files (``psc-gaps``, ``mhp-dft``).
* :mod:`.quality`: devices whose values cannot be physical, and the rule training applies to them.
* :mod:`.status`: where each dataset stands on this machine.
* :mod:`.tables`: datasets as the tables the chain's stages train on.
* :mod:`.synthetic`: a generated two-scale data set with known ground truth.

Typical use::

    from nestedae_core import data
    df = data.load("mhp-pbe-paper")          # locate, else download, then check schema
    print(data.citation_text("mhp-pbe-paper"))
"""
from __future__ import annotations

from ..lazy import lazy_exports

from ..vocabulary import PHASE_COLUMNS, SITE_FRACTION_COLUMNS

# The names below are imported from their module on first use (PEP 562): importing one
# module of this package (e.g. .registry) then costs that module only, not the stage
# tables and the training code behind .tables (a single prediction needs neither).
_LAZY: dict[str, str] = {
    "fetch": "download",
    "CACHE_ORIGIN": "files",
    "cache_dir": "files",
    "candidate_paths": "files",
    "file_sha256": "files",
    "locate": "files",
    "missing_message": "files",
    "verify_file": "files",
    "load": "loading",
    "reset_caches": "loading",
    "validate_schema": "loading",
    "CACHE_DIR_ENV": "registry",
    "DATA_DIR_ENV": "registry",
    "DEVICE_DESCRIPTOR_COLUMNS": "registry",
    "REGISTRY": "registry",
    "DatasetInfo": "registry",
    "citation_text": "registry",
    "dataset_info": "registry",
    "derived_from_text": "registry",
    "short_citation": "registry",
    "device_flags": "quality",
    "mask_unphysical": "quality",
    "DatasetStatus": "status",
    "dataset_stamp": "status",
    "dataset_status": "status",
    "check_stage_table": "tables",
    "load_chain_tables": "tables",
    "load_dataset_table": "tables",
    "load_stage_table": "tables",
}


__all__ = [
    "CACHE_DIR_ENV",
    "CACHE_ORIGIN",
    "DATA_DIR_ENV",
    "DEVICE_DESCRIPTOR_COLUMNS",
    "PHASE_COLUMNS",
    "REGISTRY",
    "SITE_FRACTION_COLUMNS",
    "DatasetInfo",
    "DatasetStatus",
    "cache_dir",
    "candidate_paths",
    "citation_text",
    "dataset_info",
    "dataset_stamp",
    "dataset_status",
    "derived_from_text",
    "device_flags",
    "mask_unphysical",
    "fetch",
    "file_sha256",
    "load",
    "locate",
    "missing_message",
    "reset_caches",
    "short_citation",
    "validate_schema",
    "verify_file",
    "check_stage_table",
    "load_chain_tables",
    "load_dataset_table",
    "load_stage_table",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
