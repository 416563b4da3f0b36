"""The shared vocabulary of the perovskite domain: ions, column names, labels and units.

Every module that names an ion, a dataset column or a quantity imports it from
here, so a spelling lives in one place. Nothing here computes anything.

Units: ionic radius Å, atomic weight u, energies kJ/mol, electronegativity on
the Pauling scale, band gaps eV, Voc V, Jsc mA/cm2, FF a fraction, PCE %.
"""
from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "A_SITE_IONS",
    "B_SITE_IONS",
    "X_SITE_IONS",
    "IONS",
    "SITE_OF_ION",
    "SITE_IONS",
    "SITE_SLICES",
    "SITE_TOTALS",
    "SITE_FRACTION_COLUMNS",
    "SITE_FRACTION_UNIT",
    "SITE_FRACTION_LABELS",
    "PHASE_LABEL",
    "PHASE_NAMES",
    "DEFAULT_PHASE",
    "FIDELITY_LABELS",
    "DFT_FIDELITIES",
    "DECOMPOSITION_MEANING",
    "PROPERTY_KEYS",
    "PROPERTY_UNITS",
    "PROPERTY_LABELS",
    "DESCRIPTORS",
    "PAPER_DESCRIPTORS",
    "FACTOR_COLUMNS",
    "DESCRIPTOR_UNITS",
    "DESCRIPTOR_LABELS",
    "PHASE_COLUMNS",
    "FORMULA",
    "BANDGAP_PBE",
    "BANDGAP_PBE_DFT",
    "BANDGAP_HSE",
    "PHASE",
    "FIDELITIES",
    "COMPOSITION_KEY",
    "GAP_SPREAD",
    "GAP_DEVICES",
    "LABEL_WEIGHT",
    "DECOMPOSITION",
    "SLME",
    "DEVICE_COMPOSITION",
    "MEASURED_BANDGAP",
    "ETL",
    "HTL",
    "SUBSTRATE",
    "STACK_COLUMNS",
    "PCE",
    "VOC",
    "JSC",
    "FF",
    "DEVICE_TARGETS",
    "DEVICE_TOLERANCE_FACTOR",
    "DEVICE_OCTAHEDRAL_FACTOR",
    "DEVICE_GROUP_COLUMNS",
    "LABEL_COLUMNS",
    "QUANTITIES",
    "JSON_NAMES",
    "label",
    "unit",
    "display",
    "input_groups",
]

# --------------------------------------------------------------------------- ions and sites

#: A-site cations (MA = methylammonium CH3NH3+, FA = formamidinium CH(NH2)2+).
A_SITE_IONS: tuple[str, ...] = ("K", "Rb", "Cs", "MA", "FA")
#: B-site cations.
B_SITE_IONS: tuple[str, ...] = ("Ca", "Sr", "Ba", "Ge", "Sn", "Pb")
#: X-site halide anions.
X_SITE_IONS: tuple[str, ...] = ("Cl", "Br", "I")
#: The 14 ions in the column order of the data sets (A, then B, then X).
IONS: tuple[str, ...] = A_SITE_IONS + B_SITE_IONS + X_SITE_IONS
#: Site ('A', 'B' or 'X') of each ion; every ion belongs to exactly one site.
SITE_OF_ION: dict[str, str] = {
    **{ion: "A" for ion in A_SITE_IONS},
    **{ion: "B" for ion in B_SITE_IONS},
    **{ion: "X" for ion in X_SITE_IONS},
}
#: Ions of each site, in IONS order.
SITE_IONS: dict[str, tuple[str, ...]] = {"A": A_SITE_IONS, "B": B_SITE_IONS, "X": X_SITE_IONS}
#: Where each site's ions sit in :data:`IONS` (and in a 14-fraction vector): ``{"A": slice(0, 5), ...}``, derived from the ion lists.
SITE_SLICES: dict[str, slice] = {
    site: slice(IONS.index(ions[0]), IONS.index(ions[-1]) + 1) for site, ions in (("A", A_SITE_IONS), ("B", B_SITE_IONS), ("X", X_SITE_IONS))
}
#: Nominal amount per formula unit of each site (ABX3).
SITE_TOTALS: dict[str, float] = {"A": 1.0, "B": 1.0, "X": 3.0}
#: The 14 site-fraction columns of the alloy tables: one per ion, named by the ion.
SITE_FRACTION_COLUMNS: tuple[str, ...] = IONS
#: Unit of a site fraction (moles of the ion per mole of its site; X amounts are divided by 3).
SITE_FRACTION_UNIT = "mol/mol"
#: Readable name of each site-fraction column, e.g. ``"Sn fraction of the B site"``.
SITE_FRACTION_LABELS: dict[str, str] = {ion: f"{ion} fraction of the {SITE_OF_ION[ion]} site" for ion in IONS}

# --------------------------------------------------------------------------- ion properties and descriptors

#: Property keys, in the column order of Elem_prop.xlsx and of the descriptor suffixes.
PROPERTY_KEYS: tuple[str, ...] = ("ion_rad", "BP", "MP", "dens", "at_wt", "EA", "IE", "hof", "hov", "En", "at_num", "period")

#: Unit of each property ("" for dimensionless).
PROPERTY_UNITS: dict[str, str] = {
    "ion_rad": "Å",
    "BP": "K",
    "MP": "K",
    "dens": "g/cm³",
    "at_wt": "u",
    "EA": "kJ/mol",
    "IE": "kJ/mol",
    "hof": "kJ/mol",
    "hov": "kJ/mol",
    "En": "Pauling",
    "at_num": "",
    "period": "",
}

#: Human-readable name of each property.
PROPERTY_LABELS: dict[str, str] = {
    "ion_rad": "ionic radius",
    "BP": "boiling point",
    "MP": "melting point",
    "dens": "density",
    "at_wt": "atomic weight",
    "EA": "electron affinity",
    "IE": "ionization energy",
    "hof": "heat of fusion",
    "hov": "heat of vaporization",
    "En": "electronegativity",
    "at_num": "atomic number",
    "period": "period",
}

#: The 36 site descriptors (composition-weighted ion properties), in the column order of PBE_data.csv.
DESCRIPTORS: tuple[str, ...] = tuple(f"{site}_{key}" for site in ("A", "B", "X") for key in PROPERTY_KEYS)

#: The 15 descriptors of the NestedAE paper's stage 1 (and of the device data set).
PAPER_DESCRIPTORS: tuple[str, ...] = tuple(
    f"{site}_{key}" for site in ("A", "B", "X") for key in ("ion_rad", "at_wt", "EA", "IE", "En")
)

#: The two structural factors appended to the descriptors.
FACTOR_COLUMNS: tuple[str, ...] = ("tolerance_factor", "octahedral_factor")

#: Unit of each descriptor and factor ("" for dimensionless).
DESCRIPTOR_UNITS: dict[str, str] = {
    **{f"{site}_{key}": PROPERTY_UNITS[key] for site in ("A", "B", "X") for key in PROPERTY_KEYS},
    "tolerance_factor": "",
    "octahedral_factor": "",
}

#: Human-readable label of each descriptor and factor, e.g. "A-site ionic radius".
DESCRIPTOR_LABELS: dict[str, str] = {
    **{f"{site}_{key}": f"{site}-site {PROPERTY_LABELS[key]}" for site in ("A", "B", "X") for key in PROPERTY_KEYS},
    "tolerance_factor": "Goldschmidt tolerance factor",
    "octahedral_factor": "octahedral factor",
}

# --------------------------------------------------------------------------- dataset columns

#: Phase one-hot columns of the newer alloy releases.
PHASE_COLUMNS: tuple[str, ...] = ("Cubic", "Tetra", "Ortho", "Hex")
#: Formula column of the alloy tables.
FORMULA = "Formula"
#: DFT band gap column of the alloy tables (PBE in mhp-pbe*, HSE06 in mhp-hse), eV.
BANDGAP_PBE = "Gap"
#: PBE band gap of the merged DFT table (``mhp-dft``), eV.
BANDGAP_PBE_DFT = "Gap_PBE"
#: HSE06 band gap of the merged DFT table (``mhp-dft``), eV.
BANDGAP_HSE = "Gap_HSE"
#: Crystal phase as one categorical column (Cubic, Tetra, Ortho, Hex).
PHASE = "phase"
#: Readable name of the ``phase`` input (a category: cubic, tetragonal, orthorhombic, hexagonal; no unit).
PHASE_LABEL = "crystal phase"
#: The fidelities a band gap can have: measured on films/devices, DFT-PBE, DFT-HSE06.
FIDELITIES: tuple[str, ...] = ("measured", "PBE", "HSE")
#: The computed (DFT) fidelities: these gaps are for one crystal phase, named with every value.
DFT_FIDELITIES: tuple[str, ...] = ("PBE", "HSE")
#: How each fidelity is written next to a band gap: the HSE06 values of ``HSE_data.csv`` include spin-orbit
#: coupling (every pure-Pb pair sits about 0.5 eV below PBE, Sn and Ge pairs do not), the PBE values do not.
FIDELITY_LABELS: dict[str, str] = {"measured": "measured", "PBE": "DFT PBE (no SOC)", "HSE": "DFT HSE06+SOC"}
#: Readable name of each value of the ``phase`` column (the one-hot columns of the alloy tables).
PHASE_NAMES: dict[str, str] = {"Cubic": "cubic", "Tetra": "tetragonal", "Ortho": "orthorhombic", "Hex": "hexagonal"}
#: The phase a DFT gap is predicted for unless the user picks another (films are taken as cubic or pseudo-cubic).
DEFAULT_PHASE = "Cubic"
#: Key of a composition in derived tables (its canonical formula).
COMPOSITION_KEY = "composition_key"
#: Spread (standard deviation) of the measured band gaps of one composition, eV.
GAP_SPREAD = "gap_sd"
#: Number of devices behind a derived per-composition value.
GAP_DEVICES = "n_devices"
#: Training weight of a derived per-composition label (see nestedae_core.data.gap_quality), dimensionless.
LABEL_WEIGHT = "label_weight"
#: Decomposition energy column of the alloy tables, eV per formula unit.
DECOMPOSITION = "Decomp"
#: What a decomposition energy says, in one line (the sign convention of the alloy tables: KBaCl3 +3.38,
#: FAPbCl3 -1.08 eV/f.u. in ``PBE_data.csv``).
DECOMPOSITION_MEANING = ("DFT energy of the perovskite relative to its decomposition products (eV per formula unit): "
                         "lower is more stable, below 0 it is computed stable against decomposing")
#: Spectroscopic limited maximum efficiency column of the alloy tables (fraction).
SLME = "SLME"
#: Composition column of the device table.
DEVICE_COMPOSITION = "Perovskite_composition_long_form"
#: Measured band gap column of the device table, eV.
MEASURED_BANDGAP = "Perovskite_band_gap"
#: Electron-transport-layer stack column of the device table.
ETL = "ETL_stack_sequence"
#: Hole-transport-layer stack column of the device table.
HTL = "HTL_stack_sequence"
#: Substrate stack column of the device table.
SUBSTRATE = "Substrate_stack_sequence"
#: The two device-stack columns.
STACK_COLUMNS: tuple[str, str] = (ETL, HTL)
#: Reverse-scan power conversion efficiency, %.
PCE = "JV_reverse_scan_PCE"
#: Reverse-scan open-circuit voltage, V.
VOC = "JV_reverse_scan_Voc"
#: Reverse-scan short-circuit current density, mA/cm2.
JSC = "JV_reverse_scan_Jsc"
#: Reverse-scan fill factor (fraction).
FF = "JV_reverse_scan_FF"
#: The device outcomes, PCE first.
DEVICE_TARGETS: tuple[str, ...] = (PCE, VOC, JSC, FF)
#: Goldschmidt tolerance factor as tabulated in the device table (dimensionless).
DEVICE_TOLERANCE_FACTOR = "Tolerance Factor"
#: Octahedral factor as tabulated in the device table (dimensionless).
DEVICE_OCTAHEDRAL_FACTOR = "Octahedral Factor"
#: A device "recipe": composition + ETL + HTL (the groups of a grouped split).
DEVICE_GROUP_COLUMNS: tuple[str, ...] = (DEVICE_COMPOSITION, ETL, HTL)
#: Columns that name a row, first match wins.
LABEL_COLUMNS: tuple[str, ...] = ("formula", FORMULA, DEVICE_COMPOSITION, "material_id", "device_id")

#: Label and unit of each named quantity (dataset columns that are not descriptors).
QUANTITIES: dict[str, tuple[str, str]] = {
    BANDGAP_PBE: ("band gap", "eV"),
    BANDGAP_PBE_DFT: (f"band gap, {FIDELITY_LABELS['PBE']}", "eV"),
    BANDGAP_HSE: (f"band gap, {FIDELITY_LABELS['HSE']}", "eV"),
    GAP_SPREAD: ("measured band gap spread", "eV"),
    GAP_DEVICES: ("devices", ""),
    DECOMPOSITION: ("decomposition energy", "eV/f.u."),
    SLME: ("SLME", ""),
    MEASURED_BANDGAP: ("measured band gap", "eV"),
    PCE: ("PCE", "%"),
    VOC: ("Voc", "V"),
    JSC: ("Jsc", "mA/cm2"),
    FF: ("FF", ""),
    ETL: ("ETL stack", ""),
    HTL: ("HTL stack", ""),
    DEVICE_COMPOSITION: ("composition", ""),
    DEVICE_TOLERANCE_FACTOR: ("tolerance factor", ""),
    DEVICE_OCTAHEDRAL_FACTOR: ("octahedral factor", ""),
}

#: Conventional JSON names of target columns in CLI output.
JSON_NAMES: dict[str, str] = {BANDGAP_PBE: "bandgap_eV", PCE: "pce_percent"}


def label(column: str) -> str:
    """Human-readable name of a column (descriptor, quantity, or the column itself)."""
    if column in DESCRIPTOR_LABELS:
        return DESCRIPTOR_LABELS[column]
    if column in QUANTITIES:
        return QUANTITIES[column][0]
    return column


def unit(column: str) -> str:
    """Unit of a column ("" when dimensionless or unknown)."""
    if column in DESCRIPTOR_UNITS:
        return DESCRIPTOR_UNITS[column]
    if column in QUANTITIES:
        return QUANTITIES[column][1]
    return ""


def display(column: str) -> str:
    """Label with its unit, e.g. ``PCE (%)``."""
    u = unit(column)
    return f"{label(column)} ({u})" if u else label(column)


def input_groups(columns: Sequence[str]) -> list[tuple[str, int]]:
    """Input columns summarised by kind, in first-seen order: ``[("site descriptors", 15), ("site fractions", 14), ...]``.

    Site descriptors and factors count together, site fractions together; any
    other column is its own group, named by :func:`label` (``phase``: crystal phase).
    """
    counts: dict[str, int] = {}
    for column in columns:
        if column in DESCRIPTOR_UNITS:
            name = "site descriptors"
        elif column in SITE_FRACTION_COLUMNS:
            name = "site fractions"
        elif column == PHASE:
            name = PHASE_LABEL
        else:
            name = label(column)
        counts[name] = counts.get(name, 0) + 1
    return list(counts.items())
