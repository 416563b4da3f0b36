"""Where each dataset stands on this machine: found (where), missing or corrupt, and why."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .files import candidate_paths, fix_hint, locate, verify_file
from .registry import DATA_DIR_ENV, REGISTRY, DatasetInfo, dataset_info, derived_from_text

__all__ = ["DatasetStatus", "dataset_stamp", "dataset_status"]


@dataclass
class DatasetStatus:
    """Where a dataset stands on this machine (see :func:`dataset_status`).

    ``rows`` is the registry's row count of the pinned file (``None`` for
    generated data); ``message`` says where the file was found, or why it is
    not available and how to fix that. A derived dataset has no ``path``; it is
    available when all its sources are, and ``derived_from`` names them.
    """

    name: str
    title: str
    rows: int | None
    path: Path | None
    available: bool
    citation: str
    url: str
    message: str
    derived_from: tuple[str, ...] = ()


def _status_of(info: DatasetInfo) -> DatasetStatus:
    """The status of one dataset; may raise :class:`OSError` (an unreadable folder)."""

    def make(path: Path | None, available: bool, message: str) -> DatasetStatus:
        return DatasetStatus(info.name, info.title, info.rows, path, available, info.citation, info.url, message)

    if info.kind == "generated":
        return make(None, True, "generated on demand by nestedae_core.data.synthetic")
    if info.kind == "derived":
        sources = [_status_of(dataset_info(source)) for source in info.sources]
        missing = [source for source in sources if not source.available]
        if missing:
            bad = [f"{source.name}: {source.message}" for source in missing if source.path is not None]
            names = ", ".join(source.name for source in missing)
            message = (
                f"{derived_from_text(info.name)}; missing source(s) {names}: set {DATA_DIR_ENV} to a folder "
                f"holding them or run `nestedae data fetch {info.name}`" + "".join(f"; {b}" for b in bad)
            )
        else:
            message = f"{derived_from_text(info.name)} (sources found)"
        return DatasetStatus(info.name, info.title, info.rows, None, not missing, info.citation, info.url,
                             message, derived_from=info.sources)
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
                              f"cannot check: {exc.strerror or exc}", derived_from=info.sources)
            )
    return out


def dataset_stamp(name: str) -> str:
    """A string that changes whenever what :func:`nestedae_core.data.load` would return for ``name`` changes.

    ``"<resolved path>@<mtime ns>"`` of a file dataset, the stamps of the
    source files joined by ``"|"`` for a derived one, ``"generated"`` for
    generated data, ``"missing"`` when a file is not on this machine. For
    caches keyed by dataset (the dashboard's); never downloads.

    Raises:
        DataError: unknown name, or a file that fails its checksum.
    """
    info = dataset_info(name)
    if info.kind == "generated":
        return "generated"
    if info.kind == "derived":
        return "|".join(dataset_stamp(source) for source in info.sources)
    path = locate(name)
    if path is None:
        return "missing"
    return f"{path.resolve()}@{path.stat().st_mtime_ns}"
