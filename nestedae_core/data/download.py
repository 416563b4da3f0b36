"""Downloading a dataset's pinned file into the cache, verified and written atomically."""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..errors import DataError, DataMissingError
from .files import CACHE_ORIGIN, READ_CHUNK_BYTES, cache_dir, remember_sha256, verify_file
from .registry import CACHE_DIR_ENV, DATA_DIR_ENV, DatasetInfo, dataset_info

__all__ = ["fetch"]

logger = logging.getLogger(__name__)


def fetch(
    name: str,
    *,
    progress: Callable[[int, int | None], None] | None = None,
    timeout: float = 30.0,
    force: bool = False,
) -> Path:
    """Download dataset ``name`` from its pinned URL into :func:`cache_dir` and verify it.

    The file is written to a temporary file in the cache folder and moved into
    place with :func:`os.replace` only after its SHA-256 matched, so a failed or
    interrupted download never leaves a partial or wrong file behind (and never
    replaces a good one). ``file://`` URLs work too.

    Args:
        name: dataset name (see :data:`REGISTRY`).
        progress: called as ``progress(bytes_done, total_bytes_or_None)`` after each chunk.
        timeout: socket timeout in seconds.
        force: download even when a verified copy is already in the cache.

    Returns:
        Path of the verified file in the cache.

    Raises:
        DataMissingError: the address cannot be reached (offline, HTTP error, timeout).
        DataError: generated or derived dataset, downloaded bytes fail the checksum, cache not writable.
    """
    info = dataset_info(name)
    if info.kind == "generated":
        raise DataError(f"dataset '{name}' is generated on demand and has nothing to download; use load('{name}')")
    if info.kind == "derived":
        raise DataError(
            f"dataset '{name}' is derived at load time and has no file of its own; fetch its source(s) "
            f"{', '.join(info.sources)} (load('{name}') downloads them when needed)"
        )
    folder = cache_dir()
    target = folder / info.filename
    if not force and target.is_file():
        try:
            verify_file(info, target, CACHE_ORIGIN)
        except DataError:
            logger.info("cached %s fails its checksum; downloading it again", target)
        else:
            logger.info("dataset %s already in cache: %s", name, target)
            return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{info.filename}.", suffix=".part")
    except OSError as exc:
        raise DataError(
            f"cannot write to cache folder {folder}: {exc.strerror or exc}; set {CACHE_DIR_ENV} to a writable folder"
        ) from None
    tmp = Path(tmp_name)
    done = False
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _download(info, out, progress=progress, timeout=timeout)
        if digest != info.sha256:
            raise DataError(
                f"download of dataset '{name}' from {info.url} has SHA-256 {digest}, expected {info.sha256}; "
                f"nothing was saved; try again, or get the file by other means and set {DATA_DIR_ENV}"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        done = True
    finally:
        if not done:
            tmp.unlink(missing_ok=True)
    remember_sha256(target, info.sha256)
    logger.info("dataset %s saved to %s", name, target)
    return target


def _download(
    info: DatasetInfo,
    out: BinaryIO,
    *,
    progress: Callable[[int, int | None], None] | None,
    timeout: float,
) -> str:
    """Stream ``info.url`` into the binary file ``out``; return the SHA-256 of the bytes."""

    def offline(reason: object) -> DataMissingError:
        return DataMissingError(
            f"cannot download dataset '{info.name}' from {info.url} ({reason}); if this machine is offline, "
            f"copy {info.filename} into a folder and set {DATA_DIR_ENV} to it"
        )

    logger.info("downloading dataset %s from %s", info.name, info.url)
    request = urllib.request.Request(info.url, headers={"User-Agent": "nestedae-core"})
    digest = hashlib.sha256()
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (pinned https/file URLs)
    except urllib.error.HTTPError as exc:
        raise offline(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise offline(exc.reason) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise offline(exc) from None
    with response:
        length = response.headers.get("Content-Length") if response.headers else None
        total = int(length) if length and str(length).isdigit() else None
        received = 0
        while True:
            try:
                chunk = response.read(READ_CHUNK_BYTES)
            except (OSError, http.client.HTTPException) as exc:
                raise offline(f"connection lost after {received} bytes: {exc}") from None
            if not chunk:
                break
            try:
                out.write(chunk)
            except OSError as exc:
                raise DataError(
                    f"cannot write dataset '{info.name}' to the cache: {exc.strerror or exc}; "
                    f"free some space or set {CACHE_DIR_ENV} to another folder"
                ) from None
            digest.update(chunk)
            received += len(chunk)
            if progress is not None:
                progress(received, total)
    return digest.hexdigest()
