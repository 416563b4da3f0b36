"""The `nestedae explain` command."""
from __future__ import annotations

import json

import numpy as np
import pytest

from nestedae_core.cli import main
from nestedae_core.query import query_frame
from nestedae_core.store import load_bundle, save_bundle

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def bundle(tiny_paper, tmp_path_factory):
    return save_bundle(tiny_paper, tmp_path_factory.mktemp("explain") / "paper")


def _scales(path) -> dict[str, float]:
    model = load_bundle(path)
    return {"bandgap_pbe_eV": float(model.prep[0].target_scale.mean()), "pce_percent": float(model.prep[-1].target_scale.mean())}


def test_explain_json_adds_up(bundle, capsys) -> None:
    assert main(["explain", "MAPbI3", "--etl", "SnO2-np", "--htl", "PTAA", "--model", str(bundle), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    scales = _scales(bundle)
    for key, unit, n in (("bandgap_pbe_eV", "eV", 15), ("pce_percent", "%", 17)):
        part = js[key]
        assert {"base", "prediction", "attributions"} <= set(part)
        assert part["unit"] == unit and len(part["attributions"]) == n
        total = part["base"] + sum(part["attributions"].values())
        assert abs(total - part["prediction"]) <= 1e-3 * scales[key]
    assert list(js["pce_percent"]["attributions"]).count("ETL_stack_sequence") == 1
    # the band gap says which one it is: the paper chain's is DFT-PBE, and it has no measured stage
    assert js["bandgap_pbe_eV"]["fidelity"] == "PBE" and js["bandgap_pbe_eV"]["label"] == "band gap, DFT PBE (no SOC)"
    assert js["pce_percent"]["fidelity"] is None and js["pce_percent"]["label"] == "PCE" and js["bandgap_eV"] is None
    assert js["pce_percent"]["data"]["ETL_stack_sequence"] == "SnO2-np" and js["pce_percent"]["data"]["HTL_stack_sequence"] == "PTAA"
    model = load_bundle(bundle)
    q = query_frame(model, ["MAPbI3"], categorical={"ETL_stack_sequence": "SnO2-np", "HTL_stack_sequence": "PTAA"})
    assert js["bandgap_pbe_eV"]["prediction"] == pytest.approx(model.predict_stage(0, q).mean[0, 0], abs=1e-4)
    assert js["pce_percent"]["prediction"] == pytest.approx(model.predict_stage(1, q).mean[0, 0], abs=1e-3)


def test_explain_text_lists_top_attributions(bundle, capsys) -> None:
    assert main(["explain", "FAPbI3", "--model", str(bundle), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "band gap" in out and "PCE" in out and "base value" in out and "prediction" in out
    assert "band gap, DFT PBE (no SOC) (Gap), w.r.t. its 15 inputs" in out
    assert "default: most common in the training data" in out
    blocks = [b for b in out.split("\n\n") if "attribution" in b]
    assert len(blocks) == 2
    for block in blocks:
        lines = block.splitlines()
        start = next(i for i, ln in enumerate(lines) if ln.startswith("---"))
        rows = [ln for ln in lines[start + 1 :] if not ln.startswith("  ...")]
        assert len(rows) == 3, rows
    assert " eV" in out and " %" in out and "more feature(s)" in out


@pytest.mark.parametrize("method", ["exact", "gradient"])
def test_explain_methods(bundle, capsys, method: str) -> None:
    assert main(["explain", "CsPbI3", "--model", str(bundle), "--json", "--method", method]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["bandgap_pbe_eV"]["explainer"] == method
    tol = 1e-4 if method == "exact" else 1e-2
    scales = _scales(bundle)
    for key in ("bandgap_pbe_eV", "pce_percent"):
        part = js[key]
        assert abs(part["base"] + sum(part["attributions"].values()) - part["prediction"]) <= tol * scales[key]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["explain", "MAPbI3", "--etl", "ZnO"], "unknown ETL stack 'ZnO'; known:"),
        (["explain", "FA0.5PbI3"], "A-site amounts sum to 0.5"),
        (["explain", "MAPbI3", "--model", "/nonexistent/model"], "no model bundle at"),
    ],
)
def test_explain_errors_are_one_line(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_explain_rejects_a_bad_top(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["explain", "MAPbI3", "--top", "0"])
    assert exc.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_explain_with_the_shipped_model(capsys) -> None:
    from nestedae_core.store import default_bundle_path

    if not default_bundle_path().is_dir():
        pytest.skip("no shipped default model in this checkout")
    assert main(["explain", "MAPbI3", "--json", "--top", "2"]) == 0
    js = json.loads(capsys.readouterr().out)
    part = js["pce_percent"]
    assert np.isclose(part["base"] + sum(part["attributions"].values()), part["prediction"], atol=1e-3)


@pytest.fixture(scope="module")
def measured_bundle(data_dir, tmp_path_factory):
    """A tiny chain of the measured preset (DFT -> measured film gap -> device), saved."""
    from nestedae_core.perovskite.presets import PRESETS, preset
    from nestedae_core.train import cross_validate

    if "measured" not in PRESETS:
        pytest.skip("no measured preset in this checkout")
    result = cross_validate(preset("measured", epochs=5, folds=2), device="cpu")
    return save_bundle(result, tmp_path_factory.mktemp("explain") / "measured")


def test_explain_names_every_gap_of_a_measured_model(measured_bundle, capsys) -> None:
    assert main(["explain", "MAPbI3", "--model", str(measured_bundle), "--json", "--method", "gradient"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["bandgap_pbe_eV"]["fidelity"] == "PBE" and js["bandgap_pbe_eV"]["label"] == "band gap, DFT PBE (no SOC, cubic)"
    assert js["bandgap_pbe_eV"]["phase"] == "Cubic" and js["bandgap_eV"]["phase"] is None
    part = js["bandgap_eV"]
    assert part["fidelity"] == "measured" and part["label"] == "band gap, measured" and part["unit"] == "eV"
    assert part["inputs"] == "chain" and js["pce_percent"]["fidelity"] is None
    assert abs(part["base"] + sum(part["attributions"].values()) - part["prediction"]) <= 2e-2
    assert main(["explain", "MAPbI3", "--model", str(measured_bundle), "--top", "2", "--method", "gradient"]) == 0
    out = capsys.readouterr().out
    assert "band gap, DFT PBE (no SOC, cubic) (Gap_PBE)" in out and "band gap, measured (Perovskite_band_gap), end to end" in out


def test_a_fresh_measured_chain_has_the_stability_output_and_gaps_never_below_zero(measured_bundle, capsys, tmp_path) -> None:
    """The measured preset's DFT stage: decomposition energy (eV/f.u.) with its interval in JSON, CSV and text; the
    DFT gaps' intervals never below 0 eV on any composition, by the heads' bounds (a grid reaching far out of domain)."""
    import pandas as pd

    from nestedae_core import predict

    model = load_bundle(measured_bundle)
    assert predict.has_decomposition(model)
    assert main(["predict", "CsPbBr3", "--model", str(measured_bundle), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    decomp = js["decomposition_eV_per_fu"]
    assert "decomposition_note" not in js and decomp["unit"] == "eV/f.u." and decomp["phase"] == "Cubic"
    assert decomp["lower"] <= decomp["mean"] <= decomp["upper"] and decomp["label"] == "decomposition energy (cubic)"
    assert main(["predict", "CsPbBr3", "--model", str(measured_bundle)]) == 0
    out = capsys.readouterr().out
    assert "decomposition energy (cubic)" in out and "lower is more stable" in out
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text("formula\nMAPbI3\nCsSnCl3\n")
    assert main(["predict", "--csv", str(src), "--model", str(measured_bundle), "--out", str(dst)]) == 0
    table = pd.read_csv(dst)
    assert {f"decomposition_eV_per_fu_{s}" for s in ("mean", "lower", "upper", "std")} <= set(table.columns)
    assert list(table["phase"]) == ["Cubic", "Cubic"]
    grid = predict.screen(model, ["K", "Rb", "Cs", "MA", "FA"], ["Ca", "Sr", "Ba", "Ge", "Sn", "Pb"], ["Cl", "Br", "I"], 0.5)
    for key in ("bandgap_hse_soc_eV", "bandgap_pbe_eV"):
        assert (grid[f"{key}_lower"] >= 0).all() and (grid[f"{key}_mean"] >= 0).all()
    assert len(predict.screen(model, ["Cs"], ["Pb"], ["I", "Br"], 0.25, decomposition_max=-100.0)) == 0  # the filter filters
