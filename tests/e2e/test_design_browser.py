"""Design in a real browser (issue 17): set a gap window, a second objective (stability) and a small budget, run
the search as a job, see the proposals, the search figures and the Pareto front, and open a proposal on Predict.

One server for the module (reference data, models and job store in a temporary folder; see conftest.py).
The search runs in a worker process: a cold worker imports torch and the optimiser first, so the wait is long.
"""
from __future__ import annotations

import re

import pytest

from app_driver import assert_no_exception, goto_page, shot, wait_idle, wait_text

pytestmark = pytest.mark.browser

#: A 30-evaluation design: worker start (imports), the search and the ranking, on a loaded 2-core machine.
DESIGN_TIMEOUT_MS = 240_000
BUDGET = 30


def test_design_runs_and_a_proposal_opens_on_predict(page, shots):
    goto_page(page, "Design")
    wait_text(page, "New design")
    wait_text(page, "Measured band-gap window (eV)")  # the default window, 1.30-1.40 eV: a single junction
    slider = page.get_by_test_id("stSlider").filter(has_text="Measured band-gap window").first
    assert "1.30" in slider.inner_text() and "1.40" in slider.inner_text(), slider.inner_text()
    budget = page.get_by_label("Model evaluations", exact=True)
    budget.fill(str(BUDGET))
    budget.press("Tab")  # Enter would submit the form before the value is read
    assert budget.input_value() == str(BUDGET)
    page.get_by_test_id("stSelectbox").filter(has_text="Second objective").first.click()
    page.get_by_role("option", name="lowest decomposition energy (most stable)").first.click()
    shown = page.get_by_role("combobox", name="Second objective (optional)", exact=True).first.input_value()
    assert shown.startswith("lowest decomposition energy"), shown
    page.get_by_role("button", name=re.compile("Run design")).click()
    wait_idle(page)
    # the job: queued or running with its progress, then the ranked proposals
    wait_text(page, "Your designs")
    wait_text(page, "model evaluations in", timeout_ms=DESIGN_TIMEOUT_MS)  # the result's summary line
    assert_no_exception(page)
    summary = page.get_by_text(re.compile(r"\d+ model evaluations in [\d.]+ s")).first.inner_text()
    assert int(re.search(r"(\d+) model evaluations", summary).group(1)) <= BUDGET, summary
    wait_text(page, "Open a proposal")
    page.get_by_test_id("stDataFrame").first.wait_for(state="visible")
    # the search figures: the best objective against model evaluations ("search progress"), every evaluated
    # candidate in the plane of the two objectives ("candidates") and the Pareto front, drawn with their traces
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3", timeout=60_000)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .scatterlayer .trace, .js-plotly-plot .gl-container').length >= 2",
                           timeout=60_000)
    axes = " ".join(page.locator(".js-plotly-plot .xtitle, .js-plotly-plot .ytitle").all_text_contents())
    assert "model evaluations" in axes and "decomposition_eV_per_fu" in axes and "pce_percent" in axes, axes
    titles = " ".join(page.locator(".js-plotly-plot .gtitle").all_text_contents())
    assert "Pareto front" in titles, titles
    shot(page, shots, "design-result")
    # choose the second proposal (when there is one), then follow "Predict it"
    box = page.get_by_test_id("stSelectbox").filter(has_text="Open a proposal").filter(visible=True).first
    box.click()
    options = page.get_by_role("option")
    options.first.wait_for(state="visible")
    pick_index = 1 if options.count() > 1 else 0
    formula = options.nth(pick_index).inner_text().strip()
    options.nth(pick_index).click()
    wait_idle(page)
    assert formula
    page.get_by_role("button", name=re.compile("Predict it")).click()
    wait_idle(page)
    page.get_by_role("heading", name="Predict").first.wait_for(state="visible")
    from playwright.sync_api import expect

    from nestedae_core.api import parse_formula

    canonical = parse_formula(formula).formula
    expect(page.get_by_label("Composition (formula)", exact=True)).to_have_value(canonical, timeout=60_000)
    wait_text(page, f"Predictions for {canonical}")
    assert_no_exception(page)
    shot(page, shots, "design-predict")
