"""Is the data a preset (or any chain) trains on available on this machine? Answered before a job is queued.

A fresh install has no dataset files: training the default preset there would be
queued, start in a worker and only then fail. :func:`missing_data` lists the
stage datasets that are not available (never downloads, never raises for a
missing file) and :func:`missing_data_message` says in one line which files are
missing and how to get them (``nestedae data fetch ...`` or
``NESTEDAE_DATA_DIR``), pointing at the synthetic preset, which needs no file.
"""
from __future__ import annotations

from ..data.registry import DATA_DIR_ENV, dataset_info
from ..data.status import DatasetStatus, dataset_status
from ..errors import DataError
from ..model.config import ChainSpec
from .presets import preset

__all__ = ["NO_DATA_PRESET", "missing_data", "missing_data_message"]

#: The preset that trains on generated data only (works on a fresh install).
NO_DATA_PRESET = "synthetic"


def _spec(chain: ChainSpec | str) -> ChainSpec:
    return preset(chain) if isinstance(chain, str) else chain


def missing_data(chain: ChainSpec | str) -> list[DatasetStatus]:
    """The datasets of ``chain`` (a :class:`ChainSpec` or a preset name) that are not available here.

    One :class:`~nestedae_core.data.DatasetStatus` per missing dataset, in stage
    order, each named once; its ``message`` says why (missing, or a file that
    fails its checksum). Generated datasets are always available; a stage
    dataset that is not in the registry is not checked. Never downloads.

    Raises:
        ConfigError: an unknown preset name.
    """
    out: list[DatasetStatus] = []
    seen: set[str] = set()
    for stage in _spec(chain).stages:
        if stage.dataset in seen:
            continue
        seen.add(stage.dataset)
        try:
            status = dataset_status(stage.dataset)[0]
        except DataError:  # not a registry dataset: a table the caller provides
            continue
        if not status.available:
            out.append(status)
    return out


def _files(status: DatasetStatus) -> list[tuple[str, str]]:
    """(dataset to fetch, file name) pairs behind one missing dataset (the sources of a derived one)."""
    info = dataset_info(status.name)
    if info.kind == "derived":
        return [(s, dataset_info(s).filename) for s in info.sources]
    return [(info.name, info.filename)]


def missing_data_message(chain: ChainSpec | str) -> str | None:
    """One line naming the missing files of ``chain`` and how to get them; ``None`` when all are available.

    E.g. ``preset 'measured' needs data not on this machine: mhp-dft (mhp_dft.csv: missing), ...;
    run `nestedae data fetch mhp-dft psc-devices` or set NESTEDAE_DATA_DIR to a folder holding these
    files. The 'synthetic' preset needs no data.``
    """
    spec = _spec(chain)
    missing = missing_data(spec)
    if not missing:
        return None
    parts: list[str] = []
    fetch: list[str] = []
    for status in missing:
        files = [(name, f) for name, f in _files(status) if name not in fetch]
        if not files:  # its files are named already (a derived dataset of a file listed before)
            continue
        fetch += [name for name, _ in files]
        why = "missing" if status.path is None else status.message
        named = ", ".join(f for _, f in files if f)
        parts.append(f"{status.name} ({named}: {why})" if named else f"{status.name} ({why})")
    advice = "" if spec.name == NO_DATA_PRESET else f" The '{NO_DATA_PRESET}' preset needs no data."
    return (f"preset '{spec.name}' needs data not on this machine: {'; '.join(parts)}. "
            f"Run `nestedae data fetch {' '.join(fetch)}` or set {DATA_DIR_ENV} to a folder holding these files.{advice}")
