"""The worker entry: run one job of the store in the calling process.

:func:`run_job` is what every executor calls (a local worker process, a Dask
worker): it claims a queued job (``queued -> running``), runs its kind's
function with a :class:`~nestedae_core.jobs.kinds.JobContext`, and writes the
outcome back:

* ``done`` with the kind's result;
* ``cancelled`` when its owner cancelled it;
* ``interrupted`` when the worker was told to stop (:func:`request_interrupt`,
  e.g. on SIGTERM, or its parent server died);
* ``failed`` with a one-line error (:class:`~nestedae_core.errors.NestedAEError`
  messages as they are; anything else logged with its traceback and summarised).

Torch and BLAS use ``settings.worker_threads`` CPU threads in the job.

While the job runs, a background thread writes its heartbeat every
:data:`HEARTBEAT_S` seconds (also during a long epoch), so that a server can
tell a live job from one whose worker is gone (killed, or a Dask worker that
died): the job manager ends a job without a heartbeat for
``NESTEDAE_JOB_STALE_S`` seconds as ``interrupted``. The worker's clock and the
server's must agree (NTP) to well within that time.
"""
from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
from pathlib import Path

from ..errors import NestedAEError
from .jobstore import JobStore

__all__ = ["run_job", "request_interrupt", "interrupt_reason", "one_line", "HEARTBEAT_S", "WORKER_STORE_TIMEOUT_S"]

logger = logging.getLogger(__name__)

#: Seconds between two heartbeats of a running job.
HEARTBEAT_S = 5.0
#: Seconds a worker waits for the store's lock (longer than the server's: a worker is not interactive).
WORKER_STORE_TIMEOUT_S = 30.0

_INTERRUPT = threading.Event()
_REASON: list[str] = []
_PARENT: list[int] = []


def request_interrupt(reason: str = "the worker was asked to stop") -> None:
    """Make the running job of this process stop at its next check and end as ``interrupted``."""
    if not _REASON:
        _REASON.append(reason)
    _INTERRUPT.set()


def watch_parent(pid: int) -> None:
    """Interrupt the job when the process ``pid`` (the server that started this worker) is gone."""
    _PARENT[:] = [int(pid)]


def interrupt_reason() -> str | None:
    """Why this process was asked to stop, or None."""
    if _INTERRUPT.is_set():
        return _REASON[0] if _REASON else "the worker was asked to stop"
    if _PARENT and os.getppid() != _PARENT[0]:
        request_interrupt("the server stopped while the job ran")
        return _REASON[0]
    return None


def one_line(text: object, limit: int = 400) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class _Heartbeat:
    """A daemon thread that records the job's heartbeat every ``every`` seconds until stopped."""

    def __init__(self, store: JobStore, job_id: str, every: float = HEARTBEAT_S) -> None:
        self._store = store
        self._job_id = job_id
        self._every = float(every)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"nestedae-heartbeat-{job_id}", daemon=True)

    def start(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * self._every)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._store.heartbeat(self._job_id)
            except Exception as exc:  # noqa: BLE001 - a missed heartbeat must never stop the job
                logger.warning("job %s: heartbeat not written (%s)", self._job_id, exc)


def run_job(db_path: str, job_id: str) -> None:
    """Run job ``job_id`` of the store at ``db_path`` in this process (returns when it has finished).

    Does nothing when the job is not queued (cancelled meanwhile, or run by another worker).
    """
    from ..threads import limit_cpu_threads
    from ..train.progress import TrainingCancelled
    from .kinds import JobContext, get_kind
    from .settings import load_settings

    store = JobStore(db_path, timeout=WORKER_STORE_TIMEOUT_S)
    rec = store.get(job_id)
    if rec is None:
        logger.warning("job %s is not in %s", job_id, db_path)
        return
    try:
        settings = load_settings()
    except NestedAEError as exc:  # this worker's environment is wrong: the job fails with the reason, never hangs
        logger.error("job %s: %s", job_id, exc)
        store.finish(job_id, "failed", error=one_line(f"the worker's settings are invalid: {exc}"), from_statuses=("queued",))
        return
    if not store.mark_running(job_id, f"{socket.gethostname()}:{os.getpid()}"):
        logger.info("job %s is %s; not running it", job_id, rec.status)
        return
    work_dir = Path(rec.work_dir) if rec.work_dir else Path(db_path).with_name(Path(db_path).stem + "-work") / job_id
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from ..io_safe import os_error_message

        store.finish(job_id, "failed", error=one_line(f"{os_error_message(exc, work_dir)} (the job's work folder)"))
        return
    ctx = JobContext(store, job_id, rec.owner, work_dir, threads=settings.worker_threads, interrupt_check=interrupt_reason)
    result = None
    error: str | None = None
    beat = _Heartbeat(store, job_id).start()
    try:
        if rec.module:
            importlib.import_module(rec.module)
        kind = get_kind(rec.kind)
        with limit_cpu_threads(settings.worker_threads):
            result = kind.fn(rec.payload, ctx)
        status = "done"
    except TrainingCancelled as exc:
        if ctx.interrupted:
            status, error = "interrupted", f"interrupted: {ctx.interrupted}"
        else:
            status, error = "cancelled", one_line(exc) or "cancelled"
    except MemoryError:
        status, error = "failed", "the job ran out of memory; choose a smaller model (fewer or narrower hidden layers) or fewer folds"
    except NestedAEError as exc:
        status, error = "failed", one_line(exc)
    except Exception as exc:  # a bug: the traceback goes to the log, the job gets one line
        logger.exception("job %s (%s) failed unexpectedly", job_id, rec.kind)
        status, error = "failed", one_line(f"unexpected error ({type(exc).__name__}: {exc}); details are in the worker log")
    finally:
        beat.stop()
    try:
        ctx.flush()
    except Exception:  # the outcome matters more than the last events
        logger.exception("job %s: could not write its last progress events", job_id)
    bundle = (result or {}).get("bundle") if isinstance(result, dict) else None
    try:
        settled = store.finish(job_id, status, result=result, error=error, bundle=bundle)
    except NestedAEError as exc:  # the store cannot be written (disk full, locked, damaged): say so in the log
        logger.error("job %s ended as %s but its outcome could not be recorded: %s", job_id, status, exc)
        return
    if not settled:
        logger.info("job %s ended as %s but the store had already settled it", job_id, status)
    logger.info("job %s finished: %s%s", job_id, status, f" ({error})" if error else "")
