"""The durable job store: one SQLite file holding jobs, their progress events and saved models' owners.

Embedded (stdlib :mod:`sqlite3`), in WAL mode so that the dashboard reads while
worker processes write; every operation opens a short connection and a short
transaction, so any thread or process may use a :class:`JobStore`.

Tables

* ``jobs``: one row per job: ``id``, ``kind``, ``owner``, ``name``, ``payload``
  (JSON), ``status`` (:data:`STATUSES`), ``cancel_requested``, ``fraction``
  (progress in [0, 1]), ``last_event`` (JSON), ``result`` (JSON), ``error`` (one
  line), ``work_dir`` (the job's private folder), ``bundle`` (a staged model
  bundle), ``saved_model`` (the name it was saved under), ``worker`` (host:pid),
  ``heartbeat``, ``submitted``/``started``/``finished`` (Unix time, s), ``share_key``
  (set by :meth:`~nestedae_core.jobs.manager.JobManager.submit` for a job others may reuse:
  a digest of its kind and payload, never a name; NULL for a user's own runs).
* ``events``: progress events of a job (JSON), in order.
* ``models``: saved model name -> owner (and the job that produced it).

Status changes are conditional (``UPDATE ... WHERE status = ...``), so a worker
that finishes late never overwrites a job that start-up recovery marked
``interrupted`` or a user cancelled.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .store_errors import JobStoreError, check_store_path, store_error

__all__ = [
    "JobStatus",
    "STATUSES",
    "ACTIVE_STATUSES",
    "FINISHED_STATUSES",
    "JobRecord",
    "JobStore",
    "JobStoreError",
    "store_error",
    "check_store_path",
    "DEFAULT_TIMEOUT_S",
    "LOST_AFTER_S",
]

logger = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
#: Every status a job can have.
STATUSES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled", "interrupted")
#: Statuses of a job that has not finished yet.
ACTIVE_STATUSES: frozenset[str] = frozenset({"queued", "running"})
#: Statuses of a finished job.
FINISHED_STATUSES: frozenset[str] = frozenset({"done", "failed", "cancelled", "interrupted"})

#: Seconds an operation waits for another process's lock on the store before it gives up (``NESTEDAE_STORE_TIMEOUT``).
DEFAULT_TIMEOUT_S = 5.0
#: A running job whose worker sent no heartbeat for this long (s) is lost: cancelling it ends it at once.
LOST_AFTER_S = 15.0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    module TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    fraction REAL NOT NULL DEFAULT 0,
    last_event TEXT,
    result TEXT,
    error TEXT,
    work_dir TEXT NOT NULL DEFAULT '',
    bundle TEXT,
    saved_model TEXT,
    worker TEXT,
    heartbeat REAL,
    submitted REAL NOT NULL,
    started REAL,
    finished REAL,
    share_key TEXT
);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner, submitted);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, submitted);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    job_id TEXT,
    saved REAL NOT NULL
);
"""


def _dumps(obj: Any) -> str:
    return json.dumps(obj, allow_nan=True, default=_default)


def _default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class JobRecord:
    """One job as stored (a snapshot; read it again with :meth:`JobStore.get` for news).

    Times are Unix times in seconds; ``fraction`` is the progress in [0, 1].
    """

    id: str
    kind: str
    owner: str
    name: str
    payload: dict[str, Any] = field(repr=False)
    status: str
    cancel_requested: bool
    fraction: float
    last_event: dict[str, Any] | None
    result: Any = field(repr=False)
    error: str | None
    work_dir: str
    bundle: str | None
    saved_model: str | None
    worker: str | None
    heartbeat: float | None
    submitted: float
    started: float | None
    finished: float | None
    module: str = ""
    queue_position: int | None = None
    share_key: str | None = None

    @property
    def is_active(self) -> bool:
        """True while queued or running."""
        return self.status in ACTIVE_STATUSES

    @property
    def elapsed_s(self) -> float:
        """Seconds spent running so far, or until it finished (0 while queued)."""
        if self.started is None:
            return 0.0
        end = self.finished if self.finished is not None else time.time()
        return max(0.0, end - self.started)

    def summary(self) -> dict[str, Any]:
        """Plain description for tables: id, kind, name, status, progress, times, error, saved model."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "progress_percent": round(100.0 * (1.0 if self.status == "done" else self.fraction), 1),
            "queue_position": self.queue_position,
            "submitted": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.submitted)),
            "elapsed_s": round(self.elapsed_s, 1),
            "error": self.error or "",
            "saved_as": self.saved_model or "",
        }


_COLUMNS = ("id", "kind", "owner", "name", "payload", "status", "cancel_requested", "fraction", "last_event", "result",
            "error", "work_dir", "bundle", "saved_model", "worker", "heartbeat", "submitted", "started", "finished", "module",
            "share_key")


def _record(row: Sequence[Any], queue_position: int | None = None) -> JobRecord:
    d = dict(zip(_COLUMNS, row))
    return JobRecord(
        id=d["id"], kind=d["kind"], owner=d["owner"], name=d["name"], payload=_loads(d["payload"]) or {},
        status=d["status"], cancel_requested=bool(d["cancel_requested"]), fraction=float(d["fraction"] or 0.0),
        last_event=_loads(d["last_event"]), result=_loads(d["result"]), error=d["error"], work_dir=d["work_dir"] or "",
        bundle=d["bundle"], saved_model=d["saved_model"], worker=d["worker"], heartbeat=d["heartbeat"],
        submitted=float(d["submitted"]), started=d["started"], finished=d["finished"], module=d["module"] or "",
        queue_position=queue_position, share_key=d["share_key"],
    )


class JobStore:
    """The SQLite job store at ``path`` (created with its tables when missing).

    Every SQLite failure (locked by another process, damaged, read-only, disk full,
    not a file) becomes a :class:`JobStoreError` naming the file and what to do;
    the file is never replaced or repaired.

    Args:
        path: the SQLite file (its folder is created).
        timeout: seconds to wait for another process's lock before giving up.
        stale_s: when set, a ``running`` job whose worker sent no heartbeat for this
            many seconds is lost: :meth:`reap_stale` ends it as ``interrupted`` (the
            job manager calls it when it reads jobs). None: never.

    Raises:
        JobStoreError: the path is not a regular file, its folder cannot be made, or the file cannot be used.
    """

    def __init__(self, path: str | Path, *, timeout: float = DEFAULT_TIMEOUT_S, stale_s: float | None = None) -> None:
        self.path = Path(path)
        self.timeout = float(timeout)
        self.stale_s = None if stale_s is None else float(stale_s)
        self._last_reap = 0.0
        check_store_path(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from ..io_safe import os_error_message

            raise JobStoreError(f"{os_error_message(exc, self.path.parent)} (the folder of the job store); point "
                                "NESTEDAE_JOB_STORE at a file in a folder you can write to", path=self.path,
                                cause="cannot-open") from None
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a store made by an older version up to date (adds the ``share_key`` column and its index)."""
        with self._connect() as con:
            columns = {str(r[1]) for r in con.execute("PRAGMA table_info(jobs)")}
        if "share_key" not in columns:
            with self.transaction() as con:  # checked again under the write lock: another process may have added it
                if "share_key" not in {str(r[1]) for r in con.execute("PRAGMA table_info(jobs)")}:
                    con.execute("ALTER TABLE jobs ADD COLUMN share_key TEXT")
        with self._connect() as con:
            con.execute("CREATE INDEX IF NOT EXISTS jobs_share_key ON jobs(kind, share_key, submitted)")

    # ------------------------------------------------------------------ connections
    def _fault(self, exc: sqlite3.Error) -> JobStoreError | None:
        err = store_error(exc, self.path, timeout=self.timeout)
        if err is not None:
            logger.info("job store %s: %s (%s)", self.path, exc, err.cause)
        return err

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection; any SQLite failure in the block (or in connecting) becomes a :class:`JobStoreError`."""
        try:
            con = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            err = self._fault(exc)
            if err is None:
                raise
            raise err from None
        try:
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            yield con
        except sqlite3.Error as exc:
            err = self._fault(exc)
            if err is None:
                raise
            raise err from None
        finally:
            con.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed when the block ends, rolled back on error.

        Raises:
            JobStoreError: the store is locked, damaged, read-only or its disk is full.
        """
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already (disk full, I/O error)
                    con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # ------------------------------------------------------------------ jobs
    @staticmethod
    def new_id() -> str:
        """A fresh job id (12 hex digits)."""
        return uuid.uuid4().hex[:12]

    def insert(self, con: sqlite3.Connection, *, job_id: str, kind: str, owner: str, name: str, payload: dict[str, Any],
               work_dir: str, module: str = "", share_key: str | None = None) -> None:
        """Add a queued job (inside :meth:`transaction`, after the limit checks); ``share_key`` marks a reusable one."""
        con.execute(
            "INSERT INTO jobs (id, kind, module, owner, name, payload, status, work_dir, submitted, share_key) "
            "VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
            (job_id, kind, module, owner, name, _dumps(payload), work_dir, time.time(), share_key),
        )

    def counts(self, con: sqlite3.Connection | None = None, owner: str | None = None) -> dict[str, int]:
        """Jobs per status (of ``owner``, or all)."""
        out = {s: 0 for s in STATUSES}
        sql = "SELECT status, COUNT(*) FROM jobs" + (" WHERE owner = ?" if owner is not None else "") + " GROUP BY status"
        args = (owner,) if owner is not None else ()
        if con is None:
            with self._connect() as c:
                rows = c.execute(sql, args).fetchall()
        else:
            rows = con.execute(sql, args).fetchall()
        for status, n in rows:
            out[status] = int(n)
        return out

    def get(self, job_id: str) -> JobRecord | None:
        """The job ``job_id``, or None."""
        with self._connect() as con:
            row = con.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            pos = None
            if row[_COLUMNS.index("status")] == "queued":
                pos = int(con.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND submitted <= ?",
                                      (row[_COLUMNS.index("submitted")],)).fetchone()[0])
        return _record(row, pos)

    def list(self, *, owner: str | None = None, kind: str | None = None, name: str | None = None,
             statuses: Sequence[str] | None = None, limit: int | None = None, share_key: str | None = None) -> list[JobRecord]:
        """Jobs in submission order (oldest first), filtered by owner, kind, name, share key and statuses; the latest ``limit``."""
        where, args = [], []
        for col, value in (("owner", owner), ("kind", kind), ("name", name), ("share_key", share_key)):
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        if statuses is not None:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            args.extend(statuses)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM jobs" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY submitted DESC, rowid DESC" + (f" LIMIT {int(limit)}" if limit else "")
        with self._connect() as con:
            rows = con.execute(sql, args).fetchall()
            queued = [r[0] for r in con.execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY submitted, rowid")]
        position = {job_id: i + 1 for i, job_id in enumerate(queued)}
        return [_record(r, position.get(r[0])) for r in reversed(rows)]

    def mark_running(self, job_id: str, worker: str) -> bool:
        """queued -> running (by ``worker``); False when the job is not queued (cancelled, taken, gone)."""
        now = time.time()
        with self.transaction() as con:
            cur = con.execute("UPDATE jobs SET status = 'running', started = ?, heartbeat = ?, worker = ? "
                              "WHERE id = ? AND status = 'queued' AND cancel_requested = 0", (now, now, worker, job_id))
            return cur.rowcount == 1

    def add_events(self, job_id: str, events: Sequence[dict[str, Any]], fraction: float | None = None) -> None:
        """Append progress events (and set the progress fraction and heartbeat) in one transaction."""
        now = time.time()
        with self.transaction() as con:
            start = con.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM events WHERE job_id = ?", (job_id,)).fetchone()[0]
            con.executemany("INSERT INTO events (job_id, seq, data) VALUES (?, ?, ?)",
                            [(job_id, start + i, _dumps(e)) for i, e in enumerate(events)])
            sets, args = ["heartbeat = ?"], [now]
            if events:
                sets.append("last_event = ?")
                args.append(_dumps(events[-1]))
            if fraction is not None and math.isfinite(fraction):
                sets.append("fraction = ?")
                args.append(min(1.0, max(0.0, float(fraction))))
            con.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?", (*args, job_id))

    def events(self, job_id: str, since: int = 0) -> list[dict[str, Any]]:
        """Progress events of a job from position ``since`` on (0 = all)."""
        with self._connect() as con:
            rows = con.execute("SELECT data FROM events WHERE job_id = ? AND seq >= ? ORDER BY seq", (job_id, int(since))).fetchall()
        return [json.loads(r[0]) for r in rows]

    def heartbeat(self, job_id: str) -> None:
        """Record that the job's worker is alive."""
        with self.transaction() as con:
            con.execute("UPDATE jobs SET heartbeat = ? WHERE id = ?", (time.time(), job_id))

    def reap_stale(self, *, force: bool = False) -> list[str]:
        """End the ``running`` jobs whose worker sent no heartbeat for ``stale_s`` seconds; returns their ids.

        Such a job's worker is gone (killed, its machine lost, a Dask worker that
        died): it becomes ``interrupted`` with its last progress kept, or
        ``cancelled`` when its owner had asked it to stop, so it no longer counts
        against the limits. Does nothing when ``stale_s`` is None. Looks at most
        once a second unless ``force``. Workers send a heartbeat every few seconds
        (:data:`nestedae_core.jobs.worker.HEARTBEAT_S`), so a live job is never ended.
        """
        if self.stale_s is None:
            return []
        now_m = time.monotonic()
        if not force and now_m - self._last_reap < 1.0:
            return []
        self._last_reap = now_m
        cutoff = time.time() - self.stale_s
        stale_sql = "status = 'running' AND COALESCE(heartbeat, started, submitted) < ?"
        with self._connect() as con:
            found = con.execute(f"SELECT id FROM jobs WHERE {stale_sql} LIMIT 1", (cutoff,)).fetchone()
        if found is None:
            return []
        with self.transaction() as con:
            rows = con.execute(f"SELECT id, fraction, cancel_requested FROM jobs WHERE {stale_sql}", (cutoff,)).fetchall()
            now = time.time()
            for job_id, fraction, cancel in rows:
                pct = f"{100 * float(fraction or 0):.0f} %"
                if cancel:
                    status, error = "cancelled", f"cancelled; its worker had stopped answering (at {pct})"
                else:
                    status, error = "interrupted", (f"interrupted: its worker stopped answering (no heartbeat for "
                                                    f"{self.stale_s:g} s; killed or its machine lost) at {pct}; train again")
                con.execute("UPDATE jobs SET status = ?, error = ?, finished = ? WHERE id = ? AND status = 'running'",
                            (status, error, now, job_id))
        ids = [str(r[0]) for r in rows]
        if ids:
            logger.warning("jobs without a heartbeat for %g s ended: %s", self.stale_s, ", ".join(ids))
        return ids

    def finish(self, job_id: str, status: str, *, result: Any = None, error: str | None = None, bundle: str | None = None,
               from_statuses: Sequence[str] = ("running",)) -> bool:
        """Set a final status (done/failed/cancelled/interrupted) if the job is still in ``from_statuses``; True if set."""
        if status not in FINISHED_STATUSES:
            raise ValueError(f"not a final status: {status}")
        with self.transaction() as con:
            cur = con.execute(
                f"UPDATE jobs SET status = ?, result = ?, error = ?, bundle = COALESCE(?, bundle), finished = ? "
                f"WHERE id = ? AND status IN ({', '.join('?' for _ in from_statuses)})",
                (status, None if result is None else _dumps(result), error, bundle, time.time(), job_id, *from_statuses),
            )
            return cur.rowcount == 1

    def request_cancel(self, job_id: str) -> str | None:
        """Ask a job to stop; returns its status after the request (None: no such job).

        A queued job becomes ``cancelled`` at once. A running job gets the flag its
        worker polls; when its worker is lost (no heartbeat for :data:`LOST_AFTER_S`
        seconds: killed, or a Dask worker that died) nobody would read the flag, so
        the job becomes ``cancelled`` at once too.
        """
        with self.transaction() as con:
            row = con.execute("SELECT status, COALESCE(heartbeat, started, submitted), fraction FROM jobs WHERE id = ?",
                              (job_id,)).fetchone()
            if row is None:
                return None
            now = time.time()
            if row[0] == "queued":
                con.execute("UPDATE jobs SET status = 'cancelled', cancel_requested = 1, error = 'cancelled before it started', "
                            "finished = ? WHERE id = ?", (now, job_id))
                return "cancelled"
            if row[0] == "running":
                lost_after = LOST_AFTER_S if self.stale_s is None else min(LOST_AFTER_S, self.stale_s)
                if row[1] is not None and now - float(row[1]) > lost_after:
                    con.execute("UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished = ?, error = ? "
                                "WHERE id = ?", (now, f"cancelled; its worker had stopped answering (at "
                                                      f"{100 * float(row[2] or 0):.0f} %)", job_id))
                    return "cancelled"
                con.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            return str(row[0])

    def stop_state(self, job_id: str) -> tuple[str | None, bool]:
        """(status, cancel_requested) of a job, read cheaply (polled by workers)."""
        with self._connect() as con:
            row = con.execute("SELECT status, cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return (None, True) if row is None else (str(row[0]), bool(row[1]))

    def set_saved_model(self, job_id: str, name: str | None) -> None:
        """Record the model name a job's bundle was saved under."""
        with self.transaction() as con:
            con.execute("UPDATE jobs SET saved_model = ? WHERE id = ?", (name, job_id))

    def delete(self, job_ids: Sequence[str]) -> None:
        """Remove jobs and their events."""
        if not job_ids:
            return
        marks = ", ".join("?" for _ in job_ids)
        with self.transaction() as con:
            con.execute(f"DELETE FROM events WHERE job_id IN ({marks})", tuple(job_ids))
            con.execute(f"DELETE FROM jobs WHERE id IN ({marks})", tuple(job_ids))

    # ------------------------------------------------------------------ model owners
    def model_owner(self, name: str) -> str | None:
        """The recorded owner of saved model ``name``, or None."""
        with self._connect() as con:
            row = con.execute("SELECT owner FROM models WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def model_owners(self) -> dict[str, str]:
        """Every saved model name with a recorded owner -> that owner."""
        with self._connect() as con:
            return {str(n): str(o) for n, o in con.execute("SELECT name, owner FROM models")}

    def set_model_owner(self, name: str, owner: str, job_id: str | None = None) -> None:
        """Record (or replace) the owner of saved model ``name``."""
        with self.transaction() as con:
            con.execute("INSERT INTO models (name, owner, job_id, saved) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, job_id = excluded.job_id, saved = excluded.saved",
                        (name, owner, job_id, time.time()))

    def forget_model(self, name: str) -> None:
        """Remove the owner record of saved model ``name``."""
        with self.transaction() as con:
            con.execute("DELETE FROM models WHERE name = ?", (name,))
