"""Settings of the job system (limits, store location, executor, admins), read from environment variables.

Every setting has a safe default, so a local dashboard needs none of them. A
host sets them in the environment of the server (and of Dask workers):

========================================  =========  ===========================================================
variable                                  default    meaning
========================================  =========  ===========================================================
``NESTEDAE_JOB_STORE``                    (empty)    SQLite file of the job store; empty: ``<models dir>/../jobs.sqlite``
``NESTEDAE_MAX_PARAMETERS``               5000000    largest model: trainable parameters of the whole ensemble (count)
``NESTEDAE_MAX_EPOCH_FOLDS``              25000      epochs x folds: the sum of the stages' epochs times the folds (count)
``NESTEDAE_MAX_JOBS_PER_OWNER``           3          queued + running jobs of one user (count)
``NESTEDAE_MAX_QUEUED``                   20         jobs waiting in the queue, all users (count)
``NESTEDAE_MAX_DESIGN_EVALS``             5000       model evaluations of one design job (count)
``NESTEDAE_MAX_RUNNING``                  1          jobs running at once (worker processes); ``NESTEDAE_MAX_JOBS`` is read too
``NESTEDAE_WORKER_THREADS``               1          CPU threads of each worker process (torch, BLAS)
``NESTEDAE_READ_ONLY``                    0          1: a read-only demo, no training and no saving or deleting
``NESTEDAE_ADMINS``                       (empty)    login identities (comma separated e-mails) that may overwrite or delete any model
``NESTEDAE_DASK_SCHEDULER``               (empty)    address of a Dask scheduler (``tcp://HOST:PORT``); empty: local worker processes
``NESTEDAE_STORE_TIMEOUT``                5          seconds to wait for another process's lock on the job store (s)
``NESTEDAE_JOB_STALE_S``                  60         a running job without a heartbeat for this long is interrupted (s, >= 15)
``NESTEDAE_KEEP_FINISHED``                100        finished jobs kept per user (older ones and their files are removed)
========================================  =========  ===========================================================

Invalid values raise :class:`~nestedae_core.errors.ConfigError` naming the variable.

Admins are login identities only: an entry of ``NESTEDAE_ADMINS`` that is (or looks like)
a per-browser identity (``browser-…``, see :mod:`.identity`) is refused, and
:meth:`JobSettings.is_admin` is False for every browser identity even if one got in:
whoever holds a browser's cookie would otherwise be an admin. The secret signing browser
identities (``NESTEDAE_IDENTITY_SECRET``) is read by :mod:`.identity`, not here.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ConfigError
from .identity import looks_like_browser_identity

__all__ = ["JobSettings", "load_settings", "job_store_path", "ENV_NAMES"]

#: Field of :class:`JobSettings` -> the environment variables read for it (first one set wins).
ENV_NAMES: dict[str, tuple[str, ...]] = {
    "job_store": ("NESTEDAE_JOB_STORE",),
    "max_parameters": ("NESTEDAE_MAX_PARAMETERS",),
    "max_epoch_folds": ("NESTEDAE_MAX_EPOCH_FOLDS",),
    "max_jobs_per_owner": ("NESTEDAE_MAX_JOBS_PER_OWNER",),
    "max_queued": ("NESTEDAE_MAX_QUEUED",),
    "max_design_evals": ("NESTEDAE_MAX_DESIGN_EVALS",),
    "max_running": ("NESTEDAE_MAX_RUNNING", "NESTEDAE_MAX_JOBS"),
    "worker_threads": ("NESTEDAE_WORKER_THREADS",),
    "read_only": ("NESTEDAE_READ_ONLY",),
    "admins": ("NESTEDAE_ADMINS",),
    "dask_scheduler": ("NESTEDAE_DASK_SCHEDULER",),
    "keep_finished": ("NESTEDAE_KEEP_FINISHED",),
    "store_timeout": ("NESTEDAE_STORE_TIMEOUT",),
    "job_stale_s": ("NESTEDAE_JOB_STALE_S",),
}

#: A Dask scheduler address: an optional protocol, a host name, IPv4 or [IPv6] address, and a port.
_DASK_ADDRESS = re.compile(r"(?:(?:tcp|tls|ws|wss|ucx)://)?(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}")


class JobSettings(BaseModel):
    """Limits and locations of the job system (see the module docstring for the variables).

    Attributes:
        job_store: path of the SQLite job store ('' = beside the models dir).
        max_parameters: largest trainable parameter count of a job's model (whole ensemble).
        max_epoch_folds: largest sum over stages of epochs, times the folds.
        max_jobs_per_owner: most queued + running jobs of one owner.
        max_queued: most queued jobs, all owners together.
        max_design_evals: largest model-evaluation budget of one design job.
        max_running: jobs running at once (local worker processes).
        worker_threads: CPU threads per worker process.
        read_only: no training, saving or deleting (demo hosting).
        admins: login identities (e-mails; never browser identities) allowed to cancel any job and overwrite or delete any saved model.
        dask_scheduler: Dask scheduler address ('' = local worker processes).
        keep_finished: finished jobs kept per owner.
        store_timeout: seconds an operation waits for another process's lock on the job store.
        job_stale_s: seconds without a heartbeat after which a running job is ended as interrupted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_store: str = ""
    max_parameters: int = Field(5_000_000, ge=1)
    max_epoch_folds: int = Field(25_000, ge=1)
    max_jobs_per_owner: int = Field(3, ge=1)
    max_queued: int = Field(20, ge=0)
    max_design_evals: int = Field(5000, ge=10)
    max_running: int = Field(1, ge=1)
    worker_threads: int = Field(1, ge=1)
    read_only: bool = False
    admins: tuple[str, ...] = ()
    dask_scheduler: str = ""
    keep_finished: int = Field(100, ge=1)
    store_timeout: float = Field(5.0, gt=0, le=3600)
    job_stale_s: float = Field(60.0, ge=15, le=86_400)

    @field_validator("dask_scheduler")
    @classmethod
    def _dask_address(cls, value: str) -> str:
        text = value.strip()
        if text and not _DASK_ADDRESS.fullmatch(text):
            raise ValueError("give the Dask scheduler's address as tcp://HOST:PORT (e.g. tcp://10.0.0.5:8786), "
                             "or leave it empty to run jobs in local worker processes")
        return text

    @field_validator("admins", mode="before")
    @classmethod
    def _split_admins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(a.strip() for a in value.split(",") if a.strip())
        return value

    @field_validator("admins")
    @classmethod
    def _no_browser_admins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            if looks_like_browser_identity(entry):
                shown = entry if len(entry) <= 20 else entry[:17] + "..."
                raise ValueError(f"'{shown}' is a browser identity, and browser identities can never be admins "
                                 "(anyone holding that browser's cookie would be one); list login e-mails only "
                                 "(set up sign-in, see the README's Login)")
        return value

    @field_validator("read_only", mode="before")
    @classmethod
    def _flag(cls, value: object) -> object:
        if isinstance(value, str) and value.strip() == "":
            return False
        return value

    def is_admin(self, identity: str | None) -> bool:
        """True when ``identity`` is listed in ``admins``; always False for a browser identity."""
        if not identity or looks_like_browser_identity(identity):
            return False
        return identity in self.admins


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> JobSettings:
    """The settings from ``environ`` (default ``os.environ``), with ``overrides`` (field names) on top.

    Raises:
        ConfigError: a variable holds an invalid value (the message names it).
    """
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    source: dict[str, str] = {}
    for field, names in ENV_NAMES.items():
        for name in names:
            raw = env.get(name)
            if raw is not None and raw.strip() != "":
                values[field] = raw.strip()
                source[field] = name
                break
    values.update(overrides)
    try:
        return JobSettings(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err.get("loc") else "?"
        where = source.get(field, field)
        message = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{where}={values.get(field)!r} is not valid: {message}; correct or unset {where} "
                          "and start again") from None


def job_store_path(settings: JobSettings | None = None) -> Path:
    """The job store's SQLite file: ``settings.job_store`` or ``<store.models_dir()>/../jobs.sqlite``."""
    s = settings if settings is not None else load_settings()
    if s.job_store:
        return Path(s.job_store).expanduser()
    from ..store import models_dir

    return models_dir().parent / "jobs.sqlite"
