"""The Dask path: jobs and sweep trials run on a real ``distributed.LocalCluster`` (processes, loopback)."""
from __future__ import annotations

import os
import sys
import types

import pytest

pytestmark = pytest.mark.training

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A LocalCluster of 2 worker processes (1 thread each) on 127.0.0.1, no dashboard.

    The environment (models folder, job store) is set before the workers start, as
    on a real cluster whose workers share the server's file system.
    """
    root = tmp_path_factory.mktemp("dask")
    mp = pytest.MonkeyPatch()
    mp.setenv("NESTEDAE_MODELS_DIR", str(root / "models"))
    mp.setenv("NESTEDAE_JOB_STORE", str(root / "jobs.sqlite"))
    for var in ("NESTEDAE_READ_ONLY", "NESTEDAE_MAX_EPOCH_FOLDS", "NESTEDAE_MAX_PARAMETERS", "NESTEDAE_DASK_SCHEDULER"):
        mp.delenv(var, raising=False)
    # Worker processes are spawned, which re-imports ``__main__``: after an AppTest that is the dashboard script.
    mp.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as lc:
        yield lc, root
    mp.undo()


@pytest.fixture
def manager(cluster, monkeypatch):
    """A JobManager whose executor is chosen by the settings: NESTEDAE_DASK_SCHEDULER = the cluster."""
    from nestedae_core.jobs import JobManager
    from nestedae_core.jobs.dask_executor import DaskExecutor

    lc, root = cluster
    monkeypatch.setenv("NESTEDAE_DASK_SCHEDULER", lc.scheduler_address)
    m = JobManager()
    assert isinstance(m.executor, DaskExecutor) and m.executor.address == lc.scheduler_address
    yield m
    m.shutdown()


def test_training_job_runs_on_a_dask_worker(manager):
    from nestedae_core import store
    from nestedae_core.jobs import train_payload
    from nestedae_core.perovskite.presets import preset

    job_id = manager.submit("train", train_payload(preset("synthetic", epochs=10, folds=3), device="cpu"), owner="ann", name="dask-tiny")
    rec = manager.wait(job_id, timeout=300)
    assert rec.status == "done", rec.error
    assert rec.worker and not rec.worker.endswith(f":{os.getpid()}")  # ran in a Dask worker process, not here
    assert manager.events(job_id)  # progress events came back from the worker through the store
    path = manager.save(job_id, "dask-tiny", owner="ann")
    assert store.load_bundle(path).spec.folds == 3


def test_two_trial_sweep_runs_on_the_cluster(manager, cluster):
    from nestedae_core.sweep import Sweep, SweepConfig

    sweep = Sweep.create(SweepConfig(preset="synthetic", n_trials=2, epochs=10, folds=3), manager, owner="ann", study_name="dask-sweep")
    assert sweep.run(poll_s=0.2, timeout=300)
    rows = sweep.rows()
    assert [r["state"] for r in rows] == ["complete", "complete"]
    workers = {manager.get(r["job"]).worker for r in rows}
    assert all(w and not w.endswith(f":{os.getpid()}") for w in workers)
    _, root = cluster
    assert (root / "jobs.sqlite").is_file()  # the study and the jobs share the store


def test_unreachable_scheduler_is_one_line():
    from nestedae_core.errors import InputError
    from nestedae_core.jobs.dask_executor import DaskExecutor

    with pytest.raises(InputError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9 .*NESTEDAE_DASK_SCHEDULER"):
        DaskExecutor("tcp://127.0.0.1:9", timeout=1)
    with pytest.raises(InputError, match="no Dask scheduler address"):
        DaskExecutor("  ")
