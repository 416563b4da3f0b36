"""Dataset files on disk: where they are looked for and how they are checked.

A dataset's file is looked up at run time, in this order:

1. an explicit ``path`` given by the caller (a file, or a folder holding the
   file); it is the user's own copy and is *not* hash-checked;
2. ``$NESTEDAE_DATA_DIR/<filename>`` (what CI and offline machines use);
3. ``cache_dir()/<filename>``, where :func:`nestedae_core.data.fetch` downloads files.

Files found in 2. or 3. must match the pinned SHA-256 of the registry, otherwise
a :class:`~nestedae_core.errors.DataError` says which file is wrong and what to do.
Hashes are memoised per (resolved path, size, modification time) for the process.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

from ..errors import DataError, DataMissingError
from .registry import CACHE_DIR_ENV, DATA_DIR_ENV, DatasetInfo, dataset_info

__all__ = [
    "CACHE_ORIGIN",
    "READ_CHUNK_BYTES",
    "cache_dir",
    "candidate_paths",
    "clear_sha256_memo",
    "file_sha256",
    "fix_hint",
    "locate",
    "missing_message",
    "remember_sha256",
    "verify_file",
]

logger = logging.getLogger(__name__)

#: Bytes read (or downloaded) at a time.
READ_CHUNK_BYTES = 1 << 16
#: Origin of a file found in the download cache (the other origin is :data:`DATA_DIR_ENV`).
CACHE_ORIGIN = "cache"

_hash_lock = threading.Lock()
_hash_memo: dict[tuple[str, int, int], str] = {}


def cache_dir() -> Path:
    """Folder where :func:`nestedae_core.data.fetch` stores downloads (not created here).

    ``$NESTEDAE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/nestedae``, else ``~/.cache/nestedae``.
    """
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "nestedae"
    return Path.home() / ".cache" / "nestedae"


# --------------------------------------------------------------------------- hashing


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the file at ``path``, as lower-case hex (read in chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(READ_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _memo_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _memoised_sha256(path: Path) -> str:
    """SHA-256 of ``path``, memoised per (resolved path, size, mtime) for this process."""
    key = _memo_key(path)
    with _hash_lock:
        known = _hash_memo.get(key)
    if known is not None:
        return known
    logger.debug("computing SHA-256 of %s", path)
    digest = file_sha256(path)
    with _hash_lock:
        _hash_memo[key] = digest
    return digest


def remember_sha256(path: Path, sha256: str) -> None:
    """Record that the file at ``path``, as it is now, has SHA-256 ``sha256`` (saves re-reading it)."""
    key = _memo_key(path)
    with _hash_lock:
        _hash_memo[key] = sha256


def clear_sha256_memo() -> None:
    """Forget every memoised SHA-256."""
    with _hash_lock:
        _hash_memo.clear()


# --------------------------------------------------------------------------- checking


def fix_hint(info: DatasetInfo) -> str:
    """How to make the file of ``info`` available (set the data folder or fetch it)."""
    return f"set {DATA_DIR_ENV} to a folder holding it or run `nestedae data fetch {info.name}`"


def missing_message(info: DatasetInfo) -> str:
    """One-line message for a dataset file that is nowhere on disk: its pinned URL and :func:`fix_hint`."""
    return (
        f"dataset '{info.name}' ({info.filename}) is not available locally; pinned URL: {info.url}; "
        f"{fix_hint(info)}"
    )


def verify_file(info: DatasetInfo, path: Path, origin: str) -> None:
    """Raise :class:`DataError` if ``path`` (found in ``origin``) does not match the pinned SHA-256.

    ``origin`` is :data:`CACHE_ORIGIN` or :data:`DATA_DIR_ENV` (see :func:`candidate_paths`);
    it decides what the message suggests.
    """
    try:
        actual = _memoised_sha256(path)
    except OSError as exc:
        raise DataError(
            f"cannot read {path} ({origin}) for dataset '{info.name}': {exc.strerror or exc}; "
            "check its permissions or delete it"
        ) from None
    if actual != info.sha256:
        if origin == CACHE_ORIGIN:
            todo = f"delete it or re-download it with `nestedae data fetch {info.name} --force`"
        else:
            todo = (
                f"delete it or replace it with the pinned file from {info.url} "
                "(to use your own version pass its path explicitly)"
            )
        raise DataError(
            f"{path} (from {origin}) does not match dataset '{info.name}': SHA-256 is {actual}, "
            f"expected {info.sha256}; {todo}"
        )


# --------------------------------------------------------------------------- locating


def candidate_paths(info: DatasetInfo) -> list[tuple[str, Path]]:
    """The hash-checked places of ``info``'s file, in lookup order, as (origin, path) pairs.

    ``($NESTEDAE_DATA_DIR, <folder>/<filename>)`` when the variable is set, then
    ``(CACHE_ORIGIN, cache_dir()/<filename>)``. The paths need not exist.
    """
    out: list[tuple[str, Path]] = []
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        out.append((DATA_DIR_ENV, Path(env).expanduser() / info.filename))
    out.append((CACHE_ORIGIN, cache_dir() / info.filename))
    return out


def _explicit_file(info: DatasetInfo, path: str | os.PathLike[str]) -> Path:
    """The file of ``info`` at a caller's ``path`` (the file itself or a folder holding it)."""
    p = Path(path).expanduser()
    if p.is_dir():
        candidate = p / info.filename
        if candidate.is_file():
            return candidate
        raise DataMissingError(
            f"folder {p} does not hold {info.filename} (dataset '{info.name}'); "
            "pass the file itself or a folder that contains it"
        )
    if p.is_file():
        return p
    raise DataMissingError(
        f"file {p} given for dataset '{info.name}' does not exist; check the path or leave it out "
        f"to use {DATA_DIR_ENV} or the download cache"
    )


def locate(name: str, path: str | os.PathLike[str] | None = None) -> Path | None:
    """Find the file of dataset ``name`` on disk; never downloads.

    Lookup order: explicit ``path`` (a file, or a folder holding the file; not
    hash-checked), then ``$NESTEDAE_DATA_DIR/<filename>``, then
    ``cache_dir()/<filename>``. Returns ``None`` when the file is nowhere (and
    always for generated and derived datasets, which have no file of their own).

    Raises:
        DataError: unknown name, or a file in the data folder / cache whose
            SHA-256 differs from the registry.
        DataMissingError: an explicit ``path`` that does not exist or lacks the file.
    """
    info = dataset_info(name)
    if info.kind != "file":
        return None
    if path is not None:
        return _explicit_file(info, path)
    for origin, candidate in candidate_paths(info):
        if candidate.is_file():
            verify_file(info, candidate, origin)
            logger.debug("dataset %s found in %s: %s", name, origin, candidate)
            return candidate
    return None
