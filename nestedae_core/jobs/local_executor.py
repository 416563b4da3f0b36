"""Local worker processes: run jobs outside the web server, at most ``max_running`` at once.

Each job runs in a fresh Python process (``python -m
nestedae_core.jobs.local_executor DB JOB PARENT_PID``: no state inherited from
the server, no threads, no torch pools, no Streamlit), which calls
:func:`nestedae_core.jobs.worker.run_job`. Not multiprocessing's ``spawn``:
it re-imports the parent's ``__main__`` in the child, and inside a Streamlit
server ``__main__`` is the dashboard script, which would run again in every
worker. A small
dispatcher thread in the server starts the next queued job when a slot frees
up and notices worker processes that died (killed, out of memory): their job
becomes ``failed`` with the exit code.

Stopping: SIGTERM to a worker makes its job stop at the next epoch and end as
``interrupted``; a worker whose server disappears (SIGKILL) does the same by
itself. :meth:`LocalProcessExecutor.shutdown` terminates the running workers
(their jobs become ``interrupted``) and leaves queued jobs queued in the store,
where start-up recovery finds them.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any

from ..errors import NestedAEError
from .jobstore import JobStore

__all__ = ["LocalProcessExecutor"]

logger = logging.getLogger(__name__)


def _worker_main(db_path: str, job_id: str, parent_pid: int) -> None:
    """Entry of a worker process: stop gracefully on SIGTERM or when the server is gone, run the job."""
    from . import worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(process)d %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: worker.request_interrupt("the worker was terminated (server shutting down)"))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the server's terminal: the server's shutdown stops us
    worker.watch_parent(parent_pid)
    worker.run_job(db_path, job_id)


class _WorkerProcess:
    """A worker process (``subprocess.Popen`` of this module) with the few methods the executor uses."""

    def __init__(self, db_path: str, job_id: str, parent_pid: int) -> None:
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])  # so that the child imports this very package
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        self._popen = subprocess.Popen(
            [sys.executable, "-m", "nestedae_core.jobs.local_executor", db_path, job_id, str(parent_pid)],
            env=env, stdin=subprocess.DEVNULL, close_fds=True,
        )

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def exitcode(self) -> int | None:
        """The exit code, negative for a signal (as ``multiprocessing`` reports it); None while running."""
        return self._popen.poll()

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def terminate(self) -> None:
        if self.is_alive():
            self._popen.terminate()

    def kill(self) -> None:
        if self.is_alive():
            self._popen.kill()


class LocalProcessExecutor:
    """Runs jobs in spawned worker processes on this machine (the executor protocol: submit, shutdown).

    Args:
        max_running: worker processes at once (>= 1); further jobs wait in order.
        poll_s: how often the dispatcher looks at its workers (s).
    """

    def __init__(self, max_running: int = 1, *, poll_s: float = 0.2) -> None:
        self.max_running = max(1, int(max_running))
        self.poll_s = float(poll_s)
        self._queue: deque[tuple[str, str]] = deque()
        self._running: dict[str, tuple[Any, str]] = {}
        self._lock = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ protocol
    def submit(self, db_path: str, job_id: str) -> None:
        """Queue job ``job_id`` of the store at ``db_path``; returns at once."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor is shut down")
            self._queue.append((str(db_path), str(job_id)))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="nestedae-job-dispatcher", daemon=True)
                self._thread.start()
            self._lock.notify_all()

    def shutdown(self, timeout: float = 15.0) -> None:
        """Terminate running workers (their jobs end ``interrupted``); queued jobs stay queued in the store."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            procs = list(self._running.items())
            self._lock.notify_all()
        for _, (proc, _) in procs:
            if proc.is_alive():
                proc.terminate()
        for job_id, (proc, db_path) in procs:
            proc.join(timeout)
            if proc.is_alive():
                logger.warning("worker of job %s did not stop in %.0f s; killing it", job_id, timeout)
                proc.kill()
                proc.join(5)
            self._settle(db_path, job_id, proc.exitcode, shutting_down=True)
        with self._lock:
            self._running.clear()

    # ------------------------------------------------------------------ state
    @property
    def running(self) -> list[str]:
        """Ids of the jobs whose worker process is alive."""
        with self._lock:
            return list(self._running)

    def worker_pids(self) -> dict[str, int]:
        """Job id -> worker process id."""
        with self._lock:
            return {j: p.pid for j, (p, _) in self._running.items() if p.pid is not None}

    # ------------------------------------------------------------------ internals
    def _settle(self, db_path: str, job_id: str, exitcode: int | None, *, shutting_down: bool = False) -> None:
        """A worker ended: if its job is still queued or running, it died without a word.

        During a shutdown a job still queued stays queued (the next start runs it) and a
        running one becomes ``interrupted``; otherwise the job ``failed``.
        """
        try:
            store = JobStore(db_path)
            rec = store.get(job_id)
        except NestedAEError as exc:  # the store is locked, damaged, ...: one line in the log
            logger.error("cannot read job %s after its worker ended: %s", job_id, exc)
            return
        except Exception:
            logger.exception("cannot read job %s after its worker ended", job_id)
            return
        if rec is None or not rec.is_active:
            return
        try:
            self._settle_record(store, rec, exitcode, shutting_down=shutting_down)
        except NestedAEError as exc:  # the dispatcher thread must survive a store that cannot be written
            logger.error("cannot record the end of job %s: %s", job_id, exc)
        except Exception:  # noqa: BLE001
            logger.exception("cannot record the end of job %s", job_id)

    def _settle_record(self, store: JobStore, rec: Any, exitcode: int | None, *, shutting_down: bool) -> None:
        """Record how a worker ended for its still-active job ``rec`` (see :meth:`_settle`)."""
        job_id = rec.id
        if shutting_down:
            if rec.status == "running":
                store.finish(job_id, "interrupted", error=f"interrupted: the server shut down (at {100 * rec.fraction:.0f} %)")
            return
        if exitcode is not None and exitcode < 0:
            what = f"was killed by signal {-exitcode}" + (" (perhaps out of memory)" if -exitcode == signal.SIGKILL else "")
        else:
            what = f"stopped with exit code {exitcode}"
        store.finish(job_id, "failed", error=f"the worker process {what}; see the server log, then train again "
                                              "(a smaller model if it ran out of memory)", from_statuses=("queued", "running"))
        logger.warning("worker of job %s %s", job_id, what)

    def _loop(self) -> None:
        while True:
            ended: list[tuple[str, Any, str]] = []
            with self._lock:
                if self._closed:
                    return
                for job_id, (proc, db_path) in list(self._running.items()):
                    if not proc.is_alive():
                        ended.append((job_id, proc, db_path))
                        del self._running[job_id]
                while self._queue and len(self._running) < self.max_running:
                    db_path, job_id = self._queue.popleft()
                    try:
                        proc = _WorkerProcess(db_path, job_id, os.getpid())
                    except Exception as exc:
                        logger.exception("cannot start a worker process for job %s", job_id)
                        try:
                            JobStore(db_path).finish(job_id, "failed", error=f"cannot start a worker process ({exc})",
                                                     from_statuses=("queued",))
                        except Exception:  # noqa: BLE001 - the dispatcher thread must survive a broken store
                            logger.exception("cannot record the failure of job %s", job_id)
                        continue
                    self._running[job_id] = (proc, db_path)
                idle = not self._running and not self._queue
            for job_id, proc, db_path in ended:
                proc.join(1)
                self._settle(db_path, job_id, proc.exitcode)
            with self._lock:
                if self._closed:
                    return
                self._lock.wait(None if idle else self.poll_s)


if __name__ == "__main__":  # a worker process: python -m nestedae_core.jobs.local_executor DB JOB PARENT_PID
    _worker_main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
