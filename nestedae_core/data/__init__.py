"""Datasets: the registry, finding and fetching files, loading with schema checks, stage tables.

* :mod:`.registry`: what each dataset is, where it lives, how it is verified and loaded.
* :mod:`.tables`: datasets as the tables the chain's stages train on.
* :mod:`.synthetic`: a generated two-scale data set with known ground truth.
"""
from __future__ import annotations

from .registry import (
    CACHE_DIR_ENV,
    DATA_DIR_ENV,
    DEVICE_DESCRIPTOR_COLUMNS,
    MHP_DESCRIPTOR_COLUMNS,
    PHASE_COLUMNS,
    REGISTRY,
    SITE_FRACTION_COLUMNS,
    DatasetInfo,
    DatasetStatus,
    cache_dir,
    citation_text,
    dataset_info,
    dataset_status,
    fetch,
    file_sha256,
    load,
    locate,
    reset_caches,
    validate_schema,
)
from .tables import check_stage_table, load_chain_tables, load_dataset_table, load_stage_table

__all__ = [
    "CACHE_DIR_ENV",
    "DATA_DIR_ENV",
    "DEVICE_DESCRIPTOR_COLUMNS",
    "MHP_DESCRIPTOR_COLUMNS",
    "PHASE_COLUMNS",
    "REGISTRY",
    "SITE_FRACTION_COLUMNS",
    "DatasetInfo",
    "DatasetStatus",
    "cache_dir",
    "citation_text",
    "dataset_info",
    "dataset_status",
    "fetch",
    "file_sha256",
    "load",
    "locate",
    "reset_caches",
    "validate_schema",
    "check_stage_table",
    "load_chain_tables",
    "load_dataset_table",
    "load_stage_table",
]
