"""End-to-end test in a real browser: ``streamlit run`` + headless Chromium driven by playwright.

In the ``browser`` lane (and so ``slow``). Needs the playwright Python package, a Chromium binary at
``/usr/bin/chromium`` (``apt-get install -y chromium``; never ``playwright
install``) and the reference datasets; skips with the reason otherwise.
Screenshots go to ``$NESTEDAE_SCREENSHOT_DIR`` (default: the test's tmp folder).

Adding steps (predict, explain, train, ...): write a new test function that
takes the ``page`` fixture (one browser page on the running app, module-scoped
server; see tests/e2e/conftest.py) and uses the helpers of tests/app_driver.py::

    def test_predict_chain(page, shots):
        goto_page(page, "Predict")
        wait_text(page, "band gap")
        shot(page, shots, "predict")
"""
from __future__ import annotations

import pytest

from app_driver import assert_no_exception, fill_text_input, goto_page, new_page, running_app, shot, wait_idle, wait_text

pytestmark = pytest.mark.browser

TRIPLE = "Cs0.05FA0.79MA0.16PbBr0.51I2.49"


# --------------------------------------------------------------------------- tests


def test_home_page(page, shots):
    wait_text(page, "NestedAE Studio")
    wait_text(page, "Datasets on this machine")
    assert_no_exception(page)
    shot(page, shots, "home")


def test_compose_formula_shows_descriptors(page, shots, app_url):
    goto_page(page, "Compose")
    wait_text(page, "Site builder")
    fill_text_input(page, "Formula", TRIPLE)
    page.get_by_role("heading", name=TRIPLE).wait_for(state="visible")
    wait_text(page, "Site descriptors")
    wait_text(page, "Tolerance factor 0.9")
    assert_no_exception(page)
    assert f"formula={TRIPLE}" in page.url
    shot(page, shots, "compose")
    # the URL alone brings the composition back in a new session
    page.goto(f"{app_url}/compose?formula=FASnI3")
    wait_idle(page)
    page.get_by_role("heading", name="FASnI3").wait_for(state="visible")


def test_compose_bad_formula_is_a_message(page):
    goto_page(page, "Compose")
    fill_text_input(page, "Formula", "MAPbI3-DAP")
    wait_text(page, "additives are not supported")
    assert_no_exception(page)


def test_data_page(page, shots):
    goto_page(page, "Data")
    wait_text(page, "Showing 2,018 of 2,018 rows")
    wait_text(page, "Showing rows 1–50 of 2,018")  # the Table section is open at first ...
    charts = page.get_by_test_id("stPlotlyChart")
    assert charts.count() == 0  # ... and the closed sections' charts are not drawn
    page.get_by_role("tab", name="Devices").click()  # opening a section runs it
    wait_idle(page)
    wait_text(page, "Shockley–Queisser")
    charts.nth(2).wait_for(state="visible")
    assert charts.count() == 3 and page.get_by_test_id("stDataFrame").count() == 0
    assert_no_exception(page)
    shot(page, shots, "data")
    page.get_by_role("tab", name="Data quality").click()
    wait_idle(page)
    wait_text(page, "fill factor above 1")
    assert charts.count() == 0
    assert_no_exception(page)


def test_first_session_on_a_deep_link(browser, data_dir, tmp_path, shots):
    """The very first visitor of a fresh server opens /compose?formula=... directly.

    Streamlit would run pages/compose.py on its own (old multipage mode, because
    of the pages/ folder) until st.navigation ran once; app/__init__.py reruns
    through the entry script, so the menu, wide layout and URL formula work.
    """
    with running_app(tmp_path, data_dir) as url, new_page(browser, f"{url}/compose?formula=FASnI3") as pg:
        page_heading = pg.get_by_role("heading", name="FASnI3")
        page_heading.wait_for(state="visible")
        nav = pg.get_by_test_id("stSidebarNav").inner_text()
        assert "Start" in nav and "Compose" in nav and "streamlit app" not in nav
        assert_no_exception(pg)
        shot(pg, shots, "compose-deep-link")
