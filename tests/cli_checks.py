"""Helpers of the command-line bad-input tests: run ``nestedae`` in-process, check its one-line error, snapshot a folder."""
from __future__ import annotations

import os
from pathlib import Path

from nestedae_core.cli import main


def run(capsys, *argv: object) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """``nestedae ARGV`` in this process: (exit code, stdout, stderr); argparse's own refusals give their exit code."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = int(exc.code or 0)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def one_line_error(rc: int, err: str, *needles: str, code: int | None = None) -> str:
    """A non-zero exit (``code`` when given) and exactly one line on stderr, ``nestedae: error: ...``, holding every needle."""
    assert rc != 0 and (code is None or rc == code), (rc, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nestedae: error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (links not followed) -> its bytes (None for folders and special files)."""
    out: dict[str, bytes | None] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(folder))
            out[rel] = p.read_bytes() if p.is_file() and not p.is_symlink() else (f"link:{os.readlink(p)}".encode() if p.is_symlink() else None)
    return out
