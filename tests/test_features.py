"""Tests of nestedae_core.chemistry.features: ion table, site descriptors, factors, vectorised featurization, tables."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nestedae_core.chemistry.composition import IONS, Composition, composition_grid, parse_formula
from nestedae_core.errors import CompositionError, SchemaError
from nestedae_core.chemistry.features import (
    COLUMN_ALIASES,
    DESCRIPTOR_LABELS,
    DESCRIPTOR_UNITS,
    DESCRIPTORS,
    FEATURE_COLUMNS,
    ION_PROPERTIES,
    OCTAHEDRAL_RANGE,
    PAPER_DESCRIPTORS,
    PROPERTY_KEYS,
    PROPERTY_UNITS,
    TOLERANCE_RANGE,
    featurize,
    featurize_fractions,
    featurize_many,
    featurize_table,
    ion_property,
    octahedral_factor,
    tolerance_factor,
)

pytestmark = pytest.mark.unit


# ------------------------------------------------------------- the ion table
def test_property_table_shape_and_units() -> None:
    assert PROPERTY_KEYS == ("ion_rad", "BP", "MP", "dens", "at_wt", "EA", "IE", "hof", "hov", "En", "at_num", "period")
    assert ION_PROPERTIES.shape == (14, 12)
    assert list(ION_PROPERTIES.index) == list(IONS)
    assert list(ION_PROPERTIES.columns) == list(PROPERTY_KEYS)
    assert set(PROPERTY_UNITS) == set(PROPERTY_KEYS)
    assert PROPERTY_UNITS["ion_rad"] == "Å" and PROPERTY_UNITS["IE"] == "kJ/mol"
    assert ION_PROPERTIES.loc["MA", "ion_rad"] == 2.17
    assert ION_PROPERTIES.loc["FA", "ion_rad"] == 2.53
    assert ION_PROPERTIES.loc["I", "IE"] == 1008.4
    assert ion_property("Pb", "ion_rad") == 1.19
    with pytest.raises(CompositionError, match="unknown ion 'GA'"):
        ion_property("GA", "ion_rad")


def test_property_table_copy_cannot_change_results() -> None:
    before = featurize("MAPbI3")["A_ion_rad"]
    table = ION_PROPERTIES.copy()
    table.loc["MA", "ion_rad"] = 99.0
    assert featurize("MAPbI3")["A_ion_rad"] == before == 2.17


def test_property_table_matches_elem_prop_xlsx(data_dir: Path) -> None:
    sheet = pd.read_excel(data_dir / "Elem_prop.xlsx", index_col=0)
    assert list(sheet.columns) == list(IONS)
    np.testing.assert_array_equal(sheet.to_numpy(dtype=float).T, ION_PROPERTIES.to_numpy())


# ------------------------------------------------------------ names and units
def test_descriptor_names() -> None:
    assert len(DESCRIPTORS) == 36 and len(set(DESCRIPTORS)) == 36
    assert DESCRIPTORS[:3] == ("A_ion_rad", "A_BP", "A_MP") and DESCRIPTORS[-1] == "X_period"
    assert PAPER_DESCRIPTORS == (
        "A_ion_rad", "A_at_wt", "A_EA", "A_IE", "A_En",
        "B_ion_rad", "B_at_wt", "B_EA", "B_IE", "B_En",
        "X_ion_rad", "X_at_wt", "X_EA", "X_IE", "X_En",
    )  # fmt: skip
    assert set(PAPER_DESCRIPTORS) <= set(DESCRIPTORS)
    assert COLUMN_ALIASES == {"X_atom_wt": "X_at_wt"}
    assert FEATURE_COLUMNS == DESCRIPTORS + ("tolerance_factor", "octahedral_factor")
    assert set(DESCRIPTOR_UNITS) == set(FEATURE_COLUMNS) == set(DESCRIPTOR_LABELS)
    assert DESCRIPTOR_LABELS["A_ion_rad"] == "A-site ionic radius"
    assert DESCRIPTOR_UNITS["X_IE"] == "kJ/mol" and DESCRIPTOR_UNITS["B_ion_rad"] == "Å"
    assert TOLERANCE_RANGE == (0.8, 1.0) and OCTAHEDRAL_RANGE == (0.414, 0.732)


def test_descriptor_order_matches_pbe_columns(data_dir: Path) -> None:
    header = pd.read_csv(data_dir / "PBE_data.csv", nrows=0).columns
    assert tuple(header[-36:]) == DESCRIPTORS
    assert tuple(header[5:19]) == IONS


# --------------------------------------------------------------- the physics
def test_site_mixing_rules() -> None:
    # SOURCES.md worked example: A_IE of Cs0.05FA0.788MA0.162 = 837.93 kJ/mol
    features = featurize(parse_formula("Cs0.05FA0.788MA0.162PbBr0.51I2.49"))
    assert features["A_IE"] == pytest.approx(0.05 * 375.7 + 0.788 * 849.1 + 0.162 * 926.3)
    assert features["A_IE"] == pytest.approx(837.93, abs=0.01)
    # X mixes by X-site fraction: Br0.51I2.49 -> 0.17 Br + 0.83 I
    assert features["X_ion_rad"] == pytest.approx(0.17 * 1.96 + 0.83 * 2.2)
    assert features["B_IE"] == pytest.approx(715.5)
    assert list(features) == list(FEATURE_COLUMNS)


def test_tolerance_and_octahedral_factor() -> None:
    mapbi3 = parse_formula("MAPbI3")
    # values of PSC_efficiencies_dataset.csv for MAPbI3, and by hand: (2.17 + 2.2) / (sqrt 2 (1.19 + 2.2)), 1.19 / 2.2
    assert tolerance_factor(mapbi3) == pytest.approx(0.911521131, rel=1e-8)
    assert tolerance_factor(mapbi3) == pytest.approx((2.17 + 2.2) / (math.sqrt(2) * (1.19 + 2.2)))
    assert octahedral_factor(mapbi3) == pytest.approx(0.540909091, rel=1e-8)
    cspbi3 = parse_formula("CsPbI3")
    assert tolerance_factor(cspbi3) == pytest.approx(0.821829, rel=1e-6)
    assert tolerance_factor("FAPbI3") > tolerance_factor("MAPbI3") > tolerance_factor("CsPbI3")
    features = featurize(mapbi3)
    assert features["tolerance_factor"] == tolerance_factor(mapbi3)
    assert features["octahedral_factor"] == octahedral_factor(mapbi3)


# -------------------------------------------------------- vectorised versions
def test_featurize_fractions_matches_featurize() -> None:
    comps = [parse_formula(t) for t in ("MAPbI3", "Cs0.05FA0.79MA0.16PbBr0.51I2.49", "KCa0.5Ba0.5Br3", "RbCaCl_2.25_I_0.75")]
    frame = featurize_fractions(np.array([c.fraction_vector() for c in comps]))
    assert list(frame.columns) == list(FEATURE_COLUMNS)
    for row, comp in enumerate(comps):
        expected = featurize(comp)
        np.testing.assert_allclose(frame.iloc[row].to_numpy(), [expected[k] for k in FEATURE_COLUMNS], rtol=1e-12)
    single = featurize_fractions(comps[0].fraction_vector())
    assert single.shape == (1, 38)


def test_featurize_fractions_on_ten_thousand_rows() -> None:
    """Its speed is a figure of benchmarks/bench_parse.py."""
    grid = composition_grid(["Cs", "MA", "FA"], ["Sn", "Pb"], ["Cl", "Br", "I"], 0.1)[:10_000]
    assert grid.shape == (10_000, 14)
    frame = featurize_fractions(grid)
    assert frame.shape == (10_000, 38) and np.isfinite(frame.to_numpy()).all()
    for row in (0, 4_321, 9_999):
        expected = featurize(Composition.from_fractions(dict(zip(IONS, grid[row]))))
        np.testing.assert_allclose(frame.iloc[row].to_numpy(), [expected[k] for k in FEATURE_COLUMNS], rtol=1e-12)


def test_featurize_fractions_keeps_dataframe_index() -> None:
    table = pd.DataFrame([parse_formula("MAPbI3").fractions()], index=["row-7"])
    assert list(featurize_fractions(table).index) == ["row-7"]
    with pytest.raises(SchemaError, match="lacks ion columns"):
        featurize_fractions(table.drop(columns=["Pb"]))


@pytest.mark.parametrize(
    ("fractions", "fragment"),
    [
        (np.zeros((3, 13)), "shape (3, 13)"),
        (np.full((1, 14), np.nan), "non-finite"),
        (-parse_formula("MAPbI3").fraction_vector(), "negative"),
        (np.array([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 3.0]), "X-site fractions sum to 3"),
        (np.zeros(14), "A-site fractions sum to 0"),
    ],
)
def test_featurize_fractions_validates(fractions: np.ndarray, fragment: str) -> None:
    with pytest.raises(CompositionError) as info:
        featurize_fractions(fractions)
    assert fragment in str(info.value)


def test_featurize_many() -> None:
    frame = featurize_many([parse_formula("MAPbI3"), "CsPbBr3"])
    assert list(frame.columns) == list(IONS) + list(FEATURE_COLUMNS)
    assert frame.shape == (2, 52)
    assert frame.loc[1, "Cs"] == 1.0 and frame.loc[1, "Br"] == 1.0
    assert frame.loc[0, "A_ion_rad"] == 2.17
    assert featurize_many([]).shape == (0, 52)


def test_featurize_table_reports_bad_rows() -> None:
    df = pd.DataFrame({"id": [1, 2, 3, 4], "comp": ["MAPbI3", "MAPbI3-DAP", "FAPbBr3", None]}, index=[10, 11, 12, 13])
    table, failed = featurize_table(df, "comp")
    assert failed == 2
    assert list(table.columns) == ["id", "comp"] + list(IONS) + list(FEATURE_COLUMNS) + ["error"]
    assert list(table.index) == [10, 11, 12, 13]
    assert table.loc[10, "error"] == "" and table.loc[12, "error"] == ""
    assert "remove '-DAP'" in table.loc[11, "error"]
    assert "empty formula" in table.loc[13, "error"]
    assert table.loc[10, "A_ion_rad"] == 2.17 and table.loc[12, "FA"] == 1.0
    assert table.loc[[11, 13], list(FEATURE_COLUMNS)].isna().all().all()
    assert df.columns.tolist() == ["id", "comp"]  # input untouched


def test_featurize_table_options_and_schema_errors() -> None:
    df = pd.DataFrame({"formula": ["FA0.5PbI3"]})
    assert featurize_table(df, "formula")[1] == 1
    table, failed = featurize_table(df, "formula", renormalize=True)
    assert failed == 0 and table.loc[0, "FA"] == 1.0
    with pytest.raises(SchemaError) as info:
        featurize_table(df, "Formula")
    assert "'Formula' not found" in str(info.value) and "'formula'" in str(info.value)
    with pytest.raises(SchemaError, match="expects a pandas DataFrame"):
        featurize_table([{"formula": "MAPbI3"}], "formula")  # type: ignore[arg-type]


# ------------------------------------------------------------ against the data
def test_pbe_data_fractions_and_descriptors(data_dir: Path) -> None:
    """Every distinct PBE_data.csv formula parses and reproduces its 14 fractions and 36 descriptors.

    The CSV is rounded to 3 significant figures (X fractions to 3 decimals: 1/3 -> 0.333).
    Measured: max |fraction error| 3.3e-4; max relative descriptor error 0.54 %
    (X_IE of MAPbI_1.5Br_1.5: 1074.15 computed, 1.08E+03 stored; the stored values look
    rounded twice). Tolerances: fractions 1e-3 absolute, descriptors 0.6 % relative + 1e-9.
    """
    data = pd.read_csv(data_dir / "PBE_data.csv").drop_duplicates("Formula")
    assert len(data) == 473
    table, failed = featurize_table(data[["Formula"]], "Formula")
    assert failed == 0, table.loc[table["error"] != "", ["Formula", "error"]]
    np.testing.assert_allclose(table[list(IONS)].to_numpy(), data[list(IONS)].to_numpy(), rtol=0, atol=1e-3)
    ours = table[list(DESCRIPTORS)].to_numpy()
    theirs = data[list(DESCRIPTORS)].to_numpy()
    np.testing.assert_allclose(ours, theirs, rtol=6e-3, atol=1e-9)
    # and featurize_fractions on the stored fractions gives the same descriptors
    np.testing.assert_allclose(featurize_fractions(data[list(IONS)])[list(DESCRIPTORS)].to_numpy(), theirs, rtol=6e-3, atol=1e-9)


def test_device_data_descriptors_and_factors(data_dir: Path) -> None:
    """Every distinct device formula (239) parses and reproduces the 15 descriptors and both factors.

    The device file was computed by the NestedAE authors with a slightly different table
    (MA 32.07 u, Ge 72.63 u, Br 79.9 u, Pb IE 715.6 kJ/mol, MA EA 8.68 kJ/mol) and stored
    as float32. Measured max relative error: descriptors 0.043 % (A_EA of MA: 8.6837 vs 8.68),
    tolerance factor 6.6e-8, octahedral factor 1.4e-7. Tolerances: 1e-3 relative, 1e-5.
    All 239 long forms parse; none uses additives or ions outside the 14.
    """
    data = pd.read_csv(data_dir / "PSC_efficiencies_dataset.csv").rename(columns=COLUMN_ALIASES)
    data = data.drop_duplicates("Perovskite_composition_long_form").reset_index(drop=True)
    assert len(data) == 239
    formulas = data[["Perovskite_composition_long_form"]]
    table, failed = featurize_table(formulas, "Perovskite_composition_long_form")
    assert failed == 0
    np.testing.assert_allclose(table[list(PAPER_DESCRIPTORS)].to_numpy(), data[list(PAPER_DESCRIPTORS)].to_numpy(), rtol=1e-3, atol=1e-9)
    np.testing.assert_allclose(table["tolerance_factor"], data["Tolerance Factor"], rtol=1e-5)
    np.testing.assert_allclose(table["octahedral_factor"], data["Octahedral Factor"], rtol=1e-5)


def test_device_ion_lists_agree_with_parsed_formula(data_dir: Path) -> None:
    """The device file's ion / coefficient columns say the same as its long-form formula."""
    data = pd.read_csv(data_dir / "PSC_efficiencies_dataset.csv").drop_duplicates("Perovskite_composition_long_form")
    for _, row in data.iterrows():
        comp = parse_formula(row["Perovskite_composition_long_form"])
        for site, ions_col, coeff_col, mapping in (
            ("A", "Perovskite_composition_a_ions", "Perovskite_composition_a_ions_coefficients", comp.a),
            ("B", "Perovskite_composition_b_ions", "Perovskite_composition_b_ions_coefficients", comp.b),
            ("X", "Perovskite_composition_c_ions", "Perovskite_composition_c_ions_coefficients", comp.x),
        ):
            ions = [s.strip() for s in str(row[ions_col]).split(";")]
            coeffs = [float(s) for s in str(row[coeff_col]).split(";")]
            assert dict(mapping) == pytest.approx(dict(zip(ions, coeffs))), (site, row["Perovskite_composition_long_form"])
