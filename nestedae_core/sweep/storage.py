"""Where sweeps live: the Optuna storage (the job store's SQLite file by default, or any SQLAlchemy URL).

:func:`open_storage` (one storage per URL and process), :func:`storage_fault` (a
storage error as a one-line :class:`~nestedae_core.errors.NestedAEError`),
:func:`validate_study_name`, and :func:`list_sweeps` (the sweeps a storage holds).
"""
from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..errors import InputError, NestedAEError

__all__ = ["default_storage_url", "open_storage", "list_sweeps", "STUDY_NAME_PATTERN", "storage_fault", "validate_study_name"]

#: Allowed study names: letters, digits and ``-_.``; 1 to 64 characters.
STUDY_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_CONFIG_ATTR = "nestedae_sweep"
_CANCEL_ATTR = "nestedae_cancelled"


def default_storage_url() -> str:
    """``sqlite:///<job store file>``: the study lives beside the jobs by default."""
    from ..jobs.settings import job_store_path

    return f"sqlite:///{Path(job_store_path()).resolve()}"


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL that does not parse is shown cut short
        return url.split("@")[-1][:120]


def _sqlite_path(url: str) -> str | None:
    """The file of an ``sqlite:///PATH`` URL (None for another database or an in-memory one)."""
    if not url.startswith("sqlite:"):
        return None
    path = url.split(":///", 1)[-1] if ":///" in url else ""
    path = path.split("?", 1)[0]
    return path if path and path != ":memory:" else None


def storage_fault(exc: BaseException, url: str | None) -> NestedAEError | None:
    """One-line error for a failure of the sweep storage ``url`` (default: the job store), or None if ``exc`` is not one.

    An SQLite file that is locked, damaged, read-only or on a full disk gives a
    :class:`~nestedae_core.jobs.jobstore.JobStoreError` naming the file and the
    remedy; another database's failure an :class:`InputError` naming the URL
    (password hidden).
    """
    if isinstance(exc, NestedAEError):
        return None
    import sqlite3

    kinds: list[type[BaseException]] = [sqlite3.Error]
    try:
        import sqlalchemy.exc

        kinds.append(sqlalchemy.exc.SQLAlchemyError)
    except ImportError:  # pragma: no cover - optuna depends on SQLAlchemy
        pass
    try:
        import optuna.exceptions

        kinds.append(optuna.exceptions.StorageInternalError)
    except ImportError:  # pragma: no cover
        pass
    if not isinstance(exc, tuple(kinds)):
        return None
    from ..jobs.jobstore import store_error
    from ..jobs.settings import job_store_path

    text = (url or "").strip() or default_storage_url()
    path = _sqlite_path(text)
    if path is not None:
        default = not (url or "").strip()
        if not default:
            try:
                default = Path(path).resolve() == Path(job_store_path()).resolve()
            except (OSError, NestedAEError):
                default = False
        err = store_error(exc, path, timeout=_store_timeout(),
                          what="the job store" if default else "the sweep storage",
                          setting="NESTEDAE_JOB_STORE" if default else "--storage")
        if err is not None:
            return err
    reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200] or type(exc).__name__
    return InputError(f"the sweep storage {_safe_url(text)} failed ({reason}); check that its database is reachable and "
                      "try again, or give another --storage")


def _store_timeout() -> float:
    """Seconds to wait for the lock of an SQLite sweep storage (``NESTEDAE_STORE_TIMEOUT``, default 5)."""
    from ..jobs.jobstore import DEFAULT_TIMEOUT_S
    from ..jobs.settings import load_settings

    try:
        return float(load_settings().store_timeout)
    except NestedAEError:
        return DEFAULT_TIMEOUT_S


_F = TypeVar("_F", bound=Callable[..., Any])


def _storage_guarded(fn: _F) -> _F:
    """Turn a storage failure inside a :class:`Sweep` method into one line (:func:`storage_fault`)."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:  # self: a Sweep (runner.py)
        try:
            return fn(self, *args, **kwargs)
        except Exception as exc:
            err = storage_fault(exc, self.storage_url)
            if err is None:
                raise
            raise err from None

    return wrapper  # type: ignore[return-value]


_STORAGES: dict[str, Any] = {}
_STORAGES_LOCK = threading.Lock()


def open_storage(url: str | None = None) -> Any:
    """An Optuna RDB storage for ``url`` (default :func:`default_storage_url`), shared per URL in this process.

    Raises:
        InputError: the URL is malformed, its database driver is missing or it
            cannot be opened (the message hides any password).
    """
    import optuna

    text = (url or "").strip() or default_storage_url()
    with _STORAGES_LOCK:
        cached = _STORAGES.get(text)
    if cached is not None:
        return cached
    shown = _safe_url(text)
    if "://" not in text:
        raise InputError(f"storage '{shown}' is not a database URL; use sqlite:///PATH or postgresql://USER@HOST/DB")
    kwargs: dict[str, Any] = {}
    if text.startswith("sqlite:"):
        path = _sqlite_path(text)
        if path is not None:
            parent = Path(path).expanduser().parent
            if not parent.is_dir():
                raise InputError(f"storage '{shown}': folder {parent} does not exist; create it or give another --storage")
            from ..jobs.jobstore import JobStoreError, check_store_path

            try:
                check_store_path(path)
            except JobStoreError as exc:
                if not (url or "").strip():  # the job store itself
                    raise
                raise JobStoreError(str(exc).replace("as the job store", "as the sweep storage")
                                    .replace("point NESTEDAE_JOB_STORE at", "give --storage sqlite:///PATH of"),
                                    path=exc.path, cause=exc.cause) from None
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": _store_timeout()}}
    try:
        storage = optuna.storages.RDBStorage(text, **kwargs)
    except ModuleNotFoundError as exc:
        raise InputError(f"storage '{shown}' needs the database driver '{exc.name}'; install it (e.g. pip install psycopg2-binary for PostgreSQL)") from None
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy and Optuna raise many kinds; all are one user message
        fault = storage_fault(exc, url)
        if fault is not None and _sqlite_path(text) is not None and not isinstance(fault, InputError):
            raise fault from None
        reason = " ".join(str(exc).split())[:200]
        if "DB access module" in reason:
            raise InputError(f"storage '{shown}' needs its database driver, which is not installed (for PostgreSQL: pip install psycopg2-binary)") from None
        raise InputError(f"cannot open the sweep storage '{shown}': {reason}; use sqlite:///PATH or postgresql://USER@HOST/DB") from None
    with _STORAGES_LOCK:
        return _STORAGES.setdefault(text, storage)


def validate_study_name(name: str) -> str:
    """``name`` stripped if it can name a study, else :class:`InputError`."""
    text = (name or "").strip()
    if not STUDY_NAME_PATTERN.fullmatch(text):
        raise InputError(f"study name '{text}' is not allowed; use 1 to 64 letters, digits, '-', '_' and '.', starting with a letter or digit")
    return text


def list_sweeps(storage: str | None = None, owner: str | None = None) -> list[dict[str, Any]]:
    """Sweeps in ``storage`` (newest first): name, preset, owner, trials asked, trials complete, best value."""
    import optuna

    st = open_storage(storage)
    out = []
    try:
        summaries = optuna.get_all_study_summaries(st, include_best_trial=True)
    except Exception as exc:
        err = storage_fault(exc, storage)
        if err is None:
            raise
        raise err from None
    for s in summaries:
        attrs = s.user_attrs or {}
        cfg = attrs.get(_CONFIG_ATTR)
        if not isinstance(cfg, dict):
            continue
        if owner is not None and attrs.get("owner") != owner:
            continue
        out.append({
            "study": s.study_name,
            "preset": cfg.get("preset", ""),
            "owner": attrs.get("owner", ""),
            "n_trials": cfg.get("n_trials"),
            "trials": s.n_trials,
            "best": None if s.best_trial is None else s.best_trial.value,
            "started": s.datetime_start.isoformat(timespec="seconds") if s.datetime_start else "",
            "cancelled": bool(attrs.get(_CANCEL_ATTR)),
        })
    out.sort(key=lambda r: r["started"], reverse=True)
    return out
