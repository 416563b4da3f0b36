"""The job store (one SQLite file every page and command shares) under faults, and jobs whose worker is lost.

Each fault gives one :class:`~nestedae_core.jobs.jobstore.JobStoreError` naming the
file and what to do, within seconds (not SQLite's tracebacks, not a 30 s wait), and
the file is never replaced: a store that is not a regular file (``/dev/null``, a
folder), not SQLite, truncated to half, locked by another process, read-only, or on a
full disk. ``nestedae sweep`` prints that message as one line (exit code 2).

Lost jobs: a ``running`` job whose worker stopped sending heartbeats ends as
``interrupted`` once it is stale, no longer counts against the per-owner limit, and a
cancel of such a job ends it at once.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nestedae_core.cli import main
from nestedae_core.errors import InputError
from nestedae_core.jobs import JobContext, JobManager, JobStore, LimitError, load_settings, register_kind, run_job
from nestedae_core.jobs import jobstore as jobstore_module
from nestedae_core.jobs.jobstore import DEFAULT_TIMEOUT_S, LOST_AFTER_S, JobStoreError

pytestmark = pytest.mark.training

# --------------------------------------------------------------------------- helpers


def run_cli(capsys, *argv: object) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def one_line_error(rc: int, err: str, *needles: str) -> str:
    """Exit code 2 and one error line (the last; a sweep that started may have said its name before), no traceback."""
    assert rc == 2, err
    lines = err.strip().splitlines()
    errors = [line for line in lines if "error" in line.lower()]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert errors[0].startswith("nestedae: error: ") and "Traceback" not in err, err
    assert all(line.startswith("sweep ") for line in lines[:-1]), err
    for n in needles:
        assert n in errors[0], (n, errors[0])
    return errors[0]


class Later:
    """An executor that runs nothing (the tests set the job states themselves)."""

    def __init__(self) -> None:
        self.submitted: list[str] = []

    def submit(self, db: str, job_id: str) -> None:
        self.submitted.append(job_id)

    def shutdown(self) -> None:
        pass


def filled_store(path: Path) -> Path:
    """A store with a few jobs and many progress events (several pages), checkpointed into the main file."""
    s = JobStore(path)
    for i in range(6):
        with s.transaction() as con:
            s.insert(con, job_id=f"job{i}", kind="train", owner="ann", name=f"run{i}", payload={"x": "y" * 500}, work_dir="")
        s.add_events(f"job{i}", [{"epoch": e, "loss": 1.0 / (e + 1), "pad": "z" * 200} for e in range(60)], 0.5)
        s.mark_running(f"job{i}", "elsewhere:1")
        s.finish(f"job{i}", "failed", error="an old run")  # settled: a manager opening the store runs nothing
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert path.stat().st_size > 100_000
    return path


@contextlib.contextmanager
def lock_held(path: Path):
    """Another process holds an exclusive lock on the SQLite file ``path`` while the block runs."""
    code = ("import sqlite3, sys, time\n"
            "con = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "con.execute('PRAGMA locking_mode=EXCLUSIVE')\n"
            "con.execute('BEGIN EXCLUSIVE')\n"
            "con.execute('CREATE TABLE IF NOT EXISTS holder(x)')\n"
            "print('locked', flush=True)\n"
            "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait(30)


@contextlib.contextmanager
def read_only_file(path: Path):
    """Make ``path`` (and its folder) unwritable for real: ``chmod`` as a user, ``chattr +i`` as root; else skip."""
    if os.geteuid() != 0:
        folder_mode = path.parent.stat().st_mode
        path.chmod(0o444)
        path.parent.chmod(0o555)
        try:
            yield
        finally:
            path.parent.chmod(folder_mode)
            path.chmod(0o644)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root without chattr +i here: a read-only file cannot be made")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


def simulate_full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write of the job store fails as SQLite fails on a full disk (SQLITE_FULL)."""
    real = sqlite3.connect

    class FullDisk:
        def __init__(self, con: sqlite3.Connection) -> None:
            self._con = con

        def execute(self, sql: str, *args):  # type: ignore[no-untyped-def]
            writes = sql.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE", "CREATE", "ALTER")
            if writes and "IF NOT EXISTS" not in sql.upper():  # creating what exists writes nothing
                raise sqlite3.OperationalError("database or disk is full")
            return self._con.execute(sql, *args)

        def executemany(self, sql: str, *args):  # type: ignore[no-untyped-def]
            raise sqlite3.OperationalError("database or disk is full")

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(self._con, name)

    monkeypatch.setattr(jobstore_module.sqlite3, "connect", lambda *a, **k: FullDisk(real(*a, **k)))


@pytest.fixture
def tiny_disk(tmp_path):
    """A 300 kB tmpfs filled up (root only, where mounting is allowed); else skip."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(folder: Path) -> None:
    with contextlib.suppress(OSError), open(folder / "filler", "wb") as fh:
        while True:
            fh.write(b"\0" * 4096)
            fh.flush()


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    """Models folder and job store of this test; no other job setting."""
    monkeypatch.setenv("NESTEDAE_MODELS_DIR", str(tmp_path / "models"))
    for var in ("NESTEDAE_DASK_SCHEDULER", "NESTEDAE_READ_ONLY", "NESTEDAE_MAX_RUNNING", "NESTEDAE_MAX_JOBS",
                "NESTEDAE_STORE_TIMEOUT", "NESTEDAE_JOB_STALE_S", "NESTEDAE_MAX_EPOCH_FOLDS", "NESTEDAE_MAX_PARAMETERS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


SWEEP = ("sweep", "--preset", "synthetic", "--trials", "1", "--epochs", "2", "--folds", "2")


# --------------------------------------------------------------------------- not a store


@pytest.mark.parametrize("kind", ["dev-null", "folder", "not-sqlite", "under-a-file"])
def test_a_path_that_cannot_be_a_store_is_refused_in_one_line(tmp_path, kind):
    text = tmp_path / "notes.txt"
    text.write_text("my notes, not a database\n" * 40)
    path = {"dev-null": Path("/dev/null"), "folder": tmp_path, "not-sqlite": text, "under-a-file": text / "jobs.sqlite"}[kind]
    with pytest.raises(JobStoreError) as info:
        JobStore(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg and "NESTEDAE_JOB_STORE" in msg
    assert text.read_text() == "my notes, not a database\n" * 40  # never replaced
    assert not list(tmp_path.glob("notes.txt-*"))  # no -wal/-shm beside it either
    if kind == "not-sqlite":
        assert info.value.cause == "corrupt" and "restore it from a backup" in msg and "mv " in msg


def test_a_truncated_store_is_damaged_and_kept_as_it_is(tmp_path):
    path = filled_store(tmp_path / "jobs.sqlite")
    half = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(half)
    with pytest.raises(JobStoreError) as info:
        m = JobManager(path, settings=load_settings({}), executor=Later(), models_dir=tmp_path / "models")
        m.jobs()  # opening may pass (the header is intact); reading the jobs may not
    assert info.value.cause == "corrupt" and str(path) in str(info.value) and "left as it is" in str(info.value)
    assert path.read_bytes() == half  # never repaired nor replaced
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("jobs.sqlite")) in (
        ["jobs.sqlite"], ["jobs.sqlite", "jobs.sqlite-shm", "jobs.sqlite-wal"])


def test_a_locked_store_says_so_in_seconds(tmp_path):
    assert DEFAULT_TIMEOUT_S <= 10
    path = tmp_path / "jobs.sqlite"
    JobStore(path)
    with lock_held(path):
        t0 = time.monotonic()
        with pytest.raises(JobStoreError) as info:
            JobManager(path, settings=load_settings({"NESTEDAE_STORE_TIMEOUT": "1"}), executor=Later(),
                       models_dir=tmp_path / "models")
        assert time.monotonic() - t0 < 10
    assert info.value.cause == "locked" and "locked by another process" in str(info.value) and "wait" in str(info.value)
    JobStore(path).list()  # usable again once the lock is gone


def test_a_read_only_store_names_the_permission(tmp_path):
    path = filled_store(tmp_path / "jobs.sqlite")
    with read_only_file(path):
        with pytest.raises(JobStoreError) as info:
            s = JobStore(path)
            with s.transaction() as con:
                s.insert(con, job_id="new", kind="train", owner="ann", name="n", payload={}, work_dir="")
    assert info.value.cause in ("readonly", "cannot-open") and str(path) in str(info.value)
    assert "permission" in str(info.value) or "write" in str(info.value)


def test_a_full_disk_says_free_space(tmp_path, monkeypatch):
    path = tmp_path / "jobs.sqlite"
    JobStore(path)
    simulate_full_disk(monkeypatch)
    s = JobStore(path)
    with pytest.raises(JobStoreError) as info:
        with s.transaction() as con:
            s.insert(con, job_id="new", kind="train", owner="ann", name="n", payload={}, work_dir="")
    assert info.value.cause == "full" and "disk is full" in str(info.value) and "free some space" in str(info.value)


def test_a_really_full_disk(tiny_disk):
    path = tiny_disk / "jobs.sqlite"
    JobStore(path)
    fill(tiny_disk)
    with pytest.raises(JobStoreError) as info:
        s = JobStore(path)  # reopening may need room already (its -wal and -shm files)
        for i in range(200):
            s.add_events("x", [{"pad": "z" * 2000}] * 20)
    assert info.value.cause == "full" and "disk is full" in str(info.value)


def test_a_programming_error_is_not_dressed_as_a_fault_of_the_file(tmp_path):
    s = JobStore(tmp_path / "jobs.sqlite")
    with s.transaction() as con:
        s.insert(con, job_id="a", kind="k", owner="me", name="n", payload={}, work_dir="")
    with pytest.raises(sqlite3.IntegrityError):
        with s.transaction() as con:
            s.insert(con, job_id="a", kind="k", owner="me", name="n", payload={}, work_dir="")


# --------------------------------------------------------------------------- nestedae sweep under the same faults


@pytest.mark.parametrize("kind", ["dev-null", "folder", "not-sqlite", "truncated"])
def test_sweep_on_a_store_that_is_not_usable(capsys, cli_env, monkeypatch, kind):
    tmp = cli_env
    text = tmp / "notes.txt"
    text.write_text("not a database\n")
    path = {"dev-null": Path("/dev/null"), "folder": tmp, "not-sqlite": text}.get(kind)
    if kind == "truncated":
        path = filled_store(tmp / "jobs.sqlite")
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = path.read_bytes() if path.is_file() else None
    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(path))
    rc, out, err = run_cli(capsys, *SWEEP)
    one_line_error(rc, err, str(path), "NESTEDAE_JOB_STORE")
    if before is not None:
        assert path.read_bytes() == before


def test_sweep_on_a_locked_store_says_so_in_seconds(capsys, cli_env, monkeypatch):
    path = cli_env / "jobs.sqlite"
    JobStore(path)
    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(path))
    monkeypatch.setenv("NESTEDAE_STORE_TIMEOUT", "1")
    with lock_held(path):
        t0 = time.monotonic()
        rc, out, err = run_cli(capsys, *SWEEP)
        assert time.monotonic() - t0 < 15
    one_line_error(rc, err, str(path), "locked by another process", "try again")


def test_sweep_on_a_read_only_store(capsys, cli_env, monkeypatch):
    path = filled_store(cli_env / "jobs.sqlite")
    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(path))
    with read_only_file(path):
        rc, out, err = run_cli(capsys, *SWEEP)
    line = one_line_error(rc, err, str(path))
    assert "read-only" in line or "cannot open" in line


def test_sweep_on_a_full_disk(capsys, cli_env, monkeypatch):
    path = cli_env / "jobs.sqlite"
    JobStore(path)
    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(path))
    simulate_full_disk(monkeypatch)
    rc, out, err = run_cli(capsys, *SWEEP)
    one_line_error(rc, err, str(path), "the disk is full", "free some space")


def test_sweep_on_a_really_full_disk(capsys, cli_env, monkeypatch, tiny_disk):
    path = tiny_disk / "jobs.sqlite"
    JobStore(path)
    fill(tiny_disk)
    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(path))
    rc, out, err = run_cli(capsys, *SWEEP)
    one_line_error(rc, err, str(path), "the disk is full")


@pytest.mark.parametrize("env, needle", [
    ({"NESTEDAE_MAX_RUNNING": "abc"}, "NESTEDAE_MAX_RUNNING='abc'"),
    ({"NESTEDAE_READ_ONLY": "maybe"}, "NESTEDAE_READ_ONLY='maybe'"),
    ({"NESTEDAE_STORE_TIMEOUT": "-1"}, "NESTEDAE_STORE_TIMEOUT='-1'"),
    ({"NESTEDAE_DASK_SCHEDULER": "garbage"}, "NESTEDAE_DASK_SCHEDULER='garbage'"),
])
def test_sweep_with_an_invalid_setting_names_it_at_once(capsys, cli_env, monkeypatch, env, needle):
    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(cli_env / "jobs.sqlite"))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    t0 = time.monotonic()
    rc, out, err = run_cli(capsys, *SWEEP)
    assert time.monotonic() - t0 < 10  # no 20 s wait for a scheduler that is not an address
    one_line_error(rc, err, needle, "correct or unset")
    assert not (cli_env / "jobs.sqlite").exists()


# --------------------------------------------------------------------------- jobs whose worker is lost


def _running(m: JobManager, owner: str, name: str, *, beat_age_s: float) -> str:
    job_id = m.submit("test-sleep", {}, owner=owner, name=name)
    assert m.store.mark_running(job_id, "gone-host:4242")
    with m.store.transaction() as con:
        con.execute("UPDATE jobs SET heartbeat = ?, fraction = 0.4 WHERE id = ?", (time.time() - beat_age_s, job_id))
    return job_id


def sleep_kind(payload: dict, ctx: JobContext) -> dict:
    time.sleep(float(payload.get("s", 0)))
    return {}


register_kind("test-sleep", sleep_kind)


def test_a_job_without_heartbeat_ends_interrupted_and_frees_the_owners_slot(tmp_path):
    m = JobManager(tmp_path / "jobs.sqlite", settings=load_settings({}, max_jobs_per_owner=1, job_stale_s=30),
                   executor=Later(), models_dir=tmp_path / "models")
    lost = _running(m, "ann", "lost", beat_age_s=10)
    assert m.get(lost).status == "running"  # 10 s without heartbeat: not stale yet
    with pytest.raises(LimitError, match="NESTEDAE_MAX_JOBS_PER_OWNER"):
        m.submit("test-sleep", {}, owner="ann", name="next")
    with m.store.transaction() as con:
        con.execute("UPDATE jobs SET heartbeat = ? WHERE id = ?", (time.time() - 31, lost))
    job_id = m.submit("test-sleep", {}, owner="ann", name="next")  # the lost job no longer counts
    rec = m.get(lost)
    assert rec.status == "interrupted" and "stopped answering" in rec.error and "40 %" in rec.error
    assert m.get(job_id).status == "queued"
    assert [j.status for j in m.jobs("ann")] == ["interrupted", "queued"]
    assert m.counts()["running"] == 0


def test_cancel_of_a_lost_job_ends_it_at_once(tmp_path):
    m = JobManager(tmp_path / "jobs.sqlite", settings=load_settings({}, max_jobs_per_owner=5), executor=Later(),
                   models_dir=tmp_path / "models")
    lost = _running(m, "ann", "lost", beat_age_s=LOST_AFTER_S + 5)
    live = _running(m, "ann", "live", beat_age_s=0)
    assert m.cancel(lost, "ann")
    rec = m.get(lost)
    assert rec.status == "cancelled" and rec.finished is not None and "stopped answering" in rec.error
    assert m.cancel(live, "ann")
    rec = m.get(live)
    assert rec.status == "running" and rec.cancel_requested  # a live worker stops it at its next check
    assert not m.cancel(lost, "ann")  # finished now
    with pytest.raises(InputError):
        m.cancel("nope", "ann")


def test_a_running_job_keeps_its_heartbeat_between_progress_events(tmp_path, monkeypatch):
    from nestedae_core.jobs import worker

    monkeypatch.setattr(worker, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(worker._Heartbeat.__init__, "__defaults__", (0.2,))
    m = JobManager(tmp_path / "jobs.sqlite", settings=load_settings({}), executor=Later(), models_dir=tmp_path / "models")
    job_id = m.submit("test-sleep", {"s": 1.5}, owner="ann", name="quiet")
    beats: list[float] = []

    def watch() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rec = m.store.get(job_id)
            if rec.status == "running" and rec.heartbeat:
                beats.append(rec.heartbeat)
            if rec.status == "done":
                return
            time.sleep(0.05)

    import threading

    t = threading.Thread(target=watch)
    t.start()
    run_job(str(m.db_path), job_id)
    t.join()
    assert m.get(job_id).status == "done"
    assert len(set(beats)) >= 3  # beats while the job sent no progress at all
