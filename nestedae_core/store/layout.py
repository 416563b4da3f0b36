"""The layout of a bundle folder: its files, its manifest, where bundles live (shipped, user models), which entries of a folder are a bundle's."""
from __future__ import annotations

import hashlib
import json
import os
import stat
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import BundleError

__all__ = ["BUNDLE_FORMAT", "DEFAULT_BUNDLE_NAME", "SHIPPED_BUNDLE_NAMES", "shipped_bundle_path", "is_shipped_bundle", "MODELS_DIR_ENV", "default_bundle_path", "models_dir", "MANIFEST_KIND", "bundle_files", "foreign_entries"]


#: Version of the on-disk layout; bumped on incompatible changes.
BUNDLE_FORMAT = 1
#: Name of the bundle shipped inside the package.
DEFAULT_BUNDLE_NAME = "measured-default"
#: Bundles shipped inside the package, the default first: the measured-scale chain
#: (``nestedae train --preset measured``) and the NestedAE paper's chain (``--preset paper``).
SHIPPED_BUNDLE_NAMES: tuple[str, ...] = (DEFAULT_BUNDLE_NAME, "paper-default")
#: Environment variable naming the folder where user-trained bundles are kept.
MODELS_DIR_ENV = "NESTEDAE_MODELS_DIR"

_FILES = ("config.json", "weights.safetensors", "preprocessing.json", "metrics.json", "record.json", "oof.csv")
#: Files a bundle may lack (older bundles); checked against the manifest when it lists them.
_OPTIONAL_FILES = ("calibration.json",)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, allow_nan=True), encoding="utf-8")


#: What a bundle's manifest says of itself (manifests written before it say only ``format`` and ``sha256``).
MANIFEST_KIND = "nestedae-model-bundle"
#: Largest manifest.json read when deciding whether a folder is a bundle (bytes).
_MAX_MANIFEST_BYTES = 1_000_000


def _read_manifest_names(dir_fd: int) -> set[str] | None:
    """The manifest's listed names (see :func:`bundle_files`) read through an open folder descriptor, or None."""
    try:
        fd = os.open("manifest.json", os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_MANIFEST_BYTES:
            return None
        with os.fdopen(fd, "rb") as fh:
            fd = -1
            manifest = json.loads(fh.read(_MAX_MANIFEST_BYTES + 1).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    finally:
        if fd >= 0:
            os.close(fd)
    if not isinstance(manifest, dict) or manifest.get("kind", MANIFEST_KIND) != MANIFEST_KIND:
        return None
    sums, fmt = manifest.get("sha256"), manifest.get("format")
    if isinstance(fmt, bool) or not isinstance(fmt, int) or not isinstance(sums, dict):
        return None
    names = set(sums)
    if not {"config.json", "weights.safetensors"} <= names:
        return None
    if not all(isinstance(n, str) and n and "/" not in n and "\\" not in n and n not in (".", "..") for n in names):
        return None
    return names | {"manifest.json"}


def _inspect(folder: str | os.PathLike[str]) -> tuple[list[tuple[str, bool]], set[str] | None] | None:
    """``(entries, listed)`` of ``folder`` read through one descriptor, so both describe the same folder even while
    another process renames it: every entry with whether it is a regular file, and :func:`bundle_files`. None when
    ``folder`` cannot be opened as a folder."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        with os.scandir(dir_fd) as it:
            entries = [(e.name, e.is_file(follow_symlinks=False)) for e in it]
        return sorted(entries), _read_manifest_names(dir_fd)
    except OSError:
        return None
    finally:
        os.close(dir_fd)


def bundle_files(folder: str | os.PathLike[str]) -> set[str] | None:
    """The file names that make up the bundle in ``folder``, or None when ``folder`` is no model bundle.

    A folder is a model bundle only if its ``manifest.json`` says so: a JSON object with
    the bundle ``format``, a ``sha256`` table that lists ``config.json`` and
    ``weights.safetensors`` as plain file names, and (when present) ``kind`` equal to
    :data:`MANIFEST_KIND`. The names returned are the manifest's files plus
    ``manifest.json`` itself. A ``config.json`` alone never makes a folder a bundle.
    """
    found = _inspect(folder)
    return None if found is None else found[1]


def _foreign(entries: list[tuple[str, bool]], listed: set[str] | None) -> list[str]:
    return [name for name, regular in entries if listed is None or name not in listed or not regular]


def foreign_entries(folder: str | os.PathLike[str]) -> list[str]:
    """Entries of the bundle folder ``folder`` that its manifest does not list (sorted; every entry when it is no bundle).

    These are what a user put there (notes, data, sub-folders): replacing or deleting
    the bundle must never remove them.
    """
    found = _inspect(folder)
    return [] if found is None else _foreign(*found)


def _named(entries: list[str], most: int = 5) -> str:
    shown = ", ".join(entries[:most])
    return shown + (f" and {len(entries) - most} more" if len(entries) > most else "")


def is_shipped_bundle(path: Path) -> bool:
    """Whether ``path`` is one of the bundle folders the package ships (:data:`SHIPPED_BUNDLE_NAMES`), not merely a
    folder beside them."""
    try:
        return path.resolve() in {shipped_bundle_path(n).resolve() for n in SHIPPED_BUNDLE_NAMES}
    except OSError:
        return False


def shipped_bundle_path(name: str) -> Path:
    """Path of a bundle shipped inside the package (one of :data:`SHIPPED_BUNDLE_NAMES`)."""
    if name not in SHIPPED_BUNDLE_NAMES:
        raise BundleError(f"no shipped model '{name}'; shipped: {', '.join(SHIPPED_BUNDLE_NAMES)}")
    return Path(str(resources.files("nestedae_core") / "bundles" / name))


def default_bundle_path() -> Path:
    """Path of the default bundle shipped inside the package (trained by ``nestedae train --preset measured``)."""
    return shipped_bundle_path(DEFAULT_BUNDLE_NAME)


def models_dir() -> Path:
    """Folder for user-trained bundles: ``$NESTEDAE_MODELS_DIR`` or ``~/.local/share/nestedae/models``."""
    env = os.environ.get(MODELS_DIR_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "nestedae" / "models"
