"""Where each dataset stands on this machine: found (where), missing or corrupt, and why."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .files import candidate_paths, fix_hint, verify_file
from .registry import DATA_DIR_ENV, REGISTRY, DatasetInfo, dataset_info

__all__ = ["DatasetStatus", "dataset_status"]


@dataclass
class DatasetStatus:
    """Where a dataset stands on this machine (see :func:`dataset_status`).

    ``rows`` is the registry's row count of the pinned file (``None`` for
    generated data); ``message`` says where the file was found, or why it is
    not available and how to fix that.
    """

    name: str
    title: str
    rows: int | None
    path: Path | None
    available: bool
    citation: str
    url: str
    message: str


def _status_of(info: DatasetInfo) -> DatasetStatus:
    """The status of one dataset; may raise :class:`OSError` (an unreadable folder)."""

    def make(path: Path | None, available: bool, message: str) -> DatasetStatus:
        return DatasetStatus(info.name, info.title, info.rows, path, available, info.citation, info.url, message)

    if info.kind == "generated":
        return make(None, True, "generated on demand by nestedae_core.data.synthetic")
    for origin, candidate in candidate_paths(info):
        if not candidate.is_file():
            continue
        try:
            verify_file(info, candidate, origin)
        except DataError as exc:
            return make(candidate, False, str(exc))
        where = f"{DATA_DIR_ENV} folder" if origin == DATA_DIR_ENV else "download cache"
        return make(candidate, True, f"found in the {where}")
    return make(None, False, f"missing: {fix_hint(info)}")


def dataset_status(name: str | None = None) -> list[DatasetStatus]:
    """Status of dataset ``name`` (or of every registered dataset); never downloads.

    A missing or corrupt file does not raise: the reason is in ``message``.
    An unknown ``name`` raises :class:`DataError`.
    """
    infos = [dataset_info(name)] if name is not None else list(REGISTRY.values())
    out = []
    for info in infos:
        try:
            out.append(_status_of(info))
        except OSError as exc:  # e.g. an unreadable data folder
            out.append(
                DatasetStatus(info.name, info.title, info.rows, None, False, info.citation, info.url,
                              f"cannot check: {exc.strerror or exc}")
            )
    return out
