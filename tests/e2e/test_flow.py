"""End-to-end browser test of the main user journey: compose -> predict -> explain -> train.

In the ``browser`` lane (runs in CI). One ``streamlit run`` server for this module,
with ``NESTEDAE_MODELS_DIR`` pointed at a temporary folder (the model trained
here never reaches the user's model folder), and one browser page (one
Streamlit session) shared by the steps, in order:

1. Compose: type the triple-cation formula; its canonical formula, structural
   factors and site descriptors (with units) show.
2. Predict: the composition chosen on Compose is used; the band gap, named by
   its fidelity (eV), and PCE (%) with their uncertainty show; changing the ETL
   updates the stack.
3. Explain: SHAP attributions of the band gap (waterfall metrics, caption,
   table) and of the PCE along the whole chain.
4. Train: a tiny run (2 folds, 1 epoch per stage), watched until it finishes,
   its cross-validation metrics, saved as ``e2e-tiny`` and made active; the
   saved model is listed and used by Predict.

Predict and Explain skip when Compose failed (they share its session). Uses the
helpers of tests/app_driver.py and the ``browser`` of tests/e2e/conftest.py.
Needs the playwright Python package, Debian's ``/usr/bin/chromium`` and the
reference datasets; skips otherwise.
Screenshots (``flow-*.png``) go to ``$NESTEDAE_SCREENSHOT_DIR`` (default: a
temporary folder).
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app_driver import (
    DEFAULT_TIMEOUT_MS,
    assert_no_exception,
    fill_text_input,
    goto_page,
    new_page,
    running_app,
    shot,
    wait_idle,
    wait_text,
)

pytestmark = pytest.mark.browser

MODEL_NAME = "e2e-tiny"
NEW_ETL = "SnO2-c"
TRIPLE = "Cs0.05FA0.79MA0.16PbBr0.51I2.49"
#: The first SHAP call compiles (numba) for ~10 s on a busy 2-core machine; tiny training takes a few s.
EXPLAIN_TIMEOUT_MS = 120_000
TRAIN_TIMEOUT_MS = 150_000


class Flow:
    """What the steps share: the page, the screenshot folder, the models folder, the steps done so far."""

    def __init__(self, page, shots: Path, models_dir: Path) -> None:
        self.page = page
        self.shots = shots
        self.models_dir = models_dir
        self.done: set[str] = set()
        self.gap: str | None = None  # the band gap Predict showed ("1.990"), checked on Explain

    def require(self, *steps: str) -> None:
        missing = [s for s in steps if s not in self.done]
        if missing:
            pytest.skip(f"an earlier step failed or did not run: {', '.join(missing)}")


@pytest.fixture(scope="module")
def flow(browser, data_dir, tmp_path_factory) -> Iterator[Flow]:
    """Own server (models in a temporary folder), one page (one session) for every step.

    The server's default model is the shipped paper-default: the journey checks the paper chain
    (15 descriptors -> band gap, DFT PBE (no SOC); 17 chain inputs -> PCE).
    """
    from nestedae_core import store

    server_dir = tmp_path_factory.mktemp("flow-server")
    models_dir = server_dir / "models"
    models_dir.mkdir()
    shots = Path(os.environ.get("NESTEDAE_SCREENSHOT_DIR") or tmp_path_factory.mktemp("flow-shots"))
    shots.mkdir(parents=True, exist_ok=True)
    paper = store.shipped_bundle_path("paper-default")
    with running_app(server_dir, data_dir, NESTEDAE_MODELS_DIR=str(models_dir), NESTEDAE_DEFAULT_MODEL=str(paper)) as url, \
            new_page(browser, url) as page:
        yield Flow(page, shots, models_dir)


# --------------------------------------------------------------------------- helpers
#
# Streamlit streams a page element by element: wait for every element asserted on
# (never read the page once and assert on the snapshot).


def wait_pattern(page, pattern: str, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> str:
    """Wait until an element whose text matches the regex ``pattern`` is visible; return its text."""
    found = page.get_by_text(re.compile(pattern)).first
    found.wait_for(state="visible", timeout=timeout_ms)
    return found.inner_text()


def wait_metric(page, pattern: str, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> str:
    """Wait until a metric value matching the regex ``pattern`` (whole value) is visible; return it."""
    found = page.get_by_test_id("stMetricValue").filter(has_text=re.compile(rf"^\s*{pattern}\s*$")).first
    found.wait_for(state="visible", timeout=timeout_ms)
    return found.inner_text().strip()


def selected(page, label: str) -> str:
    """The shown value of the (visible) select box labelled ``label``."""
    return page.get_by_role("combobox", name=label, exact=True).filter(visible=True).first.input_value()


def wait_selected(page, label: str, prefix: str, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> str:
    """Wait until the select box labelled ``label`` shows a value starting with ``prefix``; return it."""
    deadline = time.monotonic() + timeout_ms / 1000
    value = ""
    while time.monotonic() < deadline:
        box = page.get_by_role("combobox", name=label, exact=True).filter(visible=True)
        if box.count():
            value = box.first.input_value()
            if value.startswith(prefix):
                return value
        time.sleep(0.25)
    raise AssertionError(f"select box {label!r} shows {value!r}, expected {prefix!r}…")


def choose_option(page, label: str, option: str | re.Pattern) -> None:
    """Open the select box labelled ``label`` and click ``option`` (exact text, or a pattern)."""
    box = page.get_by_test_id("stSelectbox").filter(has_text=label).filter(visible=True).first
    box.click()
    name = option if isinstance(option, re.Pattern) else re.compile(rf"^{re.escape(option)}$")
    page.get_by_role("option", name=name).first.click()
    wait_idle(page)


def set_number(page, label: str, value: int) -> None:
    """Type ``value`` into the visible number input labelled ``label`` (Tab commits it; Enter would submit a form)."""
    box = page.get_by_label(label, exact=True).filter(visible=True)
    assert box.count() == 1, f"{box.count()} visible number inputs labelled {label!r}"
    box.fill(str(value))
    box.press("Tab")
    assert box.input_value() == str(value)


# --------------------------------------------------------------------------- steps

# Predict's metrics: the mean with its prediction interval, or ± the fold models' disagreement without calibration
GAP_VALUE = r"\d\.\d{3} (± \d\.\d{3} eV|eV \(90 % interval \d\.\d{3}–\d\.\d{3}\))"
PCE_VALUE = r"\d{1,2}\.\d{2} (± \d{1,2}\.\d{2} %|% \(90 % interval \d{1,2}\.\d{2}–\d{1,2}\.\d{2}\))"


def test_1_compose(flow):
    page = flow.page
    goto_page(page, "Compose")
    wait_text(page, "Site builder")
    fill_text_input(page, "Formula", TRIPLE)
    page.get_by_role("heading", name=TRIPLE).wait_for(state="visible")
    assert f"formula={TRIPLE}" in page.url
    # the site builder follows the formula: A site = Cs, MA and FA (the last one takes the remainder)
    wait_text(page, "FA (remainder): 0.79")
    wait_text(page, "Tolerance factor 0.97")  # inside the 3D-perovskite window
    wait_text(page, "Site descriptors")
    wait_text(page, "17 rows × 5 columns")  # the 15 stage-1 inputs and the two factors
    assert_no_exception(page)
    shot(page, flow.shots, "flow-1-compose")
    # the descriptor grid is a canvas: read it through its CSV download instead of the DOM
    with page.expect_download() as dl:
        page.get_by_test_id("stDownloadButton").filter(visible=True).first.click()
    csv = Path(dl.value.path()).read_text(encoding="utf-8")
    assert "A_ion_rad" in csv and "Å" in csv
    flow.done.add("compose")


def test_2_predict(flow):
    flow.require("compose")
    page = flow.page
    goto_page(page, "Predict")
    wait_text(page, "One composition")
    # the composition chosen on Compose is the one predicted
    assert page.get_by_label("Composition (formula)", exact=True).input_value() == TRIPLE
    gap = wait_metric(page, GAP_VALUE)
    pce = wait_metric(page, PCE_VALUE)
    assert 0.5 < float(gap.split()[0]) < 4.0
    assert 0.0 < float(pce.split()[0]) < 35.0
    flow.gap = gap.split()[0]
    wait_text(page, "Shockley–Queisser limit at the")  # at the measured gap, or at the PBE gap said so
    wait_text(page, "band gap, DFT PBE (no SOC) · materials stage")  # the band gap names its fidelity (and its stage)
    wait_text(page, f"for {TRIPLE} with ETL")
    # another electron transport layer: the stack (and the PCE) follow, the band gap stays
    choose_option(page, "Electron transport layer (ETL)", NEW_ETL)
    wait_text(page, f"with ETL {NEW_ETL} and HTL")
    wait_metric(page, re.escape(gap))
    wait_metric(page, PCE_VALUE)
    assert_no_exception(page)
    shot(page, flow.shots, "flow-2-predict")
    flow.done.add("predict")


def test_3_explain(flow):
    flow.require("compose")
    page = flow.page
    goto_page(page, "Explain", timeout_ms=EXPLAIN_TIMEOUT_MS)
    # the formula box may be drawn a moment before its value on a loaded machine: wait for the value, then compare
    from playwright.sync_api import expect

    expect(page.get_by_label("Composition (formula)", exact=True)).to_have_value(TRIPLE, timeout=EXPLAIN_TIMEOUT_MS)
    # local view of the first output (the band gap), permutation explainer
    wait_text(page, "band gap, DFT PBE (no SOC): prediction", timeout_ms=EXPLAIN_TIMEOUT_MS)
    # the same ensemble mean as on Predict
    wait_metric(page, re.escape(flow.gap) + " eV" if flow.gap else r"\d\.\d{3} eV", timeout_ms=EXPLAIN_TIMEOUT_MS)
    wait_text(page, "base value (background average)")
    wait_text(page, "Why band gap, DFT PBE (no SOC) =")  # the waterfall's title
    wait_pattern(page, rf"For {re.escape(TRIPLE)}, the model gives \d\.\d{{3}} eV\..*largest single contribution")
    wait_text(page, "15 rows")  # one attribution per stage-1 descriptor
    assert_no_exception(page)
    shot(page, flow.shots, "flow-3-explain-gap")
    # the PCE end to end: descriptors and device stack
    choose_option(page, "Explain this output", re.compile(r"^PCE \(%\) ← whole chain"))
    wait_text(page, "PCE: prediction", timeout_ms=EXPLAIN_TIMEOUT_MS)
    wait_metric(page, r"\d{1,2}\.\d{3} %", timeout_ms=EXPLAIN_TIMEOUT_MS)
    wait_text(page, "Why PCE =")
    wait_pattern(page, rf"For {re.escape(TRIPLE)} with ETL .*, the model gives \d+\.\d{{3}} %")
    wait_text(page, "17 rows")  # 15 descriptors, ETL and HTL
    assert_no_exception(page)
    shot(page, flow.shots, "flow-3-explain-pce")
    flow.done.add("explain")


def test_4_train_save_activate(flow):
    page = flow.page
    goto_page(page, "Train")
    wait_text(page, "Configure a training run")
    # the form opens on the default model's preset (measured); this journey trains the paper's chain
    page.get_by_role("combobox", name="Datasets and starting configuration (preset)", exact=True).click()
    page.get_by_role("option", name=re.compile(r"^paper: ")).click()
    wait_idle(page)
    wait_text(page, "Stage 1: materials")
    # the smallest run the form allows: 2 folds, 1 epoch per stage
    set_number(page, "Folds (= ensemble members)", 2)
    set_number(page, "Epochs (count)", 1)  # stage 1 (the visible tab)
    page.get_by_role("tab", name="Stage 2: devices").click()
    wait_text(page, "psc-devices")
    set_number(page, "Epochs (count)", 1)
    name_box = page.get_by_label("Run name (the default name of the saved model)", exact=True)
    name_box.fill(MODEL_NAME)
    name_box.press("Tab")
    page.get_by_role("button", name=re.compile(r"Train$")).click()
    # the live panel polls the job; wait for its end state (done, failed or cancelled)
    end = page.get_by_test_id("stAlert").filter(has_text=re.compile(r"Finished in|Cancelled|failed|Error", re.I)).first
    end.wait_for(state="visible", timeout=TRAIN_TIMEOUT_MS)
    status = end.inner_text()
    assert "Finished in" in status, f"the training run did not finish: {status}"
    wait_text(page, "Cross-validation results")
    wait_text(page, "2-fold random split")
    wait_text(page, "band gap, DFT PBE (no SOC) (materials)")
    wait_text(page, "PCE (devices)")
    page.get_by_text("3 rows ×").nth(1).wait_for(state="visible")  # per target: fold 1, fold 2, mean ± sd
    wait_text(page, "Out-of-fold predictions")
    wait_idle(page)
    assert_no_exception(page)
    shot(page, flow.shots, "flow-4-train-done")
    # save under the run name (the form's default) and make it active (ticked by default)
    assert page.get_by_label("Model name", exact=True).input_value() == MODEL_NAME
    page.get_by_role("button", name=re.compile(r"Save model$")).click()
    wait_idle(page)
    wait_text(page, f"Saved model {MODEL_NAME}")
    wait_text(page, "and made it active.")
    assert (flow.models_dir / MODEL_NAME / "manifest.json").is_file()
    wait_selected(page, "Active model", f"{MODEL_NAME} (paper; MAE band gap")
    assert_no_exception(page)
    shot(page, flow.shots, "flow-4-train-saved")
    # the saved model is the one Predict uses now
    goto_page(page, "Predict")
    wait_text(page, "One composition")
    wait_selected(page, "Model", f"{MODEL_NAME} (")
    wait_text(page, "over the 2 fold models of the ensemble")
    wait_metric(page, GAP_VALUE)
    assert_no_exception(page)
    shot(page, flow.shots, "flow-4-predict-new-model")
