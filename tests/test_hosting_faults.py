"""Fault tests: a job server killed (SIGTERM, SIGKILL) mid-training and mid-save, then restarted.

After the restart the store shows the job ``interrupted`` with its last progress,
no temporary folder remains (jobs' work folders, the models dir) and every
saved model loads. The server is tests/hosting_server.py in its own process
(the job manager with local worker processes, as the dashboard runs it).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nestedae_core import store as bundles
from nestedae_core.jobs import JobManager, JobStore, load_settings, run_job, synthetic_tables, train_payload
from nestedae_core.perovskite.presets import preset

pytestmark = pytest.mark.training

SERVER = Path(__file__).with_name("hosting_server.py")
WAIT = 240


class Recorder:
    def __init__(self) -> None:
        self.submitted: list[str] = []

    def submit(self, db: str, job_id: str) -> None:
        self.submitted.append(job_id)

    def shutdown(self) -> None:
        pass


def restart(db: Path, models: Path) -> JobManager:
    return JobManager(db, settings=load_settings({}), executor=Recorder(), models_dir=models)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _until(predicate, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("condition not reached in time")


def _server(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SERVER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


def _no_leftovers(models: Path, work_root: Path, keep_jobs: set[str]) -> None:
    hidden = [p.name for p in models.iterdir() if p.name.startswith(".")] if models.exists() else []
    assert hidden == [], hidden
    work = {p.name for p in work_root.iterdir()} if work_root.exists() else set()
    assert work <= keep_jobs, work
    for folder in (p for p in models.iterdir() if p.is_dir()) if models.exists() else ():
        bundles.load_bundle(folder)  # every saved model loads


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_server_killed_mid_training(tmp_path, sig):
    db, models = tmp_path / "jobs.sqlite", tmp_path / "models"
    proc = _server(str(db), str(models), "train")
    try:
        job_id = proc.stdout.readline().strip()
        assert job_id, proc.stderr.read()
        js = JobStore(db)
        _until(lambda: (js.get(job_id).fraction > 0) or None)
        worker_pid = int(js.get(job_id).worker.rpartition(":")[2])
        os.kill(proc.pid, sig)
        proc.wait(60)
    finally:
        _stop(proc)
    _until(lambda: not _alive(worker_pid), 60)  # the orphaned worker stops by itself
    m = restart(db, models)
    rec = m.get(job_id)
    assert rec.status == "interrupted" and rec.error.startswith("interrupted")
    assert rec.last_event is not None and rec.last_event["stage"] == "materials" and 0 < rec.fraction < 1
    assert m.events(job_id)  # the progress so far is kept
    _no_leftovers(models, m.work_root, keep_jobs=set())


@pytest.fixture
def done_job(tmp_path):
    """A store with one finished tiny training job of 'alice' and one model 'keep' saved from it."""
    db, models = tmp_path / "jobs.sqlite", tmp_path / "models"
    m = restart(db, models)
    payload = train_payload(preset("synthetic", epochs=3, folds=2), device="cpu", tables=synthetic_tables(n_materials=60, n_devices=120))
    job_id = m.submit("train", payload, owner="alice", name="tiny")
    run_job(str(db), job_id)
    assert m.get(job_id).status == "done"
    m.save(job_id, "keep", owner="alice")
    return db, models, job_id


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_server_killed_mid_save(done_job, sig):
    db, models, job_id = done_job
    proc = _server(str(db), str(models), "save", job_id)
    try:
        _until(lambda: db.with_name("save-stalled").exists() or (proc.poll() is not None and pytest.fail(proc.stderr.read())))
        assert [p for p in models.iterdir() if p.name.startswith(".")]  # the half-written save is there
        os.kill(proc.pid, sig)
        proc.wait(60)
    finally:
        _stop(proc)
    m = restart(db, models)
    assert not (models / "half").exists() and m.model_owner("half") is None
    assert m.get(job_id).status == "done" and m.get(job_id).saved_model == "keep"
    _no_leftovers(models, m.work_root, keep_jobs={job_id})
    assert m.save(job_id, "half", owner="alice").is_dir()  # the name is free again
