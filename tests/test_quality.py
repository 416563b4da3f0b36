"""Tests of nestedae_core.data.quality (devices whose values cannot be physical) and of its section on the Data page."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from nestedae_core import data
from nestedae_core.physics import sq_limit
from nestedae_core.data import quality
from nestedae_core.errors import SchemaError
from nestedae_core.vocabulary import DEVICE_COMPOSITION, FF, JSC, MEASURED_BANDGAP, PCE, VOC

pytestmark = pytest.mark.unit


def table(rows):
    """A device table from (composition, gap, PCE, Voc, Jsc, FF) rows."""
    return pd.DataFrame(rows, columns=[DEVICE_COMPOSITION, MEASURED_BANDGAP, PCE, VOC, JSC, FF])


LIMIT_AT_1_6 = sq_limit(1.6)["pce_percent"]  # 30.5 %


@pytest.fixture
def devices():
    return table([
        ("MAPbI3", 1.60, 20.0, 1.1, 23.0, 0.79),           # fine
        ("MAPbI3", 1.60, 2.1, 0.85, 2.46, 1.01),            # FF > 1
        ("MAPbI3", 1.60, LIMIT_AT_1_6 + 0.5, 1.2, 26.0, 0.9),  # above the SQ limit
        ("MAPbI3", float("nan"), 40.0, 1.2, 26.0, 1.2),     # no gap: not checked against the limit; FF > 1
        ("MAPbI3", 1.60, float("nan"), float("nan"), float("nan"), float("nan")),  # nothing measured
        ("MAPbI3", 1.60, LIMIT_AT_1_6 - 0.01, 1.2, 26.0, 1.0),  # just below the limit, FF exactly 1
    ])


def test_device_flags(devices):
    flags = quality.device_flags(devices)
    assert list(flags.columns) == ["ff_above_1", "pce_above_sq", "reason"]
    assert flags.index.equals(devices.index)
    assert flags["ff_above_1"].tolist() == [False, True, False, True, False, False]
    assert flags["pce_above_sq"].tolist() == [False, False, True, False, False, False]
    assert flags["ff_above_1"].dtype == bool and flags["pce_above_sq"].dtype == bool
    assert flags.loc[0, "reason"] == "" and flags.loc[4, "reason"] == ""
    assert flags.loc[1, "reason"] == "FF 1.01 > 1"
    assert "Shockley-Queisser" in flags.loc[2, "reason"] and "1.60 eV" in flags.loc[2, "reason"]
    assert f"{LIMIT_AT_1_6:.3g} %" in flags.loc[2, "reason"]
    assert quality.flag_counts(flags) == {"ff_above_1": 2, "pce_above_sq": 1, "any": 3}


def test_flags_keep_the_index_and_ignore_text_values():
    devices = table([("MAPbI3", "n/a", "35", 1.1, 23.0, "1.2"), ("FAPbI3", 1.5, 40.0, 1.1, 23.0, 0.7)])
    devices.index = [10, 20]
    flags = quality.device_flags(devices)
    assert list(flags.index) == [10, 20]
    assert flags["ff_above_1"].tolist() == [True, False]
    assert flags["pce_above_sq"].tolist() == [False, True]  # 40 % > 32.1 % at 1.5 eV
    assert math.isnan(quality.sq_pce_limit(devices).loc[10])


def test_flags_need_the_columns():
    with pytest.raises(SchemaError, match=MEASURED_BANDGAP):
        quality.device_flags(pd.DataFrame({PCE: [1.0], FF: [0.5]}))


def test_mask_unphysical_applies_the_stated_rule(devices):
    masked = quality.mask_unphysical(devices)
    assert masked is not devices and devices.loc[1, FF] == 1.01  # the input is not changed
    # FF > 1: only FF masked
    assert math.isnan(masked.loc[1, FF]) and masked.loc[1, PCE] == 2.1 and masked.loc[1, VOC] == 0.85
    # above the SQ limit: PCE, Voc, Jsc and FF masked
    assert masked.loc[2, [PCE, VOC, JSC, FF]].isna().all()
    assert masked.loc[3, PCE] == 40.0 and math.isnan(masked.loc[3, FF])
    pd.testing.assert_frame_equal(masked.loc[[0, 5]], devices.loc[[0, 5]])  # unflagged rows unchanged
    assert masked[DEVICE_COMPOSITION].equals(devices[DEVICE_COMPOSITION]) and len(masked) == len(devices)
    assert "fill factor above 1" in quality.TRAINING_RULE and "PCE, Voc, Jsc and FF" in quality.TRAINING_RULE


def test_mask_unphysical_with_given_flags_and_missing_targets(devices):
    flags = quality.device_flags(devices)
    narrow = devices.drop(columns=[VOC, JSC])
    masked = quality.mask_unphysical(narrow, flags)
    assert VOC not in masked.columns and math.isnan(masked.loc[2, PCE])


def test_real_devices_flag_counts(monkeypatch, data_dir):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(data_dir))
    devices = data.load("psc-devices", download=False)
    flags = quality.device_flags(devices)
    counts = quality.flag_counts(flags)
    assert counts["ff_above_1"] == 4  # the four devices the issue names
    assert counts["pce_above_sq"] == 0  # the best device reaches 72 % of its limit
    ratio = pd.to_numeric(devices[PCE], errors="coerce") / quality.sq_pce_limit(devices)
    assert 0.7 < ratio.max() < 0.75
    assert (devices.loc[flags["ff_above_1"], FF] > 1).all()
    masked = quality.mask_unphysical(devices, flags)
    assert int(masked[FF].isna().sum()) == int(devices[FF].isna().sum()) + 4
    assert masked[PCE].equals(devices[PCE])


# --------------------------------------------------------------------------- Data page


def test_data_page_lists_flagged_devices_and_the_rule(data_dir, monkeypatch):
    from app_driver import open_app, open_data_section, texts

    monkeypatch.setenv(data.DATA_DIR_ENV, str(data_dir))
    at = open_app("pages/data.py")
    assert at.selectbox(key="data.dataset").value == "psc-devices"
    assert "fill factor above 1" not in texts(at)  # a closed section is not drawn
    shown = texts(open_data_section(at, "Data quality"))
    assert "Data quality" in shown
    assert "4 devices" in shown and "fill factor above 1" in shown
    assert quality.TRAINING_RULE in shown
    flagged = next(df.value for df in at.dataframe if "reason" in df.value.columns)
    assert len(flagged) == 4 and flagged["reason"].str.contains("FF").all()
    assert sorted(flagged[FF].round(3).tolist()) == [1.01, 1.067, 1.165, 1.434]


def test_data_page_shows_missing_measured_gaps_as_blank(data_dir, monkeypatch):
    from app_driver import open_app

    monkeypatch.setenv(data.DATA_DIR_ENV, str(data_dir))
    at = open_app("pages/data.py")
    main = at.dataframe[0].value
    gaps = main[MEASURED_BANDGAP]
    assert gaps.notna().all()  # never a missing value (shown as "None") in the displayed column
    source = data.load("psc-devices", download=False)[MEASURED_BANDGAP]
    assert source.isna().sum() == 2018 - 1429
    shown = source.iloc[: len(gaps)]  # the first page, in file order
    assert len(gaps) < len(source) and ((gaps == "").to_numpy() == shown.isna().to_numpy()).all()  # blank exactly where no gap is reported
    assert not gaps.astype(str).isin(["None", "nan", "NaN", "<NA>"]).any()
    assert set(gaps[gaps != ""].astype(float).round(2)) <= set(
        data.load("psc-devices", download=False)[MEASURED_BANDGAP].dropna().round(2))


def test_every_chain_trains_on_the_cleaned_device_table(data_dir):
    """The training rule is applied where stage tables are built: the 4 devices with FF > 1 lose their FF only."""
    from nestedae_core.data import load_dataset_table

    raw = data.load("psc-devices")
    table = load_dataset_table("psc-devices")
    flagged = pd.to_numeric(raw[FF], errors="coerce") > 1
    assert int(flagged.sum()) == 4
    assert table.loc[flagged, FF].isna().all() and not (table[FF] > 1).any()
    kept = ~flagged
    pd.testing.assert_series_equal(table.loc[kept, FF], pd.to_numeric(raw.loc[kept, FF]), check_names=False)
    for col in (PCE, VOC, JSC):  # no device is above its Shockley-Queisser limit: nothing else is masked
        pd.testing.assert_series_equal(table[col], pd.to_numeric(raw[col]), check_names=False)
