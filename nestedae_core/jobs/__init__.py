"""Jobs: long computations (training, sweeps) run outside the web server, recorded in a durable store.

* :mod:`.settings`: :class:`JobSettings` (limits, store location, executor, admins) from environment variables.
* :mod:`.jobstore`: :class:`JobStore`, the SQLite store (jobs, progress events, model owners); :class:`JobRecord`.
* :mod:`.store_errors`: :class:`JobStoreError` (the store locked, damaged, read-only, on a full disk: one line
  naming the file and the remedy).
* :mod:`.limits`: the limits checked at submission (:class:`LimitError` names the limit and its value).
* :mod:`.kinds`: :func:`register_kind` and :class:`JobContext` (progress, should_stop, work_dir).
* :mod:`.worker`: :func:`run_job`, the entry every executor calls.
* :mod:`.local_executor`: :class:`LocalProcessExecutor`, spawned worker processes on this machine.
* :mod:`.manager`: :class:`JobManager`: submit, get, jobs, cancel, wait, save, delete.
* :mod:`.ownership`: who may overwrite or delete a saved model; saving a staged bundle.
* :mod:`.recovery`: start-up recovery (interrupted jobs, queued jobs, temp folders).
* :mod:`.training`: the ``train`` and ``latent_size_scan`` kinds, their payloads and outputs.
* :mod:`.names`: :func:`validate_model_name`.
* :mod:`.identity`: signed per-browser identities (never admins) and the server secret that signs them.
"""
from __future__ import annotations

from .jobstore import ACTIVE_STATUSES, FINISHED_STATUSES, STATUSES, JobRecord, JobStore, JobStoreError
from .kinds import JobContext, get_kind, kind_names, register_kind
from .limits import LimitError, estimate_parameters, epoch_folds
from .manager import Executor, JobManager, make_executor
from .names import MODEL_NAME_PATTERN, validate_model_name
from .ownership import PermissionRefused
from .settings import JobSettings, job_store_path, load_settings
from .training import (
    TrainOutput,
    latent_size_scan_payload,
    payload_spec,
    progress_events,
    synthetic_tables,
    train_output,
    train_payload,
)
from .worker import run_job

__all__ = [
    "ACTIVE_STATUSES",
    "FINISHED_STATUSES",
    "STATUSES",
    "Executor",
    "JobContext",
    "JobManager",
    "JobRecord",
    "JobSettings",
    "JobStore",
    "JobStoreError",
    "LimitError",
    "MODEL_NAME_PATTERN",
    "PermissionRefused",
    "TrainOutput",
    "epoch_folds",
    "estimate_parameters",
    "get_kind",
    "job_store_path",
    "kind_names",
    "latent_size_scan_payload",
    "load_settings",
    "make_executor",
    "payload_spec",
    "progress_events",
    "register_kind",
    "run_job",
    "synthetic_tables",
    "train_output",
    "train_payload",
    "validate_model_name",
]
