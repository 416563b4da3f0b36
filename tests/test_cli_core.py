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
    assert set(js["bandgap_eV"]) >= {"mean", "std"} and set(js["pce_percent"]) >= {"mean", "std"}
    assert isinstance(js["in_domain"], bool) and js["htl"] == "PTAA" and js["etl"] == "TiO2-c | TiO2-mp"


def test_predict_text_says_which_defaults_were_used(trained, capsys) -> None:
    assert main(["predict", "FAPbI3", "--model", str(trained)]) == 0
    out = capsys.readouterr().out
    assert "band gap" in out and "eV" in out and "%" in out
    assert "default: most common in the training data" in out


def test_predict_with_the_shipped_model(capsys) -> None:
    assert main(["predict", "MAPbI3", "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["formula"] == "MAPbI3" and js["in_domain"] is True


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "MAPbI3", "--etl", "ZnO"], "unknown ETL stack 'ZnO'; known:"),
        (["predict", "FA0.5PbI3"], "A-site amounts sum to 0.5"),
        (["predict", "MAPbI3", "--model", "/nonexistent/model"], "no model bundle at"),
        (["train", "--preset", "nope", "--out", "/tmp/x"], "unknown preset 'nope'"),
        (["train", "--epochs", "0", "--out", "/tmp/x"], "--epochs must be at least 1"),
        (["train", "--device", "cuda:9", "--epochs", "1", "--out", "/tmp/x"], "not available on this machine"),
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
