"""Dataset registry, download, verification, caching and schema checks.

Every dataset the project uses is a public file pinned to a commit and a SHA-256
(see :data:`REGISTRY`). Nothing is shipped with the package; files are looked up
at run time, in this order:

1. an explicit ``path`` given by the caller (a file, or a folder holding the
   file); it is the user's own copy and is *not* hash-checked;
2. ``$NESTEDAE_DATA_DIR/<filename>`` (what CI and offline machines use);
3. ``cache_dir()/<filename>``, where :func:`fetch` downloads files.

Files found in 2. or 3. must match the pinned SHA-256, otherwise a
:class:`~nestedae_core.errors.DataError` says which file is wrong and what to do.

Typical use::

    from nestedae_core import data
    df = data.load("mhp-pbe-paper")          # locate, else download, then check schema
    print(data.citation_text("mhp-pbe-paper"))
"""
from __future__ import annotations

import hashlib
import http.client
import importlib
import importlib.util
import logging
import os
import re
import tempfile
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..errors import DataError, DataMissingError, SchemaError
from ..vocabulary import (
    DESCRIPTORS,
    DEVICE_COMPOSITION,
    ETL,
    FF,
    HTL,
    JSC,
    MEASURED_BANDGAP,
    PCE,
    PHASE_COLUMNS,
    SITE_FRACTION_COLUMNS,
    VOC,
)

if TYPE_CHECKING:  # pandas is imported lazily: importing this module stays cheap
    import pandas as pd

__all__ = [
    "DATA_DIR_ENV",
    "CACHE_DIR_ENV",
    "DatasetInfo",
    "DatasetStatus",
    "REGISTRY",
    "SITE_FRACTION_COLUMNS",
    "MHP_DESCRIPTOR_COLUMNS",
    "PHASE_COLUMNS",
    "DEVICE_DESCRIPTOR_COLUMNS",
    "cache_dir",
    "citation_text",
    "dataset_info",
    "dataset_status",
    "fetch",
    "file_sha256",
    "load",
    "locate",
    "reset_caches",
    "validate_schema",
]

logger = logging.getLogger(__name__)

#: Environment variable naming a folder that holds the dataset files (offline use, CI).
DATA_DIR_ENV = "NESTEDAE_DATA_DIR"
#: Environment variable overriding the download cache folder.
CACHE_DIR_ENV = "NESTEDAE_CACHE_DIR"

_CHUNK = 1 << 16
_LOAD_CACHE_SIZE = 16


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of one dataset.

    Attributes:
        name: registry key, e.g. ``"mhp-pbe"``.
        filename: file name on disk (empty for generated datasets).
        url: pinned download address (empty for generated datasets).
        sha256: expected SHA-256 of the file, lower-case hex (empty if generated).
        rows: number of data rows of the pinned file (``None`` if generated).
        title: one-line human title.
        description: what the table holds.
        citation: full reference(s) to cite when the data is shown or used.
        doi: DOI of the primary reference (without ``https://doi.org/``).
        license: license of the data, as far as the source states it.
        required_columns: columns that :func:`load` checks for.
        kind: ``"file"`` (downloaded / located on disk) or ``"generated"``.
        targets: target column -> unit, e.g. ``{"Gap": "eV"}``.
    """

    name: str
    filename: str
    url: str
    sha256: str
    rows: int | None
    title: str
    description: str
    citation: str
    doi: str
    license: str
    required_columns: tuple[str, ...]
    kind: str = "file"
    targets: dict[str, str] = field(default_factory=dict, hash=False, compare=True)


_MANNODI = (
    "A. Mannodi-Kanakkithodi, M. K. Y. Chan, \"Data-driven design of novel halide perovskite alloys\", "
    "Energy Environ. Sci. 15, 1930 (2022), doi:10.1039/D1EE02971A. "
    "Data: github.com/mannodiarun/perovs_mfml_ga"
)
_JACOBSSON = (
    "T. J. Jacobsson et al., \"An open-access database and analysis tool for perovskite solar cells "
    "based on the FAIR data principles\", Nat. Energy 7, 107 (2022), doi:10.1038/s41560-021-00941-3"
)
_NESTEDAE = (
    "N. K. Thota, M. Sharma Priyadarshini, R. Hernandez, \"NestedAE: interpretable nested autoencoders "
    "for multi-scale materials characterization\", Mater. Horiz. 11, 700 (2024), doi:10.1039/D3MH01484C. "
    "Code and curated data: github.com/rxhernandez/NestedAE"
)
_SHORT_CITATION: dict[str, str] = {
    "mhp-pbe-paper": "Mannodi-Kanakkithodi & Chan 2022; Thota et al. 2024",
    "mhp-pbe": "Mannodi-Kanakkithodi & Chan 2022",
    "mhp-hse": "Mannodi-Kanakkithodi & Chan 2022",
    "psc-devices": "Jacobsson et al. 2022; Thota et al. 2024",
    "elem-prop": "Mannodi-Kanakkithodi & Chan 2022",
    "synthetic": "NestedAE Studio (generated)",
}

#: The 36 composition-weighted site descriptors of the alloy tables (A_ion_rad ... X_period).
MHP_DESCRIPTOR_COLUMNS: tuple[str, ...] = DESCRIPTORS
#: The 15 site descriptors of the device table, as spelled in the file (note ``X_atom_wt``).
DEVICE_DESCRIPTOR_COLUMNS: tuple[str, ...] = (
    "A_ion_rad", "A_at_wt", "A_EA", "A_IE", "A_En",
    "B_ion_rad", "B_at_wt", "B_EA", "B_IE", "B_En",
    "X_ion_rad", "X_atom_wt", "X_EA", "X_IE", "X_En",
)

_MHP_BASE = ("Formula", "Gap", "Decomp") + SITE_FRACTION_COLUMNS + MHP_DESCRIPTOR_COLUMNS
_MHP_TARGETS = {"Gap": "eV", "Decomp": "eV/f.u."}
_MANNODI_RAW = "https://raw.githubusercontent.com/mannodiarun/perovs_mfml_ga/0a8994b7c260814a50154c48d906c286f6ddeaa6"
_NESTEDAE_RAW = "https://raw.githubusercontent.com/rxhernandez/NestedAE"

#: All known datasets, by name.
REGISTRY: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="mhp-pbe-paper",
            filename="PSC_bandgaps_dataset.csv",
            url=f"{_NESTEDAE_RAW}/0742402523423f7cc88e6f634559da613c4d182c/datasets/PSC_bandgaps/PSC_bandgaps_dataset.csv",
            sha256="667899210f6830cdb624379be330ff21b38dd8259434e59369c1c1f1681c8485",
            rows=494,
            title="Halide perovskite alloys, GGA-PBE (NestedAE paper's stage-1 file)",
            description=(
                "The exact stage-1 file of the NestedAE paper: an earlier release of the PBE alloy data "
                "(no phase columns, no repeated formulas); band gap Gap (eV), decomposition energy Decomp "
                "(eV/f.u.), SLME, 14 site fractions and 36 composition-weighted site properties."
            ),
            citation=f"{_MANNODI}; {_NESTEDAE}",
            doi="10.1039/D1EE02971A",
            license="file from the NestedAE repository (MIT); the original data repository states no license, cite the paper",
            required_columns=_MHP_BASE,
            kind="file",
            targets=dict(_MHP_TARGETS),
        ),
        DatasetInfo(
            name="mhp-pbe",
            filename="PBE_data.csv",
            url=f"{_MANNODI_RAW}/PBE_data.csv",
            sha256="70666a72b3c6fc1e6a23f9237e82dd53f75bbbd2be3b253a031364517deb5c19",
            rows=570,
            title="Halide perovskite alloys, GGA-PBE (with phases)",
            description=(
                "DFT (GGA-PBE) halide perovskite alloys ABX3: decomposition energy Decomp (eV/f.u.), band gap "
                "Gap (eV), SLME; 14 site fractions; phase one-hot Cubic/Tetra/Ortho/Hex (97 formulas in more "
                "than one phase); 36 composition-weighted site properties."
            ),
            citation=_MANNODI,
            doi="10.1039/D1EE02971A",
            license="no license stated by the data repository; cite the paper",
            required_columns=_MHP_BASE + PHASE_COLUMNS,
            kind="file",
            targets=dict(_MHP_TARGETS),
        ),
        DatasetInfo(
            name="mhp-hse",
            filename="HSE_data.csv",
            url=f"{_MANNODI_RAW}/HSE_data.csv",
            sha256="4b7b6b6b4d37ba167070cda4229304b31fa61d3ec6cb8749b3e184c452a1790e",
            rows=347,
            title="Halide perovskite alloys, HSE06 (with phases)",
            description=(
                "Same layout as mhp-pbe at the HSE06 hybrid-functional level (higher fidelity, fewer rows)."
            ),
            citation=_MANNODI,
            doi="10.1039/D1EE02971A",
            license="no license stated by the data repository; cite the paper",
            required_columns=_MHP_BASE + PHASE_COLUMNS,
            kind="file",
            targets=dict(_MHP_TARGETS),
        ),
        DatasetInfo(
            name="psc-devices",
            filename="PSC_efficiencies_dataset.csv",
            url=f"{_NESTEDAE_RAW}/59781bf4421d0fe57acdfaf61650abecea20fb6a/datasets/PSC_efficiencies/PSC_efficiencies_dataset.csv",
            sha256="8656a8eadbc8b0a7e565da2630491d049b94de53d1c6aa5b09fb9884d2b772ef",
            rows=2018,
            title="Perovskite solar cells (3D, spin-coated), curated by the NestedAE authors",
            description=(
                "Devices from the Perovskite Database Project: composition, 15 composition-weighted site "
                "properties, tolerance and octahedral factors, measured band gap where reported, ETL and HTL "
                "stacks, reverse-scan JV results (Voc V, Jsc mA/cm2, FF, PCE %)."
            ),
            citation=f"{_JACOBSSON}; {_NESTEDAE}",
            doi="10.1038/s41560-021-00941-3",
            license="CC BY 4.0 (Perovskite Database); curated file from the NestedAE repository (MIT)",
            required_columns=(
                (DEVICE_COMPOSITION,)
                + DEVICE_DESCRIPTOR_COLUMNS
                + (
                    "Tolerance Factor",
                    "Octahedral Factor",
                    MEASURED_BANDGAP,
                    ETL,
                    HTL,
                    VOC,
                    JSC,
                    FF,
                    PCE,
                )
            ),
            kind="file",
            targets={
                PCE: "%",
                VOC: "V",
                JSC: "mA/cm2",
                FF: "fraction",
            },
        ),
        DatasetInfo(
            name="elem-prop",
            filename="Elem_prop.xlsx",
            url=f"{_MANNODI_RAW}/Elem_prop.xlsx",
            sha256="5aaf9eb00d7d555e88debd0567b7e4d2d317d8daa9a69eb423d0de74f743ae3e",
            rows=12,
            title="Per-ion property table (14 ions)",
            description=(
                "Ionic radius, boiling/melting point, density, atomic weight, electron affinity, ionization "
                "energy, heats of fusion/vaporization, electronegativity, atomic number and period of the 14 "
                "ions (effective values for MA and FA); one row per property, one column per ion."
            ),
            citation=_MANNODI,
            doi="10.1039/D1EE02971A",
            license="no license stated by the data repository; cite the paper",
            required_columns=("Prop",) + SITE_FRACTION_COLUMNS,
            kind="file",
            targets={},
        ),
        DatasetInfo(
            name="synthetic",
            filename="",
            url="",
            sha256="",
            rows=None,
            title="Synthetic multi-scale dataset with known ground truth",
            description=(
                "Generated on demand by nestedae_core.synthetic: materials whose properties follow known "
                "functions of their descriptors, for teaching and for testing what NestedAE and SHAP recover."
            ),
            citation="NestedAE Studio synthetic data (generated locally, no external source)",
            doi="",
            license="MIT (generated by this project)",
            required_columns=("y1",),
            kind="generated",
            targets={"y1": "a.u."},
        ),
    )
}


def dataset_info(name: str) -> DatasetInfo:
    """Return the registry entry of ``name``; raise :class:`DataError` for an unknown name."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        close = get_close_matches(str(name), list(REGISTRY), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise DataError(
            f"unknown dataset '{name}'{hint}; known datasets: {', '.join(REGISTRY)}"
        ) from None


def cache_dir() -> Path:
    """Folder where :func:`fetch` stores downloads (not created here).

    ``$NESTEDAE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/nestedae``, else ``~/.cache/nestedae``.
    """
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "nestedae"
    return Path.home() / ".cache" / "nestedae"


def citation_text(name: str) -> str:
    """Text to show wherever dataset ``name`` is shown: what it is, what to cite, source and license."""
    info = dataset_info(name)
    lines = [f"{info.title}.", f"Please cite: {info.citation}."]
    if info.url:
        lines.append(f"Source: {info.url} (SHA-256 {info.sha256}).")
    lines.append(f"License: {info.license}.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- hashing / locating

_hash_lock = threading.Lock()
_hash_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the file at ``path``, as lower-case hex (read in chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cached_sha256(path: Path) -> str:
    """SHA-256 of ``path``, memoised per (resolved path, size, mtime) for this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _hash_lock:
        known = _hash_cache.get(key)
    if known is not None:
        return known
    logger.debug("computing SHA-256 of %s", path)
    digest = file_sha256(path)
    with _hash_lock:
        _hash_cache[key] = digest
    return digest


def _fix_hint(info: DatasetInfo) -> str:
    return f"set {DATA_DIR_ENV} to a folder holding it or run `nestedae data fetch {info.name}`"


def _missing_message(info: DatasetInfo) -> str:
    return (
        f"dataset '{info.name}' ({info.filename}) is not available locally; pinned URL: {info.url}; "
        f"{_fix_hint(info)}"
    )


def _verify(info: DatasetInfo, path: Path, origin: str) -> None:
    """Raise :class:`DataError` if ``path`` (found in ``origin``) does not match the pinned hash."""
    try:
        actual = _cached_sha256(path)
    except OSError as exc:
        raise DataError(
            f"cannot read {path} ({origin}) for dataset '{info.name}': {exc.strerror or exc}; "
            "check its permissions or delete it"
        ) from None
    if actual != info.sha256:
        if origin == "cache":
            todo = f"delete it or re-download it with `nestedae data fetch {info.name} --force`"
        else:
            todo = (
                f"delete it or replace it with the pinned file from {info.url} "
                "(to use your own version pass its path explicitly)"
            )
        raise DataError(
            f"{path} (from {origin}) does not match dataset '{info.name}': SHA-256 is {actual}, "
            f"expected {info.sha256}; {todo}"
        )


def _registry_candidates(info: DatasetInfo) -> list[tuple[str, Path]]:
    """The hash-checked places of ``info``'s file: ($NESTEDAE_DATA_DIR, cache), in lookup order."""
    out: list[tuple[str, Path]] = []
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        out.append((DATA_DIR_ENV, Path(env).expanduser() / info.filename))
    out.append(("cache", cache_dir() / info.filename))
    return out


def _explicit(info: DatasetInfo, path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    if p.is_dir():
        candidate = p / info.filename
        if candidate.is_file():
            return candidate
        raise DataMissingError(
            f"folder {p} does not hold {info.filename} (dataset '{info.name}'); "
            "pass the file itself or a folder that contains it"
        )
    if p.is_file():
        return p
    raise DataMissingError(
        f"file {p} given for dataset '{info.name}' does not exist; check the path or leave it out "
        f"to use {DATA_DIR_ENV} or the download cache"
    )


def locate(name: str, path: str | os.PathLike[str] | None = None) -> Path | None:
    """Find the file of dataset ``name`` on disk; never downloads.

    Lookup order: explicit ``path`` (a file, or a folder holding the file; not
    hash-checked), then ``$NESTEDAE_DATA_DIR/<filename>``, then
    ``cache_dir()/<filename>``. Returns ``None`` when the file is nowhere (and
    always for generated datasets).

    Raises:
        DataError: unknown name, or a file in the data folder / cache whose
            SHA-256 differs from the registry.
        DataMissingError: an explicit ``path`` that does not exist or lacks the file.
    """
    info = dataset_info(name)
    if info.kind == "generated":
        return None
    if path is not None:
        return _explicit(info, path)
    for origin, candidate in _registry_candidates(info):
        if candidate.is_file():
            _verify(info, candidate, origin)
            logger.debug("dataset %s found in %s: %s", name, origin, candidate)
            return candidate
    return None


# --------------------------------------------------------------------------- fetching


def fetch(
    name: str,
    *,
    progress: Callable[[int, int | None], None] | None = None,
    timeout: float = 30.0,
    force: bool = False,
) -> Path:
    """Download dataset ``name`` from its pinned URL into :func:`cache_dir` and verify it.

    The file is written to a temporary file in the cache folder and moved into
    place with :func:`os.replace` only after its SHA-256 matched, so a failed or
    interrupted download never leaves a partial or wrong file behind (and never
    replaces a good one). ``file://`` URLs work too.

    Args:
        name: dataset name (see :data:`REGISTRY`).
        progress: called as ``progress(bytes_done, total_bytes_or_None)`` after each chunk.
        timeout: socket timeout in seconds.
        force: download even when a verified copy is already in the cache.

    Returns:
        Path of the verified file in the cache.

    Raises:
        DataMissingError: the address cannot be reached (offline, HTTP error, timeout).
        DataError: generated dataset, downloaded bytes fail the checksum, cache not writable.
    """
    info = dataset_info(name)
    if info.kind == "generated":
        raise DataError(f"dataset '{name}' is generated on demand and has nothing to download; use load('{name}')")
    folder = cache_dir()
    target = folder / info.filename
    if not force and target.is_file():
        try:
            _verify(info, target, "cache")
        except DataError:
            logger.info("cached %s fails its checksum; downloading it again", target)
        else:
            logger.info("dataset %s already in cache: %s", name, target)
            return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{info.filename}.", suffix=".part")
    except OSError as exc:
        raise DataError(
            f"cannot write to cache folder {folder}: {exc.strerror or exc}; set {CACHE_DIR_ENV} to a writable folder"
        ) from None
    tmp = Path(tmp_name)
    done = False
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _download(info, out, progress=progress, timeout=timeout)
        if digest != info.sha256:
            raise DataError(
                f"download of dataset '{name}' from {info.url} has SHA-256 {digest}, expected {info.sha256}; "
                f"nothing was saved; try again, or get the file by other means and set {DATA_DIR_ENV}"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        done = True
    finally:
        if not done:
            tmp.unlink(missing_ok=True)
    st = target.stat()
    with _hash_lock:
        _hash_cache[(str(target.resolve()), st.st_size, st.st_mtime_ns)] = info.sha256
    logger.info("dataset %s saved to %s", name, target)
    return target


def _download(
    info: DatasetInfo,
    out: BinaryIO,
    *,
    progress: Callable[[int, int | None], None] | None,
    timeout: float,
) -> str:
    """Stream ``info.url`` into the binary file ``out``; return the SHA-256 of the bytes."""

    def offline(reason: object) -> DataMissingError:
        return DataMissingError(
            f"cannot download dataset '{info.name}' from {info.url} ({reason}); if this machine is offline, "
            f"copy {info.filename} into a folder and set {DATA_DIR_ENV} to it"
        )

    logger.info("downloading dataset %s from %s", info.name, info.url)
    request = urllib.request.Request(info.url, headers={"User-Agent": "nestedae-core"})
    digest = hashlib.sha256()
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (pinned https/file URLs)
    except urllib.error.HTTPError as exc:
        raise offline(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise offline(exc.reason) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise offline(exc) from None
    with response:
        length = response.headers.get("Content-Length") if response.headers else None
        total = int(length) if length and str(length).isdigit() else None
        received = 0
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise offline(f"connection lost after {received} bytes: {exc}") from None
            if not chunk:
                break
            try:
                out.write(chunk)
            except OSError as exc:
                raise DataError(
                    f"cannot write dataset '{info.name}' to the cache: {exc.strerror or exc}; "
                    f"free some space or set {CACHE_DIR_ENV} to another folder"
                ) from None
            digest.update(chunk)
            received += len(chunk)
            if progress is not None:
                progress(received, total)
    return digest.hexdigest()


# --------------------------------------------------------------------------- loading

_load_lock = threading.Lock()
_load_cache: "OrderedDict[tuple[str, str, int, int], pd.DataFrame]" = OrderedDict()


def _normalise(column: str) -> str:
    return re.sub(r"[\s_\-]+", "", column).lower()


def validate_schema(df: "pd.DataFrame", required: Sequence[str], dataset: str) -> None:
    """Raise :class:`SchemaError` if ``df`` lacks any of the ``required`` columns.

    The message lists every missing column and, where the table has a near-miss
    (different case, spacing or a close spelling), suggests it.
    """
    present = [str(c) for c in df.columns]
    present_set = set(present)
    missing = [c for c in required if c not in present_set]
    if not missing:
        return
    by_norm: dict[str, str] = {}
    for col in present:
        by_norm.setdefault(_normalise(col), col)
    hints = []
    for col in missing:
        near = by_norm.get(_normalise(col))
        if near is None:
            close = get_close_matches(col, present, n=1, cutoff=0.85)
            near = close[0] if close else None
        if near is not None:
            hints.append(f"'{near}' for '{col}'")
    hint = f" (found similar: {', '.join(hints)}; rename them)" if hints else ""
    raise SchemaError(
        f"dataset '{dataset}' lacks {len(missing)} required column(s): {', '.join(repr(c) for c in missing)}"
        f"{hint}; check that the file is the right one (see `nestedae data list`)"
    )


def _read_table(info: DatasetInfo, path: Path) -> "pd.DataFrame":
    import pandas as pd

    try:
        if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            return pd.read_excel(path, engine="openpyxl" if path.suffix.lower() != ".xls" else None)
        return pd.read_csv(path)
    except ImportError as exc:
        raise DataError(
            f"reading {path.name} for dataset '{info.name}' needs {exc.name or 'openpyxl'}; install it (pip install openpyxl)"
        ) from None
    except OSError as exc:
        raise DataError(f"cannot read {path} for dataset '{info.name}': {exc.strerror or exc}") from None
    except Exception as exc:  # parser errors of pandas / openpyxl / zipfile
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"cannot parse {path} as dataset '{info.name}' ({type(exc).__name__}: {first}); "
            f"check that it is the file from {info.url or 'the registry'}"
        ) from None


def _load_synthetic() -> "pd.DataFrame":
    try:
        synthetic = importlib.import_module("nestedae_core.synthetic")
    except ModuleNotFoundError as exc:
        if exc.name == "nestedae_core.synthetic":
            raise DataError(
                "dataset 'synthetic' needs the module nestedae_core.synthetic, which is not installed; "
                "update nestedae-core"
            ) from None
        raise
    return synthetic.generate().materials


def load(name: str, path: str | os.PathLike[str] | None = None, *, download: bool = True) -> "pd.DataFrame":
    """Load dataset ``name`` as a DataFrame (a fresh copy on every call).

    Locates the file (see :func:`locate`), downloads it with :func:`fetch` when
    it is nowhere and ``download`` is true, reads it and checks its schema.
    For ``psc-devices`` a canonical ``X_at_wt`` column (equal to ``X_atom_wt``)
    is added. ``synthetic`` is generated by :mod:`nestedae_core.synthetic`.

    Raises:
        DataMissingError: the file is not available and cannot (or may not) be downloaded.
        DataError: bad checksum, unreadable file.
        SchemaError: required columns are missing.
    """
    info = dataset_info(name)
    if info.kind == "generated":
        df = _load_synthetic()
        validate_schema(df, info.required_columns, name)
        return df
    found = locate(name, path)
    if found is None:
        if not download:
            raise DataMissingError(_missing_message(info))
        found = fetch(name)
    resolved = found.resolve()
    st = resolved.stat()
    key = (name, str(resolved), st.st_mtime_ns, st.st_size)
    with _load_lock:
        cached = _load_cache.get(key)
        if cached is not None:
            _load_cache.move_to_end(key)
            return cached.copy()
    df = _read_table(info, found)
    validate_schema(df, info.required_columns, name)
    if info.name == "psc-devices" and "X_at_wt" not in df.columns:
        df.insert(df.columns.get_loc("X_atom_wt") + 1, "X_at_wt", df["X_atom_wt"])
    if path is None and info.rows is not None and len(df) != info.rows:  # pragma: no cover - hash-verified
        logger.warning("dataset %s has %d rows, registry says %d", name, len(df), info.rows)
    logger.debug("loaded dataset %s from %s: %d rows x %d columns", name, found, len(df), df.shape[1])
    with _load_lock:
        _load_cache[key] = df
        while len(_load_cache) > _LOAD_CACHE_SIZE:
            _load_cache.popitem(last=False)
    return df.copy()


def reset_caches() -> None:
    """Forget memoised hashes and loaded tables (for tests)."""
    with _hash_lock:
        _hash_cache.clear()
    with _load_lock:
        _load_cache.clear()


# --------------------------------------------------------------------------- status


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
    def make(path: Path | None, available: bool, message: str) -> DatasetStatus:
        return DatasetStatus(info.name, info.title, info.rows, path, available, info.citation, info.url, message)

    if info.kind == "generated":
        try:
            importable = importlib.util.find_spec("nestedae_core.synthetic") is not None
        except (ImportError, ValueError):
            importable = False
        if importable:
            return make(None, True, "generated on demand by nestedae_core.synthetic")
        return make(None, False, "needs the module nestedae_core.synthetic, which is not installed")
    for origin, candidate in _registry_candidates(info):
        if not candidate.is_file():
            continue
        try:
            _verify(info, candidate, origin)
        except DataError as exc:
            return make(candidate, False, str(exc))
        where = f"{DATA_DIR_ENV} folder" if origin == DATA_DIR_ENV else "download cache"
        return make(candidate, True, f"found in the {where}")
    return make(None, False, f"missing: {_fix_hint(info)}")


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


def _short_citation(name: str) -> str:
    """Short form of the citation of ``name`` for tables (e.g. 'Mannodi-Kanakkithodi & Chan 2022')."""
    return _SHORT_CITATION.get(name, dataset_info(name).citation.split(",")[0])
