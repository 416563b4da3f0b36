"""Jobs in real worker processes (spawned): a tiny synthetic chain trained end to end with progress events,
cancelling a running job, a worker killed under the server, and start-up recovery of a store left behind."""
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from nestedae_core import store as bundles
from nestedae_core.jobs import JobManager, load_settings, progress_events, synthetic_tables, train_output, train_payload
from nestedae_core.jobs.local_executor import LocalProcessExecutor
from nestedae_core.perovskite.presets import preset

pytestmark = pytest.mark.training

WAIT = 240  # s: spawning a worker imports torch (seconds on a busy CI machine)


def tiny_payload(epochs: int = 4) -> dict:
    return train_payload(preset("synthetic", epochs=epochs, folds=2), tables=synthetic_tables(n_materials=60, n_devices=120),
                         device="cpu")


@pytest.fixture
def manager(tmp_path):
    m = JobManager(tmp_path / "jobs.sqlite", settings=load_settings({}, max_jobs_per_owner=5, max_epoch_folds=100_000),
                   models_dir=tmp_path / "models")
    yield m
    m.shutdown()


def _wait_for(predicate, every: float = 0.2):
    """Poll until ``predicate()`` is truthy and return it; the test's timeout (pytest-timeout) bounds the wait."""
    while not (value := predicate()):
        time.sleep(every)
    return value


def test_worker_process_trains_a_tiny_chain_with_progress_and_it_can_be_saved(manager, tmp_path):
    job_id = manager.submit("train", tiny_payload(), owner="alice", name="tiny")
    rec = manager.wait(job_id, WAIT)
    assert rec.status == "done", rec.error
    host, _, pid = rec.worker.rpartition(":")
    assert host == socket.gethostname() and int(pid) != os.getpid()  # trained in another process
    events = progress_events(manager.events(job_id))
    assert {e.stage for e in events} == {"materials", "devices"} and events[-1].fraction == pytest.approx(1.0)
    assert len(events[-1].member_losses) == 2
    out = train_output(rec)
    assert set(out.metrics) == {"materials", "devices"} and "y2_pred" in out.oof["devices"]
    path = manager.save(job_id, "tiny", owner="alice")
    assert bundles.load_bundle(path).spec.stages[0].epochs == 4


def test_cancel_a_running_worker_job(manager):
    job_id = manager.submit("train", tiny_payload(epochs=20_000), owner="alice", name="long")
    _wait_for(lambda: (manager.get(job_id).fraction > 0) or None)
    assert manager.get(job_id).status == "running"
    assert manager.cancel(job_id, "alice")
    rec = manager.wait(job_id, 60)
    assert rec.status == "cancelled" and rec.last_event is not None and 0 < rec.fraction < 1
    assert not manager.cancel(job_id, "alice")  # already finished


def test_a_killed_worker_fails_its_job_and_the_next_one_runs(manager):
    first = manager.submit("train", tiny_payload(epochs=20_000), owner="alice", name="victim")
    second = manager.submit("train", tiny_payload(), owner="alice", name="next")
    _wait_for(lambda: (manager.get(first).fraction > 0) or None)
    assert manager.get(second).status == "queued" and manager.get(second).queue_position == 1  # one worker at a time
    os.kill(manager.executor.worker_pids()[first], signal.SIGKILL)
    rec = manager.wait(first, 60)
    assert rec.status == "failed" and "killed by signal 9" in rec.error
    assert manager.wait(second, WAIT).status == "done"


@pytest.mark.unit  # no worker process: a recorder stands in for the executor
def test_recovery_interrupts_orphaned_running_jobs_requeues_queued_ones_and_cleans(tmp_path):
    class Recorder:
        def __init__(self):
            self.submitted = []

        def submit(self, db, job_id):
            self.submitted.append(job_id)

        def shutdown(self):
            pass

    settings = load_settings({}, max_jobs_per_owner=5)
    models = tmp_path / "models"
    m1 = JobManager(tmp_path / "jobs.sqlite", settings=settings, executor=Recorder(), models_dir=models)
    running = m1.submit("train", tiny_payload(), owner="a", name="was-running")
    queued = m1.submit("train", tiny_payload(), owner="a", name="was-queued")
    s = m1.store
    assert s.mark_running(running, f"{socket.gethostname()}:999999999")  # a process that does not exist
    s.add_events(running, [{"stage": "materials", "fraction": 0.4}], 0.4)
    (Path(m1.get(running).work_dir) / ".bundle.tmp").mkdir()
    stray = m1.work_root / "0123456789ab"  # not a job of this store: never the job system's to remove
    stray.mkdir()
    (stray / "data.csv").write_text("a,b\n")
    models.mkdir()
    host = bundles.folders._host_tag()
    killed_save = models / f".tiny.{host}-999999999.abcdef012345.saving"  # store.save_bundle's temp folder of a dead process
    killed_save.mkdir()
    (killed_save / "config.json").write_text("{}")
    killed_delete = models / ".old-model.deleting-0123abcd"
    killed_delete.mkdir()

    recorder = Recorder()
    m2 = JobManager(tmp_path / "jobs.sqlite", settings=settings, executor=recorder, models_dir=models)  # the restart
    rec = m2.get(running)
    assert rec.status == "interrupted" and "40 %" in rec.error and rec.last_event["fraction"] == 0.4
    assert recorder.submitted == [queued] and m2.get(queued).status == "queued"
    assert not Path(rec.work_dir).exists() and (stray / "data.csv").read_text() == "a,b\n"
    assert Path(m2.get(queued).work_dir).is_dir()
    assert not killed_delete.exists()
    if hasattr(bundles, "clean_stale_temp"):
        assert not killed_save.exists()
    assert set(m2.last_recovery.interrupted) == {running}


def test_a_worker_never_runs_the_servers_main_script(tmp_path):
    """Inside Streamlit, ``sys.modules['__main__']`` is the dashboard script: a worker must not import it again.

    (multiprocessing's spawn did, and the script's start-up then tried to start workers inside the worker.)
    """
    import subprocess
    import sys
    import textwrap

    marker = tmp_path / "script-ran-in-a-worker"
    script = tmp_path / "dashboard_like.py"
    script.write_text(f"open({str(marker)!r}, 'a').write('x')\n")
    probe = textwrap.dedent(f"""
        import sys, types
        fake = types.ModuleType("__main__"); fake.__file__ = {str(script)!r}
        sys.modules["__main__"] = fake  # what Streamlit's script runner does
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_hosting import tiny_payload
        from nestedae_core.jobs import JobManager, load_settings
        m = JobManager({str(tmp_path / "jobs.sqlite")!r}, settings=load_settings({{}}), models_dir={str(tmp_path / "models")!r})
        rec = m.wait(m.submit("train", tiny_payload(epochs=2), owner="alice", name="t"), {WAIT})
        m.shutdown()
        print(rec.status, rec.error)
    """)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=WAIT + 60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[0] == "done", proc.stdout
    assert not marker.exists()


def test_server_config_keeps_many_sessions_responsive():
    """Two Streamlit defaults stalled a hosted server under load (benchmarks/load_test.py: sessions whose pages
    never answered): a full garbage collection after every script run (holding the GIL long with torch, pandas
    and shap loaded) and a source watcher that re-scans all of sys.modules for every session."""
    import tomllib

    config = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["runner"]["postScriptGC"] is False
    assert config["server"]["fileWatcherType"] == "none"
    assert config["server"]["runOnSave"] is False


def test_local_executor_runs_at_most_max_running(tmp_path):
    ex = LocalProcessExecutor(max_running=2)
    assert ex.max_running == 2 and ex.running == []
    ex.shutdown()
    with pytest.raises(RuntimeError):
        ex.submit(str(tmp_path / "j.sqlite"), "x")


# --------------------------------------------------------------------------- the Train page on the store


ALICE = "browser-" + "a" * 32
BOB = "browser-" + "b" * 32


def _open_train(who: str):
    from streamlit.testing.v1 import AppTest

    from app_driver import APPTEST_TIMEOUT, ENTRY, exceptions

    at = AppTest.from_file(ENTRY, default_timeout=APPTEST_TIMEOUT)
    at.session_state["nae.jobs.identity"] = who  # what the browser's cookie gives after a reload
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, exceptions(at)
    return at


@pytest.fixture
def page_store(app_env):
    """The app's job store (beside the test's models dir) with a finished run and an interrupted one of ALICE."""
    from nestedae_core.jobs import JobStore, job_store_path, run_job

    class Later:
        def submit(self, db, job_id):
            pass

        def shutdown(self):
            pass

    m = JobManager(job_store_path(), settings=load_settings({}, max_jobs_per_owner=5), executor=Later())
    done = m.submit("train", tiny_payload(3), owner=ALICE, name="alice-run")
    run_job(str(m.db_path), done)
    cut = m.submit("train", tiny_payload(3), owner=ALICE, name="alice-cut")
    s = JobStore(m.db_path)
    s.mark_running(cut, "elsewhere:1")
    s.add_events(cut, [{"stage": "materials", "stage_index": 0, "n_stages": 2, "epoch": 1, "epochs": 3, "loss": 1.0,
                        "member_losses": [1.0, 1.0], "val_loss": None, "fraction": 0.25, "elapsed_s": 0.1}], 0.25)
    s.finish(cut, "interrupted", error="interrupted: the server stopped while it ran (at 25 %)")
    return m, done, cut


def test_a_reload_shows_the_users_runs_from_the_store_and_others_see_none(page_store):
    from app_driver import texts

    m, done, cut = page_store
    at = _open_train(ALICE)
    box = at.selectbox(key="train.selected_job")
    assert box.value == cut and [o.split(" · ")[:3] for o in box.options] == [
        ["alice-cut", "synthetic", "interrupted"], ["alice-run", "synthetic", "finished"]]  # latest first, with its status
    assert any("Interrupted at 25 %" in w.value for w in at.warning)
    box.set_value(done).run()
    assert any("Finished in" in s.value for s in at.success)
    assert any("Cross-validation results" in s.value for s in at.subheader)
    sd = [d.value for d in at.dataframe if "MAE sd (a.u.)" in d.value.columns][0]["MAE sd (a.u.)"]
    assert "None" not in set(sd) and list(sd)[0] == "—"
    assert "Limits on this server" in texts(at)
    report = at.get("download_button")
    assert any("Download report" in str(getattr(b, "proto", b)) for b in report)
    other = _open_train(BOB)
    assert "No runs yet" in texts(other)


def test_saving_over_another_users_model_is_refused_and_own_models_can_be_deleted(page_store, app_env):
    m, done, _ = page_store
    bundles.save_bundle(train_output(m.get(done)).model, app_env / "taken")
    m.store.set_model_owner("taken", BOB)
    at = _open_train(ALICE)
    at.selectbox(key="train.selected_job").set_value(done).run()
    at.text_input(key=f"train.save_name.{done}").input("taken")
    at.checkbox(key=f"train.overwrite.{done}").check()
    at.button(key=f"train.save_btn.{done}").click().run()
    assert any("belongs to another user" in e.value for e in at.error)
    assert m.model_owner("taken") == BOB
    models = at.dataframe[-1].value
    assert dict(zip(models["model"], models["owner"]))["taken"] == "another user"
    # her own model: saved, listed as hers, deletable; bob's is not offered for deletion
    at.text_input(key=f"train.save_name.{done}").input("mine")
    at.checkbox(key=f"train.overwrite.{done}").uncheck()
    at.button(key=f"train.save_btn.{done}").click().run()
    assert (app_env / "mine" / "manifest.json").is_file() and m.model_owner("mine") == ALICE
    assert at.selectbox(key="train.delete_name").options == ["mine"]
    at.checkbox(key="train.delete_sure").check().run()
    at.button(key="train.delete_btn").click().run()
    assert not (app_env / "mine").exists() and (app_env / "taken").is_dir()


def test_read_only_mode_shows_a_banner_and_disables_training(app_env, monkeypatch):
    from app_driver import texts

    monkeypatch.setenv("NESTEDAE_READ_ONLY", "1")
    at = _open_train(ALICE)
    assert any("Read-only demo" in i.value for i in at.info)
    assert at.button(key="train.measured.submit").disabled
    assert "Limits on this server" in texts(at)
