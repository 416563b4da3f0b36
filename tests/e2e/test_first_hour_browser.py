"""A scientist's first hour in a real browser (issue 18): the real menu at once, Predict leading with the
measured gap and the family's stack, the Data table paged and sorted; and the walk of a fresh install without
datasets: Home, Train refusing up front with the fix, Predict (measured gap first, the domain warning above the
numbers) and Learn (the guided lesson to its end beside the ground truth, its HTML export)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from app_driver import assert_no_exception, fill_text_input, goto_page, new_page, running_app, shot, shot_at, wait_idle, wait_text

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


#: Learn trains 2 stages x 5 folds in a worker, then runs four explainers against the exact truth and the correlation
#: study: minutes on a busy 2-core machine even at the page's smallest settings.
LEARN_TIMEOUT_MS = 420_000
#: the smallest number of epochs Learn's "Epochs" box accepts (the fastest training it offers)
LEARN_EPOCHS = 5


def _top(locator) -> float:  # type: ignore[no-untyped-def]
    box = locator.bounding_box()
    assert box is not None, "element not laid out"
    return float(box["y"])


def test_fresh_install_walk_home_train_predict_learn(browser, tmp_path: Path, shots):
    """The done-when walk of issue 18 on a fresh install with no datasets: Home says what is missing; Train refuses
    up front with the fix; Predict leads with the measured gap and puts the domain warning above the numbers for a
    flagged composition; Learn's guided lesson runs to its last step beside the ground-truth Shapley values, and its
    HTML export downloads."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    with running_app(tmp_path, empty, NESTEDAE_MODELS_DIR=str(tmp_path / "models"),
                     NESTEDAE_JOB_STORE=str(tmp_path / "jobs" / "jobs.sqlite"),
                     NESTEDAE_CACHE_DIR=str(tmp_path / "no-cache")) as url, new_page(browser, url) as pg:
        # Home: the real menu, and which datasets are missing with the fix
        pg.get_by_role("heading", name="NestedAE Studio").wait_for(state="visible")
        wait_text(pg, "dataset(s) missing")
        wait_text(pg, "nestedae data fetch NAME")
        assert_no_exception(pg)
        shot(pg, shots, "walk-1-home")

        # Train: refused before anything is queued, with the file, the fix and the no-data preset
        goto_page(pg, "Train")
        wait_text(pg, "Cannot train here")
        wait_text(pg, "nestedae data fetch")
        wait_text(pg, "The 'synthetic' preset needs no data")
        assert pg.get_by_role("button", name="Train").first.is_disabled()
        assert_no_exception(pg)
        shot(pg, shots, "walk-2-train-refused")

        # Predict: the measured gap first; no domain warning for MAPbI3, one above the numbers for CsPbCl3
        goto_page(pg, "Predict")
        fill_text_input(pg, "Composition (formula)", "MAPbI3")
        wait_text(pg, "Predictions for MAPbI3")
        labels = pg.get_by_test_id("stMetricLabel").all_inner_texts()
        assert labels and labels[0].startswith("band gap, measured"), labels
        warning = pg.get_by_test_id("stAlert").filter(has_text="Outside the training domain")
        assert warning.count() == 0
        shot(pg, shots, "walk-3-predict-in-domain")
        fill_text_input(pg, "Composition (formula)", "CsPbCl3")
        wait_text(pg, "Predictions for CsPbCl3")
        warning.first.wait_for(state="visible")
        assert "nearest training row" in warning.first.inner_text()
        metrics = pg.get_by_test_id("stMetric")
        assert _top(warning.first) < _top(metrics.first)  # the warning heads the numbers it qualifies
        labels = pg.get_by_test_id("stMetricLabel").all_inner_texts()
        assert labels[0].startswith("band gap, measured"), labels
        assert_no_exception(pg)
        shot(pg, shots, "walk-4-predict-flagged")

        # Learn: train at the smallest settings, ground truth beside the explainers, the lesson to its end, its export
        goto_page(pg, "Learn")
        epochs = pg.get_by_label("Epochs", exact=True)
        epochs.fill(str(LEARN_EPOCHS))
        epochs.press("Enter")
        wait_idle(pg)
        pg.get_by_role("button", name=re.compile(r"^\W*Train$")).first.click()
        wait_idle(pg, LEARN_TIMEOUT_MS)
        wait_text(pg, "6 · Ground truth beside every explainer", timeout_ms=LEARN_TIMEOUT_MS)
        wait_text(pg, "Against the interventional truth the closest explainer is", timeout_ms=LEARN_TIMEOUT_MS)
        wait_text(pg, "y1: the true function's Shapley values and four explainers of the model")  # the figure's title
        wait_text(pg, "x0 alone scores 0.090, the pair only 0.083: why?", timeout_ms=LEARN_TIMEOUT_MS)
        assert_no_exception(pg)
        assert pg.get_by_test_id("stAlertContentError").count() == 0
        shot_at(pg, shots, "walk-5-learn-ground-truth", pg.get_by_text("6 · Ground truth beside every explainer"))
        pg.get_by_test_id("stCheckbox").filter(has_text="Show the lesson here").click()
        pg.get_by_text(re.compile(r"^Step 1\. ")).wait_for(state="visible", timeout=LEARN_TIMEOUT_MS)
        wait_idle(pg, LEARN_TIMEOUT_MS)
        steps = pg.get_by_text(re.compile(r"^Step \d\. ")).all_inner_texts()
        assert 3 <= len(steps) <= 5 and all(s.strip().endswith("?") for s in steps), steps
        assert steps[-1].startswith(f"Step {len(steps)}. ")  # walked to the last step, in order
        assert pg.get_by_text(re.compile(r"^Answer:")).count() == len(steps)
        last = pg.get_by_text(steps[-1], exact=True)
        assert_no_exception(pg)
        shot_at(pg, shots, "walk-6-learn-last-step", last)
        with pg.expect_download(timeout=LEARN_TIMEOUT_MS) as download:
            pg.get_by_role("button", name=re.compile(r"Download the lesson \(HTML\)")).click()
        lesson = Path(download.value.path()).read_text(encoding="utf-8")
        assert download.value.suggested_filename.endswith(".html")
        assert lesson.lstrip().lower().startswith("<!doctype html") and "could not be built" not in lesson
        assert all(step.split(". ", 1)[1].strip() in lesson for step in steps)  # every question of the lesson
