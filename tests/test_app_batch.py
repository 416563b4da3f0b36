"""Predict page: a pasted table of compositions and stacks in, a table of predictions out (same columns as the CLI)."""
from __future__ import annotations

import pytest

from app_driver import exceptions, open_app, texts

pytestmark = pytest.mark.app

TABLE = "formula,etl,htl,note\nMAPbI3,SnO2-c,,first\nXxPbI3,,,second\nFAPbI3,Nonsense,,third\n[click](http://evil.example)**,,,fourth\n"


def _frames(at):  # type: ignore[no-untyped-def]
    """The batch result and the row errors (found by their columns)."""
    out = {}
    for el in at.dataframe:
        df = el.value
        if "model_sha256" in df:
            out["predict.batch_table"] = df
        elif list(df.columns) == ["row", "error"]:
            out["predict.batch_errors"] = df
    return out


def test_pasted_table_is_predicted_with_row_errors(app_env) -> None:
    at = open_app("pages/predict.py")
    at.text_area(key="predict.batch_text").input(TABLE).run()
    assert not at.exception, exceptions(at)
    assert at.selectbox(key="predict.batch_formula").value == "formula"
    assert at.selectbox(key="predict.batch_etl").value == "etl"  # guessed from the header
    frames = _frames(at)
    result = frames["predict.batch_table"]  # the predicted rows; the failed ones are in the errors table and the CSV
    assert list(result["note"]) == ["first"] and list(result["row"]) == [1]
    assert result["error"].iloc[0] == "" and result["etl"].iloc[0] == "SnO2-c"
    assert result["pce_percent_mean"].iloc[0] > 0 and result["model_name"].iloc[0]
    errors = frames["predict.batch_errors"]
    assert list(errors["row"]) == [2, 3, 4]
    assert "column 'formula'" in errors.iloc[0]["error"] and "column 'etl'" in errors.iloc[1]["error"]
    page = texts(at)
    assert "3 of 4 rows could not be predicted" in page
    assert "](http" not in page  # user text never reaches Markdown
    buttons = {b.key: b.label for b in at.get("download_button")}
    assert buttons["predict.batch_dl"] == "Download the predictions (CSV)"
    assert buttons["predict.report"] == "Download report"  # the single prediction as a shareable HTML file


def test_a_missing_column_choice_and_a_bad_table_are_messages(app_env) -> None:
    at = open_app("pages/predict.py")
    at.text_area(key="predict.batch_text").input("formula\n" + "MAPbI3\n" * 3).run()
    assert not at.exception, exceptions(at)
    assert len(_frames(at)["predict.batch_table"]) == 3
    at.text_area(key="predict.batch_text").input("formula\n").run()
    assert not at.exception, exceptions(at)
    assert "header but no rows" in "\n".join(str(e.value) for e in at.error)


def test_explain_offers_a_report_and_says_why_the_exact_base_value_differs(paper_default) -> None:
    at = open_app("pages/explain.py")
    assert any(b.key == "explain.report" for b in at.get("download_button"))
    assert "exact explainer averages over a smaller background" not in texts(at)
    at.radio(key="explain.terms").set_value("latents").run()
    pce = next(o for o in at.selectbox(key="explain.output_latent").options if o.startswith("PCE (%) ← stage"))  # the paper chain: few inputs, exact offered
    at.selectbox(key="explain.output_latent").set_value(pce).run()
    at.radio(key="explain.local_method").set_value("exact").run()
    assert not at.exception, exceptions(at)
    assert "exact explainer averages over a smaller background" in texts(at)
