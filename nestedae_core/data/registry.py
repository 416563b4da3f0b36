"""The dataset registry: what each dataset is, where it is published and whom to cite.

Every dataset the project uses is a public file pinned to a commit and a SHA-256
(see :data:`REGISTRY`), or is derived from such files by code at load time
(``kind="derived"``, :mod:`.derived`), or generated (``synthetic``); nothing is
shipped with the package. Where a file is looked for and how it is checked is in
:mod:`.files`, downloading in :mod:`.download`, reading in :mod:`.loading`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from difflib import get_close_matches

from ..errors import DataError
from ..vocabulary import (
    BANDGAP_HSE,
    BANDGAP_PBE,
    BANDGAP_PBE_DFT,
    COMPOSITION_KEY,
    DECOMPOSITION,
    DESCRIPTORS,
    DEVICE_COMPOSITION,
    ETL,
    FF,
    FORMULA,
    GAP_DEVICES,
    GAP_SPREAD,
    HTL,
    JSC,
    MEASURED_BANDGAP,
    PAPER_DESCRIPTORS,
    PCE,
    PHASE,
    PHASE_COLUMNS,
    SITE_FRACTION_COLUMNS,
    VOC,
)

__all__ = [
    "DATA_DIR_ENV",
    "CACHE_DIR_ENV",
    "DatasetInfo",
    "REGISTRY",
    "DEVICE_DESCRIPTOR_COLUMNS",
    "DEVICE_FILE_SPELLINGS",
    "citation_text",
    "dataset_info",
    "derived_from_text",
    "short_citation",
]

#: Environment variable naming a folder that holds the dataset files (offline use, CI).
DATA_DIR_ENV = "NESTEDAE_DATA_DIR"
#: Environment variable overriding the download cache folder.
CACHE_DIR_ENV = "NESTEDAE_CACHE_DIR"


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of one dataset.

    Attributes:
        name: registry key, e.g. ``"mhp-pbe"``.
        filename: file name on disk (empty for generated and derived datasets).
        url: pinned download address (empty for generated and derived datasets).
        sha256: expected SHA-256 of the file, lower-case hex (empty if generated or derived).
        rows: number of data rows of the pinned file, or of the table derived
            from the pinned sources (``None`` if generated).
        title: one-line human title.
        description: what the table holds.
        citation: full reference(s) to cite when the data is shown or used.
        doi: DOI of the primary reference (without ``https://doi.org/``).
        license: license of the data, as far as the source states it.
        required_columns: columns that :func:`load` checks for.
        kind: ``"file"`` (downloaded / located on disk), ``"derived"`` (computed
            at load time from the datasets in ``sources``, see :mod:`.derived`)
            or ``"generated"``.
        targets: target column -> unit, e.g. ``{"Gap": "eV"}``.
        sources: for a derived dataset, the registry datasets it is computed from.
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
    sources: tuple[str, ...] = ()


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
    "psc-gaps": "Jacobsson et al. 2022; Thota et al. 2024",
    "mhp-dft": "Mannodi-Kanakkithodi & Chan 2022",
    "elem-prop": "Mannodi-Kanakkithodi & Chan 2022",
    "synthetic": "NestedAE Studio (generated)",
}

#: Columns the device file spells differently: vocabulary name -> name in the file.
#: :func:`nestedae_core.data.load` adds the vocabulary's column next to the file's.
DEVICE_FILE_SPELLINGS: dict[str, str] = {"X_at_wt": "X_atom_wt"}
#: The 15 site descriptors of the device table, as spelled in the file (note ``X_atom_wt``).
DEVICE_DESCRIPTOR_COLUMNS: tuple[str, ...] = tuple(DEVICE_FILE_SPELLINGS.get(c, c) for c in PAPER_DESCRIPTORS)

_MHP_BASE = (FORMULA, BANDGAP_PBE, DECOMPOSITION) + SITE_FRACTION_COLUMNS + DESCRIPTORS  # the 36 site descriptors
_MHP_TARGETS = {BANDGAP_PBE: "eV", DECOMPOSITION: "eV/f.u."}
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
            name="mhp-dft",
            filename="",
            url="",
            sha256="",
            rows=568,
            title="Halide perovskite alloys, PBE and HSE06 band gaps merged (derived)",
            description=(
                "Derived at load time from mhp-pbe and mhp-hse: one row per formula and phase with the PBE band "
                "gap Gap_PBE and the HSE06 band gap Gap_HSE (eV; empty where that functional was not computed: "
                "345 rows have both, 223 PBE only), the phase as one column (Cubic/Tetra/Ortho/Hex), the 14 site "
                "fractions and the site descriptors and factors recomputed from the fractions by our featurizer. "
                "A formula and phase listed twice in one file (two structures) gets the mean of its gaps."
            ),
            citation=_MANNODI,
            doi="10.1039/D1EE02971A",
            license="derived from files whose data repository states no license; cite the paper",
            required_columns=(FORMULA, PHASE, BANDGAP_PBE_DFT, BANDGAP_HSE) + SITE_FRACTION_COLUMNS + DESCRIPTORS,
            kind="derived",
            targets={BANDGAP_PBE_DFT: "eV", BANDGAP_HSE: "eV"},
            sources=("mhp-pbe", "mhp-hse"),
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
            name="psc-gaps",
            filename="",
            url="",
            sha256="",
            rows=151,
            title="Measured band gaps per composition, from the solar-cell devices (derived)",
            description=(
                "Derived at load time from psc-devices: one row per composition among the 1429 devices that report "
                "a measured band gap (compositions parsed and grouped by their site fractions, so one composition "
                "written two ways is one row): the median measured gap Perovskite_band_gap (eV), its standard "
                "deviation over the devices gap_sd (eV; 0 for one device), the number of devices n_devices, the "
                "14 site fractions, the site descriptors and factors of our featurizer, and phase = Cubic (assumed: "
                "absorbers taken in their cubic or pseudo-cubic phase). Label quality (nestedae_core.data.gap_quality): "
                "gap_basis (how the devices' gaps were obtained), label_quality (ok, suspect, outlier against the "
                "composition's neighbours and a leave-one-out Vegard-plus-bowing fit), label_reason and the training "
                "weight label_weight (0 for an outlier, 1 otherwise)."
            ),
            citation=f"{_JACOBSSON}; {_NESTEDAE}",
            doi="10.1038/s41560-021-00941-3",
            license="derived from CC BY 4.0 data (Perovskite Database) curated by the NestedAE authors (MIT)",
            required_columns=(COMPOSITION_KEY, FORMULA, MEASURED_BANDGAP, GAP_SPREAD, GAP_DEVICES, PHASE)
            + SITE_FRACTION_COLUMNS
            + DESCRIPTORS,
            kind="derived",
            targets={MEASURED_BANDGAP: "eV"},
            sources=("psc-devices",),
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
                "Generated on demand by nestedae_core.data.synthetic: materials whose properties follow known "
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


def derived_from_text(name: str) -> str:
    """For a derived dataset, what it is computed from, e.g. 'derived at load time from psc-devices
    (PSC_efficiencies_dataset.csv)'; an empty string for other datasets."""
    info = dataset_info(name)
    if info.kind != "derived":
        return ""
    parts = [f"{source} ({dataset_info(source).filename})" for source in info.sources]
    return "derived at load time from " + " and ".join(parts)


def citation_text(name: str) -> str:
    """Text to show wherever dataset ``name`` is shown: what it is, what to cite, source and license."""
    info = dataset_info(name)
    lines = [f"{info.title}.", f"Please cite: {info.citation}."]
    if info.url:
        lines.append(f"Source: {info.url} (SHA-256 {info.sha256}).")
    if info.kind == "derived":
        pinned = "; ".join(
            f"{dataset_info(source).url} (SHA-256 {dataset_info(source).sha256})" for source in info.sources
        )
        lines.append(f"Source: {derived_from_text(name)} by nestedae_core.data.derived; files: {pinned}.")
    lines.append(f"License: {info.license}.")
    return "\n".join(lines)


def short_citation(name: str) -> str:
    """Short form of the citation of dataset ``name`` for tables (e.g. 'Mannodi-Kanakkithodi & Chan 2022')."""
    return _SHORT_CITATION.get(name, dataset_info(name).citation.split(",")[0])
