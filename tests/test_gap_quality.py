"""Tests of nestedae_core.data.gap_quality: measured-gap labels against neighbours and a Vegard-plus-bowing fit."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nestedae_core import data
from nestedae_core.data import derived, gap_quality as gq, quality
from nestedae_core.vocabulary import DEVICE_COMPOSITION, GAP_DEVICES, LABEL_WEIGHT, MEASURED_BANDGAP

pytestmark = pytest.mark.unit


def noh(x: float) -> float:
    return 1.57 + 0.39 * x + 0.33 * x * x


def devices(planted: float = 0.0, extra: list[tuple[str, float, str]] | None = None) -> pd.DataFrame:
    """Devices of MAPb(I1-xBrx)3 and FAPb(I1-xBrx)3 on a bowed line (x = 0 ... 1 in steps of 0.05); MAPb(I0.5Br0.5)3
    gets ``planted`` eV added to its label; MAPbI3 has three devices."""
    rows = []
    for x in np.round(np.linspace(0, 1, 21), 2):
        halide = "I3" if x == 0 else "Br3" if x == 1 else f"(I{1 - x:g}Br{x:g})3"
        rows.append((f"MAPb{halide}", noh(x) + (planted if x == 0.5 else 0.0), "Absorption"))
        rows.append((f"FAPb{halide}", noh(x) - 0.08, None))
    rows += [("MAPbI3", 1.58, "Composition"), ("MAPbI3", 1.56, "Composition")]
    rows += extra or []
    return pd.DataFrame(rows, columns=[DEVICE_COMPOSITION, MEASURED_BANDGAP, gq.BASIS_COLUMN])


def test_a_planted_outlier_is_flagged_with_its_reason_and_weight_zero():
    table = derived.psc_gaps(devices(planted=0.4))
    assert len(table) == 42 and table[GAP_DEVICES].sum() == 44  # nothing dropped
    by_key = table.set_index("composition_key")
    planted = by_key.loc["MAPbBr1.5I1.5"]
    assert planted[gq.LABEL_QUALITY] == "outlier" and planted[LABEL_WEIGHT] == 0.0
    reason = planted[gq.LABEL_REASON]
    assert "0.40 eV above the Vegard-plus-bowing fit" in reason and "above its 4 neighbours" in reason, reason
    assert "1 device; gap basis: Absorption (1)" in reason
    assert planted[gq.GAP_FIT] == pytest.approx(noh(0.5), abs=0.02)
    others = table.loc[table["composition_key"] != "MAPbBr1.5I1.5"]
    assert (others[gq.LABEL_QUALITY] == "ok").all() and (others[gq.LABEL_REASON] == "").all()
    assert quality.label_quality_counts(table) == {"ok": 41, "suspect": 0, "outlier": 1, "weight_zero": 1,
                                                    "single_device": 41}


def test_clean_labels_are_ok_and_weigh_1():
    table = derived.psc_gaps(devices())
    assert (table[gq.LABEL_QUALITY] == "ok").all()
    by_key = table.set_index("composition_key")
    assert (table[LABEL_WEIGHT] == 1.0).all() and by_key.loc["MAPbI3", GAP_DEVICES] == 3
    assert by_key.loc["MAPbI3", gq.GAP_BASIS] == "Composition (2), Absorption (1)"
    assert by_key.loc["FAPbI3", gq.GAP_BASIS] == "not stated (1)"
    assert by_key.loc["MAPbBr0.3I2.7", gq.N_NEIGHBOURS] == 4  # x = 0, 0.05, 0.15, 0.2 (at most 0.1 swapped)


def test_the_rule_on_given_estimates(monkeypatch):
    """The rule alone: both estimates off -> outlier (weight 0); one off -> suspect (weight 1, shown); only one
    estimate and off by more than twice the threshold -> outlier."""
    gaps = np.array([1.6, 1.6, 1.6, 1.6, 1.6, 1.6])
    loo = np.array([1.8, 1.8, 1.95, 1.8, np.nan, 1.62])
    near = np.array([1.8, 1.62, np.nan, np.nan, 1.4, 1.58])
    monkeypatch.setattr(gq, "vegard_bowing_fit", lambda f, g: (loo, loo))
    monkeypatch.setattr(gq, "neighbour_estimates", lambda f, g, fit, usable=None: (near, np.where(np.isnan(near), 0, 2)))
    table = pd.DataFrame({MEASURED_BANDGAP: gaps, GAP_DEVICES: [1, 3, 1, 1, 1, 1], **{ion: 0.0 for ion in gq.IONS}})
    out = gq.gap_label_quality(table)
    assert out[gq.LABEL_QUALITY].tolist() == ["outlier", "suspect", "outlier", "suspect", "suspect", "ok"]
    assert out[LABEL_WEIGHT].tolist() == [0.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    assert out.loc[3, gq.LABEL_REASON] == "1.60 eV: 0.20 eV below the Vegard-plus-bowing fit (1.80 eV); no neighbour (1 device)"
    assert "no Vegard-plus-bowing estimate" in out.loc[4, gq.LABEL_REASON] and "0.20 eV above its 2 neighbours" in out.loc[4, gq.LABEL_REASON]
    assert out.loc[5, gq.LABEL_REASON] == "" and out.index.equals(table.index)


def test_too_few_labels_judge_nothing():
    table = derived.psc_gaps(pd.DataFrame({DEVICE_COMPOSITION: ["MAPbI3", "FAPbI3", "MAPbBr3"], MEASURED_BANDGAP: [1.6, 1.5, 2.3]}))
    assert table[gq.GAP_FIT].isna().all() and (table[gq.LABEL_QUALITY] == "ok").all()
    assert (table[gq.GAP_BASIS] == "not stated (1)").all()


def test_vegard_fit_leave_one_out_and_leverage():
    x = np.linspace(0, 1, 25)
    fractions = np.zeros((25, 14))
    fractions[:, 3] = 1.0  # MA
    fractions[:, 10] = 1.0  # Pb
    fractions[:, 12], fractions[:, 13] = x, 1 - x  # Br, I
    gaps = np.array([noh(v) for v in x])
    gaps[12] += 0.5
    fitted, loo = gq.vegard_bowing_fit(fractions, gaps)
    assert loo[12] == pytest.approx(noh(x[12]), abs=0.01)  # the fit made without the wrong label
    assert np.abs(np.delete(loo - gaps, 12)).max() < 0.01
    near, count = gq.neighbour_estimates(fractions, gaps, fitted)
    assert count[0] == 2 and count[12] == 4  # x steps of 1/24: within 0.1 swapped
    assert near[12] == pytest.approx(noh(x[12]), abs=0.01)


def test_real_psc_gaps_flags_the_known_wrong_labels(monkeypatch, data_dir):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(data_dir))
    table = data.load("psc-gaps", download=False)
    assert len(table) == 151 and table[GAP_DEVICES].sum() == 1429  # every composition and device kept
    by_key = table.set_index("composition_key")
    for key in ("FAPbBrI2", "FAPbBr0.5I2.5", "MAPbBr2.25I0.75"):
        assert by_key.loc[key, gq.LABEL_QUALITY] == "outlier" and by_key.loc[key, LABEL_WEIGHT] == 0, key
    assert by_key.loc["CsPbI3", gq.LABEL_QUALITY] == "suspect" and "below the Vegard-plus-bowing fit" in by_key.loc["CsPbI3", gq.LABEL_REASON]
    assert by_key.loc["MAPbI3", gq.LABEL_QUALITY] == "ok" and by_key.loc["MAPbI3", LABEL_WEIGHT] == 1.0
    assert by_key.loc["CsPbI3", LABEL_WEIGHT] == 1.0  # suspect: shown, not down-weighted
    assert by_key.loc["MAPbI3", gq.GAP_BASIS].startswith("Composition (730)")
    counts = quality.label_quality_counts(table)
    assert counts["outlier"] == counts["weight_zero"] and 3 <= counts["outlier"] <= 10
    assert (table.loc[table[gq.LABEL_QUALITY] != "ok", gq.LABEL_REASON] != "").all()


@pytest.mark.app
def test_data_page_shows_the_flagged_labels_and_the_rules(data_dir, monkeypatch):
    from app_driver import open_app, open_data_section, texts

    monkeypatch.setenv(data.DATA_DIR_ENV, str(data_dir))
    at = open_app("pages/data.py")
    at.selectbox(key="data.dataset").set_value("psc-gaps").run()
    assert not at.exception
    shown = texts(open_data_section(at, "Label quality", "psc-gaps"))
    table = data.load("psc-gaps", download=False)
    counts = quality.label_quality_counts(table)
    assert f"{counts['outlier']} labels are outliers" in shown and f"{counts['single_device']} labels rest on one device" in shown
    assert quality.QUALITY_RULE in shown and quality.WEIGHT_RULE in shown and "No row is dropped" in shown
    flagged = next(df.value for df in at.dataframe if "reason" in df.value.columns)
    assert len(flagged) == counts["outlier"] + counts["suspect"] and (flagged["reason"] != "").all()
    assert set(flagged["quality"]) == {"outlier", "suspect"} and (flagged.loc[flagged["quality"] == "outlier", "training weight"] == 0).all()
    assert "FAPbBrI2" in set(flagged["composition_key"])


def test_cli_data_quality(capsys, tmp_path, monkeypatch, data_dir):
    import json

    from cli_checks import one_line_error, run

    monkeypatch.setenv(data.DATA_DIR_ENV, str(data_dir))
    out = tmp_path / "q.json"
    rc, stdout, err = run(capsys, "data", "quality", "--json", out)
    assert rc == 0, err
    doc = json.loads(out.read_text())
    assert len(doc["labels"]) == 151 and doc["rule"] == quality.QUALITY_RULE  # every label, flagged or not
    flagged = [r for r in doc["labels"] if r["label_quality"] != "ok"]
    assert doc["counts"]["outlier"] + doc["counts"]["suspect"] == len(flagged) and all(r["label_reason"] for r in flagged)
    assert f"{doc['counts']['outlier']} outliers (weight 0)" in stdout
    assert all(r["composition_key"] in stdout for r in flagged) and "MAPbI3 " not in stdout
    rc, stdout, _ = run(capsys, "data", "quality", "--all")
    assert rc == 0 and "MAPbI3 " in stdout
    rc, _, err = run(capsys, "data", "quality", "--json", tmp_path / "no" / "q.json")
    one_line_error(rc, err, "does not exist", code=2)
