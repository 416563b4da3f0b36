"""nestedae_core.perovskite.rows: the rows a stage is analysed on (dataset rows, else the stored background)."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from nestedae_core import store
from nestedae_core.data import load_dataset_table, lookup
from nestedae_core.errors import InputError
from nestedae_core.perovskite.rows import BACKGROUND, StageRows, stage_rows
from nestedae_core.vocabulary import (
    BANDGAP_PBE,
    DEVICE_COMPOSITION,
    ETL,
    FORMULA,
    HTL,
    IONS,
    MEASURED_BANDGAP,
    PAPER_DESCRIPTORS,
    PCE,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    """The shipped paper chain (stage 0: mhp-pbe-paper, stage 1: psc-devices)."""
    if not store.shipped_bundle_path("paper-default").is_dir():
        pytest.skip("the shipped model bundle is missing")
    return store.load_bundle(store.shipped_bundle_path("paper-default"))  # the two-stage paper chain


@pytest.fixture(scope="module")
def devices(data_dir) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return load_dataset_table("psc-devices", download=False)


def test_stage_one_rows_from_the_alloy_table(model, data_dir):
    table = load_dataset_table("mhp-pbe-paper", download=False)
    rows = stage_rows(model, 0, table)
    assert rows.source == "mhp-pbe-paper" and rows.from_dataset and rows.note == ""
    assert rows.label_column == FORMULA
    cols = list(rows.frame.columns)
    assert cols[0] == FORMULA and cols[1:16] == model.raw_columns(0) == list(PAPER_DESCRIPTORS)
    assert set(IONS) <= set(cols) and BANDGAP_PBE in cols
    assert len(rows.frame) == len(table) == 494 and list(rows.frame.index) == list(range(494))
    assert table.loc[table[FORMULA] == "MAPbI_3", BANDGAP_PBE].item() == rows.frame.loc[rows.frame[FORMULA] == "MAPbI_3", BANDGAP_PBE].item()


def test_stage_two_rows_join_the_parsed_site_fractions(model, devices):
    rows = stage_rows(model, 1, devices)
    assert rows.source == "psc-devices" and rows.label_column == DEVICE_COMPOSITION
    frame = rows.frame
    assert {ETL, HTL, MEASURED_BANDGAP, PCE} <= set(frame.columns) and set(IONS) <= set(frame.columns)
    assert frame.columns[0] == DEVICE_COMPOSITION
    assert set(frame[ETL]) <= set(model.categories(ETL)) and set(frame[HTL]) <= set(model.categories(HTL))
    mapbi3 = frame[frame[DEVICE_COMPOSITION] == "MAPbI3"]
    assert len(mapbi3) == 984
    assert (mapbi3[["MA", "Pb", "I"]] == 1.0).all(axis=None) and (mapbi3["Br"] == 0).all()
    # fractions given by the caller are used as they are, with the same result
    given = lookup.site_fractions(devices, DEVICE_COMPOSITION)
    pd.testing.assert_frame_equal(stage_rows(model, 1, devices, site_fractions=given).frame, frame)
    marked = given.assign(K=7.0)  # proof that the given fractions are the ones joined
    assert (stage_rows(model, 1, devices, site_fractions=marked).frame["K"] == 7.0).all()


def test_rows_with_unknown_stacks_or_missing_inputs_are_left_out(model, devices):
    table = devices.copy()
    table.loc[table.index[:10], ETL] = "a stack the model never saw"
    table.loc[table.index[10:15], "A_IE"] = float("nan")
    rows = stage_rows(model, 1, table)
    assert len(rows.frame) == len(stage_rows(model, 1, devices).frame) - 15


def test_no_dataset_falls_back_to_the_background(model):
    rows = stage_rows(model, 1)
    assert rows.source == BACKGROUND and not rows.from_dataset
    assert rows.label_column is None
    assert len(rows.frame) == len(model.backgrounds[1])
    assert list(rows.frame.columns)[: len(model.raw_columns(1))] == model.raw_columns(1)
    assert "dataset `psc-devices` is not available here (dataset 'psc-devices' is not on this machine)" in rows.note
    assert f"{len(rows.frame)} k-means centroids" in rows.note
    why = stage_rows(model, 0, None, reason="checksum mismatch")
    assert why.source == BACKGROUND and "(checksum mismatch)" in why.note


def test_unusable_tables_fall_back_to_the_background(model, devices):
    lacking = stage_rows(model, 1, devices.drop(columns=[HTL]))
    assert lacking.source == BACKGROUND and f"lacks the model's input column(s) {HTL}" in lacking.note
    tiny = stage_rows(model, 1, devices.head(2))
    assert tiny.source == BACKGROUND and "fewer than 3 usable rows" in tiny.note


def test_neither_dataset_nor_background_is_an_input_error(model):
    bare = dataclasses.replace(model, backgrounds=[])
    with pytest.raises(InputError, match="neither its dataset on this machine nor a stored background"):
        stage_rows(bare, 0)


def test_sample_is_bounded_seeded_and_ordered():
    rows = StageRows(pd.DataFrame({"x": range(100)}), "d", "", None)
    a, b = rows.sample(10), rows.sample(10)
    assert len(a) == 10 and a.equals(b) and a.index.is_monotonic_increasing
    assert not rows.sample(10, seed=1).equals(a)
    assert rows.sample(500) is rows.frame
