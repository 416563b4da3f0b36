"""Tests of nestedae_core.data.derived: the datasets computed at load time (psc-gaps, mhp-dft).

Small hand-made tables check the rules (grouping, medians, spreads, merging);
the real datasets (``data_dir`` fixture; skipped when absent) check the counts
and values the issue states.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nestedae_core import data
from nestedae_core.chemistry.composition import parse_formula
from nestedae_core.chemistry.features import FEATURE_COLUMNS, featurize
from nestedae_core.data import derived
from nestedae_core.errors import DataError
from nestedae_core.model.config import StageSpec, TargetSpec
from nestedae_core.vocabulary import (
    BANDGAP_HSE,
    BANDGAP_PBE,
    BANDGAP_PBE_DFT,
    COMPOSITION_KEY,
    DECOMPOSITION,
    DESCRIPTORS,
    DEVICE_COMPOSITION,
    FORMULA,
    GAP_DEVICES,
    GAP_SPREAD,
    IONS,
    MEASURED_BANDGAP,
    PAPER_DESCRIPTORS,
    PHASE,
    PHASE_COLUMNS,
)

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def fresh_caches():
    data.reset_caches()
    yield
    data.reset_caches()


@pytest.fixture
def real(monkeypatch, data_dir):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(data_dir))
    return data_dir


# --------------------------------------------------------------------------- psc-gaps: rules


def devices(rows):
    return pd.DataFrame(rows, columns=[DEVICE_COMPOSITION, MEASURED_BANDGAP])


def test_psc_gaps_groups_spellings_of_one_composition():
    table = derived.psc_gaps(devices([
        ("MAPbI3", 1.60), ("MAPbI3", 1.58), ("MA1.0PbI3", 1.63), ("MAPbI3", float("nan")),
        ("FAPbI3", 1.50),
        ("Cs0.10FA0.90PbI3", 1.55), ("Cs0.1FA0.9PbI3", 1.57),
        ("not a formula", 1.9),
    ]))
    assert list(table[COMPOSITION_KEY]) == ["Cs0.1FA0.9PbI3", "FAPbI3", "MAPbI3"]  # sorted, canonical
    by_key = table.set_index(COMPOSITION_KEY)
    assert by_key.loc["MAPbI3", GAP_DEVICES] == 3  # the device without a gap is left out
    assert by_key.loc["MAPbI3", MEASURED_BANDGAP] == pytest.approx(1.60)  # median of 1.58, 1.60, 1.63
    assert by_key.loc["MAPbI3", GAP_SPREAD] == pytest.approx(np.std([1.60, 1.58, 1.63], ddof=1))
    assert by_key.loc["FAPbI3", GAP_SPREAD] == 0.0 and by_key.loc["FAPbI3", GAP_DEVICES] == 1
    assert by_key.loc["Cs0.1FA0.9PbI3", MEASURED_BANDGAP] == pytest.approx(1.56)
    assert (table[FORMULA] == table[COMPOSITION_KEY]).all()
    assert (table[PHASE] == "Cubic").all()


def test_psc_gaps_fractions_and_descriptors_are_those_of_a_query():
    table = derived.psc_gaps(devices([("Cs0.05FA0.79MA0.16PbBr0.51I2.49", 1.59), ("MAPbBr3", 2.3)]))
    for _, row in table.iterrows():
        comp = parse_formula(row[COMPOSITION_KEY])
        assert row[list(IONS)].to_numpy(dtype=float) == pytest.approx(comp.fraction_vector())
        query = featurize(comp)
        for column in FEATURE_COLUMNS:
            assert row[column] == pytest.approx(query[column], rel=1e-12), column


def test_psc_gaps_keeps_the_most_common_spelling():
    table = derived.psc_gaps(devices([("FA0.83MA0.17PbBr0.50I2.50", 1.6), ("FA0.83MA0.17PbBr0.5I2.5", 1.6),
                                      ("FA0.83MA0.17PbBr0.5I2.5", 1.62)]))
    assert len(table) == 1 and table.loc[0, COMPOSITION_KEY] == "FA0.83MA0.17PbBr0.5I2.5"
    assert table.loc[0, GAP_DEVICES] == 3


# --------------------------------------------------------------------------- mhp-dft: rules


def alloy(rows):
    """An alloy table: (formula, phase, gap, {ion: fraction})."""
    out = []
    for formula, phase, gap, fractions in rows:
        row = {FORMULA: formula, BANDGAP_PBE: gap, **{ion: 0.0 for ion in IONS}, **fractions}
        row.update({p: float(p == phase) for p in PHASE_COLUMNS})
        out.append(row)
    return pd.DataFrame(out)


MAPBI3 = {"MA": 1.0, "Pb": 1.0, "I": 1.0}
CSPBBR3 = {"Cs": 1.0, "Pb": 1.0, "Br": 1.0}


def test_mhp_dft_merges_per_formula_and_phase():
    pbe = alloy([("MAPbI3", "Cubic", 1.5, MAPBI3), ("MAPbI3", "Tetra", 1.6, MAPBI3), ("CsPbBr3", "Cubic", 2.0, CSPBBR3),
                 ("CsPbBr3", "Cubic", 2.2, CSPBBR3)])
    hse = alloy([("MAPbI3", "Tetra", 2.1, MAPBI3), ("CsSnI3", "Ortho", 1.0, {"Cs": 1.0, "Sn": 1.0, "I": 1.0})])
    table = derived.mhp_dft(pbe, hse)
    assert list(zip(table[FORMULA], table[PHASE])) == [
        ("MAPbI3", "Cubic"), ("MAPbI3", "Tetra"), ("CsPbBr3", "Cubic"), ("CsSnI3", "Ortho"),
    ]
    assert table[BANDGAP_PBE_DFT].tolist()[:3] == pytest.approx([1.5, 1.6, 2.1])  # the two CsPbBr3 rows averaged
    assert math.isnan(table[BANDGAP_PBE_DFT].iloc[3])  # HSE only
    assert math.isnan(table[BANDGAP_HSE].iloc[0]) and table[BANDGAP_HSE].iloc[1] == 2.1
    assert table.loc[3, "Sn"] == 1.0  # fractions of an HSE-only row come from the HSE table
    assert table.loc[1, "A_ion_rad"] == pytest.approx(featurize("MAPbI3")["A_ion_rad"])
    assert set(FEATURE_COLUMNS) <= set(table.columns)


def test_mhp_dft_refuses_to_pair_different_materials():
    pbe = alloy([("MAPbI3", "Cubic", 1.5, MAPBI3)])
    hse = alloy([("MAPbI3", "Cubic", 2.0, CSPBBR3)])
    with pytest.raises(DataError, match="different site fractions"):
        derived.mhp_dft(pbe, hse)


def test_phase_column():
    table = pd.DataFrame({"Cubic": [1, 0, 0], "Tetra": [0, 0, 0], "Ortho": [0, 1, 0], "Hex": [0, 0, 0]})
    assert derived.phase_column(table).tolist() == ["Cubic", "Ortho", "unknown"]
    with pytest.raises(DataError, match="phase columns"):
        derived.phase_column(pd.DataFrame({"x": [1]}))


def test_derive_unknown_name():
    with pytest.raises(DataError, match="not derived"):
        derived.derive("mhp-pbe", {})


# --------------------------------------------------------------------------- real data


def test_real_psc_gaps_counts_and_medians(real):
    table = data.load("psc-gaps", download=False)
    assert len(table) == data.dataset_info("psc-gaps").rows == 151
    assert table[GAP_DEVICES].sum() == 1429  # every device with a measured gap, once
    assert table[COMPOSITION_KEY].is_unique
    devices_table = data.load("psc-devices", download=False)
    measured = devices_table.loc[devices_table[MEASURED_BANDGAP].notna(), DEVICE_COMPOSITION]
    assert measured.nunique() == 153  # 153 spellings, 151 compositions
    by_key = table.set_index(COMPOSITION_KEY)
    assert by_key.loc["MAPbI3", MEASURED_BANDGAP] == pytest.approx(1.60)
    assert by_key.loc["MAPbI3", GAP_DEVICES] == 984
    assert by_key.loc["FAPbI3", MEASURED_BANDGAP] == pytest.approx(1.495)  # below MAPbI3, as measured
    assert by_key.loc["MAPbBr3", MEASURED_BANDGAP] == pytest.approx(2.30)
    assert by_key.loc["Cs0.05FA0.79MA0.16PbBr0.51I2.49", MEASURED_BANDGAP] == pytest.approx(1.59)
    assert table[MEASURED_BANDGAP].min() == pytest.approx(1.17) and table[MEASURED_BANDGAP].max() == pytest.approx(2.30)
    # the two compositions written two ways each
    assert by_key.loc["FA0.83MA0.17PbBr0.5I2.5", GAP_DEVICES] == int(
        measured.isin(["FA0.83MA0.17PbBr0.5I2.5", "FA0.83MA0.17PbBr0.50I2.50"]).sum())
    mapbi3 = devices_table.loc[devices_table[DEVICE_COMPOSITION] == "MAPbI3", MEASURED_BANDGAP].dropna()
    assert by_key.loc["MAPbI3", GAP_SPREAD] == pytest.approx(mapbi3.std(ddof=1))
    assert (table.loc[table[GAP_DEVICES] == 1, GAP_SPREAD] == 0).all()


def test_real_mhp_dft_counts(real):
    table = data.load("mhp-dft", download=False)
    pbe, hse = table[BANDGAP_PBE_DFT].notna(), table[BANDGAP_HSE].notna()
    assert len(table) == 568 == data.dataset_info("mhp-dft").rows
    assert int((pbe & hse).sum()) == 345 and int((pbe & ~hse).sum()) == 223 and int((~pbe & hse).sum()) == 0
    assert not table.duplicated([FORMULA, PHASE]).any()
    assert table[PHASE].value_counts().to_dict() == {"Cubic": 467, "Ortho": 37, "Tetra": 34, "Hex": 30}
    # a (formula, phase) listed twice in the files (two structures): the mean of its gaps
    row = table.loc[(table[FORMULA] == "MAPbI_1.5Br_1.5") & (table[PHASE] == "Cubic")].iloc[0]
    assert row[BANDGAP_PBE_DFT] == pytest.approx((1.89 + 1.90) / 2)
    assert row[BANDGAP_HSE] == pytest.approx((1.60 + 1.38) / 2)


def test_real_mhp_dft_gaps_and_descriptors_match_the_files(real):
    table = data.load("mhp-dft", download=False).set_index([FORMULA, PHASE])
    for name, column in (("mhp-pbe", BANDGAP_PBE_DFT), ("mhp-hse", BANDGAP_HSE)):
        source = data.load_dataset_table(name, download=False)
        single = source.loc[~source.duplicated([FORMULA, PHASE], keep=False)].set_index([FORMULA, PHASE])
        assert table.loc[single.index, column].to_numpy() == pytest.approx(single[BANDGAP_PBE].to_numpy())
        ours = table.loc[single.index, list(DESCRIPTORS)].to_numpy()
        theirs = single[list(DESCRIPTORS)].to_numpy()
        relative = np.abs(ours - theirs) / np.where(theirs == 0, 1.0, np.abs(theirs))
        # the files round their descriptors to 3 significant figures (at most 0.5 % off), so agreement
        # is within that rounding everywhere and much closer typically
        assert relative.max() < 5.5e-3
        assert np.median(relative) < 5e-4
        assert table.loc[single.index, list(IONS)].to_numpy() == pytest.approx(single[list(IONS)].to_numpy())


def test_derived_load_is_cached_per_source_version(real, monkeypatch):
    calls = []
    real_derive = derived.derive
    monkeypatch.setattr(derived, "derive", lambda name, sources: calls.append(name) or real_derive(name, sources))
    first = data.load("psc-gaps", download=False)
    second = data.load("psc-gaps", download=False)
    assert calls == ["psc-gaps"]
    pd.testing.assert_frame_equal(first, second)
    second.loc[0, MEASURED_BANDGAP] = -1.0  # a copy: the cache is not changed through it
    assert data.load("psc-gaps", download=False).loc[0, MEASURED_BANDGAP] == first.loc[0, MEASURED_BANDGAP]
    data.reset_caches()
    data.load("psc-gaps", download=False)
    assert calls == ["psc-gaps", "psc-gaps"]


def test_derived_load_from_an_explicit_folder(tmp_path, real):
    (tmp_path / "PSC_efficiencies_dataset.csv").write_bytes((real / "PSC_efficiencies_dataset.csv").read_bytes())
    table = data.load("psc-gaps", tmp_path, download=False)
    assert len(table) == 151
    table = data.load_dataset_table("psc-gaps", tmp_path, download=False)
    assert len(table) == 151


@pytest.mark.parametrize(
    ("name", "targets", "inputs"),
    [
        ("psc-gaps", [MEASURED_BANDGAP], list(PAPER_DESCRIPTORS) + list(IONS)),
        ("mhp-dft", [BANDGAP_PBE_DFT, BANDGAP_HSE], list(PAPER_DESCRIPTORS) + list(IONS)),
    ],
)
def test_real_derived_tables_are_ready_for_a_stage(real, name, targets, inputs):
    from nestedae_core.data.tables import check_stage_table

    table = data.load_dataset_table(name, download=False)
    assert np.isfinite(table[inputs].to_numpy(dtype=float)).all()
    assert pd.api.types.is_string_dtype(table[PHASE]) and table[PHASE].notna().all()
    spec = StageSpec(name="s", dataset=name, numeric_inputs=inputs, categorical_inputs=[PHASE],
                     targets=[TargetSpec(column=c, unit="eV") for c in targets])
    checked = check_stage_table(spec, table)
    assert len(checked) == len(table)  # no row dropped


def test_mhp_dft_carries_the_decomposition_energy_of_the_pbe_table():
    pbe = alloy([("MAPbI3", "Cubic", 1.5, MAPBI3), ("CsPbBr3", "Cubic", 2.0, CSPBBR3), ("CsPbBr3", "Cubic", 2.2, CSPBBR3)])
    pbe[DECOMPOSITION] = [0.03, -0.2, -0.1]
    hse = alloy([("CsSnI3", "Ortho", 1.0, {"Cs": 1.0, "Sn": 1.0, "I": 1.0})])
    hse[DECOMPOSITION] = [5.0]  # an HSE-level value: not mixed into the PBE-level column
    table = derived.mhp_dft(pbe, hse)
    assert table[DECOMPOSITION].tolist()[:2] == pytest.approx([0.03, -0.15])  # eV/f.u.; two structures averaged
    assert math.isnan(table[DECOMPOSITION].iloc[2])  # HSE only: masked in the head's loss
    assert DECOMPOSITION not in derived.mhp_dft(alloy([("MAPbI3", "Cubic", 1.5, MAPBI3)]), alloy([("MAPbI3", "Cubic", 1.2, MAPBI3)])).columns
