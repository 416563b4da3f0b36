"""Fixtures of the browser tests (the helpers that drive the page are in tests/app_driver.py).

* ``browser`` (session): headless Chromium; skips without ``/usr/bin/chromium`` or playwright.
* ``app_url`` (module): ``streamlit run`` on the reference data, models in a temporary folder.
* ``page``: a fresh browser page (a new Streamlit session) on the app's Home page.
* ``shots``: the screenshot folder, ``$NESTEDAE_SCREENSHOT_DIR`` or the test's tmp folder.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app_driver import CHROMIUM, CHROMIUM_ARGS, new_page, require_browser, running_app


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def app_url(browser, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The app, served for the whole module."""
    server_dir = tmp_path_factory.mktemp("server")
    with running_app(server_dir, data_dir, NESTEDAE_MODELS_DIR=str(server_dir / "models")) as url:
        yield url


@pytest.fixture
def page(browser, app_url: str):  # type: ignore[no-untyped-def]
    """A fresh browser page (new Streamlit session) on the app's Home page."""
    with new_page(browser, app_url) as pg:
        yield pg


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Folder for screenshots: ``$NESTEDAE_SCREENSHOT_DIR`` or the test's tmp folder."""
    folder = Path(os.environ.get("NESTEDAE_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
