"""Start-up recovery: settle what a stopped server left behind.

When a job manager starts on an existing store:

* a job still ``running`` whose worker is gone (its process is not alive on this
  machine, or its heartbeat is older than ``stale_s``) becomes ``interrupted``,
  keeping its last progress;
* ``queued`` jobs are handed to the executor again (in submission order);
* the work folders of jobs that did not finish well (interrupted, failed,
  cancelled) are removed, and so are the hidden temporary folders of
  interrupted saves and deletes in the models dir
  (:func:`nestedae_core.store.clean_stale_temp`).

Only what the job system created and recorded is ever removed: a job's own work
folder (``<work root>/<job id>``, the path the store records for it). Anything
else in the work root, such as a user's files in a folder that happens to be
named ``<store name>-work``, is left alone.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from .jobstore import JobRecord, JobStore

__all__ = ["RecoveryReport", "recover", "worker_alive", "job_work_dir"]

logger = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    """What :func:`recover` did: jobs marked interrupted, jobs re-queued, folders removed."""

    interrupted: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)


def worker_alive(worker: str | None, heartbeat: float | None, stale_s: float) -> bool:
    """Whether the worker ``host:pid`` of a running job may still be working.

    On this machine the process is checked; elsewhere only the heartbeat (fresh
    within ``stale_s`` seconds) tells.
    """
    if not worker or heartbeat is None:
        return False
    host, _, pid = worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except OSError:
            pass
        return time.time() - heartbeat < stale_s
    return time.time() - heartbeat < stale_s


def job_work_dir(rec: JobRecord, work_root: Path) -> Path | None:
    """The work folder the job system made for job ``rec`` (``<work_root>/<job id>``, as recorded), or None.

    Only such a folder may ever be removed: a recorded path elsewhere (an edited store)
    or anything else in ``work_root`` (a user's files) is never touched.
    """
    if not rec.work_dir:
        return None
    folder = Path(rec.work_dir)
    try:
        if folder.name != rec.id or folder.parent.resolve() != work_root.resolve() or folder.is_symlink():
            return None
    except (OSError, RuntimeError):
        return None
    return folder


def recover(store: JobStore, work_root: Path, models_dir: Path | None, *, stale_s: float = 120.0) -> RecoveryReport:
    """Settle a store after a server stop (see the module docstring); returns what was done.

    The caller submits ``report.requeued`` to its executor.
    """
    report = RecoveryReport()
    for rec in store.list(statuses=("running",)):
        if worker_alive(rec.worker, rec.heartbeat, stale_s):
            continue
        pct = f"{100 * rec.fraction:.0f} %"
        if store.finish(rec.id, "interrupted", error=f"interrupted: the server stopped while it ran (at {pct})"):
            report.interrupted.append(rec.id)
    report.requeued = [r.id for r in store.list(statuses=("queued",))]
    for rec in store.list(statuses=("interrupted", "failed", "cancelled", "done")):
        folder = job_work_dir(rec, work_root)
        if folder is None or not folder.is_dir():
            continue
        if rec.status != "done":
            shutil.rmtree(folder, ignore_errors=True)
            report.removed.append(folder)
            continue
        for tmp in folder.glob(".*"):  # a staged bundle's leftover temp folders
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
                report.removed.append(tmp)
    if models_dir is not None:
        from .. import store as bundles
        from .ownership import clean_deleting

        clean = getattr(bundles, "clean_stale_temp", None)
        if clean is not None:
            report.removed.extend(clean(models_dir))
        report.removed.extend(clean_deleting(models_dir))
    if report.interrupted or report.removed:
        logger.info("recovery: %d jobs interrupted, %d queued, %d folders removed",
                    len(report.interrupted), len(report.requeued), len(report.removed))
    return report
