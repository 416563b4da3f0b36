"""Bad input to the formula parser and to ``nestedae featurize`` (issue: every bad input gets a clear message).

Unicode digits are read as the digits they are; every other character is a
CompositionError naming it; the CLI prints one line and never a traceback; one
bad row of ``featurize --csv`` gets its message in the ``error`` column and
never stops the file.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from nestedae_core.chemistry.composition import SiteTotalError, parse_formula
from nestedae_core.cli import main
from nestedae_core.errors import CompositionError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MAPbI₃", "MAPbI3"),  # subscript
        ("MAPbI³", "MAPbI3"),  # superscript
        ("MAPbI٣", "MAPbI3"),  # Arabic-Indic
        ("MAPbI۳", "MAPbI3"),  # extended Arabic-Indic (Persian)
        ("MAPbI३", "MAPbI3"),  # Devanagari
        ("MAPbI３", "MAPbI3"),  # full-width digit
        ("ＭＡＰｂＩ３", "MAPbI3"),  # full-width letters too
        ("MAPbI𝟑", "MAPbI3"),  # mathematical bold digit
        ("CH₃NH₃PbI₃", "MAPbI3"),  # the spelled-out cation with subscripts
        ("Cs₀.₀₅FA₀.₇₉MA₀.₁₆PbBr₀.₅₁I₂.₄₉", "Cs0.05FA0.79MA0.16PbBr0.51I2.49"),
        ("MAPb(I٠٫٨Br٠٫٢)٣", "MAPbBr0.6I2.4"),  # Arabic decimal separator
        ("(FAPbI₃)₀.₈₅(MAPbBr₃)₀.₁₅", "FA0.85MA0.15PbBr0.45I2.55"),
    ],
)
def test_unicode_digits_read_as_digits(text: str, expected: str) -> None:
    assert parse_formula(text) == parse_formula(expected)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("MAPbI½", ["unsupported number character '½'", "VULGAR FRACTION ONE HALF", "position 5", "digits and a '.' decimal point"]),
        ("MAPbI①", ["unsupported number character '①'", "CIRCLED DIGIT ONE"]),
        ("MAPbIⅢ", ["unsupported number character 'Ⅲ'", "ROMAN NUMERAL THREE"]),
        ("MAPbI\u200b3", ["unexpected character '\\u200b'", "ZERO WIDTH SPACE", "position 5"]),
        ("MAPbI3é", ["unexpected character 'é'", "LATIN SMALL LETTER E WITH ACUTE"]),
        ("MAPbΙ3", ["unexpected character 'Ι'", "GREEK CAPITAL LETTER IOTA"]),  # a look-alike of I
        ("MAPbI3-é", ["additives are not supported", "'-é'"]),
        ("MAPbI3²", ["X-site amounts sum to 32"]),  # digits are digits: I3² is I32
        ("[Session expired - sign in](https://evil.example)", ["unknown species 'Session' at position 1"]),
        ("MAPbI" + "9" * 250, ["X-site amounts sum to 1e+250 in"]),
        ("((((MA" + "9" * 60 + ")" + "9" * 60 + ")" + "9" * 60 + ")" + "9" * 60 + ")PbI3", ["A-site amounts sum to 1e+240 in"]),
    ],
)
def test_other_characters_are_a_composition_error_naming_them(text: str, fragments: list[str]) -> None:
    with pytest.raises(CompositionError) as info:
        parse_formula(text)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_site_total_error_carries_the_problem() -> None:
    with pytest.raises(SiteTotalError) as info:
        parse_formula("MAPbI2.5")
    exc = info.value
    assert isinstance(exc, CompositionError)
    assert (exc.site, exc.total, exc.expected) == ("X", 2.5, 3.0)
    assert exc.allowed == pytest.approx(0.06)
    assert exc.describe() == "X-site amounts sum to 2.5 in 'MAPbI2.5', expected 3 ± 0.06"
    assert "renormalize=True" in str(exc)  # the API's remedy is in the message, not in describe()
    assert "renormalize" not in exc.describe()


def _one_line_error(err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], err


@pytest.mark.parametrize("formula", ["MAPbI₃", "MAPbI³", "MAPbI٣"])
def test_cli_featurize_reads_unicode_digits(capsys: pytest.CaptureFixture[str], formula: str) -> None:
    assert main(["featurize", formula, "--json"]) == 0
    assert '"formula": "MAPbI3"' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("formula", "fragments"),
    [
        ("MAPbI½", ["nestedae: error:", "unsupported number character '½'"]),
        ("MAPbI\u200b3", ["unexpected character", "ZERO WIDTH SPACE"]),
        ("MAPbI2.5", ["X-site amounts sum to 2.5", "add --renormalize"]),
    ],
)
def test_cli_featurize_bad_formula_is_one_line(capsys: pytest.CaptureFixture[str], formula: str, fragments: list[str]) -> None:
    assert main(["featurize", formula]) != 0
    captured = capsys.readouterr()
    assert captured.out == ""
    _one_line_error(captured.err, *fragments)
    assert "renormalize=True" not in captured.err  # the command line names its own flag


def test_cli_featurize_csv_bad_rows_never_stop_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    rows = ["MAPbI₃", "MAPbI½", "FAPbI3", "MAPbI3-é", "[x](https://evil.example)", "CsPbI³", "MAPbI\u200b3", "CsPbBr3"]
    source.write_text("sample,formula\n" + "".join(f"s{i},{f}\n" for i, f in enumerate(rows)), encoding="utf-8")
    target = tmp_path / "out.csv"
    assert main(["featurize", "--csv", str(source), "--formula-column", "formula", "--out", str(target)]) == 0
    assert "featurized 8 rows, 4 failed" in capsys.readouterr().err
    table = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert table["formula"].tolist() == rows  # the input column is kept as it was
    errors = dict(zip(table["sample"], table["error"]))
    assert errors["s0"] == errors["s2"] == errors["s5"] == errors["s7"] == ""
    assert "unsupported number character '½'" in errors["s1"]
    assert "additives are not supported" in errors["s3"]
    assert "unexpected 'x' at position 1" in errors["s4"]
    assert "ZERO WIDTH SPACE" in errors["s6"]
    assert float(table.loc[table["sample"] == "s5", "Cs"].iloc[0]) == 1.0
    assert not list(tmp_path.glob(".out.csv.*"))  # no temp file left beside it
