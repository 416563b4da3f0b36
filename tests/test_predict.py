"""Chain predictions: single queries, JSON, domain flags, line scans, screening."""
from __future__ import annotations

import json

import numpy as np
import pytest

from types import SimpleNamespace

from nestedae_core.data.tables import load_chain_tables
from nestedae_core.errors import CompositionError, InputError
from nestedae_core.estimator import NestedAEModel
from nestedae_core.model.config import ChainSpec, StageSpec, TargetSpec
from nestedae_core.perovskite.presets import preset
from nestedae_core.predict import bandgaps, line_scan, predict_composition, screen, screening_gap_column
from nestedae_core.train import cross_validate

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def model(tiny_paper):
    return tiny_paper.model


def test_query_json_has_the_documented_keys(model) -> None:
    res = predict_composition(model, "Cs0.05FA0.79MA0.16PbBr0.51I2.49", etl="SnO2-np")
    js = res.to_json()
    assert js["bandgap_eV"] is None and "no measured-gap stage" in js["bandgap_note"]  # the paper chain's gap is PBE
    assert set(js["bandgap_pbe_eV"]) >= {"mean", "std"} and set(js["pce_percent"]) >= {"mean", "std"}
    assert isinstance(js["in_domain"], bool)
    assert js["etl"] == "SnO2-np" and js["htl"] == "Spiro-MeOTAD"
    assert js["defaulted"] == ["HTL_stack_sequence"]
    assert len(js["latents"]["materials"]) == 12
    assert js["bandgap_pbe_eV"]["std"] > 0 and js["bandgap_hse_soc_eV"] is None
    for key in ("bandgap_pbe_eV", "pce_percent"):
        entry = js[key]
        assert set(entry) == {"mean", "std", "lower", "upper", "level", "unit", "fidelity", "phase", "label"}
        assert entry["lower"] < entry["mean"] < entry["upper"] and entry["level"] == 0.9
        assert entry["upper"] - entry["lower"] > 4 * entry["std"]  # the interval is the error, not the ensemble spread
    assert js["bandgap_pbe_eV"]["fidelity"] == "PBE" and js["pce_percent"]["fidelity"] is None
    # the paper's PBE file has no phase: its gap names none; the label says which gap it is
    assert js["bandgap_pbe_eV"]["phase"] is None and js["bandgap_pbe_eV"]["label"] == "band gap, DFT PBE (no SOC)"
    assert js["pce_percent"]["label"] == "PCE" and js["decomposition_eV_per_fu"] is None and "not in this model" in js["decomposition_note"]
    assert js["domain_stage"] is None and js["domain_message"] == ""
    json.dumps(js)  # plain JSON


def test_query_targets_carry_intervals_levels_and_fidelities(model) -> None:
    res = predict_composition(model, "MAPbI3", level=0.5)
    wide = predict_composition(model, "MAPbI3", level=0.95)
    for col, t in res.targets.items():
        assert set(t) >= {"mean", "std", "lower", "upper", "level", "fidelity", "disagreement", "unit", "label", "stage"}
        assert t["level"] == 0.5 and wide.targets[col]["level"] == 0.95
        assert t["mean"] == wide.targets[col]["mean"]
        assert wide.targets[col]["lower"] < t["lower"] < t["upper"] < wide.targets[col]["upper"]
    assert res.targets["Gap"]["fidelity"] == "PBE" and res.targets["JV_reverse_scan_PCE"]["fidelity"] is None
    with pytest.raises(InputError, match="level"):
        predict_composition(model, "MAPbI3", level=1.0)


def test_bandgaps_by_fidelity(model) -> None:
    res = predict_composition(model, "MAPbI3")
    gaps = bandgaps(res)
    assert list(gaps) == ["PBE"]
    assert gaps["PBE"]["column"] == "Gap" and gaps["PBE"]["mean"] == res.targets["Gap"]["mean"]
    assert gaps["PBE"]["lower"] == res.targets["Gap"]["lower"]
    res.targets["Gap_HSE"] = {**res.targets["Gap"], "fidelity": "HSE", "mean": 2.0}
    res.targets["Perovskite_band_gap"] = {**res.targets["Gap"], "fidelity": "measured", "mean": 1.6}
    gaps = bandgaps(res)
    assert list(gaps) == ["measured", "PBE", "HSE"]
    assert gaps["measured"]["column"] == "Perovskite_band_gap" and gaps["HSE"]["mean"] == 2.0


def test_the_estimator_reports_the_interval(model) -> None:
    got = NestedAEModel.from_model(model).predict(["MAPbI3", "FAPbI3"])
    ref = predict_composition(model, "FAPbI3")
    for t in ref.targets.values():
        assert got.loc[1, f"{t['key']}_lower"] == pytest.approx(t["lower"], abs=1e-4)
        assert got.loc[1, f"{t['key']}_upper"] == pytest.approx(t["upper"], abs=1e-4)


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
    assert {"bandgap_pbe_eV_mean", "bandgap_pbe_eV_std", "pce_percent_mean", "in_domain"} <= set(df.columns)
    with pytest.raises(InputError, match="steps"):
        line_scan(model, "MAPbI3", "MAPbBr3", steps=1)


def test_screen_filters_and_ranks(model) -> None:
    df = screen(model, ["MA", "FA", "Cs"], ["Pb"], ["I", "Br"], 0.1, bandgap_window=(1.4, 2.0))
    assert len(df) > 0
    assert df["bandgap_pbe_eV_mean"].between(1.4, 2.0).all()
    inside = df["in_domain"].to_numpy(dtype=bool)
    assert not np.any(np.diff(inside.astype(int)) > 0)  # in-domain candidates first, then the rest
    for part in (df[inside], df[~inside]):  # each part ranked by PCE
        pce = part["pce_percent_mean"].to_numpy()
        assert np.all(np.diff(pce) <= 1e-12)
    assert df.attrs["bandgap_key"] == "bandgap_pbe_eV" and df.attrs["bandgap_fidelity"] == "PBE"  # this model has no measured gap
    assert np.allclose(df[["MA", "FA", "Cs"]].sum(axis=1), 1.0)
    with pytest.raises(InputError, match="cannot rank by 'nope'"):
        screen(model, ["MA"], ["Pb"], ["I"], 0.5, rank_by="nope")


def test_screening_never_ranks_an_out_of_domain_candidate_above_an_in_domain_one(model) -> None:
    df = screen(model, ["MA", "FA", "Cs", "K", "Rb"], ["Pb", "Sn", "Ge"], ["I", "Br", "Cl"], 0.5)
    inside = df["in_domain"].to_numpy(dtype=bool)
    assert inside.any() and (~inside).any()
    pce = df["pce_percent_mean"].to_numpy()
    # the test can fail: some out-of-domain candidates predict a higher PCE than some in-domain ones
    assert pce[~inside].max() > pce[inside].min()
    last_inside = np.flatnonzero(inside).max()
    assert inside[: last_inside + 1].all()  # every in-domain candidate before every out-of-domain one
    assert (df.loc[~inside, "domain_stage"] != "").all() and (df.loc[inside, "domain_stage"] == "").all()
    assert {"pce_percent_lower", "pce_percent_upper", "bandgap_pbe_eV_lower"} <= set(df.columns)


def _spec_with_gaps(*gaps: tuple[str, str | None]) -> ChainSpec:
    stage = StageSpec(name="dft", dataset="mhp-dft", numeric_inputs=["a"], targets=[TargetSpec(column=c, fidelity=f) for c, f in gaps])
    return ChainSpec(stages=[stage])


def test_the_screening_gap_is_the_measured_one_when_there_is_one() -> None:
    def gap(*targets: tuple[str, str | None]) -> tuple[str, str] | None:
        return screening_gap_column(SimpleNamespace(spec=_spec_with_gaps(*targets)))  # type: ignore[arg-type]

    assert gap(("Gap_PBE", "PBE"), ("Gap_HSE", "HSE"), ("Perovskite_band_gap", None)) == ("bandgap_eV", "measured")
    assert gap(("Gap_PBE", "PBE"), ("Gap_HSE", "HSE")) == ("bandgap_hse_soc_eV", "HSE")
    assert gap(("Gap_PBE", "PBE")) == ("bandgap_pbe_eV", "PBE")
    assert gap(("y", None)) is None
    assert screening_gap_column(SimpleNamespace(spec=preset("paper"))) == ("bandgap_pbe_eV", "PBE")  # type: ignore[arg-type]  # inferred: an mhp-* dataset


def test_screening_window_applies_to_the_measured_gap(data_dir) -> None:
    """A chain whose first stage predicts a PBE gap and a (made-up) measured-scale gap: the window filters the latter."""
    spec = preset("paper", epochs=20, folds=2).with_updates(stages={"materials": {"targets": [
        {"column": "Gap", "label": "band gap (PBE)", "unit": "eV", "fidelity": "PBE"},
        {"column": "Perovskite_band_gap", "label": "band gap (measured)", "unit": "eV"},
    ]}})
    tables = load_chain_tables(spec)
    tables["materials"] = tables["materials"].assign(Perovskite_band_gap=lambda t: 0.5 * t["Gap"] + 0.8)
    chain = cross_validate(spec, tables, device="cpu").model
    df = screen(chain, ["MA", "FA", "Cs"], ["Pb", "Sn"], ["I", "Br"], 0.25, bandgap_window=(1.5, 1.65))
    assert df.attrs["bandgap_key"] == "bandgap_eV" and df.attrs["bandgap_fidelity"] == "measured"
    assert len(df) > 0 and df["bandgap_eV_mean"].between(1.5, 1.65).all()
    assert not df["bandgap_pbe_eV_mean"].between(1.5, 1.65).all()  # the PBE gap was not the filter


def test_line_scan_x_has_no_float_noise() -> None:
    from nestedae_core import store

    scan = line_scan(store.load_default_bundle(), "MAPbI3", "MAPbBr3", 21)
    assert 0.15 in scan["x"].tolist() and 0.15000000000000002 not in scan["x"].tolist()
    assert scan["x"].astype(str).str.len().max() <= 4  # 0.05, 0.1, 0.15 ... as written, not 0.15000000000000002


def test_small_frames_predict_on_one_thread_with_the_same_numbers(monkeypatch) -> None:
    """A small frame is predicted on one CPU thread (cheaper); the values equal those of the default threads."""
    import numpy as np
    import torch

    from nestedae_core import NestedAEModel
    from nestedae_core.model import chain as chain_module
    from nestedae_core.query import query_frame

    model = NestedAEModel.load().model_
    frame = query_frame(model, ["MAPbI3", "FA0.8Cs0.2Pb(I0.9Br0.1)3", "CsSnI3"])
    seen: list[int] = []
    original = chain_module.NestedAE.predict_stage

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(chain_module.NestedAE, "predict_stage", spy)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one = model.predict(frame)
        monkeypatch.setattr(chain_module, "ONE_THREAD_ROWS", 0)
        default = model.predict(frame)
    finally:
        torch.set_num_threads(threads)
    assert seen[: len(one)] == [1] * len(one) and seen[len(one):] == [2] * len(default)
    for name, p in one.items():
        np.testing.assert_array_equal(np.asarray(p.mean), np.asarray(default[name].mean))
        np.testing.assert_array_equal(np.asarray(p.lower), np.asarray(default[name].lower))
