"""Loading a dataset as a DataFrame: locate (or download) the file, read it, check its schema.

Loaded tables are kept in an in-process cache keyed by (name, resolved path,
modification time, size), derived tables by the same stamps of their source
files; every call returns a fresh copy.
"""
from __future__ import annotations

import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import DataError, DataMissingError, SchemaError
from . import derived, synthetic
from .download import fetch
from .files import clear_sha256_memo, locate, missing_message
from .registry import DEVICE_FILE_SPELLINGS, DatasetInfo, dataset_info

__all__ = ["load", "reset_caches", "validate_schema"]

logger = logging.getLogger(__name__)

_LOAD_CACHE_SIZE = 16
_load_lock = threading.Lock()
_load_cache: OrderedDict[tuple[Any, ...], pd.DataFrame] = OrderedDict()


def _normalise(column: str) -> str:
    """``column`` without case, spaces, underscores and hyphens (to suggest near-misses)."""
    return re.sub(r"[\s_\-]+", "", column).lower()


def validate_schema(df: pd.DataFrame, required: Sequence[str], dataset: str) -> None:
    """Raise :class:`SchemaError` if ``df`` lacks any of the ``required`` columns.

    The message lists every missing column and, where the table has a near-miss
    (different case, spacing or a close spelling), suggests it.
    """
    present = [str(c) for c in df.columns]
    present_set = set(present)
    missing = [c for c in required if c not in present_set]
    if not missing:
        return
    by_norm: dict[str, str] = {}
    for col in present:
        by_norm.setdefault(_normalise(col), col)
    hints = []
    for col in missing:
        near = by_norm.get(_normalise(col))
        if near is None:
            close = get_close_matches(col, present, n=1, cutoff=0.85)
            near = close[0] if close else None
        if near is not None:
            hints.append(f"'{near}' for '{col}'")
    hint = f" (found similar: {', '.join(hints)}; rename them)" if hints else ""
    raise SchemaError(
        f"dataset '{dataset}' lacks {len(missing)} required column(s): {', '.join(repr(c) for c in missing)}"
        f"{hint}; check that the file is the right one (see `nestedae data list`)"
    )


def _read_table(info: DatasetInfo, path: Path) -> pd.DataFrame:
    """Read ``path`` (CSV, or Excel by its suffix) as the table of ``info``; every failure is a :class:`DataError`."""
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            return pd.read_excel(path, engine="openpyxl" if path.suffix.lower() != ".xls" else None)
        return pd.read_csv(path)
    except ImportError as exc:
        raise DataError(
            f"reading {path.name} for dataset '{info.name}' needs {exc.name or 'openpyxl'}; install it (pip install openpyxl)"
        ) from None
    except OSError as exc:
        raise DataError(f"cannot read {path} for dataset '{info.name}': {exc.strerror or exc}") from None
    except Exception as exc:  # parser errors of pandas / openpyxl / zipfile
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"cannot parse {path} as dataset '{info.name}' ({type(exc).__name__}: {first}); "
            f"check that it is the file from {info.url or 'the registry'}"
        ) from None


def _locate_or_fetch(info: DatasetInfo, path: str | os.PathLike[str] | None, download: bool) -> Path:
    """The file of a file dataset: located (see :func:`locate`), else downloaded when ``download`` is true."""
    found = locate(info.name, path)
    if found is None:
        if not download:
            raise DataMissingError(missing_message(info))
        found = fetch(info.name)
    return found


def _file_stamp(name: str, found: Path) -> tuple[str, str, int, int]:
    """Cache key of a file: (dataset, resolved path, modification time ns, size)."""
    resolved = found.resolve()
    st = resolved.stat()
    return (name, str(resolved), st.st_mtime_ns, st.st_size)


def _cached(key: tuple[Any, ...]) -> pd.DataFrame | None:
    with _load_lock:
        cached = _load_cache.get(key)
        if cached is not None:
            _load_cache.move_to_end(key)
            return cached.copy()
    return None


def _remember(key: tuple[Any, ...], df: pd.DataFrame) -> None:
    with _load_lock:
        _load_cache[key] = df
        while len(_load_cache) > _LOAD_CACHE_SIZE:
            _load_cache.popitem(last=False)


def _load_derived(info: DatasetInfo, path: str | os.PathLike[str] | None, download: bool) -> pd.DataFrame:
    """Derive dataset ``info`` from its sources (see :mod:`.derived`), cached per version of the source files.

    ``path``, when given, is a folder holding the source files (or, for a
    single source, that file).
    """
    try:
        files = {source: _locate_or_fetch(dataset_info(source), path, download) for source in info.sources}
    except DataMissingError as exc:
        raise DataMissingError(f"dataset '{info.name}' is derived from {', '.join(info.sources)}: {exc}") from None
    key = (info.name, *(_file_stamp(source, found) for source, found in files.items()))
    cached = _cached(key)
    if cached is not None:
        return cached
    sources = {source: load(source, found if path is not None else None, download=False) for source, found in files.items()}
    df = derived.derive(info.name, sources)
    validate_schema(df, info.required_columns, info.name)
    if path is None and info.rows is not None and len(df) != info.rows:  # pragma: no cover - sources hash-verified
        logger.warning("derived dataset %s has %d rows, registry says %d", info.name, len(df), info.rows)
    logger.debug("derived dataset %s from %s: %d rows x %d columns", info.name, ", ".join(info.sources), len(df), df.shape[1])
    _remember(key, df)
    return df.copy()


def load(name: str, path: str | os.PathLike[str] | None = None, *, download: bool = True) -> pd.DataFrame:
    """Load dataset ``name`` as a DataFrame (a fresh copy on every call).

    Locates the file (see :func:`locate`), downloads it with :func:`fetch` when
    it is nowhere and ``download`` is true, reads it and checks its schema.
    For ``psc-devices`` the vocabulary's spelling of a column the file spells
    differently is added next to it (``X_at_wt``, equal to ``X_atom_wt``; see
    :data:`~nestedae_core.data.registry.DEVICE_FILE_SPELLINGS`). ``synthetic``
    is generated by :mod:`nestedae_core.data.synthetic`. A derived dataset
    (``psc-gaps``, ``mhp-dft``) is computed from its source datasets by
    :mod:`nestedae_core.data.derived` (sources located or downloaded the same
    way; ``path`` is then a folder holding the source files).

    Raises:
        DataMissingError: the file is not available and cannot (or may not) be downloaded.
        DataError: bad checksum, unreadable file.
        SchemaError: required columns are missing.
    """
    info = dataset_info(name)
    if info.kind == "generated":
        df = synthetic.generate().materials
        validate_schema(df, info.required_columns, name)
        return df
    if info.kind == "derived":
        return _load_derived(info, path, download)
    found = _locate_or_fetch(info, path, download)
    key = _file_stamp(name, found)
    cached = _cached(key)
    if cached is not None:
        return cached
    df = _read_table(info, found)
    validate_schema(df, info.required_columns, name)
    if info.name == "psc-devices":
        for ours, spelled in DEVICE_FILE_SPELLINGS.items():
            if ours not in df.columns:
                df.insert(df.columns.get_loc(spelled) + 1, ours, df[spelled])
    if path is None and info.rows is not None and len(df) != info.rows:  # pragma: no cover - hash-verified
        logger.warning("dataset %s has %d rows, registry says %d", name, len(df), info.rows)
    logger.debug("loaded dataset %s from %s: %d rows x %d columns", name, found, len(df), df.shape[1])
    _remember(key, df)
    return df.copy()


def reset_caches() -> None:
    """Forget memoised file hashes and loaded tables (for tests)."""
    clear_sha256_memo()
    with _load_lock:
        _load_cache.clear()
