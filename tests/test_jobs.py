"""Tests of nestedae_core.train.jobs: background training jobs, queueing, cancelling, errors, saving."""
from __future__ import annotations

import threading
import time

import pytest

from nestedae_core import store, train
from nestedae_core.errors import BundleError, InputError
from nestedae_core.train.jobs import JobManager, validate_model_name
from nestedae_core.model.presets import preset
from nestedae_core.data.synthetic import generate

WAIT = 60


@pytest.fixture
def models(tmp_path, monkeypatch):
    d = tmp_path / "models"
    monkeypatch.setenv(store.MODELS_DIR_ENV, str(d))
    return d


@pytest.fixture
def manager():
    m = JobManager(max_concurrent=1)
    yield m
    m.cancel_all()
    m.wait_all(WAIT)


def test_tiny_job_completes_with_progress(manager):
    job = manager.submit(preset("synthetic", epochs=5), owner="alice", name="tiny")
    assert job.wait(WAIT)
    assert job.status == "done", job.error
    assert job.error is None and job.fraction == 1.0
    assert set(job.result.metrics) == {"materials", "devices"}
    events = job.events_since(0)
    assert events and {e.stage for e in events} == {"materials", "devices"}
    assert events[-1].fraction == pytest.approx(1.0)
    assert len(events[-1].member_losses) == 5  # one loss per fold member
    assert job.events_since(len(events)) == []
    assert job.events_since(len(events) - 1) == events[-1:]
    assert manager.get(job.id) is job
    assert manager.jobs("alice") == [job] and manager.jobs("bob") == []
    assert job.summary()["status"] == "done"


def test_job_trains_on_the_given_tables(manager):
    data = generate(n_materials=120, seed=3)
    tables = {"materials": data.materials, "devices": data.devices}
    job = manager.submit(preset("synthetic", epochs=5, folds=2), owner="alice", name="given", tables=tables, device="cpu")
    assert job.wait(WAIT) and job.status == "done", job.error
    assert len(job.result.tables["materials"]) == 120
    assert job.result.tables["devices"].equals(data.devices)
    with pytest.raises(InputError, match="tables must map stage names to pandas DataFrames"):
        manager.submit(preset("synthetic", epochs=5), owner="alice", name="bad", tables={"materials": [1, 2]})


def test_train_fn_receives_the_tables():
    got = {}

    def record(spec, **kw):
        got.update(kw)
        return object()

    m = JobManager(train_fn=record)
    tables = {"materials": generate(n_materials=50).materials}
    assert m.submit(preset("synthetic", epochs=5), owner="a", name="t", tables=tables).wait(WAIT)
    assert got["tables"]["materials"] is tables["materials"] and got["device"] == "auto"
    assert m.submit(preset("synthetic", epochs=5), owner="a", name="u").wait(WAIT)
    assert got["tables"] is None


def test_queue_with_one_slot_and_cancel(manager):
    long = manager.submit(preset("synthetic", epochs=100_000), owner="alice", name="long")
    short = manager.submit(preset("synthetic", epochs=5), owner="bob", name="short")
    third = manager.submit(preset("synthetic", epochs=5), owner="bob", name="third")
    assert long.status == "running" and long.queue_position is None
    assert short.status == "queued" and short.queue_position == 1
    assert third.queue_position == 2
    assert manager.counts()["queued"] == 2
    # cancelling a queued job removes it from the queue at once
    assert third.cancel()
    assert third.status == "cancelled" and third.wait(0)
    assert short.queue_position == 1
    # the running job stops at its next epoch; the queued one then starts and finishes
    assert long.cancel() and long.cancel_requested
    assert long.wait(WAIT) and long.status == "cancelled"
    assert "cancelled" in long.error
    assert short.wait(WAIT) and short.status == "done"
    assert not long.cancel()  # already finished


def test_two_slots_run_together():
    m = JobManager(max_concurrent=2)
    try:
        a = m.submit(preset("synthetic", epochs=100_000), owner="a", name="a")
        b = m.submit(preset("synthetic", epochs=100_000), owner="b", name="b")
        assert a.status == b.status == "running"
    finally:
        m.cancel_all()
        assert m.wait_all(WAIT)
    assert a.status == b.status == "cancelled"


def test_missing_data_is_a_one_line_failure(manager, no_data_env):
    job = manager.submit(preset("paper", epochs=5), owner="alice", name="nodata")
    assert job.wait(WAIT)
    assert job.status == "failed" and job.result is None
    assert "\n" not in job.error
    assert "mhp-pbe-paper" in job.error and "NESTEDAE_DATA_DIR" in job.error, job.error


def test_unexpected_exception_is_summarised(caplog):
    def broken(spec, **kw):
        raise RuntimeError("boom\nsecond line")

    m = JobManager(train_fn=broken)
    job = m.submit(preset("synthetic", epochs=5), owner="alice", name="broken")
    assert job.wait(WAIT)
    assert job.status == "failed"
    assert job.error.startswith("unexpected error (RuntimeError: boom second line)")
    assert "\n" not in job.error
    assert any("failed unexpectedly" in r.message for r in caplog.records)


def test_worker_thread_never_blocks_submit():
    started = threading.Event()
    trained_in = []

    def slow(spec, *, should_stop, **kw):
        trained_in.append(threading.current_thread())
        started.set()
        deadline = time.monotonic() + WAIT  # were it run by submit itself, submit would return after WAIT
        while not should_stop() and time.monotonic() < deadline:
            time.sleep(0.01)
        raise train.TrainingCancelled("stopped")

    m = JobManager(train_fn=slow)
    job = m.submit(preset("synthetic", epochs=5), owner="x", name="slow")
    # submit returned while the training function still runs, on another thread
    assert started.wait(WAIT) and trained_in[0] is not threading.current_thread()
    assert job.status == "running"
    job.cancel()
    assert job.wait(WAIT) and job.status == "cancelled"


@pytest.mark.parametrize("bad", ["", "  ", "../evil", "a b", "x/y", ".hidden", "-dash", "naïve", "a" * 65, "paper-default", "a..b"])
def test_invalid_model_names(bad):
    with pytest.raises(InputError):
        validate_model_name(bad)


def test_valid_model_names():
    assert validate_model_name(" paper-200ep_v1.2 ") == "paper-200ep_v1.2"


def test_submit_validates(manager):
    with pytest.raises(InputError, match="owner"):
        manager.submit(preset("synthetic", epochs=5), owner="", name="x")
    with pytest.raises(InputError, match="not allowed"):
        manager.submit(preset("synthetic", epochs=5), owner="me", name="bad name")
    with pytest.raises(InputError, match="ChainSpec"):
        manager.submit({"stages": []}, owner="me", name="x")
    with pytest.raises(InputError):
        JobManager(max_concurrent=0)


def test_save_finished_job(manager, models):
    long = manager.submit(preset("synthetic", epochs=100_000), owner="alice", name="long")
    with pytest.raises(InputError, match="only a finished"):
        manager.save(long)
    long.cancel()
    job = manager.submit(preset("synthetic", epochs=5), owner="alice", name="tiny-save")
    assert job.wait(WAIT) and job.status == "done"
    path = manager.save(job)
    assert path == models / "tiny-save" and job.saved_path == path
    model = store.load_bundle(path)
    assert model.spec.name == "synthetic"
    assert {b.name for b in store.list_bundles(include_default=False)} == {"tiny-save"}
    # no silent overwrite; explicit overwrite works; the default name is refused
    with pytest.raises(BundleError, match="already exists"):
        manager.save(job)
    assert manager.save(job.id, "tiny-save", overwrite=True) == path
    with pytest.raises(InputError, match="built-in model"):
        manager.save(job, store.DEFAULT_BUNDLE_NAME)
    with pytest.raises(InputError, match="not allowed"):
        manager.save(job, "../outside")
    with pytest.raises(InputError, match="no training job"):
        manager.save("nope")


def test_failed_job_cannot_be_saved(models):
    m = JobManager(train_fn=lambda spec, **kw: (_ for _ in ()).throw(InputError("bad input")))
    job = m.submit(preset("synthetic", epochs=5), owner="a", name="f")
    assert job.wait(WAIT) and job.status == "failed" and job.error == "bad input"
    with pytest.raises(InputError, match="failed"):
        m.save(job)


def test_finished_jobs_are_pruned():
    m = JobManager(keep_finished=2, train_fn=lambda spec, **kw: object())
    jobs = []
    for i in range(4):
        j = m.submit(preset("synthetic", epochs=5), owner="a", name=f"j{i}")
        assert j.wait(WAIT)
        jobs.append(j)
    assert m.submit(preset("synthetic", epochs=5), owner="a", name="last").wait(WAIT)
    kept = [j.name for j in m.jobs()]
    assert len(kept) <= 3 and "last" in kept and "j0" not in kept
