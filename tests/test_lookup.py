"""nestedae_core.data.lookup: site fractions of dataset rows, rows of one composition, nearest measured devices."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nestedae_core import data
from nestedae_core.chemistry import parse_formula
from nestedae_core.data import lookup
from nestedae_core.vocabulary import DEVICE_COMPOSITION, ETL, FORMULA, HTL, IONS, MEASURED_BANDGAP, PCE

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def devices(data_dir) -> tuple[pd.DataFrame, pd.DataFrame]:  # type: ignore[no-untyped-def]
    """The device table and its parsed site fractions."""
    table = data.load("psc-devices", download=False)
    return table, lookup.site_fractions(table, lookup.formula_column("psc-devices"))


def test_formula_column_per_dataset():
    assert lookup.formula_column("psc-devices") == DEVICE_COMPOSITION
    assert lookup.formula_column("mhp-pbe-paper") == FORMULA
    assert lookup.formula_column("mhp-hse") == FORMULA
    assert lookup.formula_column("synthetic") is None


def test_site_fractions_of_the_device_table_are_parsed(devices):
    table, fractions = devices
    assert list(fractions.columns) == list(IONS)
    assert fractions.index.equals(table.index) and len(fractions) == 2018
    assert fractions.notna().all(axis=1).all()  # every absorber of the curated table parses
    mapbi3 = fractions.loc[(table[DEVICE_COMPOSITION] == "MAPbI3").to_numpy()].iloc[0]
    assert mapbi3["MA"] == 1.0 and mapbi3["Pb"] == 1.0 and mapbi3["I"] == 1.0  # X as a fraction of the site
    assert mapbi3.drop(["MA", "Pb", "I"]).eq(0).all()


def test_site_fractions_prefer_the_tables_own_columns(data_dir):
    table = data.load("mhp-pbe-paper", download=False)
    fractions = lookup.site_fractions(table, FORMULA)
    pd.testing.assert_frame_equal(fractions, table.loc[:, list(IONS)].astype(float))


def test_site_fractions_unparsable_and_absent_formulas_are_nan():
    table = pd.DataFrame({"f": ["MAPbI3", "MAPbX3", None]}, index=[10, 11, 12])
    fractions = lookup.site_fractions(table, "f")
    assert list(fractions.index) == [10, 11, 12]
    assert fractions.loc[10].notna().all() and fractions.loc[[11, 12]].isna().all(axis=None)
    assert lookup.site_fractions(table).isna().all(axis=None)  # no formula column, no ion columns


def test_matching_rows_count_mapbi3_devices(devices):
    table, fractions = devices
    rows = lookup.matching_rows(table, fractions, parse_formula("MAPbI3"))
    assert len(rows) == 984
    assert set(rows[DEVICE_COMPOSITION]) == {"MAPbI3"}
    assert len(lookup.matching_rows(table, fractions, parse_formula("Cs0.05FA0.79MA0.16PbBr0.51I2.49"))) == 173
    assert len(lookup.matching_rows(table, fractions, parse_formula("KBaCl3"))) == 0


def test_matching_rows_in_an_alloy_table(data_dir):
    table = data.load("mhp-pbe-paper", download=False)
    rows = lookup.matching_rows(table, lookup.site_fractions(table, FORMULA), parse_formula("CsPbI3"))
    assert len(rows) == 1 and rows[FORMULA].iloc[0] == "CsPbI_3"


def test_same_composition_tolerance():
    comp = parse_formula("MAPbI3")
    base = comp.fraction_vector()
    rows = np.stack([base, base, base, np.full_like(base, np.nan)])
    rows[1, IONS.index("I")] -= 0.004  # within 0.005
    rows[1, IONS.index("Br")] += 0.004
    rows[2, IONS.index("I")] -= 0.006  # beyond it
    rows[2, IONS.index("Br")] += 0.006
    fractions = pd.DataFrame(rows, columns=list(IONS), index=[5, 6, 7, 8])
    same = lookup.same_composition(fractions, comp)
    assert list(same.index) == [5, 6, 7, 8]
    assert same.tolist() == [True, True, False, False]
    assert lookup.same_composition(fractions, comp, atol=1e-2).tolist() == [True, True, True, False]


def test_nearest_devices_same_composition_first(devices):
    table, fractions = devices
    near = lookup.nearest_devices(table, fractions, parse_formula("MAPbI3"))
    assert len(near) == 15
    assert list(near.columns) == [DEVICE_COMPOSITION, lookup.SAME_COMPOSITION, lookup.DISTANCE, ETL, HTL, MEASURED_BANDGAP, PCE]
    assert near[lookup.SAME_COMPOSITION].all() and (near[DEVICE_COMPOSITION] == "MAPbI3").all()
    assert (near[lookup.DISTANCE] == 0).all()
    assert near[PCE].is_monotonic_decreasing  # ties broken by the higher measured PCE
    assert near[PCE].iloc[0] == table.loc[table[DEVICE_COMPOSITION] == "MAPbI3", PCE].max()


def test_nearest_devices_ordering_without_an_exact_match(devices):
    table, fractions = devices
    comp = parse_formula("MAPb(I0.85Br0.15)3")  # no device has exactly this absorber
    near = lookup.nearest_devices(table, fractions, comp, n=40)
    assert len(near) == 40 and not near[lookup.SAME_COMPOSITION].any()
    d = near[lookup.DISTANCE].to_numpy()
    assert (d > 0).all() and (np.diff(d) >= 0).all()
    for _, tied in near.groupby(lookup.DISTANCE):  # equal distances: the higher measured PCE first
        assert tied[PCE].is_monotonic_decreasing
    # nothing left out is nearer than the farthest one shown
    everything = lookup.nearest_devices(table, fractions, comp, n=len(table))
    assert len(everything) == len(table)
    assert everything[lookup.DISTANCE].iloc[40:].min() >= d[-1]
    # the nearest is the MAPb(I,Br)3 device with the closest bromide share (1/6 of the X site against 0.15)
    assert near[DEVICE_COMPOSITION].iloc[0] == "MAPbBr0.5I2.5"
    assert (fractions.loc[near.index, ["Pb", "Br", "I"]] > 0).all(axis=None)  # all lead bromide-iodides


def test_nearest_devices_distance_is_standardised_euclidean(devices):
    table, fractions = devices
    from nestedae_core.chemistry.features import featurize
    from nestedae_core.vocabulary import PAPER_DESCRIPTORS

    near = lookup.nearest_devices(table, fractions, parse_formula("FAPbI3"), n=len(table))
    first_cs = near[near[DEVICE_COMPOSITION] == "CsPbI3"].iloc[0]
    cs, fa = featurize("CsPbI3"), featurize("FAPbI3")
    # spread of each descriptor over the devices, from the parsed compositions
    spread = pd.DataFrame([featurize(f) for f in table[DEVICE_COMPOSITION]])[list(PAPER_DESCRIPTORS)].std(ddof=0)
    expected = np.sqrt(sum(((cs[k] - fa[k]) / (spread[k] or 1.0)) ** 2 for k in PAPER_DESCRIPTORS))
    assert first_cs[lookup.DISTANCE] == pytest.approx(expected, rel=1e-9)


def test_nearest_devices_stack_flag_and_filter(devices):
    table, fractions = devices
    comp = parse_formula("MAPbI3")
    flagged = lookup.nearest_devices(table, fractions, comp, etl="TiO2-c", htl="Spiro-MeOTAD", n=200)
    assert lookup.SAME_STACK in flagged.columns
    expected = (flagged[ETL] == "TiO2-c") & (flagged[HTL] == "Spiro-MeOTAD")
    assert flagged[lookup.SAME_STACK].equals(expected) and 0 < expected.sum() < len(flagged)
    only = lookup.nearest_devices(table, fractions, comp, etl="TiO2-c", htl="Spiro-MeOTAD", same_stack_only=True)
    assert len(only) == 15 and only[lookup.SAME_STACK].all()
    assert ((only[ETL] == "TiO2-c") & (only[HTL] == "Spiro-MeOTAD")).all()
    none = lookup.nearest_devices(table, fractions, comp, etl="no such layer", htl="Spiro-MeOTAD", same_stack_only=True)
    assert none.empty
