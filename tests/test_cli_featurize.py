"""Tests of ``nestedae featurize`` through nestedae_core.cli.main."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nestedae_core.cli import main
from nestedae_core.chemistry.composition import IONS
from nestedae_core.chemistry.features import DESCRIPTORS, FEATURE_COLUMNS

pytestmark = pytest.mark.unit


def assert_one_line_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nestedae")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_single_formula_text(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["featurize", "Cs0.05(FA0.83MA0.17)0.95Pb(I0.83Br0.17)3"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert "Cs0.05FA0.7885MA0.1615PbBr0.51I2.49" in out
    assert "X: Br 0.17, I 0.83" in out
    assert "A_ion_rad" in out and "A-site ionic radius" in out and "Å" in out and "kJ/mol" in out
    for name in DESCRIPTORS:
        assert name in out
    assert "tolerance factor t = 0.9694" in out
    assert "octahedral factor mu = 0.5511" in out


def test_single_formula_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["featurize", "MAPbI3", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    payload = json.loads(out)
    assert set(payload) == {"formula", "fractions", "descriptors", "tolerance_factor", "octahedral_factor"}
    assert payload["formula"] == "MAPbI3"
    assert list(payload["fractions"]) == list(IONS)
    assert payload["fractions"]["MA"] == 1.0 and payload["fractions"]["I"] == 1.0
    assert list(payload["descriptors"]) == list(DESCRIPTORS)
    assert payload["descriptors"]["A_ion_rad"] == 2.17
    assert payload["tolerance_factor"] == pytest.approx(0.911521131)
    assert payload["octahedral_factor"] == pytest.approx(0.540909091)


def test_renormalize_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["featurize", "FA0.5PbI3", "--json", "--renormalize"]) == 0
    assert json.loads(capsys.readouterr().out)["formula"] == "FAPbI3"


@pytest.mark.parametrize(
    ("formula", "fragment"),
    [
        ("MAPbI3-DAP", "additives are not supported: remove '-DAP'"),
        ("FA0.5PbI3", "A-site amounts sum to 0.5"),
        ("GAPbI3", "unknown species 'GA'"),
        ("Cs0.05(FA0.83MA0.17", "unbalanced parentheses"),
    ],
)
def test_bad_formula_exit_2(capsys: pytest.CaptureFixture[str], formula: str, fragment: str) -> None:
    code = main(["featurize", formula])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert_one_line_error(err, "error:", fragment)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["featurize"], "one of the arguments FORMULA --csv is required"),
        (["featurize", "MAPbI3", "--csv", "x.csv"], "not allowed with"),
        (["featurize", "--csv", "x.csv"], "--csv needs --formula-column and --out"),
        (["featurize", "--csv", "x.csv", "--formula-column", "f", "--out", "o.csv", "--json"], "--json applies to a single FORMULA"),
        (["featurize", "MAPbI3", "--out", "o.csv"], "--out only applies with --csv"),
        (["featurize", "MAPbI3", "--out", "o.csv", "--formula-column", "f"], "--formula-column and --out only apply with --csv"),
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert_one_line_error(capsys.readouterr().err, fragment)


def test_csv_mode_with_a_bad_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text("sample,composition,pce\nA1,MAPbI3,17.20\nA2,MAPbI3-DAP,18.0\nA3,(FAPbI3)0.85(MAPbBr3)0.15,20.1\n", encoding="utf-8")
    target = tmp_path / "out.csv"
    target.write_text("stale output\n", encoding="utf-8")
    code = main(["featurize", "--csv", str(source), "--formula-column", "composition", "--out", str(target)])
    out, err = capsys.readouterr()
    assert code == 0 and out == ""
    assert "featurized 3 rows, 1 failed" in err
    table = pd.read_csv(target, dtype={"pce": str}, keep_default_na=False)
    assert list(table.columns) == ["sample", "composition", "pce"] + list(IONS) + list(FEATURE_COLUMNS) + ["error"]
    assert table["pce"].tolist() == ["17.20", "18.0", "20.1"]  # input columns kept as written
    assert table.loc[0, "error"] == "" and table.loc[2, "error"] == ""
    assert "remove '-DAP'" in table.loc[1, "error"]
    assert table.loc[1, "A_ion_rad"] == ""  # failed row: empty feature cells
    assert float(table.loc[2, "Br"]) == pytest.approx(0.15)
    assert {p.name for p in tmp_path.iterdir()} == {"in.csv", "out.csv"}  # no temporary file left behind


def test_csv_mode_unusable_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text("name,formula\nx,MAPbI3\n", encoding="utf-8")
    target = tmp_path / "out.csv"
    code = main(["featurize", "--csv", str(source), "--formula-column", "Formula", "--out", str(target)])
    assert code == 2
    assert_one_line_error(capsys.readouterr().err, "formula column 'Formula' not found", "'name', 'formula'")
    assert not target.exists()

    code = main(["featurize", "--csv", str(tmp_path / "missing.csv"), "--formula-column", "formula", "--out", str(target)])
    assert code == 2
    assert_one_line_error(capsys.readouterr().err, "missing.csv")

    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    code = main(["featurize", "--csv", str(empty), "--formula-column", "formula", "--out", str(target)])
    assert code == 2
    assert_one_line_error(capsys.readouterr().err, "is empty")

    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81formula\n")
    code = main(["featurize", "--csv", str(binary), "--formula-column", "formula", "--out", str(target)])
    assert code == 2
    assert_one_line_error(capsys.readouterr().err, "not UTF-8")
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_csv_mode_on_device_dataset(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = data_dir / "PSC_efficiencies_dataset.csv"
    target = tmp_path / "devices.csv"
    code = main(["featurize", "--csv", str(source), "--formula-column", "Perovskite_composition_long_form", "--out", str(target)])
    assert code == 0
    assert "featurized 2018 rows, 0 failed" in capsys.readouterr().err
    table = pd.read_csv(target)
    assert len(table) == 2018 and table["error"].isna().all()
    assert "JV_reverse_scan_PCE" in table.columns and "X_atom_wt" in table.columns
