"""Benchmark reports: JSON files written atomically, read back, and the ones shipped with the package.

An accuracy report holds one split (``split``, ``tasks``) or, as written by
``nestedae benchmark accuracy`` without ``--split``, the headline grouped split at
the top level and the random split beside it under ``other_splits``
(split -> a report of the same shape). :func:`split_reports` gives either kind
as split -> single-split report.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import sys
import tempfile
from importlib import resources as _res
from pathlib import Path
from typing import Any

from ..errors import DataError

__all__ = [
    "write_json_atomic",
    "load_benchmark",
    "split_reports",
    "shipped_benchmark_paths",
    "machine_info",
    "created_now",
    "peak_rss_mib",
]

#: Splits in the order reports present them: grouped (the honest headline) first.
SPLIT_ORDER: tuple[str, ...] = ("grouped", "random")


def created_now() -> str:
    """The current UTC time, ISO 8601 to the second (a report's ``created``)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def machine_info() -> dict[str, Any]:
    """Python, torch, platform, CPU count and torch threads of this machine."""
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def peak_rss_mib() -> float:
    """Peak resident memory of this process, MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def write_json_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write JSON to ``path`` via a temporary file in the same folder and a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def load_benchmark(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an accuracy benchmark report (DataError if unreadable or not one)."""
    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"no benchmark file at {p}; run `nestedae benchmark accuracy --json {p}`") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read benchmark file {p}: {exc}") from None
    if not isinstance(obj, dict) or "tasks" not in obj:
        raise DataError(f"{p} is not an accuracy benchmark report (no 'tasks')")
    return obj


def split_reports(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Split -> single-split report, grouped first, for a one- or two-split accuracy report."""
    out: dict[str, dict[str, Any]] = {}
    top = {k: v for k, v in report.items() if k != "other_splits"}
    out[str(top.get("split", "uploaded"))] = top
    for split, sub in (report.get("other_splits") or {}).items():
        if isinstance(sub, dict) and isinstance(sub.get("tasks"), dict):
            out[str(split)] = sub
    order = [s for s in SPLIT_ORDER if s in out] + [s for s in out if s not in SPLIT_ORDER]
    return {s: out[s] for s in order}


def shipped_benchmark_paths() -> dict[str, Path]:
    """Accuracy reports shipped with the package, by file stem, the two-split ``accuracy`` first.

    Read each with :func:`load_benchmark` and expand it with :func:`split_reports`.
    """
    base = Path(str(_res.files("nestedae_core") / "bundles" / "benchmarks"))
    out = {}
    for stem in ("accuracy", "accuracy-grouped", "accuracy-random"):
        p = base / f"{stem}.json"
        if p.is_file():
            out[stem] = p
    return out
