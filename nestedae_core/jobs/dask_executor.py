"""Run jobs on a Dask distributed cluster (an executor of :mod:`nestedae_core.jobs`).

:class:`DaskExecutor` implements the job executor protocol (``submit(db_path,
job_id)`` returns at once, ``shutdown()``) on a ``dask.distributed.Client``
connected to the scheduler named by the setting ``NESTEDAE_DASK_SCHEDULER``
(e.g. ``tcp://10.0.0.5:8786``). Each job becomes one Dask task that calls
:func:`nestedae_core.jobs.worker.run_job` on a Dask worker; that function reads the
job from the job store and writes its status, progress events and result back,
so the dashboard and the ``nestedae`` command see a Dask-run job exactly as a
local one (cancelling works the same way: the job polls the store).
Dask does the scheduling; this module only hands it the jobs.

What the workers need:

* ``nestedae_core`` installed (same version as the server);
* the **job store** file and the **models folder** at the same paths as the
  server (a shared file system such as NFS: the task receives the store's path,
  and a job's staged bundle is written under the store's folder);
* for a sweep shared by several machines, the Optuna study in a server database
  (``nestedae sweep --storage postgresql://user@host/db``) rather than the
  SQLite file, which must not be shared over a network file system.

Tasks are submitted with ``fire_and_forget``: the cluster runs a job even if
this client disconnects (e.g. the web server restarts); the job store, not the
Dask future, is the record of what happened.

As with local worker processes:

* at most ``max_running`` (``NESTEDAE_MAX_RUNNING``) jobs of this server are
  sent to the cluster at once; the others wait, ``queued``, in order (a job sent
  by a server that has since restarted is not counted);
* a job whose worker dies (killed, out of memory, its machine lost) is not run
  again: its heartbeat stops, and the job manager ends it as ``interrupted``
  once it has had no heartbeat for ``NESTEDAE_JOB_STALE_S`` seconds (60); a
  cancel of such a job ends it at once; a task the cluster gives up on
  (``KilledWorker``) or drops ends its job as ``failed`` at once;
* cancelling a running job is seen by its worker at its next check (the job
  polls the store).

The Dask workers' clocks must agree with the server's (NTP) to well within
``NESTEDAE_JOB_STALE_S``.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from ..errors import InputError, NestedAEError

__all__ = ["DaskExecutor"]

logger = logging.getLogger(__name__)


def _run_job_task(db_path: str, job_id: str) -> None:
    """The Dask task: run one job on the worker (imports the job runner there)."""
    from .worker import run_job

    run_job(db_path, job_id)


def _short(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:200]


def _connect(address: str, timeout: float) -> Any:
    """A ``distributed.Client`` for ``address``; :class:`InputError` (one line) when it cannot be reached.

    A client whose connection failed is closed at once: left alone, its finaliser
    waits twice the timeout at exit and prints a traceback.
    """
    from distributed import Client

    client = Client.__new__(Client)
    try:
        client.__init__(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError, CommClosedError...: one message
        try:
            client.close(timeout=1)
        except Exception:  # noqa: BLE001 - it never connected
            logger.debug("closing the failed Dask client", exc_info=True)
        try:
            client.status = "closed"
        except Exception:  # noqa: BLE001
            pass
        raise InputError(
            f"cannot reach the Dask scheduler at {address} ({_short(exc)}); start it (dask scheduler) or correct "
            "NESTEDAE_DASK_SCHEDULER (e.g. tcp://10.0.0.5:8786), or leave it empty to run jobs in local worker processes"
        ) from None
    return client


class DaskExecutor:
    """Executor that runs each job as a task on a Dask distributed cluster.

    Args:
        address: the scheduler's address (``tcp://host:8786``), or a ready
            ``distributed.Client`` (or an object with a ``scheduler_address``, e.g. a
            ``LocalCluster``) to reuse.
        timeout: seconds to wait for the scheduler when connecting.
        max_running: jobs sent to the cluster at once (None: no limit); the others wait in order.

    Raises:
        InputError: ``distributed`` is not installed or the scheduler cannot be reached
            (the message names the address and the setting).
    """

    def __init__(self, address: Any, *, timeout: float = 5.0, max_running: int | None = None) -> None:
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - distributed is a dependency
            raise InputError("the Dask executor needs the 'distributed' package: pip install 'dask[distributed]'") from None
        self._own_client = True
        if isinstance(address, Client):
            self._client = address
            self._own_client = False
        else:
            target = getattr(address, "scheduler_address", address)
            text = str(target or "").strip()
            if not text:
                raise InputError("no Dask scheduler address given; set NESTEDAE_DASK_SCHEDULER to e.g. tcp://host:8786, or leave it empty to run jobs on local worker processes")
            self._client = _connect(text, float(timeout))
        self.max_running = None if max_running is None else max(1, int(max_running))
        self._lock = threading.Lock()
        self._futures: dict[str, Any] = {}
        self._db: dict[str, str] = {}
        self._waiting: deque[tuple[str, str]] = deque()
        self._closed = False
        logger.info("Dask executor connected to %s", self.address)

    @property
    def address(self) -> str:
        """The scheduler's address."""
        return str(self._client.scheduler.address)

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` in use."""
        return self._client

    def submit(self, db_path: str, job_id: str) -> None:
        """Hand job ``job_id`` of the store ``db_path`` to the cluster (now, or when a slot frees); returns at once."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor is shut down")
            self._waiting.append((str(db_path), str(job_id)))
        self._dispatch()

    def _dispatch(self) -> None:
        """Send waiting jobs to the cluster while fewer than ``max_running`` are there."""
        from distributed import fire_and_forget

        while True:
            with self._lock:
                if self._closed or not self._waiting:
                    return
                if self.max_running is not None and len(self._futures) >= self.max_running:
                    return
                db_path, job_id = self._waiting.popleft()
                self._futures[job_id] = None  # the slot is taken while the task is sent
                self._db[job_id] = db_path
            try:
                future = self._client.submit(_run_job_task, db_path, job_id, key=f"nestedae-job-{job_id}", pure=False, retries=0)
                fire_and_forget(future)
            except Exception as exc:  # noqa: BLE001 - the scheduler went away: the job fails with the reason
                with self._lock:
                    self._futures.pop(job_id, None)
                    self._db.pop(job_id, None)
                logger.exception("cannot send job %s to the Dask scheduler", job_id)
                self._settle(db_path, job_id, f"could not be sent to the Dask scheduler at {self.address} ({_short(exc)}); "
                                               "check the cluster, then try again", ("queued",))
                continue
            with self._lock:
                self._futures[job_id] = future
            future.add_done_callback(lambda f, jid=job_id: self._finished(jid, f))
            logger.info("job %s sent to the Dask scheduler %s", job_id, self.address)

    @staticmethod
    def _settle(db_path: str, job_id: str, error: str, from_statuses: tuple[str, ...]) -> None:
        """End a job the cluster could not run as ``failed`` (if it is still in ``from_statuses``)."""
        from .jobstore import JobStore

        try:
            JobStore(db_path).finish(job_id, "failed", error=error, from_statuses=from_statuses)
        except NestedAEError as exc:
            logger.error("job %s: could not record its failure (%s)", job_id, exc)

    def _finished(self, job_id: str, future: Any) -> None:
        """A job's task ended (a callback thread of ``distributed``): free its slot, settle a job the cluster lost."""
        with self._lock:
            self._futures.pop(job_id, None)
            db_path = self._db.pop(job_id, None)
            closed = self._closed
        try:
            status = str(future.status)
            if not closed and db_path is not None and status in ("error", "cancelled", "lost"):
                if status == "error":
                    exc = future.exception()
                    logger.error("Dask task of job %s failed outside the job runner: %s", job_id, exc)
                    what = f"its Dask task failed ({_short(exc)})"
                else:
                    logger.error("Dask task of job %s was %s by the cluster", job_id, status)
                    what = f"the Dask cluster dropped its task ({status}; did the scheduler restart?)"
                self._settle(db_path, job_id, f"{what}; see the Dask worker logs, then try again (a smaller model if a "
                                              "worker ran out of memory)", ("queued", "running"))
        except Exception:  # noqa: BLE001 - a callback must never raise
            logger.debug("could not read the state of job %s's Dask task", job_id, exc_info=True)
        if not closed:
            try:
                self._dispatch()
            except Exception:  # noqa: BLE001 - a callback must never raise
                logger.exception("could not send the next job to the Dask scheduler")

    def pending(self) -> list[str]:
        """Ids of the jobs sent to the cluster whose task has not finished yet, then those waiting here."""
        with self._lock:
            return list(self._futures) + [j for _, j in self._waiting]

    def shutdown(self) -> None:
        """Disconnect from the scheduler. Jobs already sent keep running on the cluster; waiting ones stay queued."""
        with self._lock:
            self._closed = True
            self._futures.clear()
            self._db.clear()
            self._waiting.clear()
        if self._own_client:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - closing a dead connection is not an error
                logger.debug("closing the Dask client failed", exc_info=True)
