"""Tests of nestedae_core.jobs without worker processes: the SQLite store, settings, limits, read-only mode,
kinds run in-process, cancelling, ownership of saved models and concurrent saves."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from nestedae_core import store as bundles
from nestedae_core.errors import BundleError, ConfigError, InputError
from nestedae_core.jobs import (
    JobContext,
    JobManager,
    JobStore,
    LimitError,
    PermissionRefused,
    estimate_parameters,
    load_settings,
    register_kind,
    run_job,
    synthetic_tables,
    train_output,
    train_payload,
    validate_model_name,
)
from nestedae_core.perovskite.presets import preset

pytestmark = pytest.mark.unit


class ManualExecutor:
    """Records submissions; the test runs them in-process with run_job."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, str]] = []

    def submit(self, db_path: str, job_id: str) -> None:
        self.submitted.append((db_path, job_id))

    def run_all(self) -> None:
        while self.submitted:
            run_job(*self.submitted.pop(0))

    def shutdown(self) -> None:
        pass


def echo_kind(payload: dict, ctx: JobContext) -> dict:
    """A kind for tests: reports three events, stops when asked (after the first), returns the payload."""
    for i in range(3):
        ctx.progress({"step": i, "fraction": (i + 1) / 3})
        if payload.get("cancel_self") and i == 0:
            ctx._store.request_cancel(ctx.job_id)
            ctx._last_poll = 0.0
        if ctx.should_stop():
            from nestedae_core.train.progress import TrainingCancelled

            raise TrainingCancelled("stopped on request")
    (ctx.work_dir / "out.txt").write_text("x")
    return {"echo": payload, "work_dir": str(ctx.work_dir)}


def failing_kind(payload: dict, ctx: JobContext) -> dict:
    if payload.get("user_error"):
        raise InputError("bad input in the payload")
    raise RuntimeError("a bug\nover two lines")


register_kind("test-echo", echo_kind)
register_kind("test-fail", failing_kind)


def make_manager(tmp_path: Path, **settings: object) -> tuple[JobManager, ManualExecutor]:
    ex = ManualExecutor()
    m = JobManager(tmp_path / "jobs.sqlite", settings=load_settings({}, **settings), executor=ex, models_dir=tmp_path / "models")
    return m, ex


# --------------------------------------------------------------------------- store and settings


def test_store_round_trip(tmp_path):
    s = JobStore(tmp_path / "j.sqlite")
    with s.transaction() as con:
        s.insert(con, job_id="a", kind="k", owner="me", name="n", payload={"x": [1, 2], "y": None}, work_dir=str(tmp_path / "w"))
    rec = s.get("a")
    assert (rec.status, rec.owner, rec.payload, rec.queue_position) == ("queued", "me", {"x": [1, 2], "y": None}, 1)
    assert s.mark_running("a", "host:1") and not s.mark_running("a", "host:2")
    s.add_events("a", [{"fraction": 0.25}, {"fraction": 0.5}], 0.5)
    s.add_events("a", [{"fraction": 0.75}], 0.75)
    assert [e["fraction"] for e in s.events("a")] == [0.25, 0.5, 0.75] and s.events("a", 2) == [{"fraction": 0.75}]
    assert s.finish("a", "done", result={"mae": float("nan"), "n": 3})
    assert not s.finish("a", "failed", error="late")  # a settled job is not overwritten
    rec = s.get("a")
    assert rec.status == "done" and rec.result["n"] == 3 and rec.result["mae"] != rec.result["mae"]
    assert rec.last_event == {"fraction": 0.75} and rec.fraction == 0.75 and rec.error is None
    assert JobStore(tmp_path / "j.sqlite").get("a") == rec  # durable: a new store object reads the same
    assert s.counts(owner="me")["done"] == 1
    s.set_model_owner("m1", "me", "a")
    assert s.model_owner("m1") == "me" and s.model_owners() == {"m1": "me"}
    s.forget_model("m1")
    assert s.model_owner("m1") is None


def test_settings_from_env_and_invalid_values():
    s = load_settings({"NESTEDAE_MAX_JOBS": "2", "NESTEDAE_ADMINS": "alice, bob ", "NESTEDAE_READ_ONLY": "true"})
    assert s.max_running == 2 and s.admins == ("alice", "bob") and s.read_only and s.is_admin("bob") and not s.is_admin("eve")
    d = load_settings({})
    assert (d.max_running, d.max_jobs_per_owner, d.read_only, d.admins) == (1, 3, False, ())
    with pytest.raises(ConfigError, match="NESTEDAE_MAX_PARAMETERS='lots'"):
        load_settings({"NESTEDAE_MAX_PARAMETERS": "lots"})
    with pytest.raises(ConfigError, match="NESTEDAE_MAX_RUNNING"):
        load_settings({"NESTEDAE_MAX_RUNNING": "0"})


def test_model_names():
    assert validate_model_name(" paper-200ep_v1.2 ") == "paper-200ep_v1.2"
    for bad in ("", "a b", "../x", ".hidden", "x" * 65, "measured-default"):
        with pytest.raises(InputError):
            validate_model_name(bad)


# --------------------------------------------------------------------------- kinds in-process


def test_job_runs_with_progress_result_and_work_dir(tmp_path):
    m, ex = make_manager(tmp_path)
    job_id = m.submit("test-echo", {"a": 1}, owner="alice", name="echo")
    assert m.get(job_id).status == "queued" and ex.submitted == [(str(m.db_path), job_id)]
    ex.run_all()
    rec = m.get(job_id)
    assert rec.status == "done" and rec.result["echo"] == {"a": 1}
    assert Path(rec.result["work_dir"], "out.txt").is_file() and Path(rec.work_dir) == m.work_root / job_id
    assert [e["step"] for e in m.events(job_id)] == [0, 1, 2] and rec.fraction == 1.0
    assert [j.id for j in m.jobs("alice")] == [job_id] and m.jobs("bob") == []
    assert m.find("test-echo", "echo", owner="alice").id == job_id and m.find("test-echo", "other", owner="alice") is None
    assert m.find("test-echo", "echo", owner="bob") is None  # a name never finds another user's job


def test_errors_become_one_line_and_cancel(tmp_path):
    m, ex = make_manager(tmp_path, max_jobs_per_owner=10)
    bug = m.submit("test-fail", {}, owner="a", name="bug")
    user = m.submit("test-fail", {"user_error": True}, owner="a", name="user")
    stop = m.submit("test-echo", {"cancel_self": True}, owner="a", name="stop")
    queued = m.submit("test-echo", {}, owner="a", name="queued")
    assert m.cancel(queued, "a") and m.get(queued).status == "cancelled"
    with pytest.raises(InputError, match="another user"):
        m.cancel(stop, "mallory")
    ex.run_all()
    assert m.get(bug).status == "failed" and "\n" not in m.get(bug).error and "RuntimeError" in m.get(bug).error
    assert m.get(user).error == "bad input in the payload"
    assert m.get(stop).status == "cancelled" and m.get(stop).last_event["step"] == 0
    assert m.get(queued).status == "cancelled" and not m.cancel(queued, "a")  # a cancelled job never runs


def test_unknown_kind_and_non_json_payload(tmp_path):
    m, _ = make_manager(tmp_path)
    with pytest.raises(InputError, match="unknown job kind 'nope'.*train"):
        m.submit("nope", {}, owner="a", name="x")
    with pytest.raises(InputError, match="plain JSON"):
        m.submit("test-echo", {"x": object()}, owner="a", name="x")
    with pytest.raises(InputError, match="owner"):
        m.submit("test-echo", {}, owner=" ", name="x")


# --------------------------------------------------------------------------- limits and read-only


def test_each_limit_refuses_with_its_name_and_value(tmp_path):
    m, _ = make_manager(tmp_path, max_jobs_per_owner=2, max_queued=3, max_parameters=100_000, max_epoch_folds=1000)
    big = preset("synthetic").with_updates(stages=[{"encoder_hidden": [4096] * 200}])
    assert estimate_parameters(big) > 10**9
    with pytest.raises(LimitError, match="NESTEDAE_MAX_PARAMETERS is 100,000") as e:
        m.submit("train", train_payload(big), owner="a", name="big")
    assert e.value.setting == "NESTEDAE_MAX_PARAMETERS" and e.value.value == 100_000
    with pytest.raises(LimitError, match="epochs x folds is 7,000; the limit NESTEDAE_MAX_EPOCH_FOLDS is 1,000"):
        m.submit("train", train_payload(preset("synthetic")), owner="a", name="long")  # (600 + 800) x 5
    ok = train_payload(preset("synthetic", epochs=5, folds=2))
    m.submit("train", ok, owner="a", name="one")
    m.submit("train", ok, owner="a", name="two")
    with pytest.raises(LimitError, match="you already have 2 jobs queued or running; the limit NESTEDAE_MAX_JOBS_PER_OWNER is 2"):
        m.submit("train", ok, owner="a", name="three")
    m.submit("train", ok, owner="b", name="three")
    with pytest.raises(LimitError, match="3 jobs are waiting in the queue; the limit NESTEDAE_MAX_QUEUED is 3"):
        m.submit("train", ok, owner="c", name="four")
    sweep = {"spec": ok["spec"], "sizes": [1, 2, 3, 4, 5, 6], "epochs": 100, "folds": 2}
    with pytest.raises(LimitError, match="6 runs x epochs x folds is 1,200"):
        m.submit("latent_size_scan", sweep, owner="d", name="sweep")


def test_read_only_mode_refuses_training_saving_and_deleting(tmp_path):
    m, _ = make_manager(tmp_path, read_only=True)
    with pytest.raises(LimitError, match="read-only demo .NESTEDAE_READ_ONLY=1."):
        m.submit("test-echo", {}, owner="a", name="x")
    with pytest.raises(LimitError, match="saving models is switched off"):
        m.store.get("none")  # no job: the read-only check comes first
        from nestedae_core.jobs.ownership import save_staged
        from nestedae_core.jobs.jobstore import JobRecord

        save_staged(m.store, m.settings, JobRecord("x", "train", "a", "x", {}, "done", False, 1, None, {}, None, "", "b",
                                                     None, None, None, 0.0, 0.0, 0.0), "x", identity="a", models_dir=m.models_dir)
    with pytest.raises(LimitError, match="deleting models is switched off"):
        m.delete_model("x", owner="a")
    assert m.may_modify("x", "a").startswith("this server is a read-only demo")


# --------------------------------------------------------------------------- saving and ownership


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store with finished tiny training jobs: two of 'alice', one of 'bob' (run in-process)."""
    root = tmp_path_factory.mktemp("trained")
    ex = ManualExecutor()
    m = JobManager(root / "jobs.sqlite", settings=load_settings({}, max_jobs_per_owner=5), executor=ex, models_dir=root / "models")
    payload = train_payload(preset("synthetic", epochs=3, folds=2), tables=synthetic_tables(n_materials=60, n_devices=120), device="cpu")
    ids = [m.submit("train", payload, owner=who, name=f"run{i}") for i, who in enumerate(("alice", "alice", "bob"))]
    ex.run_all()
    for i in ids:
        assert m.get(i).status == "done", m.get(i).error
    return root, ids


def _manager(root: Path, models: Path, **settings: object) -> JobManager:
    return JobManager(root / "jobs.sqlite", settings=load_settings({}, **settings), executor=ManualExecutor(),
                      models_dir=models, recover=False)


def test_train_job_output_and_save_with_owner(trained, tmp_path):
    root, (a, _, _) = trained
    m = _manager(root, tmp_path)
    rec = m.get(a)
    out = train_output(rec)
    assert set(out.metrics) == {"materials", "devices"} and len(out.oof["materials"]) == 60
    assert "y1_true" in out.oof["materials"] and out.model.spec.folds == 2
    assert rec.result["seconds"]["materials"] > 0 and rec.last_event["stage"] == "devices"
    path = m.save(a, "alice-model", owner="alice")
    assert path == tmp_path / "alice-model" and bundles.load_bundle(path).spec.folds == 2
    assert m.model_owner("alice-model") == "alice" and m.get(a).saved_model == "alice-model"
    with pytest.raises(BundleError, match="already exists"):
        m.save(a, "alice-model", owner="alice")
    assert m.save(a, "alice-model", owner="alice", overwrite=True) == path  # the owner may overwrite
    with pytest.raises(InputError, match="belongs to another user"):
        m.save(a, "bob-model", owner="bob")  # not bob's run


def test_other_owner_cannot_overwrite_or_delete_but_an_admin_can(trained, tmp_path):
    root, (a, _, b) = trained
    m = _manager(root, tmp_path, admins="root")
    m.save(a, "shared-name", owner="alice")
    stamp = (tmp_path / "shared-name" / "manifest.json").stat().st_mtime_ns
    assert "belongs to another user" in m.may_modify("shared-name", "bob") and m.may_modify("shared-name", "alice") is None
    with pytest.raises(PermissionRefused, match="belongs to another user"):
        m.delete_model("shared-name", owner="bob")
    with pytest.raises(PermissionRefused, match="belongs to another user"):
        m.save(b, "shared-name", owner="bob", overwrite=True)
    assert (tmp_path / "shared-name" / "manifest.json").stat().st_mtime_ns == stamp
    m.save(a, "shared-name", owner="root", overwrite=True)  # admin
    assert m.model_owner("shared-name") == "root"
    m.delete_model("shared-name", owner="root")
    assert not (tmp_path / "shared-name").exists() and m.model_owner("shared-name") is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no hidden leftovers


def test_unowned_models_are_admin_only_and_shipped_names_refused(trained, tmp_path):
    root, (a, _, _) = trained
    m = _manager(root, tmp_path, admins="root")
    bundles.save_bundle(train_output(m.get(a)).model, tmp_path / "from-cli")  # saved outside the app: no owner
    with pytest.raises(PermissionRefused, match="no recorded owner"):
        m.save(a, "from-cli", owner="alice", overwrite=True)
    with pytest.raises(PermissionRefused, match="no recorded owner"):
        m.delete_model("from-cli", owner="alice")
    m.delete_model("from-cli", owner="root")
    with pytest.raises(InputError, match="built-in model"):
        m.save(a, "measured-default", owner="alice")


def test_concurrent_saves_of_one_name_exactly_one_wins(trained, tmp_path):
    root, (a, b, _) = trained
    m = _manager(root, tmp_path)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def save(job_id: str) -> None:
        barrier.wait()
        try:
            m.save(job_id, "race", owner="alice")
            outcomes.append("saved")
        except BundleError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=save, args=(j,)) for j in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outcomes.count("saved") == 1 and all("already exists" in o for o in outcomes if o != "saved")
    assert bundles.load_bundle(tmp_path / "race").spec.folds == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
