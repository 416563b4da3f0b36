"""Batch predictions and explanations: nestedae_core.batch and `nestedae predict|explain --csv`."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nestedae_core import batch, store
from nestedae_core.batch import BatchColumns
from nestedae_core.cli import main
from nestedae_core.errors import InputError

pytestmark = pytest.mark.unit

GOOD = ["MAPbI3", "FAPbI3", "Cs0.05FA0.79MA0.16PbBr0.51I2.49"]
#: rows 3 (unknown ion), 4 (blank formula) and 5 (unknown ETL stack) fail
TABLE = pd.DataFrame({
    "formula": ["MAPbI3", "FAPbI3", "XxPbI3", "", "MAPbI3", "Cs0.05FA0.79MA0.16PbBr0.51I2.49"],
    "etl": ["", "SnO2-c", "", "", "Nonsense", ""],
    "htl": ["", "", "", "", "", "Spiro-MeOTAD"],
    "note": list("abcdef"),
})
COLS = BatchColumns("formula", "etl", "htl")


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return store.load_default_bundle()


@pytest.fixture
def in_csv(tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    TABLE.to_csv(path, index=False)
    return path


def _manifest_sha(model) -> str:  # type: ignore[no-untyped-def]
    return hashlib.sha256((Path(model.record["bundle_path"]) / "manifest.json").read_bytes()).hexdigest()


# --------------------------------------------------------------------------- library


def test_good_rows_are_predicted_and_bad_rows_get_an_error(model) -> None:
    out = batch.predict_rows(model, TABLE, COLS)
    assert list(out["row"]) == [1, 2, 3, 4, 5, 6]
    assert list(out["note"]) == list("abcdef")  # input columns kept
    err = out["error"]
    assert (err[[0, 1, 5]] == "").all()
    assert "column 'formula'" in err[2] and "Xx" in err[2]
    assert "column 'formula'" in err[3] and "empty" in err[3]
    assert "column 'etl'" in err[4] and "Nonsense" in err[4] and "SnO2-c" in err[4]  # names the known stacks
    assert out.loc[[2, 3, 4], "pce_percent_mean"].isna().all()
    # each quantity names its fidelity and unit; intervals bracket the mean
    for name in ("bandgap_eV", "bandgap_pbe_eV", "bandgap_hse_soc_eV", "pce_percent"):
        good = out.loc[[0, 1, 5]]
        assert good[f"{name}_mean"].notna().all()
        assert (good[f"{name}_lower"] <= good[f"{name}_mean"]).all() and (good[f"{name}_mean"] <= good[f"{name}_upper"]).all()
    assert out.loc[1, "etl"] == "SnO2-c" and out.loc[5, "htl"] == "Spiro-MeOTAD"
    assert out.loc[0, "stacks_defaulted"] == "etl;htl"
    assert out.loc[5, "composition"] == "Cs0.05FA0.79MA0.16PbBr0.51I2.49"
    assert set(out.loc[[0, 1, 5], "in_domain"]) <= {True, False}


def test_batch_rows_match_single_predictions(model) -> None:
    from nestedae_core.predict import predict_composition

    out = batch.predict_rows(model, TABLE, COLS)
    single = predict_composition(model, "FAPbI3", etl="SnO2-c").to_json()
    assert out.loc[1, "pce_percent_mean"] == pytest.approx(single["pce_percent"]["mean"])
    assert out.loc[1, "bandgap_eV_upper"] == pytest.approx(single["bandgap_eV"]["upper"])
    assert out.loc[1, "in_domain"] == single["in_domain"]


def test_out_of_domain_rows_name_the_stage(model) -> None:
    out = batch.predict_rows(model, pd.DataFrame({"formula": ["CsGeCl3", "MAPbI3"]}), BatchColumns("formula"))
    far = out.iloc[0]
    assert far["in_domain"] is False or far["in_domain"] == False  # noqa: E712
    assert far["domain_stage"] in [s.name for s in model.spec.stages] and far["domain_message"]


def test_provenance_columns(model) -> None:
    out = batch.predict_rows(model, TABLE, COLS)
    from nestedae_core import __version__

    assert set(out["model_name"]) == {model.record["name"]}
    assert set(out["model_sha256"]) == {_manifest_sha(model)}
    assert set(out["nestedae_version"]) == {__version__}


def test_streaming_in_chunks_gives_the_same_file(model, in_csv: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    s1 = batch.predict_csv(model, in_csv, a, COLS, chunk_rows=2)
    s2 = batch.predict_csv(model, in_csv, b, COLS, chunk_rows=1000)
    assert (s1.rows, s1.failed) == (s2.rows, s2.failed) == (6, 3)
    fa, fb = (pd.read_csv(p) for p in (a, b))
    pd.testing.assert_frame_equal(fa, fb, rtol=1e-4, atol=1e-5)  # float32 batches of another size differ in the last digits
    assert s1.errors[0].startswith("row 3: column 'formula'")


def test_missing_column_names_the_columns_the_file_has(model, in_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"'composition' not found.*'formula', 'etl', 'htl', 'note'"):
        batch.predict_csv(model, in_csv, tmp_path / "o.csv", BatchColumns("composition"))
    assert not (tmp_path / "o.csv").exists()


def test_a_failure_while_writing_leaves_no_partial_file(model, in_csv: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out.csv"
    out.write_text("previous results\n")
    real = batch.predict_rows
    calls = {"n": 0}

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(batch.predictions, "predict_rows", flaky)  # what predict_csv calls
    with pytest.raises(InputError, match="disk is full"):
        batch.predict_csv(model, in_csv, out, COLS, chunk_rows=2)
    assert out.read_text() == "previous results\n"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]  # no temp file left


def test_explain_long_and_wide(model) -> None:
    table = TABLE.iloc[[0, 2, 5]]
    long = batch.explain_rows(model, table, COLS, fmt="long", method="gradient")
    assert set(long["row"]) == {1, 2, 3}
    bad = long[long["row"] == 2]
    assert len(bad) == 1 and "Xx" in bad["error"].iloc[0]
    good = long[long["error"] == ""]
    assert set(good["output"]) >= {"bandgap_pbe_eV", "pce_percent"}
    for (_, _), part in good.groupby(["row", "output"]):  # base + sum(attributions) = prediction
        assert part["base_value"].iloc[0] + part["attribution"].sum() == pytest.approx(part["prediction"].iloc[0], abs=0.05)  # integrated gradients: quadrature error
    assert set(good["unit"]) == {"eV", "%"}
    wide = batch.explain_rows(model, table, COLS, fmt="wide", method="gradient")
    assert len(wide) == 3 and list(wide["note"]) == ["a", "c", "f"]
    feats = [c for c in wide.columns if c.startswith("pce_percent__")]
    assert feats and wide.loc[[0, 2], feats].notna().all().all() and wide.loc[1, feats].isna().all()
    total = wide["pce_percent_base"] + wide[feats].sum(axis=1)
    assert np.allclose(total[[0, 2]], wide.loc[[0, 2], "pce_percent_prediction"], atol=0.05)
    assert set(wide["model_sha256"]) == {_manifest_sha(model)}


def test_explain_wide_of_only_bad_rows_keeps_the_header(model) -> None:
    wide = batch.explain_rows(model, TABLE.iloc[[2, 3]], COLS, fmt="wide", method="gradient")
    good = batch.explain_rows(model, TABLE.iloc[[0]], COLS, fmt="wide", method="gradient")
    assert list(wide.columns) == list(good.columns) and (wide["error"] != "").all()


# --------------------------------------------------------------------------- CLI


def test_cli_predict_csv(in_csv: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.csv"
    rc = main(["predict", "--csv", str(in_csv), "--formula-column", "formula", "--etl-column", "etl", "--htl-column", "htl", "--out", str(out)])
    assert rc == 0
    cap = capsys.readouterr()
    err = cap.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nestedae: 3 of 6 rows failed") and "row 3" in err[0]
    assert "predicted 3 of 6 rows" in cap.out
    df = pd.read_csv(out, keep_default_na=False)
    assert len(df) == 6 and (df["error"] != "").sum() == 3
    assert {"bandgap_eV_mean", "pce_percent_lower", "in_domain", "domain_stage", "model_name", "model_sha256"} <= set(df.columns)


def test_cli_all_rows_bad_exits_1(tmp_path: Path, capsys) -> None:
    src = tmp_path / "bad.csv"
    pd.DataFrame({"formula": ["Xx", "Zz3"]}).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    assert main(["predict", "--csv", str(src), "--out", str(out)]) == 1
    assert "2 of 2 rows failed" in capsys.readouterr().err
    assert len(pd.read_csv(out)) == 2  # the errors are written all the same


@pytest.mark.parametrize("argv, message", [
    (["predict", "--csv", "{in}", "--formula-column", "comp", "--out", "{out}"], "column 'comp' not found"),
    (["predict", "--csv", "{in}"], "--csv needs --out"),
    (["predict", "MAPbI3", "--out", "{out}"], "--out applies only with --csv"),
    (["predict", "MAPbI3", "--csv", "{in}", "--out", "{out}"], "either a formula or --csv"),
    (["predict", "--csv", "{in}", "--out", "{out}", "--json"], "--json apply only to a single formula"),
    (["predict", "--csv", "{in}", "--out", "{tmp}"], "directory"),
    (["explain", "--csv", "{in}", "--out", "{out}", "--format", "tall"], "invalid choice"),
    (["predict", "--csv", "{tmp}/missing.csv", "--out", "{out}"], "cannot read the input"),
    (["predict", "--csv", "{header}", "--out", "{out}"], "a header but no rows"),
])
def test_cli_batch_errors_are_one_line(argv, message, in_csv: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "header.csv").write_text("formula,etl\n")
    argv = [a.format(**{"in": in_csv, "out": tmp_path / "o.csv", "tmp": tmp_path, "header": tmp_path / "header.csv"}) for a in argv]
    with pytest.raises(SystemExit) if "tall" in argv else _nothing():
        assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_cli_explain_csv_long_and_wide(in_csv: Path, tmp_path: Path) -> None:
    long, wide = tmp_path / "long.csv", tmp_path / "wide.csv"
    base = ["explain", "--csv", str(in_csv), "--etl-column", "etl", "--htl-column", "htl", "--method", "gradient"]
    assert main([*base, "--out", str(long)]) == 0
    assert main([*base, "--out", str(wide), "--format", "wide"]) == 0
    lf = pd.read_csv(long, keep_default_na=False)
    wf = pd.read_csv(wide, keep_default_na=False)
    assert set(lf["row"]) == set(range(1, 7)) and len(wf) == 6
    assert "attribution" in lf and any(c.startswith("bandgap_pbe_eV__") for c in wf.columns)


def test_model_by_saved_name(tmp_path: Path, monkeypatch, capsys) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(store.default_bundle_path(), models / "my-model")
    monkeypatch.setenv(store.MODELS_DIR_ENV, str(models))
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame({"formula": GOOD}).to_csv(src, index=False)
    assert main(["predict", "--csv", str(src), "--model", "my-model", "--out", str(out)]) == 0
    assert set(pd.read_csv(out)["model_name"]) == {"my-model"}
    capsys.readouterr()
    assert main(["predict", "MAPbI3", "--model", "my-model", "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    sha = hashlib.sha256((models / "my-model" / "manifest.json").read_bytes()).hexdigest()
    assert js["model"]["name"] == "my-model" and js["model"]["bundle_sha256"] == sha


def test_json_outputs_name_the_model(model, capsys) -> None:
    from nestedae_core import __version__

    assert main(["predict", "MAPbI3", "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["model"] == {"name": model.record["name"], "bundle_sha256": _manifest_sha(model),
                           "bundle_path": model.record["bundle_path"], "version": __version__}
    assert main(["explain", "MAPbI3", "--json", "--method", "gradient"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["bundle_sha256"] == _manifest_sha(model)


# --------------------------------------------------------------------------- the fast path (issue 19)

#: MAPbI3 spelled many ways, other compositions repeated with other stacks, and bad rows of every kind
MIXED = pd.DataFrame({
    "formula": ["MAPbI3", "CH3NH3PbI3", "MA1.0Pb1.0I3.0", "(MA)PbI3", "MAPbI₃", " MAPbI3 ", "MA_1Pb_1I_3", "MAPbI2.99",
                "(MAPbI3)0.5(MAPbI3)0.5", "Cs0.05FA0.79MA0.16PbBr0.51I2.49", "Cs0.05(FA0.83MA0.17)0.95Pb(I0.83Br0.17)3",
                "Cs0.333FA0.333MA0.333PbI3", "FA0.9518Cs0.0482PbBr0.5691I2.431", "", "XxPbI3", "MAPbI2", "MAPb", "MA0PbI3",
                "CsPbI-3", "((MAPbI3)", "MAPbI3 + KI", "MAPbI3", "FAPbI3", "FAPbI3", "CH(NH2)2PbI3", "CsSnBr3"],
    "etl": ["", "SnO2-c", "", "SnO2-c", "", "PCBM-60", "", "", "", "", "SnO2-c", "", "", "", "", "", "", "", "", "", "",
            "Nonsense", "", "SnO2-c", "", ""],
    "htl": ["", "", "Spiro-MeOTAD", "", "", "", "", "", "", "Spiro-MeOTAD", "", "", "", "", "", "", "", "", "", "", "",
            "", "", "", "", ""],
    "note": [f"n{i}" for i in range(26)],
})


def _reference_parse_many(texts, cache=None, *, max_cache=0):  # type: ignore[no-untyped-def]
    """The parse before the fast path: parse_formula on every row, no cache."""
    from nestedae_core.chemistry.composition import parse_formula
    from nestedae_core.errors import CompositionError

    out = []
    for t in texts:
        try:
            c = parse_formula(t)
            out.append((c.formula, c.fraction_vector()))
        except CompositionError as exc:
            out.append(exc)
    return out


def test_a_row_the_model_refuses_gets_its_error_and_the_others_their_predictions(model, monkeypatch) -> None:
    """A model error on a chunk is isolated row by row: the refused row gets the message, the others what they get alone."""
    reference = batch.predict_rows(model, TABLE, COLS)
    plain = batch.predictions._predict_distinct

    def refuse_fapbi3(m, frame, level):  # type: ignore[no-untyped-def]
        if (frame["formula"] == "FAPbI3").any():
            raise InputError("no FA today")
        return plain(m, frame, level)

    monkeypatch.setattr(batch.predictions, "_predict_distinct", refuse_fapbi3)
    out = batch.predict_rows(model, TABLE, COLS)
    assert out.loc[1, "error"] == "no FA today" and np.isnan(out.loc[1, "bandgap_eV_mean"]) and out.loc[1, "in_domain"] is None
    keep = [0, 2, 3, 4, 5]
    pd.testing.assert_frame_equal(out.loc[keep], reference.loc[keep], rtol=1e-4, atol=1e-4)  # alone vs. in a chunk: float32 sums
    assert out.loc[1, "model_name"] == reference.loc[1, "model_name"] != ""


def test_a_refused_row_is_found_by_halving_the_chunk(model, monkeypatch) -> None:
    """One refused row among many costs a few retries (halves of halves), not one prediction per row."""
    table = pd.DataFrame({"formula": ["MAPbI3", "FAPbI3", "MAPbBr3", "CsPbI3"] * 16})
    table.loc[37, "formula"] = "MAPb0.5Sn0.5I3"
    plain = batch.predictions._predict_distinct
    calls = []

    def refuse_sn(m, frame, level):  # type: ignore[no-untyped-def]
        calls.append(len(frame))
        if frame["formula"].str.contains("Sn").any():
            raise InputError("no Sn today")
        return plain(m, frame, level)

    monkeypatch.setattr(batch.predictions, "_predict_distinct", refuse_sn)
    out = batch.predict_rows(model, table, batch.BatchColumns(formula="formula"))
    assert out.loc[37, "error"] == "no Sn today" and np.isnan(out.loc[37, "bandgap_eV_mean"])
    assert (out.drop(index=37)["error"] == "").all() and out.drop(index=37)["bandgap_eV_mean"].notna().all()
    assert len(calls) <= 2 * 7 + 1  # 64 rows: two calls per halving level, not 64


def test_fast_batch_path_writes_the_file_the_plain_path_writes(model, tmp_path: Path, monkeypatch) -> None:
    src, fast, plain = tmp_path / "in.csv", tmp_path / "fast.csv", tmp_path / "plain.csv"
    MIXED.to_csv(src, index=False)
    s1 = batch.predict_csv(model, src, fast, COLS, chunk_rows=7)  # the parse cache spans chunks
    monkeypatch.setattr(batch.tables, "parse_many", _reference_parse_many)
    monkeypatch.setattr(batch.predictions, "_predict_distinct", lambda m, frame, level: m.predict(frame, level=level))
    s2 = batch.predict_csv(model, src, plain, COLS, chunk_rows=7)
    assert (s1.rows, s1.failed, s1.errors) == (s2.rows, s2.failed, s2.errors)
    assert s1.failed == 9
    a, b = (pd.read_csv(p, keep_default_na=False, dtype=str) for p in (fast, plain))
    assert list(a.columns) == list(b.columns) and "error" in a.columns
    numeric = [c for c in a.columns if c.endswith(("_mean", "_std", "_lower", "_upper"))]
    pd.testing.assert_frame_equal(a.drop(columns=numeric), b.drop(columns=numeric))  # formulas, stacks, domain, errors
    fa, fb = (f[numeric].replace("", "nan").astype(float) for f in (a, b))
    pd.testing.assert_frame_equal(fa, fb, rtol=1e-5)  # float32 batches of another size differ in the last digits
    assert (a.loc[:8, "composition"] == "MAPbI3").all()
    assert a.loc[13, "error"] == "column 'formula': empty formula" and "Xx" in a.loc[14, "error"]


def test_parse_many_is_parse_formula(tmp_path: Path) -> None:
    from nestedae_core.chemistry.composition import parse_many

    rng = np.random.default_rng(7)
    texts = list(MIXED["formula"]) + ["MAPbI3.07", "MAPb0.99I3", "MA.5FA.5PbI3", "MAPbI3.", "MA1e-3PbI3", "MAPbI3" * 60]
    for _ in range(600):
        parts = []
        for ions, total in ((["Cs", "FA", "MA", "K", "Rb"], 1.0), (["Pb", "Sn", "Ge", "Sr"], 1.0), (["I", "Br", "Cl"], 3.0)):
            chosen = rng.choice(ions, size=rng.integers(1, 4), replace=False)
            w = rng.random(len(chosen))
            w = w / w.sum() * total * rng.uniform(0.985, 1.015)
            parts += [f"{ion}{round(v, int(rng.integers(1, 7))):g}" for ion, v in zip(chosen, w)]
        texts.append("".join(parts))
    got, want = parse_many(texts), _reference_parse_many(texts)
    assert len(got) == len(want) == len(texts)
    for text, g, w in zip(texts, got, want):
        if isinstance(w, Exception):
            assert isinstance(g, Exception) and str(g) == str(w), text
        else:
            assert not isinstance(g, Exception) and g[0] == w[0] and np.array_equal(g[1], w[1]), text
    assert sum(isinstance(w, Exception) for w in want) >= 8  # bad texts were checked too
    # cached errors hold no traceback (frames of the caller would stay alive with their chunk of the file)
    assert all(g.__traceback__ is None and g.__context__ is None for g in got if isinstance(g, Exception))


def test_repeated_floats_are_written_as_pandas_writes_them(tmp_path: Path) -> None:
    import io

    from nestedae_core.csv_safe import write_csv

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": np.repeat([0.1, -2.5e-07, np.nan, 1e22, 1 / 3], 40), "b": rng.random(200), "t": ["=x"] * 200})
    frame["b2"] = frame["b"].round(1)
    ours, theirs = io.StringIO(), io.StringIO()
    write_csv(frame, ours, index=False)
    frame.assign(t="'=x").to_csv(theirs, index=False)
    assert ours.getvalue() == theirs.getvalue()
