"""The job manager: submit jobs to the store and an executor, follow them, cancel, save and delete models.

One :class:`JobManager` per server process (the dashboard keeps one in
``st.cache_resource``); it is thread-safe and holds no job state of its own:
everything lives in the SQLite job store, so a page reload, another session or
a restarted server sees the same jobs.

Example::

    from nestedae_core.jobs import JobManager, train_payload
    from nestedae_core.perovskite.presets import preset

    manager = JobManager()                       # store beside the models dir, local worker processes
    job_id = manager.submit("train", train_payload(preset("synthetic", epochs=50)), owner="me", name="demo")
    job = manager.wait(job_id, timeout=600)
    if job.status == "done":
        manager.save(job_id, "demo", owner="me")
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Protocol

from ..errors import InputError
from .jobstore import ACTIVE_STATUSES, FINISHED_STATUSES, JobRecord, JobStore
from .kinds import get_kind
from .limits import check_counts, check_read_only
from .names import validate_model_name
from .ownership import delete_model, modify_refusal, save_staged
from .recovery import RecoveryReport, job_work_dir, recover
from .settings import JobSettings, job_store_path, load_settings

__all__ = ["Executor", "JobManager", "make_executor", "share_key"]

logger = logging.getLogger(__name__)


class Executor(Protocol):
    """Runs jobs somewhere: ``submit`` returns at once; the job's worker calls :func:`~nestedae_core.jobs.worker.run_job`."""

    def submit(self, db_path: str, job_id: str) -> None: ...

    def shutdown(self) -> None: ...


def share_key(kind: str, payload: dict[str, Any]) -> str:
    """The key of a shared job: a digest of its kind and (JSON) payload, so equal work has one key and no name can alias it.

    Raises:
        InputError: the payload is not plain JSON data.
    """
    try:
        canonical = json.dumps({"kind": str(kind), "payload": json.loads(json.dumps(payload, allow_nan=False))},
                               sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"a job's payload must be plain JSON data ({exc})") from None
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def make_executor(settings: JobSettings) -> Executor:
    """The executor the settings ask for: Dask when ``dask_scheduler`` is set, else local worker processes."""
    if settings.dask_scheduler:
        from .dask_executor import DaskExecutor  # type: ignore[import-not-found]

        return DaskExecutor(settings.dask_scheduler, max_running=settings.max_running)
    from .local_executor import LocalProcessExecutor

    return LocalProcessExecutor(settings.max_running)


class JobManager:
    """Jobs of one store, run by one executor.

    Args:
        db_path: the SQLite job store (default :func:`~nestedae_core.jobs.settings.job_store_path`).
        settings: limits and options (default: read from the environment).
        executor: where jobs run (default :func:`make_executor`).
        models_dir: where saved models go (default :func:`nestedae_core.store.models_dir`, read at each save).
        recover: settle what a previous server left (interrupted jobs, queued jobs, temp folders) now.
    """

    def __init__(self, db_path: str | Path | None = None, *, settings: JobSettings | None = None,
                 executor: Executor | None = None, models_dir: str | Path | None = None, recover: bool = True) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.db_path = Path(db_path) if db_path is not None else job_store_path(self.settings)
        self.store = JobStore(self.db_path, timeout=self.settings.store_timeout, stale_s=self.settings.job_stale_s)
        self.work_root = self.db_path.with_name(self.db_path.stem + "-work")
        self._models_dir = Path(models_dir) if models_dir is not None else None
        self.executor: Executor = executor if executor is not None else make_executor(self.settings)
        self.last_recovery: RecoveryReport | None = None
        if recover:
            self.recover()

    # ------------------------------------------------------------------ places
    @property
    def models_dir(self) -> Path:
        """Where saved models live."""
        if self._models_dir is not None:
            return self._models_dir
        from .. import store

        return store.models_dir()

    # ------------------------------------------------------------------ submit and query
    def submit(self, kind: str, payload: dict[str, Any], *, owner: str, name: str, shared: bool = False) -> str:
        """Queue a job of ``kind`` with a JSON ``payload`` for ``owner``; returns its id at once.

        ``shared``: other users may reuse the job's result; it gets the :func:`share_key` of its kind and
        payload, by which :meth:`find_shared` finds it (its ``name`` is only a label, never a lookup key).
        A user's own runs are not shared.

        Raises:
            LimitError: read-only mode, or a limit refuses it (the message names the limit and its value).
            InputError: unknown kind, empty owner, invalid name, payload not JSON.
        """
        check_read_only(self.settings, "training")
        owner = str(owner or "").strip()
        if not owner:
            raise InputError("a job needs an owner (the user's identity)")
        clean = validate_model_name(name)
        k = get_kind(kind)
        try:
            payload = json.loads(json.dumps(payload, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InputError(f"a job's payload must be plain JSON data ({exc})") from None
        if not isinstance(payload, dict):
            raise InputError("a job's payload must be a JSON object")
        if k.check is not None:
            k.check(payload, self.settings)
        job_id = JobStore.new_id()
        work_dir = self.work_root / job_id
        key = share_key(kind, payload) if shared else None
        self.store.reap_stale(force=True)  # a job whose worker is gone no longer counts against the limits
        with self.store.transaction() as con:
            check_counts(con, owner, self.settings)
            self.store.insert(con, job_id=job_id, kind=kind, owner=owner, name=clean, payload=payload,
                              work_dir=str(work_dir), module=k.module, share_key=key)
        work_dir.mkdir(parents=True, exist_ok=True)
        self._prune(owner)
        self.executor.submit(str(self.db_path), job_id)
        logger.info("job %s (%s %s, owner %s) submitted", job_id, kind, clean, owner)
        return job_id

    def get(self, job_id: str) -> JobRecord | None:
        """The job ``job_id`` as stored now, or None."""
        self.store.reap_stale()
        return self.store.get(job_id)

    def jobs(self, owner: str | None = None, *, kind: str | None = None) -> list[JobRecord]:
        """Jobs in submission order, all or those of ``owner`` (and ``kind``)."""
        self.store.reap_stale()
        return self.store.list(owner=owner, kind=kind)

    def find(self, kind: str, name: str, *, owner: str,
             statuses: tuple[str, ...] = ("queued", "running", "done")) -> JobRecord | None:
        """The latest job of ``owner`` of ``kind`` named ``name`` in one of ``statuses``, or None.

        Only ``owner``'s own jobs: names are chosen by users, so a name never finds another user's job
        (a job meant for everyone is submitted ``shared`` and found with :meth:`find_shared`).
        """
        owner = str(owner or "").strip()
        if not owner:
            raise InputError("finding a job by name needs its owner (the user's identity)")
        found = self.store.list(owner=owner, kind=kind, name=name, statuses=statuses, limit=1)
        return found[-1] if found else None

    def find_shared(self, kind: str, payload: dict[str, Any], *,
                    statuses: tuple[str, ...] = ("queued", "running", "done")) -> JobRecord | None:
        """The latest job submitted ``shared`` with this ``kind`` and ``payload`` (any owner), in one of ``statuses``, or None.

        Matched by :func:`share_key` (a digest of kind and payload), never by name: no user-chosen name can alias it.
        """
        found = self.store.list(kind=kind, share_key=share_key(kind, payload), statuses=statuses, limit=1)
        return found[-1] if found else None

    def events(self, job_id: str, since: int = 0) -> list[dict[str, Any]]:
        """The job's progress events from position ``since`` on."""
        return self.store.events(job_id, since)

    def counts(self) -> dict[str, int]:
        """Jobs per status, all owners."""
        self.store.reap_stale()
        return self.store.counts()

    # ------------------------------------------------------------------ control
    def cancel(self, job_id: str, owner: str) -> bool:
        """Cancel a job of ``owner`` (or any job, for an admin): queued ones at once, running ones at their next epoch.

        Returns False when it had already finished. Raises InputError for an unknown job or someone else's.
        """
        rec = self.store.get(job_id)
        if rec is None:
            raise InputError(f"no job '{job_id}'")
        if rec.owner != owner and not self.settings.is_admin(owner):
            raise InputError("this job belongs to another user; only its owner may cancel it")
        if rec.status in FINISHED_STATUSES:
            return False
        self.store.request_cancel(job_id)
        return True

    def wait(self, job_id: str, timeout: float | None = None, *, poll_s: float = 0.1) -> JobRecord:
        """Block until the job has finished or ``timeout`` seconds passed; returns it as stored then."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            rec = self.get(job_id)  # also ends the job if its worker is gone (no heartbeat)
            if rec is None:
                raise InputError(f"no job '{job_id}'")
            if rec.status not in ACTIVE_STATUSES or (deadline is not None and time.monotonic() >= deadline):
                return rec
            time.sleep(poll_s)

    # ------------------------------------------------------------------ models
    def save(self, job_id: str, name: str | None = None, *, owner: str, overwrite: bool = False) -> Path:
        """Save finished job ``job_id``'s model as ``models_dir/<name>`` (default: the job's name), owned by ``owner``.

        Raises:
            InputError: read-only mode, unknown job, not done, not yours, invalid name.
            PermissionRefused: the name is another user's model.
            BundleError: the name exists and ``overwrite`` is false, or the write failed.
        """
        rec = self.store.get(job_id)
        if rec is None:
            raise InputError(f"no training job '{job_id}' (it may have been removed; train again)")
        return save_staged(self.store, self.settings, rec, name if name is not None else rec.name, identity=owner,
                           models_dir=self.models_dir, overwrite=overwrite)

    def delete_model(self, name: str, *, owner: str) -> None:
        """Delete saved model ``name`` (its owner or an admin only; see :mod:`.ownership`)."""
        delete_model(self.store, self.settings, name, identity=owner, models_dir=self.models_dir)

    def model_owner(self, name: str) -> str | None:
        """The recorded owner of saved model ``name``, or None."""
        return self.store.model_owner(name)

    def may_modify(self, name: str, owner: str) -> str | None:
        """None when ``owner`` may overwrite or delete saved model ``name``; else the reason why not."""
        if self.settings.read_only:
            return "this server is a read-only demo (NESTEDAE_READ_ONLY=1)"
        return modify_refusal(self.store, self.settings, self.models_dir / name, owner)

    # ------------------------------------------------------------------ lifecycle
    def recover(self) -> RecoveryReport:
        """Settle what a stopped server left (see :mod:`.recovery`) and hand queued jobs to the executor."""
        try:
            models = self.models_dir
        except Exception:  # an unusable models dir must not stop the jobs
            models = None
        report = recover(self.store, self.work_root, models)
        for job_id in report.requeued:
            self.executor.submit(str(self.db_path), job_id)
        self.last_recovery = report
        return report

    def shutdown(self) -> None:
        """Stop the executor: running jobs end ``interrupted``; queued ones stay queued for the next start."""
        self.executor.shutdown()

    def _prune(self, owner: str) -> None:
        """Forget ``owner``'s oldest finished jobs beyond ``keep_finished`` (with their work folders)."""
        finished = self.store.list(owner=owner, statuses=tuple(FINISHED_STATUSES))
        old = finished[: max(0, len(finished) - self.settings.keep_finished)]
        if not old:
            return
        self.store.delete([r.id for r in old])
        for r in old:
            folder = job_work_dir(r, self.work_root)
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
