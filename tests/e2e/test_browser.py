"""End-to-end test in a real browser: ``streamlit run`` + headless Chromium driven by playwright.

Marked ``slow``. Needs the playwright Python package and a Chromium binary at
``/usr/bin/chromium`` (``apt-get install -y chromium``; never ``playwright
install``); skips with the reason otherwise. Screenshots go to
``$NESTEDAE_SCREENSHOT_DIR`` (default: the test's tmp folder).

Adding steps (predict, explain, train, ...): write a new test function that
takes the ``page`` fixture (one browser page on the running app, module-scoped
server) and uses the helpers::

    def test_predict_chain(page, shots):
        goto_page(page, "Predict")
        wait_text(page, "band gap")
        shot(page, shots, "predict")

``goto_page`` clicks the sidebar entry and waits until the app is idle;
``wait_text`` waits for visible text; ``fill_text_input`` types into a text box
and presses Enter; ``assert_no_exception`` fails on a Streamlit exception box.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
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
TRIPLE = "Cs0.05FA0.79MA0.16PbBr0.51I2.49"


# --------------------------------------------------------------------------- helpers (reuse these)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_idle(page, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
    """Wait until the script run finished (the 'Running…' status widget is gone) and the DOM settled."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    deadline = time.monotonic() + timeout_ms / 1000
    time.sleep(0.3)  # let a just-triggered rerun show its status widget
    while time.monotonic() < deadline:
        if page.locator("[data-testid='stStatusWidget']").count() == 0:
            break
        time.sleep(0.2)
    page.wait_for_timeout(500)


def wait_text(page, text: str, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
    """Wait until ``text`` (substring) is visible somewhere on the page."""
    page.get_by_text(text, exact=False).first.wait_for(state="visible", timeout=timeout_ms)


def goto_page(page, title: str, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
    """Open the page ``title`` (e.g. "Compose") from the sidebar menu and wait until it has run."""
    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_role("link", name=re.compile(rf"^\W*{re.escape(title)}$")).first.click()
    wait_idle(page, timeout_ms)


def fill_text_input(page, label: str, text: str) -> None:
    """Type ``text`` into the text box labelled ``label`` and press Enter (applies it)."""
    box = page.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Enter")
    wait_idle(page)


def assert_no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, "the app shows an exception"


def shot(page, folder: Path, name: str) -> Path:
    """Full-page screenshot ``<folder>/<name>.png``."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --------------------------------------------------------------------------- fixtures


def _data_dir() -> Path:
    return Path(os.environ.get("NESTEDAE_DATA_DIR") or REPO.parent / "shared" / "data")


def _require_browser() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) to run browser tests")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


@contextmanager
def running_app(log_dir: Path, **extra_env: str) -> Iterator[str]:
    """Start ``streamlit run streamlit_app.py`` on a free port, yield its URL, always terminate it."""
    port = free_port()
    env = dict(os.environ)
    env["NESTEDAE_DATA_DIR"] = str(_data_dir())
    env.setdefault("NESTEDAE_CACHE_DIR", str(log_dir / "cache"))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra_env)
    log = log_dir / f"streamlit-{port}.log"
    cmd = [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit not healthy after {SERVER_START_TIMEOUT:.0f} s:\n"
                            f"{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory) -> Iterator[str]:
    """The app, served for the whole module."""
    _require_browser()
    with running_app(tmp_path_factory.mktemp("server")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh browser page (new Streamlit session) on the app's Home page."""
    with new_page(browser, app_url) as pg:
        yield pg


@contextmanager
def new_page(browser, url: str):
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


@pytest.fixture
def shots(tmp_path) -> Path:
    """Folder for screenshots: ``$NESTEDAE_SCREENSHOT_DIR`` or the test's tmp folder."""
    folder = Path(os.environ.get("NESTEDAE_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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
    page.get_by_role("tab", name="Devices").click()
    wait_idle(page)
    wait_text(page, "Shockley–Queisser")
    assert_no_exception(page)
    shot(page, shots, "data")


def test_first_session_on_a_deep_link(browser, tmp_path, shots):
    """The very first visitor of a fresh server opens /compose?formula=... directly.

    Streamlit would run pages/compose.py on its own (old multipage mode, because
    of the pages/ folder) until st.navigation ran once; app/__init__.py reruns
    through the entry script, so the menu, wide layout and URL formula work.
    """
    with running_app(tmp_path) as url, new_page(browser, f"{url}/compose?formula=FASnI3") as pg:
        page_heading = pg.get_by_role("heading", name="FASnI3")
        page_heading.wait_for(state="visible")
        nav = pg.get_by_test_id("stSidebarNav").inner_text()
        assert "Start" in nav and "Compose" in nav and "streamlit app" not in nav
        assert_no_exception(pg)
        shot(pg, shots, "compose-deep-link")
