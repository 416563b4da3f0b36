"""Safe file handling: reading a small input file with bounds, writing output files atomically.

:func:`read_small_text` reads a small input file (a configuration, a search space) only when
it is a regular file within a size limit and UTF-8 text: a device such as ``/dev/zero``, a
fifo, a folder or a huge file is refused, with one message, before anything is read.

Every output file the CLI or the dashboard writes (CSV, JSON, HTML reports) goes
through this module, so a failed write (disk full, read-only file system, no
permission, an interrupted process) never leaves a half-written file and never
destroys the file that was there before:

* :func:`atomic_write_bytes` / :func:`atomic_write_text` write a whole file at once;
* :func:`atomic_open` is a context manager for writers that stream (``df.to_csv(fh)``);
* :func:`refuse_special` rejects a target that is a symlink, a device node, a fifo,
  a socket or a directory (renaming over those would replace or follow them);
* :func:`os_error_message` turns an :class:`OSError` into one line that says what to do;
* :func:`refuse_input_as_output` rejects an output path that resolves to one of the inputs,
  however it is spelled (relative, absolute, through a link, a hard link).

The temp file is a hidden sibling ``.<name>.<random>.tmp`` in the target's folder
(same file system, so :func:`os.replace` is atomic).
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import InputError, NestedAEError

__all__ = ["read_small_text", "atomic_write_bytes", "atomic_write_text", "atomic_open", "refuse_special", "refuse_input_as_output", "os_error_message", "OutputError"]

logger = logging.getLogger(__name__)


class OutputError(InputError):
    """An output file cannot be written (disk full, read-only, no permission, special file...)."""


def read_small_text(path: str | os.PathLike[str], limit: int, *, what: str, hint: str, expected: str,
                    error: type[NestedAEError] = InputError) -> str:
    """The UTF-8 text of ``path``, a regular file of at most ``limit`` bytes.

    Args:
        path: the file to read.
        limit: the largest size accepted, in bytes; a larger file is refused from its size, unread.
        what: how messages name the file, e.g. ``"config file"`` or ``"--space"``.
        hint: what the user should give instead, e.g. ``"give a JSON or TOML file"``.
        expected: how large such a file usually is, e.g. ``"a chain spec is a few kB"``.
        error: the exception raised (a :class:`NestedAEError`), with one line naming ``what`` and the file.

    Raises:
        error: the file is missing, unreadable, not a regular file, larger than ``limit`` or not UTF-8 text.
    """
    p = Path(path)
    too_large = f"{expected} (limit {limit / 1e6:g} MB): check the file name"
    try:
        st = os.stat(p)
        if stat.S_ISDIR(st.st_mode) or not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a device, fifo or socket"
            raise error(f"cannot read {what} {p}: it is not a regular file ({kind}); {hint}")
        if st.st_size > limit:
            raise error(f"{what} {p} is {st.st_size / 1e6:.1f} MB; {too_large}")
        with open(p, "rb") as fh:
            raw = fh.read(limit + 1)
    except FileNotFoundError:
        raise error(f"cannot read {what} {p}: it does not exist; {hint}") from None
    except OSError as exc:
        raise error(f"cannot read {what} {p}: {exc.strerror or exc}; {hint}") from None
    if len(raw) > limit:  # the file grew while it was read
        raise error(f"{what} {p} is larger than {limit / 1e6:g} MB; {too_large}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {p} is not UTF-8 text (byte {exc.start}); {hint}") from None


def os_error_message(exc: OSError, path: str | os.PathLike[str] | None = None) -> str:
    """One line naming ``path`` (or the error's own file name) and what to do about ``exc``."""
    where = str(path) if path is not None else (str(exc.filename) if exc.filename else "the output")
    code = exc.errno
    if code == errno.ENOSPC or code == getattr(errno, "EDQUOT", -1):
        return f"cannot write {where}: the disk is full; free some space or choose another location"
    if code == errno.EROFS:
        return f"cannot write {where}: read-only file system; choose a writable location"
    if code in (errno.EACCES, errno.EPERM):
        return f"cannot write {where}: no permission; choose a folder you can write to"
    if code == errno.ENOENT:
        return f"cannot write {where}: the folder does not exist; create it first or choose another location"
    if code == errno.EISDIR:
        return f"cannot write {where}: it is a directory; give a file name"
    if code == errno.ENOTDIR:
        return f"cannot write {where}: a part of the path is not a folder"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot write {where}: {reason}"


def refuse_special(path: str | os.PathLike[str]) -> None:
    """Raise :class:`OutputError` if ``path`` exists and is not a regular file, or is a symlink.

    A missing ``path`` is fine (it will be created). Use before writing an output file.
    """
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(os_error_message(exc, p)) from None
    if stat.S_ISLNK(st.st_mode):
        raise OutputError(f"refusing to write {p}: it is a symbolic link; give the path of a regular file")
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"refusing to write {p}: it is a directory; give a file name")
    if not stat.S_ISREG(st.st_mode):
        kind = "a fifo" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device" if (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) else "not a regular file"
        raise OutputError(f"refusing to write {p}: it is {kind}; give the path of a regular file")


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same resolved path, or (both existing) the same inode."""
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):
        pass
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_input_as_output(output: str | os.PathLike[str], *inputs: Any, flag: str = "the output") -> None:
    """Raise :class:`OutputError` when ``output`` is the same file as one of ``inputs``.

    ``inputs`` are paths or open file objects (their ``name`` is used when it is a
    path; other objects are skipped). Any spelling counts: ``X``, ``./X``, ``/abs/X``,
    a symbolic link to it or a hard link of it. Writing would replace the input
    with the results, so the user's table would be lost.
    """
    out = Path(output)
    for source in inputs:
        name = source if isinstance(source, (str, os.PathLike)) else getattr(source, "name", None)
        if not isinstance(name, (str, os.PathLike)) or not str(name):
            continue
        if _same_file(out, Path(name)):
            raise OutputError(f"refusing to write {flag} {out}: it is the input file {name}, which would be lost; "
                              "give the output another file name")


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", newline: str | None = None, encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temp file beside ``path`` for writing; on success it replaces ``path`` atomically.

    ``mode`` is ``"w"`` (text, ``encoding`` UTF-8 by default) or ``"wb"``. On any error
    inside the block (or while flushing), the temp file is removed, ``path`` is left as it
    was, and an :class:`OSError` becomes :class:`OutputError` with a one-line message.
    The new file gets the usual permissions (0o666 less the umask), or those of the file
    it replaces.
    """
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', not {mode!r}")
    target = Path(path)
    refuse_special(target)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(os_error_message(exc, target)) from None
    try:
        try:
            old_mode = stat.S_IMODE(os.stat(target).st_mode)
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            old_mode = 0o666 & ~umask
        os.chmod(tmp, old_mode)
        binary = "b" in mode
        fh: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding=encoding, newline=newline)
        fd = -1
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
        _remove_quietly(tmp)
        raise OutputError(os_error_message(exc, target)) from None
    except BaseException:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
        _remove_quietly(tmp)
        raise
    logger.debug("wrote %s", target)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + rename); returns the path."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", newline: str | None = None) -> Path:
    """Write ``text`` to ``path`` atomically (temp file + rename); returns the path."""
    with atomic_open(path, "w", newline=newline, encoding=encoding) as fh:
        fh.write(text)
    return Path(path)
