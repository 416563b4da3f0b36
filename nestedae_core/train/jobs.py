"""Training jobs: run :func:`~nestedae_core.train.cross_validate` in the background.

A :class:`JobManager` owns a small pool of worker threads. :meth:`JobManager.submit`
queues a chain spec (with its stage tables when they are not registry datasets,
e.g. generated synthetic data) and returns a :class:`Job` at once; at most ``max_concurrent``
jobs run at a time, the others wait in submission order and know their
:attr:`Job.queue_position`. Worker threads never touch any UI: a job only
records what happens (status, progress events, result, error message), and a
UI polls it.

* Progress: every :class:`~nestedae_core.train.ProgressEvent` of the run is kept
  in the job (thread-safe); :meth:`Job.events_since` returns the new ones.
* Cancelling: :meth:`Job.cancel` removes a queued job from the queue, or asks a
  running one to stop (``should_stop`` is polled every epoch).
* Errors: a :class:`~nestedae_core.errors.NestedAEError` becomes the job's
  one-line :attr:`Job.error`; any other exception is logged with its traceback
  and summarised in one line.
* Saving: :meth:`JobManager.save` writes a finished job's model with
  :func:`~nestedae_core.store.save_bundle` into ``store.models_dir()/<name>``;
  names are checked by :func:`validate_model_name`.

Threads are enough: torch releases the GIL in its kernels, and the training
loops are short enough that a web server in the same process stays responsive.

Example::

    manager = JobManager(max_concurrent=1)
    job = manager.submit(preset("synthetic", epochs=50), owner="me", name="demo")
    job.wait()
    if job.status == "done":
        manager.save(job, "demo")
"""
from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ..errors import BundleError, InputError, NestedAEError
from ..model.config import ChainSpec
from .cross_validation import cross_validate
from .progress import TrainingCancelled

__all__ = [
    "JobStatus",
    "ACTIVE_STATUSES",
    "FINISHED_STATUSES",
    "MODEL_NAME_PATTERN",
    "validate_model_name",
    "Job",
    "JobManager",
]

logger = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
#: Statuses of a job that has not finished yet.
ACTIVE_STATUSES: frozenset[str] = frozenset({"queued", "running"})
#: Statuses of a finished job.
FINISHED_STATUSES: frozenset[str] = frozenset({"done", "failed", "cancelled"})

#: Allowed model (bundle folder) names: letters, digits and ``-_.``; 1 to 64
#: characters; starting with a letter or digit.
MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def validate_model_name(name: str) -> str:
    """Return ``name`` stripped if it can name a saved model, else raise :class:`InputError`.

    A name is 1 to 64 letters, digits, ``-``, ``_`` or ``.``, starts with a letter
    or digit and is not the name of a shipped bundle.
    """
    from ..store import SHIPPED_BUNDLE_NAMES

    text = (name or "").strip()
    if not text:
        raise InputError("give the model a name, e.g. paper-200ep")
    if not MODEL_NAME_PATTERN.fullmatch(text) or ".." in text:
        bad = sorted({c for c in text if not (c.isascii() and (c.isalnum() or c in "-_."))})
        what = f"it contains {' '.join(repr(c) for c in bad)}" if bad else "it must start with a letter or digit, be at most 64 characters and not contain '..'"
        raise InputError(f"model name '{text}' is not allowed: {what}; use letters, digits, '-', '_' and '.' only")
    if text.lower() in {n.lower() for n in SHIPPED_BUNDLE_NAMES}:
        raise InputError(f"'{text}' is the name of a built-in model; choose another name")
    return text


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(eq=False)
class Job:
    """One training run managed by a :class:`JobManager` (create jobs with :meth:`JobManager.submit`).

    Attributes:
        id: short unique id.
        owner: who submitted it (e.g. a dashboard session id).
        name: the name the user gave the run (the default name when saving).
        spec: the chain configuration being trained.
        tables: the stage tables by stage name, or None to load the spec's registry datasets.
        data_dir / device: passed to :func:`~nestedae_core.train.cross_validate`.
        status: ``queued``, ``running``, ``done``, ``failed`` or ``cancelled``.
        submitted / started / finished: ``time.time()`` stamps (None until reached).
        result: the :class:`~nestedae_core.train.TrainResult` of a ``done`` job.
        error: one-line message of a ``failed`` (or ``cancelled``) job.
        saved_path: where the model was saved, once saved.
    """

    id: str
    owner: str
    name: str
    spec: ChainSpec
    tables: dict[str, pd.DataFrame] | None = field(default=None, repr=False)
    data_dir: str | None = None
    device: str = "auto"
    status: JobStatus = "queued"
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: Any = None
    error: str | None = None
    saved_path: Path | None = None
    _events: list[Any] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _manager: "JobManager | None" = field(default=None, repr=False)

    # ------------------------------------------------------------------ progress
    def _add_event(self, event: Any) -> None:
        with self._lock:
            self._events.append(event)

    def events_since(self, index: int = 0) -> list[Any]:
        """Progress events from position ``index`` on (a copy; pass ``index + len(returned)`` next time)."""
        with self._lock:
            return list(self._events[max(0, int(index)):])

    @property
    def last_event(self) -> Any:
        """The latest :class:`~nestedae_core.train.ProgressEvent`, or None."""
        with self._lock:
            return self._events[-1] if self._events else None

    @property
    def fraction(self) -> float:
        """Overall progress in [0, 1] (1 once done)."""
        if self.status == "done":
            return 1.0
        ev = self.last_event
        return float(ev.fraction) if ev is not None else 0.0

    @property
    def elapsed_s(self) -> float:
        """Seconds spent running so far (0 while queued)."""
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    @property
    def is_active(self) -> bool:
        """True while queued or running."""
        return self.status in ACTIVE_STATUSES

    @property
    def queue_position(self) -> int | None:
        """1 for the next job to start, 2 for the one after ...; None unless queued."""
        if self.status != "queued" or self._manager is None:
            return None
        return self._manager._queue_position(self)

    @property
    def cancel_requested(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._stop.is_set()

    # ------------------------------------------------------------------ control
    def cancel(self) -> bool:
        """Cancel the job: a queued job is dropped at once, a running one stops at its next epoch.

        Returns False when the job had already finished.
        """
        if self._manager is not None:
            return self._manager._cancel(self)
        if self.status in FINISHED_STATUSES:
            return False
        self._stop.set()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finishes (or ``timeout`` seconds pass); True when finished."""
        return self._done.wait(timeout)

    def summary(self) -> dict[str, Any]:
        """Plain description of the job (for tables): id, name, status, progress, times, error."""
        return {
            "id": self.id,
            "name": self.name,
            "preset": self.spec.name,
            "status": self.status,
            "progress_percent": round(100.0 * self.fraction, 1),
            "queue_position": self.queue_position,
            "elapsed_s": round(self.elapsed_s, 1),
            "device": self.device,
            "error": self.error or "",
            "saved_to": str(self.saved_path) if self.saved_path else "",
        }


class JobManager:
    """Runs training jobs in worker threads, at most ``max_concurrent`` at a time.

    Thread-safe: one manager can be shared by every user of a dashboard. It keeps
    every active job and the latest ``keep_finished`` finished ones (older
    finished jobs are forgotten, their results freed).

    Args:
        max_concurrent: how many jobs may train at once (>= 1).
        keep_finished: how many finished jobs to remember.
        train_fn: the training function (default :func:`nestedae_core.train.cross_validate`);
            called as ``train_fn(spec, tables=..., data_dir=..., device=..., callback=..., should_stop=...)``.
    """

    def __init__(self, max_concurrent: int = 1, *, keep_finished: int = 50, train_fn: Callable[..., Any] | None = None) -> None:
        if int(max_concurrent) < 1:
            raise InputError(f"max_concurrent must be at least 1, got {max_concurrent}")
        self.max_concurrent = int(max_concurrent)
        self.keep_finished = max(1, int(keep_finished))
        self._train_fn = train_fn
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        self._running: set[str] = set()

    # ------------------------------------------------------------------ submit and query
    def submit(
        self,
        spec: ChainSpec,
        *,
        owner: str,
        name: str,
        tables: Mapping[str, pd.DataFrame] | None = None,
        data_dir: str | None = None,
        device: str = "auto",
    ) -> Job:
        """Queue a training run of ``spec`` and return its :class:`Job` (started at once if a slot is free).

        ``tables``: ready stage tables by stage name (e.g. generated synthetic data);
        by default each stage's registry dataset is loaded (from ``data_dir``).
        The tables must not be changed while the job runs.

        Raises:
            InputError: ``spec`` is not a ChainSpec, ``tables`` is not a mapping of
                DataFrames, ``owner`` is empty or ``name`` is not a valid model name.
        """
        if not isinstance(spec, ChainSpec):
            raise InputError(f"submit expects a ChainSpec, got {type(spec).__name__}")
        if tables is not None and not (isinstance(tables, Mapping) and all(isinstance(t, pd.DataFrame) for t in tables.values())):
            raise InputError("tables must map stage names to pandas DataFrames")
        if not str(owner or "").strip():
            raise InputError("a job needs an owner (e.g. the session id)")
        job = Job(
            id=uuid.uuid4().hex[:8],
            owner=str(owner),
            name=validate_model_name(name),
            spec=spec,
            tables=None if tables is None else dict(tables),
            data_dir=None if data_dir is None else str(data_dir),
            device=str(device or "auto"),
        )
        job._manager = self
        with self._lock:
            self._jobs[job.id] = job
            self._queue.append(job)
            self._prune()
            self._start_next()
        logger.info("job %s (%s, owner %s) submitted", job.id, job.name, job.owner)
        return job

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None (unknown or forgotten)."""
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self, owner: str | None = None) -> list[Job]:
        """Jobs in submission order, all or only those of ``owner``."""
        with self._lock:
            return [j for j in self._jobs.values() if owner is None or j.owner == owner]

    def counts(self) -> dict[str, int]:
        """Number of jobs per status (all owners)."""
        out = {s: 0 for s in ("queued", "running", "done", "failed", "cancelled")}
        with self._lock:
            for j in self._jobs.values():
                out[j.status] += 1
        return out

    def _queue_position(self, job: Job) -> int | None:
        with self._lock:
            for i, j in enumerate(self._queue):
                if j is job:
                    return i + 1
        return None

    # ------------------------------------------------------------------ control
    def _cancel(self, job: Job) -> bool:
        with self._lock:
            if job.status in FINISHED_STATUSES:
                return False
            job._stop.set()
            if job.status == "queued":
                try:
                    self._queue.remove(job)
                except ValueError:
                    pass
                job.status = "cancelled"
                job.error = "cancelled before it started"
                job.finished = time.time()
                job._done.set()
                logger.info("job %s cancelled while queued", job.id)
            return True

    def cancel_all(self, owner: str | None = None) -> int:
        """Cancel every active job (of ``owner``); returns how many were asked to stop."""
        return sum(1 for j in self.jobs(owner) if j.is_active and j.cancel())

    def wait_all(self, timeout: float | None = None) -> bool:
        """Block until every job has finished (or ``timeout`` seconds pass); True when all finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in self.jobs():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not job.wait(left):
                return False
        return True

    # ------------------------------------------------------------------ saving
    def save(self, job: Job | str, name: str | None = None, *, overwrite: bool = False) -> Path:
        """Save a finished job's model as ``store.models_dir()/<name>`` (default name: the job's).

        Raises:
            InputError: unknown job, job not finished successfully, or invalid name.
            BundleError: a model of that name exists (and ``overwrite`` is false), or
                the path would be the built-in default bundle.
        """
        from .. import store

        j = self.get(job) if isinstance(job, str) else job
        if j is None:
            raise InputError(f"no training job '{job}' (it may have been forgotten; train again)")
        if j.status != "done" or j.result is None:
            raise InputError(f"job '{j.name}' is {j.status}; only a finished ('done') run can be saved")
        clean = validate_model_name(name if name is not None else j.name)
        target = store.models_dir() / clean
        try:
            is_default = target.resolve() == store.default_bundle_path().resolve()
        except OSError:
            is_default = False
        if is_default:
            raise BundleError(f"'{clean}' would overwrite the built-in default model; choose another name")
        if target.exists() and not overwrite:
            raise BundleError(f"a model named '{clean}' already exists in {target.parent}; choose another name or allow overwriting")
        path = store.save_bundle(j.result, target, overwrite=overwrite)
        j.saved_path = path
        logger.info("job %s saved to %s", j.id, path)
        return path

    # ------------------------------------------------------------------ internals
    def _prune(self) -> None:
        finished = [j for j in self._jobs.values() if j.status in FINISHED_STATUSES]
        for j in finished[: max(0, len(finished) - self.keep_finished)]:
            del self._jobs[j.id]

    def _start_next(self) -> None:
        with self._lock:
            while self._queue and len(self._running) < self.max_concurrent:
                job = self._queue.popleft()
                job.status = "running"
                job.started = time.time()
                self._running.add(job.id)
                thread = threading.Thread(target=self._run, args=(job,), name=f"nestedae-job-{job.id}", daemon=True)
                thread.start()

    def _run(self, job: Job) -> None:
        fn = self._train_fn or cross_validate
        status: JobStatus
        result = None
        error = None
        try:
            result = fn(job.spec, tables=job.tables, data_dir=job.data_dir, device=job.device, callback=job._add_event, should_stop=job._stop.is_set)
            status = "done"
        except TrainingCancelled as exc:
            status, error = "cancelled", _one_line(str(exc))
        except NestedAEError as exc:
            status, error = "failed", _one_line(str(exc))
        except Exception as exc:  # a bug: keep the traceback in the log, show one line
            logger.exception("training job %s failed unexpectedly", job.id)
            status = "failed"
            error = _one_line(f"unexpected error ({type(exc).__name__}: {exc}); details are in the server log")
        with self._lock:
            if status == "done" and job._stop.is_set():
                status, error, result = "cancelled", "cancelled at the end of training", None
            job.result = result
            job.error = error
            job.status = status
            job.finished = time.time()
            self._running.discard(job.id)
            self._prune()
        job._done.set()
        logger.info("job %s finished: %s%s", job.id, status, f" ({error})" if error else "")
        self._start_next()
