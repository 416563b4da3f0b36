"""The dashboard's speed: a cold server's first page, then every page once warm, in seconds.

Starts the dashboard with this folder's server helper (:mod:`streamlit_server`),
opens it in headless Chromium (the ``playwright`` package and Debian's
``/usr/bin/chromium``) and reports the seconds from the server's start to its
first page settled (no script running), and every page's seconds to settle once
warm. Without playwright or Chromium the report says why it was skipped. The
rest of the speed figures (training, predictions, cold commands) are
``nestedae benchmark speed``.

    python benchmarks/speed_dashboard.py [--data-dir DIR] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from streamlit_server import ENTRY, REPO, ServerError, free_port, start_server, stop_process, wait_healthy  # this folder's server helper


def dashboard_seconds(*, data_dir: str | None = None, chromium: str = "/usr/bin/chromium", timeout_s: float = 120.0) -> dict[str, Any]:
    """The dashboard with a cold server: seconds to the first page settled, then every page once warm.

    Starts ``streamlit run streamlit_app.py`` on a free port (models in a temporary
    folder; :mod:`streamlit_server`), opens it in headless Chromium and polls until the page shows its title
    and no script runs (the status widget is gone for 0.25 s). Returns ``{"skipped": reason}`` when
    playwright, Chromium or ``streamlit_app.py`` is missing. The server is always stopped.
    """
    if not ENTRY.is_file():
        return {"skipped": f"no streamlit_app.py in {REPO}: run from a checkout"}
    if not Path(chromium).exists():
        return {"skipped": f"{chromium} not found (apt-get install chromium)"}
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"skipped": "the playwright package is not installed (pip install playwright)"}

    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="nestedae-speed-"))
    env = dict(os.environ, NESTEDAE_MODELS_DIR=str(work / "models"), PYTHONUNBUFFERED="1")
    if data_dir:
        env["NESTEDAE_DATA_DIR"] = data_dir
    url = f"http://127.0.0.1:{port}"
    report: dict[str, Any] = {}
    t0 = time.perf_counter()
    proc = start_server(env, port, work / "streamlit.log")
    try:
        try:
            wait_healthy(url, proc, timeout_s, work / "streamlit.log", poll_s=0.05)
        except ServerError as exc:
            return {"skipped": str(exc).splitlines()[0].rstrip(":")}
        report["server_healthy_s"] = round(time.perf_counter() - t0, 2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
                t1 = time.perf_counter()
                page.goto(url)
                _wait_settled(page, timeout_s)
                now = time.perf_counter()
                report["first_page_from_request_s"] = round(now - t1, 2)
                report["first_page_from_server_start_s"] = round(now - t0, 2)
                links = page.get_by_test_id("stSidebarNav").locator("a")
                pages = {}
                for i in range(links.count()):
                    href = links.nth(i).get_attribute("href")
                    if href and links.nth(i).is_visible():
                        text = links.nth(i).inner_text().strip().splitlines()  # an icon's name, then the title
                        pages.setdefault(href, text[-1].strip() if text else href)
                warm: dict[str, float] = {}
                for rounds in range(2):  # the first visit of a page imports its modules; the second is warm
                    for href, title in pages.items():
                        t2 = time.perf_counter()
                        for _attempt in range(3):  # a rerun may replace the menu under the pointer
                            try:
                                page.get_by_test_id("stSidebarNav").locator(f'a[href="{href}"]').first.click(timeout=10_000)
                                break
                            except PlaywrightError:
                                _wait_settled(page, timeout_s)
                        _wait_settled(page, timeout_s)
                        if rounds == 1:
                            warm[title] = round(time.perf_counter() - t2, 2)
                report["warm_page_s"] = warm
                report["warm_page_max_s"] = max(warm.values()) if warm else None
            finally:
                browser.close()
    finally:
        stop_process(proc)
        shutil.rmtree(work, ignore_errors=True)
    return report


def _wait_settled(page: Any, timeout_s: float) -> None:
    """Poll until the page shows its title and no script runs (status widget gone for 0.25 s)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_s * 1000)
    page.wait_for_selector("[data-testid='stMain'] h1", timeout=timeout_s * 1000)  # the page's title: its script has run
    deadline = time.perf_counter() + timeout_s
    time.sleep(0.1)  # a just-triggered run shows its status widget
    quiet_since: float | None = None
    while time.perf_counter() < deadline:
        if page.locator("[data-testid='stStatusWidget']").count() == 0:
            quiet_since = quiet_since or time.perf_counter()
            if time.perf_counter() - quiet_since >= 0.25:
                return
        else:
            quiet_since = None
        time.sleep(0.05)


def print_report(dash: dict[str, Any]) -> None:
    """The report in a few lines (seconds)."""
    if "skipped" in dash:
        print(f"dashboard: skipped: {dash['skipped']}")
        return
    print(f"dashboard: server healthy after {dash['server_healthy_s']:.1f} s; first page settled {dash['first_page_from_request_s']:.1f} s "
          f"after the request ({dash['first_page_from_server_start_s']:.1f} s after the server start)")
    print("warm pages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in dash["warm_page_s"].items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("NESTEDAE_DATA_DIR"), help="the datasets' folder (default $NESTEDAE_DATA_DIR)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds the server may take to start, and a page to settle (default 120)")
    ap.add_argument("--json", help="write the report as JSON to this file")
    args = ap.parse_args(argv)
    report = dashboard_seconds(data_dir=args.data_dir, chromium=args.chromium, timeout_s=args.timeout)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
