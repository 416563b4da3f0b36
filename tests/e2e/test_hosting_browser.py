"""In a real browser: the per-browser identity survives a reload (a signed cookie, ``SameSite=Strict``), so the
Train page lists the same runs from the job store; another browser is another user and sees none, and so is a
browser with a made-up cookie (the session's ``browser`` fixture of tests/e2e/conftest.py: one sync Playwright
per process)."""
from __future__ import annotations

import re

import pytest

from app_driver import goto_page, new_page, running_app, wait_idle, wait_text

pytestmark = pytest.mark.browser


def test_browser_identity_survives_a_reload_and_shows_the_runs_again(browser, data_dir, tmp_path):
    from nestedae_core.jobs import JobManager, load_settings, run_job, synthetic_tables, train_payload
    from nestedae_core.perovskite.presets import preset

    class Later:
        def submit(self, db, job_id):
            pass

        def shutdown(self):
            pass

    with running_app(tmp_path, data_dir, NESTEDAE_MODELS_DIR=str(tmp_path / "models")) as url:
        with new_page(browser, url) as page:
            goto_page(page, "Train")
            wait_text(page, "No runs yet")
            cookies = {c["name"]: c for c in page.context.cookies()}
            cookie = cookies["nestedae_browser"]["value"] if "nestedae_browser" in cookies else None
            assert cookie and re.fullmatch(r"[0-9a-f]{32}\.[0-9a-f]{32}", cookie)  # <id>.<signature>
            assert cookies["nestedae_browser"]["sameSite"] == "Strict" and not cookies["nestedae_browser"]["secure"]  # http here
            assert f"this browser (id {cookie[:6]}" in page.content()
            # a finished run of this browser's user in the server's job store
            m = JobManager(tmp_path / "jobs.sqlite", settings=load_settings({}), executor=Later(), models_dir=tmp_path / "models")
            job = m.submit("train", train_payload(preset("synthetic", epochs=3, folds=2), device="cpu",
                                                  tables=synthetic_tables(n_materials=60, n_devices=120)),
                           owner=f"browser-{cookie.split('.')[0]}", name="before-reload")
            run_job(str(m.db_path), job)
            page.reload()
            goto_page(page, "Train")
            wait_text(page, "Cross-validation results")
            assert "before-reload" in page.content() and f"this browser (id {cookie[:6]}" in page.content()
        with new_page(browser, url) as other:  # another browser: another user
            goto_page(other, "Train")
            wait_text(other, "No runs yet")
            assert {c["name"]: c["value"] for c in other.context.cookies()}.get("nestedae_browser") != cookie
        # a made-up cookie (this user's id, a signature not made by the server) is ignored: a new user
        context = browser.new_context()
        try:
            context.add_cookies([{"name": "nestedae_browser", "value": cookie.split(".")[0] + "." + "0" * 32, "url": url}])
            forged = context.new_page()
            forged.goto(url)
            wait_idle(forged)
            goto_page(forged, "Train")
            wait_text(forged, "No runs yet")
            assert "before-reload" not in forged.content()
            assert {c["name"]: c["value"] for c in context.cookies()}.get("nestedae_browser", "")[:32] != cookie[:32]
        finally:
            context.close()
