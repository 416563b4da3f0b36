"""Bad input to the dashboard (AppTest): URL parameters, Markdown injection, Compare uploads.

* ``?formula=`` with unicode digits reads as the digits; an unreadable one shows
  its specific message, computes nothing for another composition and stays in
  the URL as given.
* User text (the URL, typed formulas, uploaded reports) is never rendered as
  Markdown: no link, image, icon or autolink comes out of it.
* A Compare upload that is not an accuracy report says which file and which field.
"""
from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from app_driver import open_app, texts
from app.ui import escape_markdown
from nestedae_core.benchmark import reports
from nestedae_core.chemistry.composition import parse_formula

pytestmark = pytest.mark.app

#: Elements whose text Streamlit renders as Markdown.
MARKDOWN_KINDS = ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success")

INJECTIONS = [
    "[Session expired - sign in](https://evil.example)",
    "![x](http://127.0.0.1:9/img.png)",
    "<https://evil.example/login>",
    "see https://evil.example or www.evil.example or a@evil.example",
    "**Urgent** :material/lock: :red[sign in] $x^2$ `code` <img src=x onerror=alert(1)>",
    "[a]: https://evil.example\n\n[a]",
]


def plain(markdown: str) -> str:
    """What the user sees of escaped Markdown: backslash escapes and word joiners removed."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "").replace("  \n", "\n")


def assert_inert(markdown: str) -> None:
    """``markdown`` holds no construct that renders a link, an image, HTML, an icon or a format."""
    assert not re.search(r"(?<!\\)[\[\]<>`*$|~]", markdown), markdown  # link, image, autolink, HTML, code, emphasis, math
    assert not re.search(r"(?i)https?://|www\.|@[a-z]", markdown), markdown  # bare URLs, www. names, e-mail addresses
    assert not re.search(r"(?<!\\):[a-z]", markdown), markdown  # :material/...:, :red[...], emoji short codes


def markdown_elements(at: Any) -> list[str]:
    return [str(el.value) for kind in MARKDOWN_KINDS for el in getattr(at, kind)]


def elements_showing(at: Any, fragment: str) -> list[str]:
    """The Markdown elements whose visible text contains ``fragment``."""
    return [md for md in markdown_elements(at) if fragment in plain(md)]


# --------------------------------------------------------------------------- escape helper


@pytest.mark.parametrize("text", INJECTIONS + ["ETL_stack_sequence", "1. first\n- second\n    code", "x_ _y_ a__b"])
def test_escape_markdown_is_inert_and_shows_the_text(text: str) -> None:
    escaped = escape_markdown(text)
    assert_inert(escaped)
    assert plain(escaped).replace("\n", " ").split() == text.replace("\n", " ").split()


def test_escape_markdown_keeps_words_with_underscores_readable() -> None:
    assert escape_markdown("random_forest on ETL_stack_sequence") == "random_forest on ETL_stack_sequence"


# --------------------------------------------------------------------------- URL parameter


@pytest.mark.parametrize(("given", "canonical"), [("MAPbI₃", "MAPbI3"), ("MAPbI٣", "MAPbI3"), ("MAPbI３", "MAPbI3"),
                                                 ("Cs₀.₀₅FA₀.₇₉MA₀.₁₆PbBr₀.₅₁I₂.₄₉", "Cs0.05FA0.79MA0.16PbBr0.51I2.49")])
def test_url_formula_with_unicode_digits_reads_as_the_digits(no_data_env, given: str, canonical: str) -> None:
    at = open_app("pages/compose.py", query={"formula": given})
    assert not at.exception and not at.error
    assert at.header[0].value == parse_formula(canonical).formula


@pytest.mark.parametrize("payload", INJECTIONS)
def test_url_markdown_injection_renders_no_link_or_image(no_data_env, payload: str) -> None:
    at = open_app("pages/compose.py", query={"formula": payload})
    assert not at.exception
    shown = elements_showing(at, "could not be read")
    assert shown, texts(at)
    for markdown in markdown_elements(at):
        assert_inert_user_text(markdown)
    assert payload.split("\n")[0] in plain(shown[0])  # the message quotes what the link said, as plain text


#: Raw Markdown of the payloads (regular expressions): none may reach an element unescaped
#: (escaping puts a backslash before the character or a word joiner inside the trigger).
RAW_CONSTRUCTS = (r"(?<!\\)\]\(", r"!\[", "://(evil|127)", r"www\.evil", r"(?<!\\)<(http|img)", ":material/", r":red\[", r"\*\*Urgent",
                  "@evil", r"\$x\^2\$", "`code`", r"\[a\]:")


def assert_inert_user_text(markdown: str) -> None:
    """No payload construct appears unescaped (the app's own Markdown around it may use formats)."""
    for raw in RAW_CONSTRUCTS:
        assert not re.search(raw, markdown), (raw, markdown)


def test_bad_url_formula_shows_the_message_and_no_other_results(no_data_env) -> None:
    at = open_app("pages/compose.py", query={"formula": "MAPbI3-DAP"})
    assert not at.exception
    errors = [plain(e.value) for e in at.error]
    assert any("The formula in the link (?formula=MAPbI3-DAP) could not be read" in e
               and "additives are not supported: remove '-DAP'" in e for e in errors), errors
    assert not at.header  # no results, for MAPbI3 or anything else
    assert "MAPbI3" not in " ".join(h.value for h in at.subheader)
    assert at.text_input(key="compose.formula").value == "MAPbI3-DAP"  # the box holds what the link said
    assert at.query_params.get("formula") == "MAPbI3-DAP"  # the URL stays honest
    # across a page switch the URL still says what the link said ...
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert at.query_params.get("formula") == "MAPbI3-DAP"
    # ... until a composition is chosen
    at.switch_page("pages/compose.py").run()
    at.text_input(key="compose.formula").input("FASnI3").run()
    assert not at.exception and not at.error
    assert at.header[0].value == "FASnI3"
    assert at.query_params.get("formula") == "FASnI3"


def test_bad_url_site_totals_use_the_dashboards_words(no_data_env) -> None:
    at = open_app("pages/compose.py", query={"formula": "FA0.5PbI3"})
    message = " ".join(plain(e.value) for e in at.error)
    assert "A-site amounts sum to 0.5 in 'FA0.5PbI3', expected 1 ± 0.02" in message
    assert "renormalize" not in texts(at)  # API wording stays out of the GUI
    assert "tick 'Scale each site to its nominal total'" in texts(at)
    at.checkbox(key="compose.renormalize").check().run()  # the check box re-reads the link's formula
    assert not at.error
    assert at.header[0].value == "FAPbI3"


def test_typed_site_totals_use_the_dashboards_words(no_data_env) -> None:
    at = open_app("pages/compose.py")
    at.text_input(key="compose.formula").input("MAPbI2.5").run()
    message = " ".join(plain(e.value) for e in at.error)
    assert "X-site amounts sum to 2.5 in 'MAPbI2.5', expected 3 ± 0.06." in message
    assert "renormalize" not in texts(at)
    assert "tick 'Scale each site to its nominal total'." in texts(at)


@pytest.mark.parametrize("payload", INJECTIONS[:2])
def test_typed_formula_markdown_is_shown_as_text(no_data_env, payload: str) -> None:
    at = open_app("pages/compose.py")
    at.text_input(key="compose.formula").input(payload).run()
    assert not at.exception
    assert at.error
    for markdown in markdown_elements(at):
        assert_inert_user_text(markdown)
    assert at.header[0].value == "MAPbI3"  # the last valid composition stays


@pytest.mark.parametrize(("formula", "example"), [("MAPbI3", "I3 → 1 I"), ("CsPbI2Br", "Br1I2 → 0.33 Br + 0.67 I"),
                                                  ("MAPbCl0.3Br0.6I2.1", "Br0.6Cl0.3I2.1 → 0.2 Br + 0.1 Cl + 0.7 I")])
def test_x_site_caption_follows_the_composition(no_data_env, formula: str, example: str) -> None:
    at = open_app("pages/compose.py", query={"formula": formula})
    assert any(f"the X site by its fraction ({example})" in c.value for c in at.caption), [c.value for c in at.caption]
    assert not any("Br0.51I2.49" in c.value for c in at.caption)


def test_bad_url_formula_on_predict_shows_the_message_and_no_prediction(app_env) -> None:
    at = open_app("pages/predict.py", query={"formula": "[Session expired - sign in](https://evil.example)"})
    assert not at.exception
    shown = elements_showing(at, "could not be read")
    assert shown and "unknown species 'Session' at position 1" in plain(shown[0])
    for markdown in markdown_elements(at):
        assert_inert_user_text(markdown)
    assert not any("Predictions for" in c.value for c in at.caption)  # nothing computed for MAPbI3
    assert not at.metric
    assert at.query_params.get("formula") == "[Session expired - sign in](https://evil.example)"
    fix = at.text_input(key="nae.url_fix")
    assert fix.value == "[Session expired - sign in](https://evil.example)"
    fix.input("MAPbI₃").run()  # corrected in place
    assert not at.exception
    assert not elements_showing(at, "could not be read")
    assert any("Predictions for" in c.value and "MAPbI3" in c.value for c in at.caption)


# --------------------------------------------------------------------------- Compare uploads


def _shipped() -> dict[str, Any]:
    return json.loads(next(iter(reports.shipped_benchmark_paths().values())).read_text(encoding="utf-8"))


def _edited(edit) -> bytes:  # type: ignore[no-untyped-def]
    report = copy.deepcopy(_shipped())
    edit(report)
    return json.dumps(report).encode("utf-8")


def _task(report: dict[str, Any]) -> dict[str, Any]:
    return report["tasks"]["bandgap-paper"]


UPLOADS = [
    ("models-string.json", lambda: _edited(lambda r: _task(r).__setitem__("models", "nestedae")),
     ["'models-string.json'", "field 'tasks.bandgap-paper.models' must be an object, got the text 'nestedae'"]),
    ("folds-text.json", lambda: _edited(lambda r: _task(r)["models"]["ridge"]["folds"][2].__setitem__("mae", "0.3")),
     ["'folds-text.json'", "field 'tasks.bandgap-paper.models.ridge.folds[2].mae' must be a number, got the text '0.3'"]),
    ("folds-strings.json", lambda: _edited(lambda r: _task(r)["models"]["ridge"].__setitem__("folds", ["a", "b"])),
     ["'folds-strings.json'", "field 'tasks.bandgap-paper.models.ridge.folds[0]' must be an object"]),
    ("fold-count.json", lambda: _edited(lambda r: r.__setitem__("folds", "five")),
     ["'fold-count.json'", "field 'folds' must be a whole number, got the text 'five'"]),
    ("no-tasks.json", lambda: _edited(lambda r: r.pop("tasks")), ["'no-tasks.json'", "field 'tasks' is missing"]),
    ("missing-fold-field.json", lambda: _edited(lambda r: _task(r)["models"]["ridge"]["folds"].__setitem__(0, None)),
     ["'missing-fold-field.json'", "field 'tasks.bandgap-paper.models.ridge.folds[0]' must be an object, got null"]),
    ("random-split.json", lambda: _edited(lambda r: r["other_splits"]["random"]["tasks"]["bandgap-paper"].__setitem__("unit", 1)),
     ["'random-split.json'", "field 'other_splits.random.tasks.bandgap-paper.unit' must be text, got 1"]),
    ("html-name.json", lambda: _edited(lambda r: _task(r)["models"].__setitem__("<a href='https://evil.example'>x</a>", {})),
     ["'html-name.json'", "field 'tasks.bandgap-paper.models'", "holds '<' '>': use plain text"]),
    ("calibration.json", lambda: json.dumps({"kind": "calibration", "tasks": {}}).encode(),
     ["'calibration.json'", "field 'kind' is 'calibration', not 'accuracy'"]),
    ("list.json", lambda: b"[1, 2, 3]", ["'list.json' holds a list, not a benchmark report"]),
    ("not-json.json", lambda: b"nestedae,mae\nridge,0.3\n", ["'not-json.json' is not JSON (Expecting value at line 1, column 1)"]),
    ("binary.json", lambda: bytes(range(256)) * 4, ["'binary.json' is not UTF-8 text"]),
    ("deep.json", lambda: b"[" * 100_000 + b"]" * 100_000, ["'deep.json' is nested too deeply"]),
]


@pytest.mark.parametrize(("name", "make", "fragments"), UPLOADS, ids=[u[0] for u in UPLOADS])
def test_compare_upload_of_the_wrong_type_names_file_and_field(no_data_env, name: str, make, fragments: list[str]) -> None:  # type: ignore[no-untyped-def]
    at = open_app("pages/compare.py")
    at.file_uploader(key="compare.upload").set_value((name, make(), "application/json")).run()
    assert not at.exception
    errors = [plain(e.value) for e in at.error]
    assert len(errors) == 1, errors
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert at.radio(key="compare.split").options == ["grouped folds", "random folds"]  # the shipped reports still show


def test_compare_upload_too_large_names_the_file(no_data_env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports, "MAX_REPORT_BYTES", 1024 * 1024)
    at = open_app("pages/compare.py")
    at.file_uploader(key="compare.upload").set_value(("huge.json", b" " * (2 * 1024 * 1024), "application/json")).run()
    assert not at.exception
    errors = [plain(e.value) for e in at.error]
    assert errors and "'huge.json' is 2.0 MiB: a benchmark report is at most 1 MiB" in errors[0], errors


def test_compare_upload_text_is_never_markdown(no_data_env) -> None:
    def edit(report: dict[str, Any]) -> None:
        report["created"] = "[Session expired - sign in](https://evil.example)"
        task = _task(report)
        task["notes"] = ["![x](http://127.0.0.1:9/img.png) see www.evil.example"]
        task["dataset"] = "**Urgent** :material/lock:"
        report.pop("other_splits")

    at = open_app("pages/compare.py")
    at.file_uploader(key="compare.upload").set_value(("[x](https:evil.example).json", _edited(edit), "application/json")).run()
    assert not at.exception and not at.error
    at.selectbox(key="compare.task").set_value("bandgap-paper").run()
    assert not at.exception
    for fragment in ("Session expired", "127.0.0.1", "Urgent", "[x](https:evil.example).json"):
        assert elements_showing(at, fragment), fragment
    for markdown in markdown_elements(at):
        assert_inert_user_text(markdown)


# --------------------------------------------------------------------------- Predict: a table too wide


def _wide_table(columns: int, sep: str) -> str:
    return "formula" + sep + sep.join(f"c{i}" for i in range(1, columns)) + "\nMAPbI3" + f"{sep}1" * (columns - 1) + "\n"


@pytest.mark.parametrize("how", ["upload", "paste"])
def test_predict_refuses_a_table_of_100001_columns_by_its_header(app_env, how: str) -> None:
    import time

    at = open_app("pages/predict.py")
    start = time.perf_counter()
    if how == "upload":
        data = _wide_table(100_001, ",").encode()
        assert len(data) < 1_000_000  # 0.9 MB: under the line limit, refused by its columns
        at.file_uploader(key="predict.batch_upload").set_value(("wide.csv", data, "text/csv")).run()
        where = "'wide.csv'"
    else:
        at.text_area(key="predict.batch_text").input(_wide_table(100_001, "\t")).run()
        where = "the pasted table"
    seconds = time.perf_counter() - start
    assert not at.exception
    errors = [plain(e.value) for e in at.error]
    assert any(f"{where}: the header has 100,001 columns; at most 1,000 are read" in e for e in errors), errors
    assert not at.get("download_button") or all(b.key != "predict.batch_dl" for b in at.get("download_button"))
    assert seconds < 15, seconds  # was 190 s (and 0.8 GB) for the upload
