"""With the datasets, in a real browser (issue 18): Explain opens on the measured band gap explained in the user's own
inputs, the latent space one click away; Screen shows how sure each rank is (the "P(beats the next)" column).

The server (reference data, the shipped measured-default model, models in a temporary folder) is conftest's
``app_url``. Data (filter and page) and Train refused without data are in test_first_hour_browser.py.
"""
from __future__ import annotations

import re

import pytest

from app_driver import assert_no_exception, goto_page, shot, wait_idle, wait_text

pytestmark = pytest.mark.browser

#: The first SHAP call compiles (numba) and loads the chain: tens of seconds on a busy 2-core machine.
EXPLAIN_TIMEOUT_MS = 120_000


def _selected(page, label: str) -> str:
    return page.get_by_role("combobox", name=label, exact=True).filter(visible=True).first.input_value()


def test_explain_opens_on_the_measured_gap_in_input_terms(page, shots):
    goto_page(page, "Explain", timeout_ms=EXPLAIN_TIMEOUT_MS)
    wait_text(page, "band gap, measured: prediction", timeout_ms=EXPLAIN_TIMEOUT_MS)
    assert_no_exception(page)
    terms = page.get_by_test_id("stRadio").filter(has_text="Explain in terms of").first
    assert terms.get_by_role("radio", name=re.compile("^your inputs")).is_checked()
    assert _selected(page, "Explain this output").startswith("band gap, measured (eV) ← whole chain: 14 site fractions, 15 site descriptors")
    wait_text(page, "Why band gap, measured =")  # the waterfall's title
    caption = page.get_by_text(re.compile(r"the model gives \d\.\d{3} eV.*largest single contribution")).first
    caption.wait_for(state="visible")
    assert ".z" not in caption.inner_text()  # the largest contribution is one of the user's inputs, not a latent
    shot(page, shots, "explain-opens-on-measured-gap")
    # the latent space: one click away
    terms.get_by_text(re.compile("^latent space")).click()
    wait_idle(page, EXPLAIN_TIMEOUT_MS)
    assert _selected(page, "Explain this output").startswith("band gap, measured (eV) ← stage 2 inputs: the 16 dft latents")
    # the attributions now name the DFT stage's latents (the table's descriptions, the waterfall's bars)
    page.get_by_text(re.compile(r"^dft\.z\d+$")).first.wait_for(state="visible", timeout=EXPLAIN_TIMEOUT_MS)
    wait_idle(page, EXPLAIN_TIMEOUT_MS)
    wait_text(page, "band gap, measured: prediction")
    assert_no_exception(page)
    shot(page, shots, "explain-latent-space")


def test_screen_shows_how_sure_each_rank_is(page, shots):
    goto_page(page, "Screen")
    page.get_by_role("button", name=re.compile("^.?Screen$")).or_(page.get_by_test_id("stBaseButton-primary").filter(has_text="Screen")).first.click()
    wait_idle(page, EXPLAIN_TIMEOUT_MS)
    wait_text(page, "inside the training domain", timeout_ms=EXPLAIN_TIMEOUT_MS)
    wait_text(page, "How sure is each rank?")
    caption = page.get_by_text(re.compile(r"The first beats the second with probability (0|1)\.\d\d")).first
    caption.wait_for(state="visible")
    p = float(re.search(r"probability ((?:0|1)\.\d\d)", caption.inner_text()).group(1))
    assert 0.5 <= p <= 1.0, p  # the higher-ranked candidate beats the next at least as often as not
    grid = page.get_by_test_id("stDataFrame").first
    grid.wait_for(state="visible")
    # the grid draws on a canvas; its accessible table (hidden, so not found by role) holds the headers and cells
    header = grid.locator("th[role=columnheader]", has_text="P(beats the next)")
    header.first.wait_for(state="attached")
    col = header.first.get_attribute("aria-colindex")
    cells = grid.locator(f"td[role=gridcell][aria-colindex='{col}']").all_text_contents()
    values = [float(c) for c in cells if c.strip()]
    assert values and all(0.0 <= v <= 1.0 for v in values), cells[:5]
    assert values[0] == pytest.approx(p, abs=0.006)  # the caption's number is the table's first row
    assert_no_exception(page)
    shot(page, shots, "screen-rank-confidence")
