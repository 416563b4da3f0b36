"""The dashboard's speed: a cold server's first page, then every page once warm, in seconds.

:func:`dashboard_seconds` starts the dashboard (``streamlit run streamlit_app.py``,
:mod:`.app_server`) with its models in a temporary folder, opens it in headless
Chromium (the ``playwright`` package; Debian's ``/usr/bin/chromium`` or
playwright's own) and measures:

* ``server_healthy_s``: the server's start to ``/_stcore/health`` answering;
* ``first_page_from_request_s``: the first request to the Home page settled (its
  title shown and no script running for 0.25 s): the *cold first page*;
* ``warm_page_s``: each page's click to settled, on the second visit (the first
  visit of a page imports its modules and fills the server's caches).

and, for the first page, the browser's share: its main thread's busy and
JavaScript seconds (Chromium's DevTools ``Performance`` metrics) and the scripts
it loaded (count, kB, names: a page that shows a plotly chart loads plotly.js's 4.7 MB).

The dashboard ships with a checkout, not with the installed package: without an
entry script (``--app``), playwright or Chromium the report says why it was
skipped. The targets (:data:`TARGETS`) are printed beside the figures, never
asserted: times on a shared machine vary by 2x or more, so the report keeps the
load average before and after the run.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from . import app_server
from .reports import created_now, machine_info

__all__ = ["TARGETS", "DEFAULT_CHROMIUM", "dashboard_seconds", "load_average", "process_cpu_seconds"]

logger = logging.getLogger(__name__)

#: Issue 18's targets (s): the cold first page, and every page once warm.
TARGETS: dict[str, float] = {"first_page_s": 5.0, "warm_page_s": 2.0}
#: Debian's Chromium, used when present (else playwright's own browser).
DEFAULT_CHROMIUM = "/usr/bin/chromium"
_CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (runnable processes), or ``None`` where the platform has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):  # pragma: no cover - not on every platform
        return None


def _machine() -> dict[str, Any]:
    """:func:`.reports.machine_info` with the CPU's model name (from ``/proc/cpuinfo`` where there is one)."""
    info = machine_info()
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:  # not Linux
        pass
    return info


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) process ``pid`` has used so far, from ``/proc``; ``None`` where unreadable.

    Unlike wall seconds, nearly independent of other processes' load.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, ValueError, IndexError):
        return None


def _skipped(reason: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "speed-dashboard", "created": created_now(), "machine": _machine(), "skipped": reason, **extra}


def dashboard_seconds(
    *,
    app: str | os.PathLike[str] | None = None,
    data_dir: str | None = None,
    pages: Sequence[str] | None = None,
    chromium: str | None = None,
    timeout_s: float = 120.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The dashboard with a cold server: seconds to the first page settled, then every page once warm.

    ``app``: the entry script or its folder (default: :func:`.app_server.find_app`);
    ``data_dir``: the datasets' folder given to the server (default: the server inherits
    ``NESTEDAE_DATA_DIR``); ``pages``: menu titles to time warm (case-insensitive; default
    every page of the menu); ``chromium``: the browser's executable (default
    :data:`DEFAULT_CHROMIUM` when present, else playwright's own); ``timeout_s``: seconds the
    server may take to start, and a page to settle.

    Returns the report (seconds): ``server_healthy_s``, ``first_page_from_request_s``,
    ``first_page_from_server_start_s``, ``server_healthy_cpu_s`` and ``first_page_server_cpu_s`` (the server's
    CPU seconds then: a figure other processes' load barely changes), ``first_page_browser_task_s`` and
    ``first_page_browser_script_s`` (the page's main thread busy, and running JavaScript, until the first page
    settled; Chromium's DevTools metrics), ``first_page_scripts`` and ``first_page_script_kB`` (JavaScript loaded), ``warm_page_s`` (title -> seconds), ``warm_page_max_s``,
    ``load_average`` (before) and ``load_average_after``, ``targets``; or ``{"skipped": reason}``
    when the dashboard, playwright or Chromium is missing or the server does not start.
    Raises :class:`~nestedae_core.errors.InputError` for a title in ``pages`` that the menu lacks (the message lists the menu).
    The server is always stopped.
    """
    say = progress or (lambda msg: None)
    entry = app_server.find_app(app)
    if entry is None:
        where = f"no dashboard at {app}" if app is not None else "no streamlit_app.py here or beside the package"
        return _skipped(f"{where}: run from a checkout, or give --app PATH_TO/streamlit_app.py")
    if chromium is None and Path(DEFAULT_CHROMIUM).exists():
        chromium = DEFAULT_CHROMIUM
    elif chromium is not None and not Path(chromium).exists():
        return _skipped(f"{chromium} not found (apt-get install chromium, or leave --chromium out for playwright's own)")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        return _skipped("the playwright package is not installed (pip install playwright)")

    report: dict[str, Any] = {"kind": "speed-dashboard", "created": created_now(), "machine": _machine(),
                              "app": str(entry), "load_average": load_average(), "targets": dict(TARGETS)}
    port = app_server.free_port()
    work = Path(tempfile.mkdtemp(prefix="nestedae-speed-"))
    log = work / "streamlit.log"
    env = dict(os.environ, NESTEDAE_MODELS_DIR=str(work / "models"), PYTHONUNBUFFERED="1")
    if data_dir:
        env["NESTEDAE_DATA_DIR"] = str(data_dir)
    url = f"http://127.0.0.1:{port}"
    say(f"the dashboard's server ({entry})")
    t0 = time.perf_counter()
    proc = app_server.start_server(env, port, log, entry=entry)
    try:
        try:
            app_server.wait_healthy(url, proc, timeout_s, log, poll_s=0.05)
        except app_server.ServerError as exc:
            return _skipped(str(exc).splitlines()[0].rstrip(":"), log_tail=str(exc).split("\n", 1)[-1][-2000:])
        report["server_healthy_s"] = round(time.perf_counter() - t0, 2)
        report["server_healthy_cpu_s"] = process_cpu_seconds(proc.pid)
        with sync_playwright() as pw:
            try:
                browser = pw.chromium.launch(executable_path=chromium, headless=True, args=_CHROMIUM_ARGS)
            except PlaywrightError as exc:
                return _skipped(f"Chromium did not start: {str(exc).splitlines()[0]}")
            try:
                page = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
                scripts = _ScriptBytes(page)
                cdp = _renderer_metrics(page)
                say("the first page (cold)")
                t1 = time.perf_counter()
                page.goto(url)
                _wait_settled(page, timeout_s)
                now = time.perf_counter()
                report["first_page_from_request_s"] = round(now - t1, 2)
                report["first_page_from_server_start_s"] = round(now - t0, 2)
                report["first_page_server_cpu_s"] = process_cpu_seconds(proc.pid)
                report.update(_browser_figures(cdp, scripts))
                menu = _menu(page)
                chosen = _choose(menu, pages)
                warm: dict[str, float] = {}
                for rounds in range(2):  # the first visit of a page imports its modules; the second is warm
                    say("every page, " + ("a first visit" if rounds == 0 else "warm"))
                    for href, title in chosen.items():
                        t2 = time.perf_counter()
                        _click(page, href, timeout_s, PlaywrightError)
                        if rounds == 1:
                            warm[title] = round(time.perf_counter() - t2, 2)
                report["warm_page_s"] = warm
                report["warm_page_max_s"] = max(warm.values()) if warm else None
                report["server_cpu_s"] = process_cpu_seconds(proc.pid)
            finally:
                browser.close()
    finally:
        app_server.stop_process(proc)
        shutil.rmtree(work, ignore_errors=True)
    report["load_average_after"] = load_average()
    return report


class _ScriptBytes:
    """Counts the JavaScript files a page has loaded and their bytes (the browser's share of a first page)."""

    def __init__(self, page: Any) -> None:
        self.names: list[str] = []
        self.bytes = 0
        page.on("requestfinished", self._seen)

    @property
    def files(self) -> int:
        return len(self.names)

    def _seen(self, request: Any) -> None:
        if request.resource_type == "script":
            self.names.append(request.url.rsplit("/", 1)[-1])
            try:
                self.bytes += int(request.sizes()["responseBodySize"])
            except Exception:  # noqa: BLE001 - sizes no longer available (a closed page)
                pass


def _renderer_metrics(page: Any) -> Any | None:
    """A DevTools session with the page's performance metrics on (Chromium only), or ``None``."""
    try:
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        return cdp
    except Exception:  # noqa: BLE001 - not Chromium, or DevTools refused: the figures are left out
        return None


def _browser_figures(cdp: Any | None, scripts: _ScriptBytes) -> dict[str, Any]:
    """The browser's work for the first page: its main thread's busy seconds (``first_page_browser_task_s``, of
    which ``first_page_browser_script_s`` ran JavaScript) and the scripts it loaded (count and kB)."""
    out: dict[str, Any] = {"first_page_scripts": scripts.files, "first_page_script_kB": round(scripts.bytes / 1e3),
                           "first_page_script_names": sorted(scripts.names)}
    if cdp is None:
        return out
    try:
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    except Exception:  # noqa: BLE001 - the session closed
        return out
    for name, key in (("TaskDuration", "first_page_browser_task_s"), ("ScriptDuration", "first_page_browser_script_s")):
        if name in metrics:
            out[key] = round(float(metrics[name]), 2)
    return out


def _menu(page: Any) -> dict[str, str]:
    """The sidebar menu's visible entries: href -> title, in menu order."""
    links = page.get_by_test_id("stSidebarNav").locator("a")
    menu: dict[str, str] = {}
    for i in range(links.count()):
        href = links.nth(i).get_attribute("href")
        if href and links.nth(i).is_visible():
            text = links.nth(i).inner_text().strip().splitlines()  # an icon's name, then the title
            menu.setdefault(href, text[-1].strip() if text else href)
    return menu


def _choose(menu: dict[str, str], pages: Sequence[str] | None) -> dict[str, str]:
    """The menu entries named in ``pages`` (titles, case-insensitive), in the order given; all when ``None``."""
    if pages is None:
        return dict(menu)
    by_title = {title.lower(): href for href, title in menu.items()}
    unknown = [p for p in pages if p.lower() not in by_title]
    if unknown:
        raise InputError(f"no page {', '.join(repr(p) for p in unknown)} in the dashboard's menu: "
                         f"choose among {', '.join(menu.values())}")
    return {by_title[p.lower()]: menu[by_title[p.lower()]] for p in pages}


def _click(page: Any, href: str, timeout_s: float, error: type[Exception]) -> None:
    """Click the menu entry ``href`` and wait until the page has settled."""
    for _attempt in range(3):  # a rerun may replace the menu under the pointer
        try:
            page.get_by_test_id("stSidebarNav").locator(f'a[href="{href}"]').first.click(timeout=10_000)
            break
        except error:
            _wait_settled(page, timeout_s)
    _wait_settled(page, timeout_s)


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
