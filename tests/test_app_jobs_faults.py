"""The dashboard when the job system cannot be used (streamlit.testing AppTest).

An invalid ``NESTEDAE_*`` setting, or a job store that is locked, damaged or
read-only: the pages that need jobs (Train, Sweep) show one message naming the
variable or the file and what to do, never a traceback or Streamlit's redacted
error; the pages that need no jobs (Home, Compose) work as usual.
"""
from __future__ import annotations

import contextlib
import sqlite3
import time

import pytest

from app_driver import exceptions, open_app, texts
from test_jobstore_faults import filled_store, lock_held, read_only_file

pytestmark = pytest.mark.app


@pytest.fixture
def jobs_env(app_env, tmp_path, monkeypatch):
    """A job store path of this test, no other job setting; start-up retries reset afterwards."""
    from app import jobs_state

    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    for var in ("NESTEDAE_READ_ONLY", "NESTEDAE_DASK_SCHEDULER", "NESTEDAE_MAX_RUNNING", "NESTEDAE_MAX_JOBS",
                "NESTEDAE_STORE_TIMEOUT", "NESTEDAE_MAX_EPOCH_FOLDS", "NESTEDAE_MAX_PARAMETERS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(jobs_state, "_STARTUP_FAILED", [])
    return tmp_path


def errors(at) -> list[str]:
    """Error boxes of the page itself (the sidebar may also name an invalid setting, on every page)."""
    return [e.value for e in at.main.error]


def assert_message(at, *needles: str) -> None:
    assert not at.exception, exceptions(at)
    shown = errors(at)
    assert len(shown) == 1, shown
    plain = shown[0].replace("\\", "")
    for n in needles:
        assert n in plain, (n, plain)
    assert "Traceback" not in texts(at)


def assert_works(at) -> None:
    assert not at.exception, exceptions(at)
    assert not errors(at), errors(at)


@pytest.mark.parametrize("var, value", [("NESTEDAE_MAX_RUNNING", "abc"), ("NESTEDAE_READ_ONLY", "maybe")])
def test_an_invalid_setting_is_named_on_the_pages_that_need_jobs(jobs_env, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    for page in ("pages/train.py", "pages/sweep.py"):
        at = open_app(page)
        assert_message(at, f"{var}='{value}'", "correct or unset")
        assert "administrator" in texts(at)  # the hint: who fixes it, and that the other pages work
    assert_works(open_app())  # Home
    assert_works(open_app("pages/compose.py"))


def test_a_damaged_store_is_named_and_the_other_pages_work(jobs_env):
    path = filled_store(jobs_env / "jobs.sqlite")
    half = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(half)
    for page in ("pages/train.py", "pages/sweep.py"):
        at = open_app(page)
        assert_message(at, str(path), "damaged", "restore it from a backup")
    assert_works(open_app())
    assert_works(open_app("pages/compose.py"))
    assert path.read_bytes() == half  # never replaced


def test_a_locked_store_is_named_in_seconds(jobs_env, monkeypatch):
    path = jobs_env / "jobs.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as con:  # an existing store (another server made it)
        con.execute("PRAGMA journal_mode=WAL")
    monkeypatch.setenv("NESTEDAE_STORE_TIMEOUT", "1")
    with lock_held(path):
        t0 = time.monotonic()
        at = open_app("pages/train.py")
        assert time.monotonic() - t0 < 30  # was: 34 s, then the redacted error
        assert_message(at, str(path), "locked by another process", "try again")
        at = open_app("pages/sweep.py")
        assert_message(at, str(path), "locked by another process")


def test_a_read_only_store_is_named(jobs_env):
    path = filled_store(jobs_env / "jobs.sqlite")
    with read_only_file(path):
        at = open_app("pages/sweep.py")  # Optuna writes when it opens a study storage
        assert_message(at, str(path))
        assert "read-only" in errors(at)[0] or "cannot open" in errors(at)[0]
        at = open_app("pages/train.py")  # the runs can be read; a message, if any, names the file
        assert not at.exception, exceptions(at)
        assert all(str(path) in e.replace("\\", "") for e in errors(at)), errors(at)


def test_startup_is_not_retried_on_every_page_after_it_failed(monkeypatch):
    from app import jobs_state
    from nestedae_core.jobs.jobstore import JobStoreError

    calls = []

    def failing():
        calls.append(1)
        raise JobStoreError("the job store x is locked by another process", path="x", cause="locked")

    monkeypatch.setattr(jobs_state, "get_manager", failing)
    monkeypatch.setattr(jobs_state, "_STARTUP_FAILED", [])
    jobs_state.startup()
    jobs_state.startup()  # within STARTUP_RETRY_S: a page that needs no jobs does not wait for the lock again
    assert calls == [1]
    monkeypatch.setattr(jobs_state, "_STARTUP_FAILED", [time.monotonic() - jobs_state.STARTUP_RETRY_S - 1])
    jobs_state.startup()
    assert calls == [1, 1]
