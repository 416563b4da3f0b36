"""Faults of the job store as one-line errors: :class:`JobStoreError` names the file, the cause and the remedy.

:func:`store_error` turns an SQLite (or OS) error into a :class:`JobStoreError`
(locked, damaged, read-only, on a full disk ...); :func:`check_store_path` refuses a
path that is not, and cannot become, a regular file.
"""
from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from ..errors import NestedAEError

__all__ = ["JobStoreError", "store_error", "check_store_path"]


class JobStoreError(NestedAEError):
    """The job store's SQLite file cannot be used: locked, damaged, read-only, disk full, not a file.

    The message names the file and what to do. ``cause`` is one of ``locked``,
    ``corrupt``, ``not-a-store``, ``readonly``, ``full``, ``cannot-open``, ``io``
    or ``other``; ``path`` is the store's file. The store is never replaced or
    repaired automatically.
    """

    def __init__(self, message: str, *, path: str | Path, cause: str) -> None:
        super().__init__(message)
        self.path = Path(path)
        self.cause = cause


def _cause(exc: sqlite3.Error) -> str | None:
    """What went wrong, from an SQLite error; None for a programming error (a bug, not a fault of the file)."""
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)):
        return None
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc).lower()
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text or "table is locked" in text:
        return "locked"
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
        return "corrupt"
    if name.startswith("SQLITE_READONLY") or "readonly database" in text:
        return "readonly"
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return "full"
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")) or "unable to open" in text:
        return "cannot-open"
    if name.startswith("SQLITE_IOERR") or "disk i/o error" in text:
        return "io"
    if "no such table" in text or "no such column" in text:
        return "not-a-store"
    return "other"


def _disk_nearly_full(path: Path) -> bool:
    import shutil

    try:
        return shutil.disk_usage(path.parent if str(path.parent) else ".").free < 1_000_000
    except OSError:
        return False


#: The message of each cause (str.format fields: what, p, reason, var, waited, parent, name).
_MESSAGES: dict[str, str] = {
    "locked": ("{what} {p} is locked by another process{waited}; wait a moment and try again; if it stays locked, "
               "stop the process that holds it (another server, a backup or an sqlite3 shell), or set NESTEDAE_STORE_TIMEOUT "
               "to wait longer"),
    "corrupt": ("{what} {p} is damaged or is not an SQLite file ({reason}); it was left as it is: restore it from a "
                "backup, or move it aside (mv {p} {p}.broken) and restart to begin an empty store, or point {var} at another file"),
    "not-a-store": ("{p} is an SQLite file but not a nestedae store ({reason}); it was left as it is: point {var} at another "
                    "file (a new name is created empty)"),
    "readonly": ("cannot write {what} {p}: it is read-only; give the user running nestedae write permission on it and "
                 "on its folder {parent} (SQLite writes {name}-wal and {name}-shm there), or point {var} at a writable file"),
    "full": ("cannot write {what} {p}: the disk is full; free some space there (old models, finished jobs) and try "
             "again, or point {var} at a file on another disk"),
    "cannot-open": ("cannot open {what} {p} ({reason}); {var} must be the path of a regular file in a folder you can "
                    "write to"),
    "io": ("cannot read or write {what} {p} ({reason}); check the disk it is on, or point {var} at a file on "
           "a local disk"),
}
_OTHER = "{what} {p} failed ({reason}); if it persists, restore it from a backup or point {var} at another file"


def store_error(exc: BaseException, path: str | Path, *, timeout: float | None = None, what: str = "the job store",
                setting: str = "NESTEDAE_JOB_STORE") -> JobStoreError | None:
    """The :class:`JobStoreError` for an SQLite failure of the store ``path`` (one line naming the file and the remedy).

    ``exc`` may be an :class:`sqlite3.Error` or any exception caused by one (SQLAlchemy
    and Optuna wrap them); None when no SQLite error is behind it, or when it is a
    programming error rather than a fault of the file. ``timeout``: how long the lock
    was waited for (said in the message); ``what``: the file's role in the message;
    ``setting``: the variable or option that chooses another file.
    """
    seen: set[int] = set()
    found: sqlite3.Error | None = None
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, sqlite3.Error):
            found = e
            break
        todo.extend([getattr(e, "orig", None), e.__cause__, e.__context__])
    if found is None:
        return None
    cause = _cause(found)
    if cause is None:
        return None
    p = Path(path)
    if cause == "io" and _disk_nearly_full(p):
        cause = "full"
    reason = " ".join(str(found).split())[:160] or type(found).__name__
    waited = f" (waited {timeout:g} s)" if timeout is not None else ""
    template = _MESSAGES.get(cause, _OTHER)
    msg = template.format(what=what, p=p, reason=reason, var=setting, waited=waited, parent=p.parent, name=p.name)
    return JobStoreError(msg, path=p, cause=cause)


def check_store_path(path: str | Path) -> None:
    """Refuse a job store path that is not (or cannot become) a regular file: a folder, a device such as
    ``/dev/null``, a fifo, or a path under a file. A missing file is fine (it is created).

    Raises:
        JobStoreError: naming the path and what to give instead.
    """
    p = Path(path)
    var = "NESTEDAE_JOB_STORE"
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise JobStoreError(f"cannot use {p} as the job store: a part of the path is a file, not a folder; point {var} "
                            "at a file in an existing folder", path=p, cause="cannot-open") from None
    except OSError as exc:
        raise JobStoreError(f"cannot use {p} as the job store ({exc.strerror or exc}); point {var} at a regular file "
                            "you can write to", path=p, cause="cannot-open") from None
    if stat.S_ISDIR(st.st_mode):
        raise JobStoreError(f"cannot use {p} as the job store: it is a folder; point {var} at a file, e.g. {p / 'jobs.sqlite'}",
                            path=p, cause="cannot-open")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a fifo" if stat.S_ISFIFO(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise JobStoreError(f"cannot use {p} as the job store: it is {kind}; point {var} at a regular file, e.g. "
                            "~/.local/share/nestedae/jobs.sqlite", path=p, cause="cannot-open")
