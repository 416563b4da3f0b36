"""`nestedae benchmark speed --dashboard`: finding the dashboard, choosing pages, the printed table, skipped runs."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nestedae_core.benchmark import app_server, dashboard
from nestedae_core.cli import main
from nestedae_core.errors import InputError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]


def test_find_app_takes_a_file_or_its_folder_and_says_none_when_absent(tmp_path, monkeypatch) -> None:
    assert app_server.find_app(REPO) == (REPO / "streamlit_app.py").resolve()
    assert app_server.find_app(REPO / "streamlit_app.py") == (REPO / "streamlit_app.py").resolve()
    assert app_server.find_app(tmp_path) is None
    assert app_server.find_app(tmp_path / "missing.py") is None
    monkeypatch.chdir(tmp_path)  # not here: the checkout beside the package
    assert app_server.find_app() == (REPO / "streamlit_app.py").resolve()


def test_server_command_runs_the_entry_headless_on_loopback() -> None:
    cmd = app_server.server_command(8765, "streamlit_app.py")
    assert cmd[1:5] == ["-m", "streamlit", "run", "streamlit_app.py"]
    assert cmd[cmd.index("--server.port") + 1] == "8765" and cmd[cmd.index("--server.address") + 1] == "127.0.0.1"


def test_pages_are_chosen_by_title_in_the_order_given_and_an_unknown_title_names_the_menu() -> None:
    menu = {"/": "Home", "/data": "Data", "/predict": "Predict"}
    assert dashboard._choose(menu, None) == menu
    assert list(dashboard._choose(menu, ["predict", "HOME"]).values()) == ["Predict", "Home"]
    with pytest.raises(InputError, match="no page 'Trian'.*Home, Data, Predict"):
        dashboard._choose(menu, ["Trian"])


def test_process_cpu_seconds_reads_this_process_and_none_for_a_missing_one() -> None:
    sum(i * i for i in range(200_000))  # some CPU time of our own
    cpu = dashboard.process_cpu_seconds(os.getpid())
    assert cpu is not None and 0 < cpu <= sum(os.times()[:2]) + 0.05
    assert dashboard.process_cpu_seconds(2**22 + 12345) is None


def test_without_a_dashboard_the_command_says_why_it_skipped(tmp_path, capsys) -> None:
    out = tmp_path / "dash.json"
    assert main(["benchmark", "speed", "--dashboard", "--app", str(tmp_path / "nowhere"), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "skipped: no dashboard at" in text and "--app" in text
    report = json.loads(out.read_text())
    assert report["kind"] == "speed-dashboard" and "no dashboard at" in report["skipped"] and report["machine"]["cpu_count"] >= 1


def test_the_table_gives_each_figure_its_target_and_verdict(capsys) -> None:
    from nestedae_core.cli.benchmark_cmd import print_dashboard_speed

    report = {"machine": {"platform": "Linux", "cpu": "Test CPU", "cpu_count": 2, "torch": "2.x"},
              "load_average": [1.5, 1.0, 0.5], "load_average_after": [2.0, 1.0, 0.5], "targets": dict(dashboard.TARGETS),
              "server_healthy_s": 0.9, "server_healthy_cpu_s": 0.8, "first_page_from_request_s": 7.04,
              "first_page_from_server_start_s": 8.1, "first_page_server_cpu_s": 6.3,
              "warm_page_s": {"Home": 0.51, "Data": 2.43}}
    print_dashboard_speed(report)
    lines = capsys.readouterr().out.splitlines()
    assert "Test CPU (2 CPUs)" in lines[0] and "before 1.5 1 0.5, after 2 1 0.5" in lines[1]
    row = {line.split("  ")[0]: line.split() for line in lines[4:]}
    assert row["first page, cold (from the request)"][-3:] == ["7.04", "5", "no"]
    assert row["Home, warm"][-3:] == ["0.51", "2", "yes"] and row["Data, warm"][-3:] == ["2.43", "2", "no"]
    assert "6.30" in row["first page, cold (from the server's start)"]


def test_the_browser_figures_come_from_devtools_metrics_and_are_printed(capsys) -> None:
    from nestedae_core.cli.benchmark_cmd import print_dashboard_speed

    class FakeCdp:
        def send(self, method: str) -> dict:
            assert method == "Performance.getMetrics"
            return {"metrics": [{"name": "TaskDuration", "value": 1.234}, {"name": "ScriptDuration", "value": 0.987},
                                {"name": "Nodes", "value": 900}]}

    class FakePage:
        def on(self, event: str, handler) -> None:
            assert event == "requestfinished"

    class FakeRequest:
        def __init__(self, url: str, kind: str, size: int) -> None:
            self.url, self.resource_type, self._size = url, kind, size

        def sizes(self) -> dict:
            return {"responseBodySize": self._size}

    scripts = dashboard._ScriptBytes(FakePage())
    for req in (FakeRequest("http://x/static/js/PlotlyChart.abc.js", "script", 4_000_000),
                FakeRequest("http://x/static/js/index.js", "script", 500_000), FakeRequest("http://x/a.css", "stylesheet", 9)):
        scripts._seen(req)
    figures = dashboard._browser_figures(FakeCdp(), scripts)
    assert figures == {"first_page_scripts": 2, "first_page_script_kB": 4500, "first_page_browser_task_s": 1.23,
                       "first_page_browser_script_s": 0.99, "first_page_script_names": ["PlotlyChart.abc.js", "index.js"]}
    assert dashboard._browser_figures(None, scripts)["first_page_scripts"] == 2  # no DevTools: the scripts only
    report = {"machine": {"platform": "Linux", "cpu_count": 2, "torch": "2.x"}, "targets": dict(dashboard.TARGETS),
              "server_healthy_s": 0.9, "first_page_from_request_s": 3.5, "first_page_from_server_start_s": 4.4,
              "warm_page_s": {}, **figures}
    print_dashboard_speed(report)
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == "the browser for the first page: main thread busy 1.23 s (JavaScript 0.99 s), 2 scripts, 4500 kB"
