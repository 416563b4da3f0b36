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
Dask future, is the record of what happened. A task is not retried when its
worker dies (``retries=0``): the job stays "running" in the store until the
store's start-up recovery marks it interrupted.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from ..errors import InputError

__all__ = ["DaskExecutor"]

logger = logging.getLogger(__name__)


def _run_job_task(db_path: str, job_id: str) -> None:
    """The Dask task: run one job on the worker (imports the job runner there)."""
    from .worker import run_job

    run_job(db_path, job_id)


class DaskExecutor:
    """Executor that runs each job as a task on a Dask distributed cluster.

    Args:
        address: the scheduler's address (``tcp://host:8786``), or a ready
            ``distributed.Client`` (or an object with a ``scheduler_address``, e.g. a
            ``LocalCluster``) to reuse.
        timeout: seconds to wait for the scheduler when connecting.

    Raises:
        InputError: ``distributed`` is not installed or the scheduler cannot be reached
            (the message names the address and the setting).
    """

    def __init__(self, address: Any, *, timeout: float = 10.0) -> None:
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
            try:
                self._client = Client(text, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise InputError(
                    f"cannot reach the Dask scheduler at {text} ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
                    "start it (dask scheduler) or correct NESTEDAE_DASK_SCHEDULER"
                ) from None
        self._lock = threading.Lock()
        self._futures: dict[str, Any] = {}
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
        """Hand job ``job_id`` of the store ``db_path`` to the cluster; returns at once."""
        from distributed import fire_and_forget

        future = self._client.submit(_run_job_task, str(db_path), str(job_id), key=f"nestedae-job-{job_id}", pure=False, retries=0)
        fire_and_forget(future)
        with self._lock:
            self._futures[str(job_id)] = future
        future.add_done_callback(lambda f, jid=str(job_id): self._finished(jid, f))
        logger.info("job %s sent to the Dask scheduler %s", job_id, self.address)

    def _finished(self, job_id: str, future: Any) -> None:
        with self._lock:
            self._futures.pop(job_id, None)
        try:
            status = future.status
            if status == "error":
                logger.error("Dask task of job %s failed outside the job runner: %s", job_id, future.exception())
        except Exception:  # noqa: BLE001 - a callback must never raise
            logger.debug("could not read the state of job %s's Dask task", job_id, exc_info=True)

    def pending(self) -> list[str]:
        """Ids of the jobs whose Dask task has not finished yet (as this client knows)."""
        with self._lock:
            return list(self._futures)

    def shutdown(self) -> None:
        """Disconnect from the scheduler. Jobs already sent keep running on the cluster."""
        with self._lock:
            self._futures.clear()
        if self._own_client:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - closing a dead connection is not an error
                logger.debug("closing the Dask client failed", exc_info=True)
