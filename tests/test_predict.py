"""Chain predictions: single queries, JSON, domain flags, line scans, screening."""
from __future__ import annotations

import numpy as np
import pytest

from nestedae_core.errors import CompositionError, InputError
from nestedae_core.predict import line_scan, predict_composition, screen


@pytest.fixture(scope="module")
def model(tiny_paper):
    return tiny_paper.model


def test_query_json_has_the_documented_keys(model) -> None:
    res = predict_composition(model, "Cs0.05FA0.79MA0.16PbBr0.51I2.49", etl="SnO2-np")
    js = res.to_json()
    assert set(js["bandgap_eV"]) >= {"mean", "std"} and set(js["pce_percent"]) >= {"mean", "std"}
    assert isinstance(js["in_domain"], bool)
    assert js["etl"] == "SnO2-np" and js["htl"] == "Spiro-MeOTAD"
    assert js["defaulted"] == ["HTL_stack_sequence"]
    assert len(js["latents"]["materials"]) == 12
    assert js["bandgap_eV"]["std"] > 0


def test_unknown_stack_lists_the_known_ones(model) -> None:
    with pytest.raises(InputError, match="unknown ETL stack 'ZnO'; known: .*TiO2-c"):
        predict_composition(model, "MAPbI3", etl="ZnO")
    with pytest.raises(CompositionError):
        predict_composition(model, "MAPbI3-DAP")


def test_exotic_composition_is_outside_the_device_domain(model) -> None:
    inside = predict_composition(model, "MAPbI3")
    outside = predict_composition(model, "KCaCl3")
    assert inside.stage_in_domain["devices"]
    assert not outside.stage_in_domain["devices"]
    assert not outside.in_domain
    assert outside.domain_distance["devices"] > inside.domain_distance["devices"]


def test_stack_changes_the_pce_but_not_the_band_gap(model) -> None:
    a = predict_composition(model, "MAPbI3", etl="TiO2-c", htl="Spiro-MeOTAD")
    b = predict_composition(model, "MAPbI3", etl="PCBM-60", htl="PEDOT:PSS")
    assert a.targets["Gap"]["mean"] == pytest.approx(b.targets["Gap"]["mean"])
    assert a.targets["JV_reverse_scan_PCE"]["mean"] != pytest.approx(b.targets["JV_reverse_scan_PCE"]["mean"])


def test_line_scan_runs_between_end_members(model) -> None:
    df = line_scan(model, "MAPbI3", "MAPbBr3", steps=11)
    assert len(df) == 11 and df["x"].iloc[0] == 0 and df["x"].iloc[-1] == 1
    assert df["formula"].iloc[0] == "MAPbI3" and df["formula"].iloc[-1] == "MAPbBr3"
    assert {"Gap_mean", "Gap_std", "JV_reverse_scan_PCE_mean", "in_domain"} <= set(df.columns)
    with pytest.raises(InputError, match="steps"):
        line_scan(model, "MAPbI3", "MAPbBr3", steps=1)


def test_screen_filters_and_ranks(model) -> None:
    df = screen(model, ["MA", "FA", "Cs"], ["Pb"], ["I", "Br"], 0.1, bandgap_window=(1.4, 2.0))
    assert len(df) > 0
    assert df["Gap_mean"].between(1.4, 2.0).all()
    inside = df["in_domain"].to_numpy(dtype=bool)
    assert not np.any(np.diff(inside.astype(int)) > 0)  # in-domain candidates first, then the rest
    for part in (df[inside], df[~inside]):  # each part ranked by PCE
        pce = part["JV_reverse_scan_PCE_mean"].to_numpy()
        assert np.all(np.diff(pce) <= 1e-12)
    assert df.attrs["bandgap_column"] == "Gap" and df.attrs["bandgap_fidelity"] == "PBE"  # this model has no measured gap
    assert np.allclose(df[["MA", "FA", "Cs"]].sum(axis=1), 1.0)
    with pytest.raises(InputError, match="cannot rank by 'nope'"):
        screen(model, ["MA"], ["Pb"], ["I"], 0.5, rank_by="nope")
