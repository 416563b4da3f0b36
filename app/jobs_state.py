"""Jobs in the dashboard: the server's job manager, who the user is, and reading jobs back for display.

* :func:`get_manager` - one :class:`nestedae_core.jobs.JobManager` per server
  (``st.cache_resource``, keyed by the store path and the settings). Creating it
  runs start-up recovery (jobs that were running when the server stopped become
  *interrupted*, queued jobs run, temp folders of killed saves are removed).
  Jobs run in worker processes, never in the server's threads.
* :func:`identity` - who the user is: the signed-in e-mail (or subject) when
  Streamlit login is configured and the user signed in; otherwise a random
  per-browser id kept in a cookie (``nestedae_browser``), so that a reload shows
  the same runs and models. The cookie holds the id signed with a server secret
  (:mod:`nestedae_core.jobs.identity`): a value that does not verify is ignored and
  a new identity issued, so ids cannot be made up. Limits of the browser id: it is
  not a login (another browser, a private window or cleared cookies is a new user;
  anyone holding the cookie's value acts as its user; it is set by page script, so
  it cannot be HttpOnly), it is never an admin, and without cookies (e.g. blocked)
  it lasts one session. The cookie is ``SameSite=Strict``, ``Secure`` on https,
  and kept :data:`COOKIE_MAX_AGE_S` seconds after the last visit.
* :func:`render_identity` - the sidebar line saying who you are, with sign-in and
  sign-out buttons when login is configured (``[auth]`` in ``.streamlit/secrets.toml``).
* :func:`train_output`, :func:`events` - a finished run's model, metrics and
  out-of-fold predictions, and a run's progress events, from the store.
"""
from __future__ import annotations

import logging
import re
import secrets
from typing import Any

import streamlit as st

from nestedae_core.api import (
    JobManager, JobRecord, JobSettings, NestedAEError, TrainOutput, browser_identity_from_cookie, cookie_for_identity,
    identity_secret, is_browser_identity, job_store_path, load_settings, new_browser_identity, progress_events,
    train_output as _read_train_output,
)

__all__ = [
    "BROWSER_COOKIE",
    "COOKIE_MAX_AGE_S",
    "get_manager",
    "JobsUnavailable",
    "jobs_error_hint",
    "settings",
    "identity",
    "identity_label",
    "login_configured",
    "render_identity",
    "startup",
    "train_output",
    "events",
    "limits_text",
    "progress_text",
    "plain",
]

logger = logging.getLogger(__name__)

#: Cookie holding the per-browser identity: ``<32 hex digits>.<signature>`` (:mod:`nestedae_core.jobs.identity`).
BROWSER_COOKIE = "nestedae_browser"
#: How long the cookie is kept after the last visit (s): 90 days (it is renewed at every visit).
COOKIE_MAX_AGE_S = 90 * 24 * 3600
_COOKIE_VALUE_RE = re.compile(r"[0-9a-f]{32}\.[0-9a-f]{32}")
_ID = "nae.jobs.identity"
_COOKIE_SET = "nae.jobs.cookie_set"
#: Used only when the server's secret cannot be had (logged): identities then last until the server restarts.
_FALLBACK_SECRET = secrets.token_bytes(32)


# --------------------------------------------------------------------------- manager
@st.cache_resource(show_spinner=False)
def _manager(db_path: str, settings_json: str) -> JobManager:
    return JobManager(db_path, settings=JobSettings.model_validate_json(settings_json))


class JobsUnavailable(NestedAEError):
    """Training, sweeps and runs are off on this server: an invalid setting (named), or an unreachable Dask
    scheduler. ``hint`` says who can fix it and how; the pages that need no jobs keep working."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


#: Hint under an invalid-setting message.
SETTINGS_HINT = ("The server's administrator must correct or unset that environment variable and restart the server "
                 "(the README lists the settings). Training, sweeps and saved runs are off until then; the other pages work.")
#: Hint under a job-store message.
STORE_HINT = ("Training, sweeps and the list of runs need the job store; Data, Compose, Predict, Screen, Explain and the "
              "other pages work without it.")
#: Seconds between two tries of :func:`startup` after it failed (a locked store costs a wait each time).
STARTUP_RETRY_S = 60.0
_STARTUP_FAILED: list[float] = []


def settings() -> JobSettings:
    """The job settings from the environment (limits, read-only mode, admins).

    Raises:
        JobsUnavailable: a variable holds an invalid value (the message names it and its value).
    """
    from nestedae_core.api import ConfigError

    try:
        return load_settings()
    except ConfigError as exc:
        raise JobsUnavailable(f"Invalid server setting: {exc}", SETTINGS_HINT) from None


def get_manager() -> JobManager:
    """The server's job manager (shared by every session; thread-safe).

    Raises:
        JobsUnavailable: invalid settings, or the Dask scheduler cannot be reached.
        JobStoreError: the job store is locked, damaged, read-only, on a full disk or not a file
            (the message names the file and what to do).
    """
    from nestedae_core.api import JobStoreError

    s = settings()
    try:
        return _manager(str(job_store_path(s)), s.model_dump_json())
    except JobStoreError:
        raise
    except NestedAEError as exc:  # e.g. the Dask scheduler cannot be reached
        raise JobsUnavailable(str(exc), SETTINGS_HINT) from None


def jobs_error_hint(exc: BaseException) -> str | None:
    """The hint to show under a job-system error (:class:`JobsUnavailable` or a job-store error), else None."""
    from nestedae_core.api import JobStoreError

    if isinstance(exc, JobsUnavailable):
        return exc.hint
    if isinstance(exc, JobStoreError):
        return STORE_HINT
    return None


def startup() -> None:
    """Create the manager (and so run start-up recovery) once per server; never raises.

    A failure is logged in one line (an invalid setting named with its value) and tried
    again at most every :data:`STARTUP_RETRY_S` seconds, so that a locked job store never
    slows the pages that do not need it.
    """
    import time

    if _STARTUP_FAILED and time.monotonic() - _STARTUP_FAILED[-1] < STARTUP_RETRY_S:
        return
    try:
        get_manager()
    except NestedAEError as exc:  # a setting refused or the store unusable: one line in the log; the pages show it too
        logger.error("could not start the job manager: %s", exc)
        _STARTUP_FAILED[:] = [time.monotonic()]
    except Exception:  # the pages show their own message when they need the manager
        logger.exception("could not start the job manager")
        _STARTUP_FAILED[:] = [time.monotonic()]
    else:
        _STARTUP_FAILED.clear()


# --------------------------------------------------------------------------- identity
def login_configured() -> bool:
    """True when ``.streamlit/secrets.toml`` has an ``[auth]`` section (Streamlit's OIDC login)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file
        return False


def _login_identity() -> str | None:
    try:
        if not st.user.is_logged_in:
            return None
        for key in ("email", "sub", "name"):
            value = st.user.get(key)
            if value and not is_browser_identity(str(value)):  # a login can never pass for a browser identity
                return str(value)
    except Exception:  # login not available in this context
        return None
    return None


def _secret() -> bytes:
    """The server secret signing browser identities; a per-process one (logged) when it cannot be had."""
    try:
        return identity_secret(job_store_path(settings()))
    except NestedAEError as exc:
        logger.error("browser identities last only until the server restarts: %s", exc)
        return _FALLBACK_SECRET


def _cookie() -> str:
    """The identity cookie's value as the browser sent it ('' when none)."""
    try:
        return str(st.context.cookies.get(BROWSER_COOKIE) or "")
    except Exception:  # no browser context (bare mode)
        return ""


def identity() -> str:
    """The user's identity: the signed-in e-mail when logged in, else ``browser-<id>`` from the signed cookie (or new).

    A cookie whose signature does not verify (made up, altered, or signed with another secret) is ignored and
    a fresh identity issued.
    """
    user = _login_identity()
    if user:
        return user
    ss = st.session_state
    if not ss.get(_ID):
        secret = _secret()
        who = browser_identity_from_cookie(_cookie(), secret)
        if who is None:
            who, _ = new_browser_identity(secret)
        ss[_ID] = who
    return str(ss[_ID])


def identity_label(who: str | None = None) -> str:
    """How the user is shown: ``signed in as <e-mail>`` or ``this browser (id 1a2b3c…)``."""
    who = who or identity()
    if is_browser_identity(who):
        return f"this browser (id {who[8:14]}…)"
    return f"signed in as {who}"


def _cookie_script(value: str) -> str:
    """The page script storing ``value`` (a signed id, checked here) in the identity cookie."""
    if not _COOKIE_VALUE_RE.fullmatch(value):  # only our own signed hex id ever goes into the script
        raise ValueError("not a signed browser id")
    return ("<script>document.cookie = "
            f"'{BROWSER_COOKIE}={value}; path=/; max-age={COOKIE_MAX_AGE_S}; SameSite=Strict'"
            " + (window.location.protocol === 'https:' ? '; Secure' : '');</script>")


def render_identity(where: Any = None) -> None:
    """Sidebar: who you are, sign-in/out buttons when login is configured; keeps the signed browser id in a cookie.

    A job setting the server refuses (e.g. a browser identity in ``NESTEDAE_ADMINS``) is shown here as one line.
    """
    box = where if where is not None else st.sidebar
    try:
        settings()
    except NestedAEError as exc:
        box.error(plain(exc), icon=":material/error:")
    who = identity()
    if login_configured():
        if is_browser_identity(who):
            box.caption(f"Your runs and models are filed under {identity_label(who)}. Sign in to keep them across browsers.")
            box.button("Sign in", on_click=st.login, key="nae.jobs.login", icon=":material/login:")
        else:
            box.caption(identity_label(who))
            box.button("Sign out", on_click=st.logout, key="nae.jobs.logout", icon=":material/logout:")
    if is_browser_identity(who) and st.session_state.get(_COOKIE_SET) != who:
        value = cookie_for_identity(who, _secret())
        if value:
            box.html(_cookie_script(value), unsafe_allow_javascript=True)
        st.session_state[_COOKIE_SET] = who


# --------------------------------------------------------------------------- reading jobs
@st.cache_resource(show_spinner="Loading the trained model…", max_entries=16)
def _cached_output(job_id: str, bundle: str, finished: float, _rec: JobRecord) -> TrainOutput:
    return _read_train_output(_rec)


def train_output(rec: JobRecord) -> TrainOutput:
    """A done training run's model, metrics and out-of-fold predictions (cached and shared: never mutate them)."""
    return _cached_output(rec.id, str(rec.bundle), float(rec.finished or 0.0), rec)


def events(job_id: str) -> list[Any]:
    """The run's progress events as :class:`~nestedae_core.train.ProgressEvent` objects."""
    return progress_events(get_manager().events(job_id))


# --------------------------------------------------------------------------- texts
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<:$=])")


def plain(text: object) -> str:
    """``text`` made inert for Markdown (job errors may quote anything): every Markdown character backslash-escaped."""
    from app import ui

    escape = getattr(ui, "escape_markdown", None)
    if escape is not None:
        return str(escape(text))
    return _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))

def limits_text(s: JobSettings | None = None) -> str:
    """One line naming this server's limits."""
    s = s or settings()
    return (f"Limits on this server: models up to {s.max_parameters:,} parameters (all folds together), epochs × folds "
            f"up to {s.max_epoch_folds:,} (the stages' epochs summed, times the folds), {s.max_jobs_per_owner} runs per "
            f"user queued or running, {s.max_queued} runs waiting in the queue, {s.max_running} training at once.")


def progress_text(rec: JobRecord) -> str:
    """What a queued or running job is doing, in words."""
    if rec.status == "queued":
        return f"queued: position {rec.queue_position or '?'} in line; it starts when a training slot is free"
    ev = rec.last_event
    if not ev or "epoch" not in ev:
        return f"starting a worker process… · {rec.elapsed_s:.0f} s"
    val = f", validation {ev['val_loss']:.4g}" if ev.get("val_loss") is not None else ""
    run = f"latent size {ev['latent_size']} (run {ev['run'] + 1} of {ev['runs']}), " if "latent_size" in ev else ""
    return (f"{run}stage {ev['stage_index'] + 1}/{ev['n_stages']} ({ev['stage']}), epoch {ev['epoch']}/{ev['epochs']}, "
            f"loss {ev['loss']:.4g}{val} · {rec.elapsed_s:.0f} s")
