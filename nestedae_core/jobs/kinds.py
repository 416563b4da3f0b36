"""Job kinds and the context a running job sees.

A *kind* is a function ``fn(payload: dict, ctx: JobContext) -> dict``: it reads
its JSON ``payload``, reports progress through ``ctx.progress``, polls
``ctx.should_stop`` and writes the files it produces into ``ctx.work_dir``; its
return value (JSON-able) becomes the job's result. Register one with
:func:`register_kind`; the worker imports the registering module before it runs
a job, so kinds defined outside this package work in worker processes too.

A kind may also give a ``check(payload, settings)`` that raises
:class:`~nestedae_core.jobs.limits.LimitError` (or another
:class:`~nestedae_core.errors.InputError`) when the payload is refused; it runs
at submission.
"""
from __future__ import annotations

import dataclasses
import importlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from .jobstore import JobStore
    from .settings import JobSettings

__all__ = ["KindFn", "KindCheck", "Kind", "register_kind", "get_kind", "kind_names", "JobContext"]

logger = logging.getLogger(__name__)

#: A job kind's function.
KindFn = Callable[[dict[str, Any], "JobContext"], dict[str, Any]]
#: A kind's submission check: raises when the payload is refused.
KindCheck = Callable[[dict[str, Any], "JobSettings"], None]


@dataclass(frozen=True)
class Kind:
    """A registered job kind: its name, function, the module that defines it and its submission check."""

    name: str
    fn: KindFn
    module: str
    check: KindCheck | None = None


_KINDS: dict[str, Kind] = {}
_LOCK = threading.Lock()


def register_kind(kind: str, fn: KindFn, *, check: KindCheck | None = None) -> None:
    """Register ``fn`` as the function of job kind ``kind`` (replacing an earlier registration).

    ``fn`` must be a module-level function (the worker re-imports its module).
    """
    if not kind or not isinstance(kind, str):
        raise InputError("a job kind needs a non-empty name")
    with _LOCK:
        _KINDS[kind] = Kind(kind, fn, getattr(fn, "__module__", "") or "", check)


def get_kind(kind: str) -> Kind:
    """The registered kind ``kind``; :class:`InputError` naming the known kinds when unknown."""
    _ensure_builtin()
    with _LOCK:
        found = _KINDS.get(kind)
        known = sorted(_KINDS)
    if found is None:
        raise InputError(f"unknown job kind '{kind}'; known kinds: {', '.join(known) or 'none'}")
    return found


def kind_names() -> list[str]:
    """Names of the registered kinds."""
    _ensure_builtin()
    with _LOCK:
        return sorted(_KINDS)


#: Modules that register the built-in kinds, by import path: imported on first use
#: (see :func:`_ensure_builtin`), so that this registry imports none of them itself.
BUILTIN_KIND_MODULES: tuple[str, ...] = ("nestedae_core.jobs.training",)  # 'train' and 'latent_size_scan'


def _ensure_builtin() -> None:
    for module in BUILTIN_KIND_MODULES:
        importlib.import_module(module)


def _plain(event: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(event) and not isinstance(event, type):
        out = dataclasses.asdict(event)
    elif isinstance(event, dict):
        out = dict(event)
    else:
        raise InputError(f"a progress event must be a dict or a dataclass, got {type(event).__name__}")
    for key, value in list(out.items()):
        if isinstance(value, tuple):
            out[key] = list(value)
    return out


class JobContext:
    """What a running job sees: its id, owner, private folder, progress reporting and stop requests.

    Progress events are buffered and written to the store at most every
    ``flush_s`` seconds (and at the end); :meth:`should_stop` reads the store's
    cancel flag at most every ``poll_s`` seconds, so both are cheap to call
    every epoch.

    Attributes:
        job_id: the job's id.
        owner: who submitted it.
        work_dir: a private folder for the files the job produces (e.g. a staged bundle).
        threads: CPU threads the job may use.
    """

    def __init__(self, store: "JobStore", job_id: str, owner: str, work_dir: Path, *, threads: int = 1,
                 poll_s: float = 0.5, flush_s: float = 0.5, interrupt_check: Callable[[], str | None] | None = None) -> None:
        self.job_id = job_id
        self.owner = owner
        self.work_dir = Path(work_dir)
        self.threads = int(threads)
        self._store = store
        self._poll_s = float(poll_s)
        self._flush_s = float(flush_s)
        self._interrupt_check = interrupt_check
        self._pending: list[dict[str, Any]] = []
        self._fraction: float | None = None
        self._last_flush = time.monotonic()
        self._last_poll = 0.0
        self._cancelled = False
        self._interrupted: str | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ progress
    def progress(self, event: Any) -> None:
        """Record a progress event (a dict or a dataclass such as :class:`~nestedae_core.train.ProgressEvent`).

        A ``fraction`` entry in [0, 1] sets the job's overall progress.
        """
        plain = _plain(event)
        with self._lock:
            self._pending.append(plain)
            frac = plain.get("fraction")
            if isinstance(frac, (int, float)) and math.isfinite(frac):
                self._fraction = float(frac)
            due = time.monotonic() - self._last_flush >= self._flush_s
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the buffered events to the store now."""
        with self._lock:
            events, self._pending = self._pending, []
            fraction = self._fraction
            self._last_flush = time.monotonic()
        if events or fraction is not None:
            self._store.add_events(self.job_id, events, fraction)

    # ------------------------------------------------------------------ stopping
    def should_stop(self) -> bool:
        """True once the job was cancelled by its owner, or its worker is being shut down."""
        if self._cancelled or self._interrupted:
            return True
        if self._interrupt_check is not None:
            reason = self._interrupt_check()
            if reason:
                self._interrupted = reason
                return True
        now = time.monotonic()
        if now - self._last_poll < self._poll_s:
            return False
        self._last_poll = now
        status, flag = self._store.stop_state(self.job_id)
        if flag or status != "running":
            self._cancelled = True
        elif now - self._last_flush >= self._flush_s:
            self.flush()  # also the heartbeat
        return self._cancelled

    @property
    def interrupted(self) -> str | None:
        """Why the worker stopped the job (server shut down, worker terminated), or None."""
        return self._interrupted

    @property
    def cancelled(self) -> bool:
        """True once the store said the job was cancelled."""
        return self._cancelled
