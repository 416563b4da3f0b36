"""The `nestedae train`, `predict` and `benchmark` commands."""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nestedae_core.cli import main

pytestmark = pytest.mark.training

#: the keys of every predicted quantity in `nestedae predict --json`
ENTRY_KEYS = {"mean", "std", "lower", "upper", "level", "unit", "fidelity", "phase", "label"}


@pytest.fixture(scope="module")
def training_run(tmp_path_factory, data_dir) -> tuple[Path, str]:
    """``nestedae train`` of a small paper chain: the saved bundle and what the command printed."""
    out = tmp_path_factory.mktemp("cli") / "model"
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert main(["train", "--preset", "paper", "--epochs", "5", "--folds", "3", "--no-progress", "--out", str(out)]) == 0
    return out, printed.getvalue()


@pytest.fixture
def trained(training_run) -> Path:
    return training_run[0]


def test_train_prints_a_summary_and_saves_a_bundle(training_run) -> None:
    trained, printed = training_run
    assert printed.startswith("3-fold random cross-validation, seed 0, device cpu\n")
    assert "materials  band gap (eV)" in printed and "devices    PCE (%)" in printed
    assert printed.endswith(f"saved model bundle to {trained}\n")
    assert (trained / "weights.safetensors").is_file()
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["spec"]["folds"] == 3 and cfg["spec"]["stages"][0]["epochs"] == 5


def test_predict_json_keys(trained, capsys) -> None:
    assert main(["predict", "MAPbI3", "--model", str(trained), "--json", "--htl", "PTAA"]) == 0
    js = json.loads(capsys.readouterr().out)
    # bandgap_eV is the measured-scale gap: the paper chain has none and says so; its DFT gap is bandgap_pbe_eV
    assert js["bandgap_eV"] is None and js["bandgap_note"] == "this model has no measured-gap stage; see bandgap_pbe_eV"
    assert set(js["bandgap_pbe_eV"]) == ENTRY_KEYS and set(js["pce_percent"]) == ENTRY_KEYS
    assert js["bandgap_pbe_eV"]["fidelity"] == "PBE" and js["bandgap_pbe_eV"]["unit"] == "eV" and js["bandgap_hse_soc_eV"] is None
    assert js["pce_percent"]["fidelity"] is None and js["pce_percent"]["level"] == pytest.approx(0.9)
    for part in (js["bandgap_pbe_eV"], js["pce_percent"]):
        if part["lower"] is not None:
            assert part["lower"] <= part["mean"] <= part["upper"]
    assert not [k for k in js if k.startswith("Gap")]  # no gap under a column name
    assert isinstance(js["in_domain"], bool) and js["htl"] == "PTAA" and js["etl"] == "TiO2-c | TiO2-mp"
    assert js["domain_stage"] is None if js["in_domain"] else js["domain_message"]


def test_predict_text_says_which_defaults_were_used(trained, capsys) -> None:
    assert main(["predict", "FAPbI3", "--model", str(trained)]) == 0
    out = capsys.readouterr().out
    assert "band gap" in out and "eV" in out and "%" in out
    assert "default: most common in the training data" in out
    assert "band gap, DFT PBE (no SOC)" in out and "model disagreement" in out  # the fidelity is named; the spread is disagreement
    assert "note: this model has no measured-gap stage; its band gap is DFT PBE (no SOC)" in out


def test_predict_with_the_shipped_model(capsys) -> None:
    assert main(["predict", "MAPbI3", "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["formula"] == "MAPbI3" and js["in_domain"] is True
    gaps = [js[k] for k in ("bandgap_eV", "bandgap_pbe_eV", "bandgap_hse_soc_eV") if js[k] is not None]
    assert gaps and all(set(g) == ENTRY_KEYS and g["unit"] == "eV" for g in gaps)
    assert (js["bandgap_eV"] is None) == ("bandgap_note" in js)


def test_predict_names_each_reason_once(capsys) -> None:
    assert main(["predict", "CsPbCl3"]) == 0  # flagged at the film stage (Cl on the X site) and the device stage
    out = capsys.readouterr().out
    assert out.count("Cl on the X site 1.00") == 1 and "film: OUTSIDE" in out
    assert "warning: the query lies outside the training domain (stage film, device: reasons above)" in out


def _result(targets: dict, in_domain: bool = True):
    """A QueryResult made by hand (no model needed)."""
    from nestedae_core.predict import QueryResult

    return QueryResult(formula="MAPbI3", targets=targets, in_domain=in_domain, stage_in_domain={"film": in_domain},
                       domain_distance={"film": 0.5}, latents={"film": [0.1]}, categorical={"ETL_stack_sequence": "SnO2-np"},
                       defaulted=[], domain_stage=None if in_domain else "film",
                       domain_message="" if in_domain else "outside the training data of stage 'film': distance 3 > 1")


def _target(mean, fidelity, unit="eV", lower=None, upper=None, label="band gap", stage="film"):
    return {"mean": mean, "std": 0.02, "disagreement": 0.02, "lower": lower, "upper": upper, "level": 0.9, "unit": unit,
            "label": label, "stage": stage, "fidelity": fidelity}


def test_prediction_json_of_a_measured_model_with_intervals() -> None:
    res = _result({"Gap_PBE": _target(1.82, "PBE", label="band gap (PBE)", stage="dft"),
                   "Gap_HSE": _target(1.71, "HSE", label="band gap (HSE06)", stage="dft"),
                   "Perovskite_band_gap": _target(1.59, "measured", lower=1.52, upper=1.66, label="band gap (measured)"),
                   "JV_reverse_scan_PCE": _target(17.1, None, unit="%", lower=12.0, upper=21.0, label="PCE", stage="device"),
                   "JV_reverse_scan_Voc": _target(1.05, None, unit="V", label="Voc", stage="device")}, in_domain=False)
    js = res.to_json()
    assert list(js)[:4] == ["formula", "bandgap_eV", "bandgap_pbe_eV", "bandgap_hse_soc_eV"] and "bandgap_note" not in js
    assert js["bandgap_eV"] == {"mean": 1.59, "std": 0.02, "lower": 1.52, "upper": 1.66, "level": 0.9, "unit": "eV", "fidelity": "measured",
                                "phase": None, "label": "band gap (measured)"}
    assert js["bandgap_pbe_eV"]["mean"] == 1.82 and js["bandgap_hse_soc_eV"]["mean"] == 1.71 and js["bandgap_hse_soc_eV"]["fidelity"] == "HSE"
    assert js["pce_percent"]["lower"] == 12.0 and set(js["voc_V"]) == ENTRY_KEYS
    assert not {"Gap_PBE_eV", "Gap_HSE_eV", "Perovskite_band_gap_eV"} & set(js)  # each gap once, under its fidelity's key
    assert js["domain_stage"] == "film" and "stage 'film'" in js["domain_message"] and js["etl"] == "SnO2-np"
    json.dumps(js, allow_nan=False)


def test_prediction_json_without_a_measured_gap_says_so() -> None:
    js = _result({"Gap": _target(1.82, "PBE", stage="materials")}).to_json()
    assert js["bandgap_eV"] is None and js["bandgap_note"] == "this model has no measured-gap stage; see bandgap_pbe_eV"
    assert js["bandgap_pbe_eV"]["mean"] == 1.82 and js["bandgap_pbe_eV"]["lower"] is None and js["bandgap_hse_soc_eV"] is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "MAPbI3", "--etl", "ZnO"], "unknown ETL stack 'ZnO'; known:"),
        (["predict", "FA0.5PbI3"], "A-site amounts sum to 0.5"),
        (["predict", "MAPbI3", "--model", "/nonexistent/model"], "no model bundle at"),
        (["train", "--preset", "nope", "--out", "/tmp/nestedae-test-no-such-bundle-7f3a"], "unknown preset 'nope'"),
        (["train", "--epochs", "0", "--out", "/tmp/nestedae-test-no-such-bundle-7f3a"], "--epochs must be at least 1"),
        (["train", "--device", "cuda:9", "--epochs", "1", "--out", "/tmp/nestedae-test-no-such-bundle-7f3a"], "not available on this machine"),
    ],
)
def test_errors_are_one_line_without_traceback(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_process_exit_code_and_stderr() -> None:
    p = subprocess.run([sys.executable, "-m", "nestedae_core", "predict", "XyZ"], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.endswith("\n"), p.stderr  # one line, no traceback
    assert p.stderr.startswith("nestedae: error: unknown species 'Xy' at position 0 in 'XyZ': known ions are "), p.stderr


def test_benchmark_accuracy_json_shape(data_dir, tmp_path, capsys) -> None:
    out = tmp_path / "acc.json"
    argv = ["benchmark", "accuracy", "--task", "bandgap-paper", "--model", "nestedae", "--model", "ridge", "--model", "mean", "--epochs", "5", "--json", str(out)]
    assert main(argv) == 0
    js = json.loads(out.read_text())
    models = js["tasks"]["bandgap-paper"]["models"]
    assert set(models) == {"nestedae", "ridge", "mean"}
    for m in models.values():
        assert len(m["folds"]) == 5 and m["mae"] == pytest.approx(sum(f["mae"] for f in m["folds"]) / 5)
    assert models["ridge"]["mae"] < models["mean"]["mae"]
    assert "bandgap-paper" in capsys.readouterr().out


def test_predict_names_each_gap_with_its_phase_and_leads_with_the_measured_gap(capsys) -> None:
    """The shipped chain: DFT gaps say HSE06+SOC / PBE (no SOC) and their phase; the measured gap comes first; a model
    without a decomposition head says so instead of failing."""
    assert main(["predict", "MAPbI3", "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["phase"] == "Cubic"
    assert js["bandgap_hse_soc_eV"]["phase"] == "Cubic" and js["bandgap_hse_soc_eV"]["label"] == "band gap, DFT HSE06+SOC (cubic)"
    assert js["bandgap_pbe_eV"]["label"] == "band gap, DFT PBE (no SOC, cubic)" and js["bandgap_eV"]["phase"] is None
    if js["decomposition_eV_per_fu"] is None:
        assert js["decomposition_note"].startswith("not in this model")
    assert main(["predict", "MAPbI3"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "band gap," in line]
    assert "band gap, measured" in rows[0] and "band gap, DFT HSE06+SOC (cubic)" in "\n".join(rows)
    assert not any("(HSE06)" in r or "(PBE)" in r for r in rows)


def test_predict_phase_changes_the_dft_gaps_only(capsys) -> None:
    assert main(["predict", "MAPbI3", "--json"]) == 0
    cubic = json.loads(capsys.readouterr().out)
    assert main(["predict", "MAPbI3", "--json", "--phase", "tetragonal"]) == 0
    tetra = json.loads(capsys.readouterr().out)
    assert tetra["bandgap_hse_soc_eV"]["label"] == "band gap, DFT HSE06+SOC (tetragonal)" and tetra["phase"] == "Tetra"
    assert tetra["bandgap_hse_soc_eV"]["mean"] != pytest.approx(cubic["bandgap_hse_soc_eV"]["mean"], abs=1e-6)
    # the film and device stages always take the films' phase: picking one for the DFT gaps never moves them
    assert tetra["bandgap_eV"]["mean"] == pytest.approx(cubic["bandgap_eV"]["mean"])
    assert tetra["pce_percent"]["mean"] == pytest.approx(cubic["pce_percent"]["mean"])
    assert main(["predict", "MAPbI3", "--phase", "cubicc"]) == 2
    assert "is not a phase of this model; give one of: Cubic, Hex, Ortho, Tetra" in capsys.readouterr().err
