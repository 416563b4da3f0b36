"""Benchmark reports: JSON files written atomically, read back, and the ones shipped with the package.

An accuracy report holds one split (``split``, ``tasks``) or, as written by
``nestedae benchmark accuracy`` without ``--split``, the headline grouped split at
the top level and the random split beside it under ``other_splits``
(split -> a report of the same shape). :func:`split_reports` gives either kind
as split -> single-split report.

:func:`parse_benchmark` checks a report read from anywhere (a file, an upload)
against :class:`AccuracyReport`: its size, encoding, JSON syntax and the type
of every field the dashboard and the CLI read; a problem is a one-line
:class:`~nestedae_core.errors.DataError` that names the file and the field
(e.g. ``tasks.bandgap-paper.models.ridge.folds[2].mae``).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import sys
from importlib import resources as _res
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import DataError
from ..io_safe import atomic_open

__all__ = [
    "MAX_REPORT_BYTES",
    "AccuracyReport",
    "parse_benchmark",
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
    with atomic_open(target, "w") as fh:
        json.dump(obj, fh, indent=1)
    return target


#: Largest benchmark report :func:`parse_benchmark` reads (bytes); a real one is well under 1 MB.
MAX_REPORT_BYTES: int = 20 * 1024 * 1024

# Names and texts that figures show (plotly renders some HTML in them): plain text only.
_NO_MARKUP = "<>"


def _plain(value: str | None) -> str | None:
    if value is not None:
        bad = sorted({c for c in value if c in _NO_MARKUP or (ord(c) < 32 and c not in "\t")})
        if bad:
            raise ValueError(f"holds {' '.join(repr(c) for c in bad)}: use plain text")
        if len(value) > 500:
            raise ValueError(f"is {len(value)} characters long, at most 500")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class FoldResult(_Strict):
    """One model's scores on one validation fold (MAE and RMSE in the task's unit)."""

    fold: int = Field(0, ge=0)
    n: int | None = Field(None, ge=0)
    mae: float | None = None
    rmse: float | None = None
    r2: float | None = None


class ModelResult(_Strict):
    """One model's cross-validated scores on a task (MAE, RMSE in the task's unit; seconds of training)."""

    mae: float | None = None
    mae_std: float | None = None
    rmse: float | None = None
    r2: float | None = None
    n: int | None = Field(None, ge=0)
    seconds: float | None = None
    mae_paper_batches: float | None = None
    folds: list[FoldResult] = []


class TaskResult(_Strict):
    """A benchmark task: what is predicted from which data, and every model's result."""

    dataset: str = ""
    target: str = ""
    unit: str = ""
    description: str = ""
    n: int | None = Field(None, ge=0)
    groups: list[str] = []
    notes: list[str] = []
    models: dict[str, ModelResult] = {}

    _check_text = field_validator("dataset", "target", "unit")(_plain)

    @field_validator("groups")
    @classmethod
    def _check_groups(cls, value: list[str]) -> list[str]:
        for item in value:
            _plain(item)
        return value

    @field_validator("models")
    @classmethod
    def _check_names(cls, value: dict[str, ModelResult]) -> dict[str, ModelResult]:
        for name in value:
            try:
                _plain(name)
            except ValueError as exc:
                raise ValueError(f"model name {name[:40]!r} {exc}") from None
        return value


class SplitReport(_Strict):
    """An accuracy report of one split: its folds, seed and tasks."""

    kind: str = "accuracy"
    split: str | None = None
    folds: int | None = Field(None, ge=1)
    seed: int | None = None
    created: str | None = None
    tasks: dict[str, TaskResult]

    _check_split = field_validator("split")(_plain)

    @field_validator("kind")
    @classmethod
    def _check_kind(cls, value: str) -> str:
        if value != "accuracy":
            raise ValueError(f"is {value[:40]!r}, not 'accuracy': this is another kind of report")
        return value

    @field_validator("tasks")
    @classmethod
    def _check_task_names(cls, value: dict[str, TaskResult]) -> dict[str, TaskResult]:
        for name in value:
            try:
                _plain(name)
            except ValueError as exc:
                raise ValueError(f"task name {name[:40]!r} {exc}") from None
        return value


class AccuracyReport(SplitReport):
    """The schema of an accuracy benchmark report (extra fields are kept and not checked)."""

    other_splits: dict[str, SplitReport] | None = None


_TYPE_WORDS = {
    "dict_type": "an object", "model_type": "an object", "list_type": "a list", "float_type": "a number",
    "int_type": "a whole number", "string_type": "text", "bool_type": "true or false",
}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if value is None:
        return "null"
    return f"{value!r}"[:40]


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _validation_message(exc: ValidationError, source: str) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = _field_path(tuple(first["loc"]))
    kind = first["type"]
    if kind == "missing":
        problem = "is missing"
    elif kind in _TYPE_WORDS:
        problem = f"must be {_TYPE_WORDS[kind]}, got {_json_kind(first.get('input'))}"
    elif kind == "value_error":
        problem = str(first.get("ctx", {}).get("error") or first["msg"])
    else:
        problem = f"{first['msg'][0].lower()}{first['msg'][1:]}, got {_json_kind(first.get('input'))}"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{source}: field '{path}' {problem}{more}; upload the JSON file written by `nestedae benchmark accuracy --json FILE`"


def parse_benchmark(raw: bytes, source: str = "the report") -> dict[str, Any]:
    """Check and read an accuracy benchmark report from the bytes of a JSON file.

    ``source`` names the file in messages. Returns the report as a dict (every
    field the dashboard and the CLI read has its documented type; other fields
    are kept as they are).

    Raises:
        DataError: one line naming ``source`` and, for a wrong field, its path:
            too large (over :data:`MAX_REPORT_BYTES`), not UTF-8 text, not JSON,
            nested too deeply, not an accuracy report, or a field of the wrong type.
    """
    if len(raw) > MAX_REPORT_BYTES:
        raise DataError(f"{source} is {len(raw) / 2**20:.1f} MiB: a benchmark report is at most {MAX_REPORT_BYTES / 2**20:.0f} MiB; "
                        "upload the JSON file written by `nestedae benchmark accuracy --json FILE`")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{source} is not UTF-8 text (a binary file?): upload the JSON file written by "
                        "`nestedae benchmark accuracy --json FILE`") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{source} is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}): upload the JSON file "
                        "written by `nestedae benchmark accuracy --json FILE`") from None
    except RecursionError:
        raise DataError(f"{source} is nested too deeply to be a benchmark report") from None
    if not isinstance(obj, dict):
        raise DataError(f"{source} holds {_json_kind(obj)}, not a benchmark report (an object with 'tasks'): upload the JSON "
                        "file written by `nestedae benchmark accuracy --json FILE`")
    try:
        AccuracyReport.model_validate(obj)
    except ValidationError as exc:
        raise DataError(_validation_message(exc, source)) from None
    except RecursionError:  # pragma: no cover - json.loads refuses such depth first
        raise DataError(f"{source} is nested too deeply to be a benchmark report") from None
    return obj


def load_benchmark(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an accuracy benchmark report (DataError if unreadable or not one; see :func:`parse_benchmark`)."""
    p = Path(path)
    try:
        if p.is_file() and p.stat().st_size > MAX_REPORT_BYTES:
            return parse_benchmark(b" " * (MAX_REPORT_BYTES + 1), str(p))  # the size message, without reading it
        raw = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"no benchmark file at {p}; run `nestedae benchmark accuracy --json {p}`") from None
    except OSError as exc:
        raise DataError(f"cannot read benchmark file {p}: {exc.strerror or exc}") from None
    return parse_benchmark(raw, str(p))


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
