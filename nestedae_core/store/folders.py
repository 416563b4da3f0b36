"""The folders of saved models: hidden temporary names of saves, refusing or replacing a target, removing a bundle's folder, cleaning what killed saves left."""
from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import stat
import time
from pathlib import Path

from ..errors import BundleError
from .layout import _FILES, _OPTIONAL_FILES, _foreign, _inspect, _named, is_shipped_bundle, models_dir

__all__ = ["check_save_target", "clean_stale_temp", "remove_bundle_folder"]

logger = logging.getLogger(__name__)


#: Suffixes of the hidden folders a save works in: ``.<name>.<host>-<pid>.<token>.saving``
#: (being written) and ``.<name>.<host>-<pid>.<token>.old`` (a replaced bundle being removed).
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.(?P<token>[0-9a-f]+)\.(?P<kind>saving|old)$")
#: Hidden folders of older versions (``tempfile.mkdtemp`` names and the fixed ``.old``).
_LEGACY_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<token>[A-Za-z0-9_]{8}|old)$")


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _temp_name(name: str, kind: str) -> str:
    return f".{name}.{_host_tag()}-{os.getpid()}.{secrets.token_hex(6)}.{kind}"


def _target_state(target: Path) -> tuple[str, list[str]]:
    """The state of ``target`` and the entries that are not a bundle's own: ``missing``, ``empty`` (an empty folder),
    ``bundle`` (a bundle holding only its own files), ``mixed`` (a bundle that also holds other files), ``link``,
    ``file`` (not a folder) or ``other`` (a non-empty folder that is no bundle)."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return "missing", []
    if stat.S_ISLNK(st.st_mode):
        return "link", []
    if not stat.S_ISDIR(st.st_mode):
        return "file", []
    found = _inspect(target)
    if found is None:  # moved away by a concurrent save just now
        return ("missing", []) if not os.path.lexists(target) else ("other", [])
    entries, listed = found
    if not entries:
        return "empty", []
    if listed is None:
        return "other", [n for n, _ in entries]
    extra = _foreign(entries, listed)
    return ("mixed" if extra else "bundle"), extra


def _refuse_target(target: Path, overwrite: bool) -> None:
    state, extra = _target_state(target)
    if state == "link":
        raise BundleError(f"{target} is a symbolic link; refusing to replace it: save the model under a new name or into a real folder")
    if state == "file":
        raise BundleError(f"{target} exists and is not a folder; refusing to replace it: choose another name")
    if state == "other":
        raise BundleError(f"{target} is a folder that is not a model bundle (it has no nestedae manifest.json listing its files); "
                          "refusing to write into it: choose a new or empty folder")
    if state == "mixed" and overwrite:
        raise BundleError(f"{target} is a model bundle that also holds files that are not part of it ({_named(extra)}); "
                          "refusing to replace it, which would delete them: move them out first or choose another folder")
    if state in ("bundle", "mixed") and not overwrite:
        raise BundleError(f"a model bundle named '{target.name}' already exists in {target.parent}; choose another name or allow overwriting (--overwrite)")


def remove_bundle_folder(folder: str | os.PathLike[str]) -> list[str]:
    """Remove the bundle files of ``folder`` (those its manifest lists), then the folder if that left it empty.

    Never removes anything the manifest does not list. Returns the entries left behind
    (empty when the folder is gone); a folder that is no bundle is removed only when empty.
    """
    found = _inspect(folder)
    if found is None:
        return []
    entries, listed = found
    regular = {name for name, is_file in entries if is_file}
    for name in sorted((listed or set()) & regular, key=lambda n: n == "manifest.json"):  # the manifest last
        p = os.path.join(folder, name)
        if os.path.isfile(p) and not os.path.islink(p):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("cannot remove %s: %s", p, exc)
    try:
        os.rmdir(folder)
    except FileNotFoundError:
        return []
    except OSError:
        left = sorted(os.listdir(folder))
        logger.warning("kept %s: it holds files that are not part of the model bundle (%s)", folder, _named(left))
        return left
    return []


def check_save_target(path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Raise :class:`BundleError` unless :func:`save_bundle` may write to ``path`` (check it before a long training).

    Allowed: a missing path, an empty folder, or (with ``overwrite``) an existing bundle
    that holds nothing but its own files (:func:`bundle_files`). Refused: a folder that is
    not a bundle (a ``config.json`` alone does not make one), a bundle that also holds
    other files (they are named), a file, a device, a fifo, a symbolic link, an invalid
    name, and the bundles shipped with the package.
    """
    target = Path(path)
    if not target.name or target.name.startswith(".") or target.name in ("..",):
        raise BundleError(f"invalid bundle name '{target.name}': it must not be empty or start with '.'")
    if is_shipped_bundle(target):
        raise BundleError(f"{target} is a model shipped with nestedae_core; save under another name")
    _refuse_target(target, overwrite)


def clean_stale_temp(directory: str | os.PathLike[str] | None = None, *, max_age_s: float = 3600.0) -> list[Path]:
    """Remove the hidden temporary folders that killed or failed saves left in ``directory``.

    ``directory`` defaults to :func:`models_dir`. A folder ``.<name>.<host>-<pid>.<token>.saving``
    (or ``.old``) is removed when its process is gone (same host), or when it is older
    than ``max_age_s`` seconds (a save takes seconds; other hosts' pids cannot be checked);
    a save in progress is left alone. Hidden folders of older versions are removed when
    older than ``max_age_s``. Only folders holding nothing but bundle files are touched
    (never ``.git`` or other hidden folders). Returns the removed paths.
    """
    d = Path(directory) if directory is not None else models_dir()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(d))
    except OSError:
        return removed
    now, host = time.time(), _host_tag()
    allowed = {*_FILES, *_OPTIONAL_FILES, "manifest.json"}
    for e in entries:
        if not e.name.startswith(".") or not e.is_dir(follow_symlinks=False):
            continue
        m, legacy = _TEMP_RE.match(e.name), _LEGACY_TEMP_RE.match(e.name)
        if not m and not legacy:
            continue
        try:
            if not set(os.listdir(e.path)) <= allowed:
                continue
            age = now - e.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        stale = age > max_age_s
        if m and not stale and m["host"] == host:
            stale = not _pid_alive(int(m["pid"]))
        if stale:
            shutil.rmtree(e.path, ignore_errors=True)
            if not os.path.lexists(e.path):
                removed.append(Path(e.path))
                logger.info("removed the temporary folder of an interrupted save: %s", e.path)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True
