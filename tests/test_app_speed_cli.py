"""`nestedae benchmark speed --dashboard` on the real dashboard: a cold server, Home and Data timed warm (a short run)."""
from __future__ import annotations

import json

import pytest

from nestedae_core.cli import main

pytestmark = [pytest.mark.app, pytest.mark.slow]


@pytest.mark.timeout(400)
def test_dashboard_speed_times_the_cold_first_page_and_the_pages_asked_for(tmp_path, capsys) -> None:
    out = tmp_path / "dashboard.json"
    assert main(["benchmark", "speed", "--dashboard", "--page", "data", "--page", "Home", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    if "skipped" in report and ("playwright" in report["skipped"] or "hromium" in report["skipped"]):
        pytest.skip(report["skipped"])
    assert "skipped" not in report, report["skipped"]
    assert 0 < report["server_healthy_s"] < report["first_page_from_server_start_s"]
    assert 0 < report["first_page_from_request_s"] <= report["first_page_from_server_start_s"]
    assert list(report["warm_page_s"]) == ["Data", "Home"] and all(s > 0 for s in report["warm_page_s"].values())
    assert report["warm_page_max_s"] == max(report["warm_page_s"].values())
    assert report["first_page_server_cpu_s"] > 0 and len(report["load_average"]) == 3
    text = capsys.readouterr().out
    assert "first page, cold (from the request)" in text and "Data, warm" in text and f"wrote {out}" in text
