"""`nestedae benchmark speed --dashboard` on the real dashboard: a cold server, Home and Data timed warm (a short run).

The command runs as its own process, as a user runs it: Playwright's sync API refuses to start in a process where an
earlier test left an asyncio loop running (Streamlit's AppTest does), which an in-process call would inherit.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.app, pytest.mark.slow]


@pytest.mark.timeout(400)
def test_dashboard_speed_times_the_cold_first_page_and_the_pages_asked_for(tmp_path) -> None:
    out = tmp_path / "dashboard.json"
    run = subprocess.run([sys.executable, "-m", "nestedae_core", "benchmark", "speed", "--dashboard", "--page", "data",
                          "--page", "Home", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=380)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    if "skipped" in report and ("playwright" in report["skipped"] or "hromium" in report["skipped"]):
        pytest.skip(report["skipped"])
    assert "skipped" not in report, report["skipped"]
    assert 0 < report["server_healthy_s"] < report["first_page_from_server_start_s"]
    assert 0 < report["first_page_from_request_s"] <= report["first_page_from_server_start_s"]
    assert list(report["warm_page_s"]) == ["Data", "Home"] and all(s > 0 for s in report["warm_page_s"].values())
    assert report["warm_page_max_s"] == max(report["warm_page_s"].values())
    assert report["first_page_server_cpu_s"] > 0 and len(report["load_average"]) == 3
    text = run.stdout
    assert "first page, cold (from the request)" in text and "Data, warm" in text and f"wrote {out}" in text
