"""The Dask path under faults, on a real ``distributed.LocalCluster`` (worker processes, loopback).

A job whose Dask worker is killed must not stay ``running`` forever: its heartbeat
stops, the job manager ends it as ``interrupted`` once it is stale, and the owner's
next job is accepted again (``NESTEDAE_MAX_JOBS_PER_OWNER``); a cancel of such a lost
job ends it at once. ``NESTEDAE_MAX_RUNNING`` holds on Dask too: further jobs wait,
``queued``, and run when a slot frees. A scheduler address that is not one is refused
at once, naming the variable.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import types

import pytest

from nestedae_core.errors import ConfigError
from nestedae_core.jobs import JobManager, LimitError, load_settings, synthetic_tables, train_payload
from nestedae_core.jobs.jobstore import LOST_AFTER_S
from nestedae_core.perovskite.presets import preset

pytestmark = pytest.mark.training

WAIT = 240


def test_a_garbage_scheduler_address_is_refused_at_once(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"NESTEDAE_DASK_SCHEDULER='garbage' is not valid: .*tcp://HOST:PORT"):
        JobManager(tmp_path / "jobs.sqlite", settings=load_settings({"NESTEDAE_DASK_SCHEDULER": "garbage"}))
    assert time.monotonic() - t0 < 2
    for good in ("tcp://10.0.0.5:8786", "tls://sched.example.org:8786", "127.0.0.1:8786", "tcp://[::1]:8786"):
        assert load_settings({"NESTEDAE_DASK_SCHEDULER": good}).dask_scheduler == good


distributed = pytest.importorskip("distributed")


def payload(epochs: int) -> dict:
    return train_payload(preset("synthetic", epochs=epochs, folds=2), tables=synthetic_tables(n_materials=60, n_devices=120),
                         device="cpu")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A LocalCluster of 1 worker process (restarted by its nanny when killed), the job store on the shared disk."""
    root = tmp_path_factory.mktemp("dask-faults")
    mp = pytest.MonkeyPatch()
    mp.setenv("NESTEDAE_MODELS_DIR", str(root / "models"))
    mp.setenv("NESTEDAE_JOB_STORE", str(root / "jobs.sqlite"))
    for var in ("NESTEDAE_READ_ONLY", "NESTEDAE_MAX_EPOCH_FOLDS", "NESTEDAE_MAX_PARAMETERS", "NESTEDAE_DASK_SCHEDULER",
                "NESTEDAE_MAX_RUNNING", "NESTEDAE_MAX_JOBS", "NESTEDAE_JOB_STALE_S"):
        mp.delenv(var, raising=False)
    # Worker processes are spawned (also when the nanny restarts a killed one), which re-imports ``__main__``; after an
    # AppTest that is the dashboard script, whose start-up recovery would settle this test's jobs. A bare main instead:
    mp.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    with distributed.LocalCluster(processes=True, n_workers=1, threads_per_worker=2, host="127.0.0.1",
                                  dashboard_address=None) as lc:
        yield lc, root
    mp.undo()


def manager_for(cluster, **overrides) -> JobManager:
    lc, root = cluster
    settings = load_settings({}, dask_scheduler=lc.scheduler_address, max_epoch_folds=10_000_000, **overrides)
    return JobManager(root / "jobs.sqlite", settings=settings, models_dir=root / "models")


def _until(predicate, timeout: float = WAIT, every: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def _kill_worker_of(m: JobManager, job_id: str) -> None:
    _until(lambda: (m.get(job_id).fraction > 0) or None)
    rec = m.get(job_id)
    assert rec.status == "running"
    pid = int(rec.worker.rpartition(":")[2])
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)  # the Dask worker process running the job dies (out of memory, killed, ...)


def test_a_killed_worker_ends_its_job_frees_the_limit_and_the_queue_moves_on(cluster):
    m = manager_for(cluster, max_running=1, max_jobs_per_owner=1, job_stale_s=15)
    try:
        victim = m.submit("train", payload(20_000), owner="ann", name="victim")
        waiting = m.submit("train", payload(3), owner="bob", name="waiting")
        _until(lambda: (m.get(victim).fraction > 0) or None)
        assert m.get(waiting).status == "queued" and m.get(waiting).queue_position == 1  # NESTEDAE_MAX_RUNNING=1 on Dask too
        _kill_worker_of(m, victim)
        with pytest.raises(LimitError, match="NESTEDAE_MAX_JOBS_PER_OWNER"):
            m.submit("train", payload(3), owner="ann", name="again")  # still counted while it is not known lost
        rec = _until(lambda: (m.get(victim).status != "running" and m.get(victim)) or None, timeout=90)
        assert rec.status == "interrupted" and "stopped answering" in rec.error, rec.error
        assert 0 < rec.fraction < 1 and rec.last_event is not None  # its progress is kept
        again = m.submit("train", payload(3), owner="ann", name="again")  # the owner may train again
        assert m.wait(waiting, WAIT).status == "done"
        assert m.wait(again, WAIT).status == "done"
    finally:
        m.shutdown()


def test_cancel_of_a_job_whose_worker_was_killed_ends_it(cluster):
    m = manager_for(cluster, max_running=1, max_jobs_per_owner=3)  # the reaper (60 s) does not come first
    try:
        victim = m.submit("train", payload(20_000), owner="ann", name="victim2")
        _kill_worker_of(m, victim)
        time.sleep(LOST_AFTER_S + 2)
        assert m.get(victim).status == "running"
        assert m.cancel(victim, "ann")
        rec = m.get(victim)
        assert rec.status == "cancelled" and "stopped answering" in rec.error  # at once, not "changes nothing"
        assert m.counts()["running"] == 0
    finally:
        m.shutdown()
