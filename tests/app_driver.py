"""Helpers that drive the dashboard in tests (the fixtures are in conftest.py files).

In process, with ``streamlit.testing.v1.AppTest`` (tests/test_app_*.py): the whole
app runs from ``streamlit_app.py`` and ``open_app`` switches to a page.

In a real browser, with playwright and Debian's ``/usr/bin/chromium``
(tests/e2e/): ``running_app`` serves the app with ``streamlit run`` (through
benchmarks/streamlit_server.py, the server helper the benchmarks use too), ``new_page``
opens a fresh session, ``goto_page`` clicks a sidebar entry and waits until the
app is idle, ``wait_text`` waits for visible text, ``fill_text_input`` types into
a text box and presses Enter, ``assert_no_exception`` fails on a Streamlit
exception box.
"""
from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]
ENTRY = str(REPO / "streamlit_app.py")
if str(REPO) not in sys.path:  # benchmarks/ (the server helper) is a folder at the repo root
    sys.path.insert(0, str(REPO))

from benchmarks.streamlit_server import ServerError, free_port, start_server, stop_process, wait_healthy  # noqa: E402

# --------------------------------------------------------------------------- in process (AppTest)

#: seconds a script run may take (the model pages train and explain)
APPTEST_TIMEOUT = 180


def open_app(page: str | None = None, query: dict[str, str] | None = None) -> AppTest:
    """Run the app (Home first), then switch to ``page`` (e.g. ``"pages/compose.py"``) and run it."""
    at = AppTest.from_file(ENTRY, default_timeout=APPTEST_TIMEOUT)
    if query:
        at.query_params.update(query)
    at.run()
    assert not at.exception, exceptions(at)
    if page:
        at.switch_page(page).run()
        assert not at.exception, exceptions(at)
    return at


def exceptions(at: AppTest) -> str:
    """The exceptions of the run with their stack traces, for an assertion message."""
    return "\n".join(str(e.value) + "\n" + "\n".join(e.stack_trace) for e in at.exception)


def texts(at: AppTest) -> str:
    """All visible text of the run (titles, headers, markdown, captions, alerts) in one string."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success"):
        parts.extend(str(el.value) for el in getattr(at, kind))
    return "\n".join(parts)


def n_plots(at: AppTest) -> int:
    """Number of plotly charts on the page."""
    return len(at.get("plotly_chart"))


def open_data_section(at: AppTest, section: str, dataset: str = "psc-devices") -> AppTest:
    """On the Data page, open section ``section`` (a tab: "Table", "Distributions", "Composition coverage",
    "Devices", "Data quality", "Label quality") of ``dataset`` and run: only the open section is drawn."""
    assert section in [t.label for t in at.tabs], (section, [t.label for t in at.tabs])
    at.session_state[f"data.{dataset}.section"] = section
    at.run()
    assert not at.exception, exceptions(at)
    return at


# --------------------------------------------------------------------------- in a browser (playwright)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_TIMEOUT = 90.0
DEFAULT_TIMEOUT_MS = 60_000


def require_browser() -> None:
    """Skip unless Chromium and the playwright package are installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) to run browser tests")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


@contextmanager
def running_app(log_dir: Path, data_dir: Path, **extra_env: str) -> Iterator[str]:
    """Start ``streamlit run streamlit_app.py`` on a free port, yield its URL, always terminate it."""
    port = free_port()
    env = dict(os.environ)
    env["NESTEDAE_DATA_DIR"] = str(data_dir)
    env.setdefault("NESTEDAE_CACHE_DIR", str(log_dir / "cache"))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra_env)
    log = log_dir / f"streamlit-{port}.log"
    proc = start_server(env, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_healthy(url, proc, SERVER_START_TIMEOUT, log)
        except ServerError as exc:
            pytest.fail(str(exc))
        yield url
    finally:
        stop_process(proc)


@contextmanager
def new_page(browser, url: str):  # type: ignore[no-untyped-def]
    """A page in a fresh browser context (a new Streamlit session) opened at ``url``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    pg = context.new_page()
    pg.set_default_timeout(DEFAULT_TIMEOUT_MS)
    pg.goto(url)
    wait_idle(pg)
    try:
        yield pg
    finally:
        context.close()


def wait_idle(page, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:  # type: ignore[no-untyped-def]
    """Wait until the script run finished (the 'Running…' status widget is gone), every lazily loaded widget is
    drawn (no grey skeleton left) and the DOM settled."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    deadline = time.monotonic() + timeout_ms / 1000
    time.sleep(0.3)  # let a just-triggered rerun show its status widget
    while time.monotonic() < deadline:
        if page.locator("[data-testid='stStatusWidget']").count() == 0:
            break
        time.sleep(0.2)
    # widgets whose code loads lazily show a grey skeleton until their script chunk arrives (a fresh browser)
    while time.monotonic() < deadline and page.locator("[data-testid='stSkeleton']").count():
        time.sleep(0.2)
    page.wait_for_timeout(500)


def wait_text(page, text: str, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:  # type: ignore[no-untyped-def]
    """Wait until ``text`` (substring) is visible somewhere on the page."""
    page.get_by_text(text, exact=False).first.wait_for(state="visible", timeout=timeout_ms)


def goto_page(page, title: str, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:  # type: ignore[no-untyped-def]
    """Open the page ``title`` (e.g. "Compose") from the sidebar menu and wait until it has run."""
    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_role("link", name=re.compile(rf"^\W*{re.escape(title)}$")).first.click()
    wait_idle(page, timeout_ms)


def fill_text_input(page, label: str, text: str) -> None:  # type: ignore[no-untyped-def]
    """Type ``text`` into the text box labelled ``label`` and press Enter (applies it)."""
    box = page.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Enter")
    wait_idle(page)


def assert_no_exception(page) -> None:  # type: ignore[no-untyped-def]
    assert page.locator("[data-testid='stException']").count() == 0, "the app shows an exception"


def shot(page, folder: Path, name: str) -> Path:  # type: ignore[no-untyped-def]
    """Full-page screenshot ``<folder>/<name>.png``."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def shot_at(page, folder: Path, name: str, locator) -> Path:  # type: ignore[no-untyped-def]
    """Screenshot ``<folder>/<name>.png`` of the window scrolled to ``locator`` (Streamlit scrolls an inner
    container, so a full-page shot holds only the page's first window height)."""
    locator.first.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    return path
