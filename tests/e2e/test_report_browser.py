"""A generated HTML report opens in Chromium from a file, offline: its plotly figures render, with no page error,
and a figure downloads as SVG under a name that says what it is."""
from __future__ import annotations

from pathlib import Path

import pytest

from app_driver import shot

pytestmark = pytest.mark.browser


def test_report_renders_offline_in_chromium(browser, tmp_path: Path, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from nestedae_core import report, store
    from nestedae_core.batch import explain_outputs
    from nestedae_core.predict import predict_composition
    from nestedae_core.query import query_frame

    model = store.load_default_bundle()
    res = predict_composition(model, "FAPbI3")
    atts = explain_outputs(model, query_frame(model, ["FAPbI3"], categorical=res.categorical), method="gradient")
    path = report.write_report(tmp_path / "report.html", report.prediction_report(res, attributions=atts))
    n_figures = 1 + len(atts)

    context = browser.new_context(viewport={"width": 1300, "height": 1600}, accept_downloads=True)
    fetched: list[str] = []

    def block_network(route) -> None:  # type: ignore[no-untyped-def]
        fetched.append(route.request.url)
        route.abort()

    context.route("http*://**", block_network)  # a report needs no network
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        page.goto(path.resolve().as_uri())
        page.wait_for_function(f"document.querySelectorAll('.plotly .main-svg').length >= {n_figures}", timeout=30_000)
        assert page.locator(".js-plotly-plot").count() == n_figures
        assert page.locator(".js-plotly-plot .bars, .js-plotly-plot .scatterlayer .trace").count() >= n_figures  # traces drawn
        assert "FAPbI3" in page.title() and model.record["name"] in page.inner_text("body")
        with page.expect_download(timeout=30_000) as dl:
            page.locator("button", has_text="SVG").first.click()
        assert dl.value.suggested_filename == "Prediction-for-FAPbI3-chain.svg"
        assert dl.value.path().read_text().lstrip().startswith("<svg")
        shot(page, shots, "report")
    finally:
        context.close()
    assert not errors, errors
    assert not fetched, fetched
