"""A scientist's first hour in a real browser (issue 18): the real menu at once, Predict leading with the
measured gap and the family's stack, the Data table paged and sorted; and, on a fresh install without
datasets, Train refusing up front with the fix."""
from __future__ import annotations

from pathlib import Path

import pytest

from app_driver import assert_no_exception, fill_text_input, goto_page, new_page, running_app, shot, wait_text

pytestmark = pytest.mark.browser


def test_menu_icon_and_predict(page, shots):
    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_role("link", name="Predict", exact=True).wait_for(state="visible")  # the real menu, titled and grouped
    assert nav.get_by_text("streamlit app").count() == 0  # not the raw file names of pages/
    icon = page.locator("link[rel~='icon']").first.get_attribute("href") or ""
    assert "fonts." not in icon and "googleapis" not in icon  # shipped, not fetched from a font server
    goto_page(page, "Predict")
    fill_text_input(page, "Composition (formula)", "FA1.00Sn1.00I3")
    wait_text(page, "the most common stack of Sn perovskites in the device data")
    wait_text(page, "In our data")
    assert_no_exception(page)
    labels = page.get_by_test_id("stMetricLabel").all_inner_texts()
    assert labels and labels[0].startswith("band gap, measured"), labels
    shot(page, shots, "first-hour-predict")


def test_data_table_pages(page, shots):
    goto_page(page, "Data")
    wait_text(page, "Showing rows 1–50 of 2,018")
    fill_text_input(page, "Formula contains", "Sn")
    wait_text(page, "Showing rows 1–50 of 122")
    assert_no_exception(page)
    shot(page, shots, "first-hour-data")


def test_fresh_install_train_is_refused_up_front(browser, tmp_path: Path, shots):
    empty = tmp_path / "no-data"
    empty.mkdir()
    with running_app(tmp_path, empty, NESTEDAE_MODELS_DIR=str(tmp_path / "models"),
                     NESTEDAE_CACHE_DIR=str(tmp_path / "no-cache")) as url, new_page(browser, url) as pg:
        goto_page(pg, "Train")
        wait_text(pg, "Cannot train here")
        wait_text(pg, "nestedae data fetch")
        assert pg.get_by_role("button", name="Train").first.is_disabled()
        assert_no_exception(pg)
        shot(pg, shots, "first-hour-train-no-data")
