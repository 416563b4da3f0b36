"""Shareable HTML reports (nestedae_core.report) and `--report` of predict/explain."""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nestedae_core import report, store
from nestedae_core.batch import explain_outputs
from nestedae_core.cli import main
from nestedae_core.predict import model_provenance, predict_composition, screen
from nestedae_core.query import query_frame

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return store.load_default_bundle()


def _values(v) -> list:  # type: ignore[no-untyped-def]
    """A trace's x or y: a list, or plotly's typed array ``{"dtype", "bdata"}`` (base64)."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return list(v or [])


def _figures(text: str) -> list[dict]:
    """The plotly figures' data embedded in a report: one ``Plotly.newPlot(id, data, layout, config)`` per figure."""
    calls = re.findall(r'Plotly\.newPlot\(\s*"(fig\d+)",\s*(\[.*?\]),\s*\{', text, flags=re.S)
    return [{"id": i, "data": json.loads(d)} for i, d in calls]


def test_prediction_report_holds_figures_values_and_provenance(model) -> None:
    res = predict_composition(model, "FAPbI3", etl="SnO2-c")
    atts = explain_outputs(model, query_frame(model, ["FAPbI3"], categorical=res.categorical), method="gradient")
    text = report.prediction_report(res, attributions=atts)
    assert text.startswith("<!DOCTYPE html>") and text.count("<script type='text/javascript'>") == 1  # plotly.js once
    assert not re.search(r"<script[^>]+src=", text)  # nothing to fetch: works offline
    figs = _figures(text)
    assert len(figs) == 1 + len(atts)  # the chain and one attribution chart per output
    pce = res.targets["JV_default_PCE"] if "JV_default_PCE" in res.targets else next(t for t in res.targets.values() if t["unit"] == "%")
    ys = [v for tr in figs[0]["data"] for v in _values(tr.get("y"))]
    assert any(abs(v - pce["mean"]) < 1e-9 for v in ys)  # the chain figure carries the predicted values
    prov = model_provenance(model)
    assert prov["bundle_sha256"] in text and prov["name"] in text and prov["version"] in text
    assert "SnO2-c" in text and "interval" in text
    # every figure can be downloaded as PNG and SVG under a name that says what it is
    assert "format: 'svg', filename: 'Prediction-for-FAPbI3-chain'" in text
    assert "format: 'png', scale: 2, filename: 'Prediction-for-FAPbI3-attributions-pce_percent'" in text


def test_user_text_is_escaped(model) -> None:
    res = predict_composition(model, "MAPbI3")
    evil = "<script>alert('x')</script>"
    text = report.prediction_report(res, provenance={"name": evil, "bundle_sha256": None, "version": "0"}, title=f"run {evil}")
    assert evil not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    sec = report.Section(evil, [evil], tables=[(evil, pd.DataFrame({evil: [evil]}))])
    assert evil not in report.render("t", [sec])
    assert report.figure_filename("run", evil) == "run-script-alert-x-script"


def test_screening_report(model) -> None:
    ranked = screen(model, ["MA", "FA"], ["Pb"], ["I", "Br"], 0.25)
    text = report.screening_report(ranked, provenance=model_provenance(model), settings={"A site": "MA, FA", "step": 0.25})
    figs = _figures(text)
    assert len(figs) == 1
    xs = [v for tr in figs[0]["data"] for v in _values(tr.get("x"))]
    assert len(xs) == len(ranked)
    assert ranked["formula"].iloc[0] in text and "step" in text


#: what a report may carry beside plotly.js (its figures, tables and styles): the 8,000-candidate screening
#: report below carries about 430 kB, most of it the candidates' formulas shown on hover (530 kB with float64 points)
REPORT_PAYLOAD_BUDGET = 500_000


def test_reports_weigh_one_plotly_js_and_little_else(model) -> None:
    """plotly.js (about 4.8 MB, embedded once so the file works offline) is nearly the whole file: figures carry
    their arrays packed (base64 typed arrays), never as long lists of full-precision numbers."""
    from plotly.offline import get_plotlyjs

    js = len(get_plotlyjs().encode())
    res = predict_composition(model, "MAPbI3")
    ranked = screen(model, ["Cs", "MA", "FA"], ["Pb", "Sn"], ["I", "Br"], 0.1)
    assert len(ranked) >= 2000
    texts = [report.prediction_report(res, attributions=explain_outputs(model, query_frame(model, ["MAPbI3"]), method="gradient")),
             report.screening_report(ranked, provenance=model_provenance(model))]
    for text in texts:
        assert text.count("plotly.js v") == 1  # one copy of the library
        assert len(text.encode()) - js < REPORT_PAYLOAD_BUDGET
        for fig in _figures(text):
            for trace in fig["data"]:
                assert not any(isinstance(v, list) and len(v) > 50 and isinstance(v[0], float) for v in trace.values())
    points = [tr for fig in _figures(texts[1]) for tr in fig["data"]]
    assert {tr["x"]["dtype"] for tr in points} == {tr["y"]["dtype"] for tr in points} == {"f4"}  # 7 digits, half of float64
    assert sum(len(_values(tr["x"])) for tr in points) == len(ranked)


def test_training_report_has_metrics_and_parity_plots() -> None:
    metrics = {"dft": {"Gap": {"mae": 0.1, "mae_std": 0.01, "folds": [{"fold": 0, "mae": 0.09}, {"fold": 1, "mae": 0.11}]}}}
    oof = {"dft": pd.DataFrame({"Gap_true": [1.0, 1.5, 2.0, 2.5], "Gap_pred": [1.1, 1.4, 2.1, 2.4], "fold": [0, 0, 1, 1]})}
    text = report.training_report("my-run", metrics, oof, provenance={"name": "my-run", "bundle_sha256": None, "version": "0.1.0"})
    figs = _figures(text)
    assert len(figs) == 1 and "parity-dft-Gap" in text
    assert sorted(v for tr in figs[0]["data"][:2] for v in _values(tr["x"])) == [1.0, 1.5, 2.0, 2.5]
    assert "0.1" in text and "Training run my-run" in text


def test_cli_report(tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.html"
    assert main(["explain", "MAPbI3", "--method", "gradient", "--report", str(out)]) == 0
    text = out.read_text()
    assert len(_figures(text)) >= 2 and "MAPbI3" in text
    assert "report written" in capsys.readouterr().err


def test_cli_report_to_a_directory_fails_in_one_line(tmp_path: Path, capsys) -> None:
    assert main(["predict", "MAPbI3", "--report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "directory" in err and len(err.splitlines()) == 1


def test_training_report_of_a_real_run(tiny_synthetic) -> None:
    res = tiny_synthetic
    text = report.training_report("synthetic", res.metrics, res.oof, provenance=model_provenance(res.model),
                                  settings={"preset": "synthetic", "epochs": 30})
    n_targets = sum(len(s.targets) for s in res.model.spec.stages)
    assert len(_figures(text)) == n_targets  # one parity plot per target
    first = res.model.spec.stages[0]
    assert f"{res.metrics[first.name][first.targets[0].column]['mae']:.4g}" in text
