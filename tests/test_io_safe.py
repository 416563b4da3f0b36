"""Safe output writing: temp file + rename, no partial files, one-line messages."""
from __future__ import annotations

import errno
import os
import socket

import pytest

from nestedae_core import io_safe
from nestedae_core.errors import InputError, NestedAEError
from nestedae_core.io_safe import OutputError, atomic_open, atomic_write_bytes, atomic_write_text, os_error_message, refuse_special

pytestmark = pytest.mark.unit


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_text_and_bytes(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "héllo\n")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert _leftovers(tmp_path) == []


def test_replaces_existing_file_and_keeps_its_mode(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    os.chmod(target, 0o640)
    with atomic_open(target, newline="") as fh:
        fh.write("a,b\r\n1,2\r\n")
    assert target.read_bytes() == b"a,b\r\n1,2\r\n"
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)


def test_error_inside_block_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write("partial")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(("code", "words"), [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "read-only file system"), (errno.EACCES, "no permission"), (errno.EPERM, "no permission")])
def test_os_error_message(tmp_path, code, words):
    msg = os_error_message(OSError(code, os.strerror(code)), tmp_path / "x.csv")
    assert words in msg and str(tmp_path / "x.csv") in msg and "\n" not in msg


def test_os_error_message_other_uses_strerror(tmp_path):
    msg = os_error_message(OSError(errno.EIO, "Input/output error"), "f.txt")
    assert msg == "cannot write f.txt: Input/output error"


class _FullDisk:
    """A file object whose writes fail like a full disk once ``limit`` bytes are written."""

    def __init__(self, fh, limit):
        self._fh, self._left = fh, limit

    def write(self, data):
        if len(data) > self._left:
            self._fh.write(data[: self._left])
            self._left = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._left -= len(data)
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def test_disk_full_on_write_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "big.csv"
    target.write_text("previous")
    real_fdopen = os.fdopen
    monkeypatch.setattr(io_safe.os, "fdopen", lambda fd, *a, **k: _FullDisk(real_fdopen(fd, *a, **k), 1000))
    with pytest.raises(OutputError, match="the disk is full") as info:
        atomic_write_text(target, "x" * 100_000)
    assert isinstance(info.value, InputError) and isinstance(info.value, NestedAEError)
    assert "\n" not in str(info.value)
    assert target.read_text() == "previous"
    assert _leftovers(tmp_path) == []


def test_disk_full_on_flush_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    target.write_text("previous")

    def fsync(fd):  # delayed allocation: the error shows at fsync
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_safe.os, "fsync", fsync)
    with pytest.raises(OutputError, match="the disk is full"):
        atomic_write_bytes(target, b"{}")
    assert target.read_text() == "previous"
    assert _leftovers(tmp_path) == []


def test_read_only_on_rename_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "report.html"

    def ro(src, dst):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(io_safe.os, "replace", ro)
    with pytest.raises(OutputError, match="read-only file system"):
        atomic_write_text(target, "<html></html>")
    assert not target.exists()
    assert _leftovers(tmp_path) == []


def test_read_only_folder_really(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions")
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep")
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="no permission"):
            atomic_write_text(folder / "keep.txt", "new")
        assert (folder / "keep.txt").read_text() == "keep"
        assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
    finally:
        folder.chmod(0o755)


def test_missing_folder(tmp_path):
    with pytest.raises(OutputError, match="folder does not exist"):
        atomic_write_text(tmp_path / "nope" / "x.txt", "x")


def test_refuse_special_kinds(tmp_path):
    refuse_special(tmp_path / "missing.txt")  # fine: will be created
    (tmp_path / "plain.txt").write_text("x")
    refuse_special(tmp_path / "plain.txt")
    (tmp_path / "dir").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        refuse_special(tmp_path / "dir")
    (tmp_path / "link").symlink_to(tmp_path / "plain.txt")
    with pytest.raises(InputError, match="symbolic link"):
        refuse_special(tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InputError, match="fifo"):
        refuse_special(tmp_path / "fifo")
    with pytest.raises(InputError, match="device"):
        refuse_special("/dev/null")
    sock_path = tmp_path / "s.sock"
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(sock_path))
        with pytest.raises(InputError, match="socket"):
            refuse_special(sock_path)
    finally:
        s.close()


def test_atomic_write_never_follows_or_replaces_special(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (tmp_path / "link").symlink_to(outside)
    with pytest.raises(InputError):
        atomic_write_text(tmp_path / "link", "overwrite")
    assert outside.read_text() == "secret" and (tmp_path / "link").is_symlink()
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InputError):
        atomic_write_text(tmp_path / "fifo", "x")
    assert (tmp_path / "fifo").exists()
    assert _leftovers(tmp_path) == []


def test_bad_mode():
    with pytest.raises(ValueError):
        with atomic_open("x", "a"):
            pass


@pytest.mark.parametrize(
    ("kind", "needle"),
    [("missing", "it does not exist"), ("folder", "not a regular file (a folder)"),
     ("fifo", "not a regular file (a device, fifo or socket)"), ("huge", "is 5.0 MB"), ("latin-1", "is not UTF-8 text")],
)
def test_read_small_text_refuses_what_is_not_a_small_text_file(tmp_path, kind, needle):
    from nestedae_core.errors import ConfigError
    from nestedae_core.io_safe import read_small_text

    p = tmp_path / "f.json"
    if kind == "folder":
        p.mkdir()
    elif kind == "fifo":
        os.mkfifo(p)  # never opened: reading it would block
    elif kind == "huge":
        with open(p, "wb") as fh:
            fh.truncate(5_000_000)
    elif kind == "latin-1":
        p.write_bytes("café".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        read_small_text(p, 1_000_000, what="--space", hint="give a JSON file", expected="a space is small", error=ConfigError)
    message = str(info.value)
    assert needle in message and "--space" in message and str(p) in message and "\n" not in message


def test_read_small_text_reads_a_small_file(tmp_path):
    from nestedae_core.io_safe import read_small_text

    p = tmp_path / "f.toml"
    p.write_text("name = 'é'\n", encoding="utf-8")
    assert read_small_text(p, 100, what="config file", hint="h", expected="e") == "name = 'é'\n"
