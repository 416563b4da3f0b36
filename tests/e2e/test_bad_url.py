"""A Markdown payload in ``?formula=`` in a real browser: shown as text, never as a link or image.

In the ``browser`` lane (and so ``slow``); needs Chromium and playwright like the other browser tests
(tests/e2e/conftest.py starts the server and the browser).
"""
from __future__ import annotations

from urllib.parse import quote

import pytest

from app_driver import assert_no_exception, new_page, wait_text

pytestmark = pytest.mark.browser

PAYLOAD = "[x](https://evil.example) ![y](https://evil.example/img.png) www.evil.example"


def test_markdown_in_the_url_formula_is_text_not_a_link(browser, app_url, shots):  # type: ignore[no-untyped-def]
    with new_page(browser, f"{app_url}/compose?formula={quote(PAYLOAD)}") as page:
        wait_text(page, "could not be read")
        assert_no_exception(page)
        alert = page.get_by_test_id("stAlertContentError").first
        assert "[x](https://evil.example)" in alert.inner_text().replace("\u2060", "")  # shown as typed
        assert page.locator("a[href*='evil.example']").count() == 0
        assert page.locator("img[src*='evil.example']").count() == 0
        assert page.get_by_role("heading", name="MAPbI3").count() == 0  # no results for another formula
        assert "formula=" in page.url and "MAPbI3" not in page.url  # the URL still says what was given
        page.screenshot(path=str(shots / "bad-url.png"), full_page=True)
