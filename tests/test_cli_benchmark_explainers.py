"""`nestedae benchmark explainers`: each explainer against the ground truth of the synthetic set, on a tiny setting."""
from __future__ import annotations

import json

import pytest

from nestedae_core.cli import main

pytestmark = pytest.mark.training


def test_benchmark_explainers_prints_the_table_and_writes_the_report(tmp_path, capsys) -> None:
    out = tmp_path / "explainers.json"
    assert main(["benchmark", "explainers", "--task", "independent", "--rows", "3", "--epochs", "5", "--folds", "2",
                 "--draws", "8", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "MAE (a.u.)" in text and "rank agreement" in text and "interventional" in text and "observational" in text
    report = json.loads(out.read_text())
    rows = report["rows"]
    seen = {(r["subject"], r["explainer"]) for r in rows}
    for m in ("exact", "permutation", "kernel"):
        assert ("true function", m) in seen and ("trained model", m) in seen
    assert ("trained model", "gradient") in seen and ("true function", "gradient") not in seen
    assert report["settings"]["seed"] == 0 and report["models"]["independent"]["y1_validation_mae"] > 0
    # explainers of the true function itself are much closer to the interventional truth than a 5-epoch model
    err = {(r["subject"], r["explainer"], r["game"]): r["mae"] for r in rows}
    assert err[("true function", "exact", "interventional")] < err[("trained model", "exact", "interventional")]
    assert all(r["seconds"] >= 0 for r in rows)


def test_benchmark_explainers_refuses_an_unknown_task(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "explainers", "--task", "causal"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
