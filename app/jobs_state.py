"""Jobs in the dashboard: the server's job manager, who the user is, and reading jobs back for display.

* :func:`get_manager` - one :class:`nestedae_core.jobs.JobManager` per server
  (``st.cache_resource``, keyed by the store path and the settings). Creating it
  runs start-up recovery (jobs that were running when the server stopped become
  *interrupted*, queued jobs run, temp folders of killed saves are removed).
  Jobs run in worker processes, never in the server's threads.
* :func:`identity` - who the user is: the signed-in e-mail (or subject) when
  Streamlit login is configured and the user signed in; otherwise a random
  per-browser id kept in a cookie (``nestedae_browser``), so that a reload shows
  the same runs and models. Limits of the browser id: it is not a login (another
  browser, a private window or cleared cookies is a new user; anyone using that
  browser acts as its user), and without cookies (e.g. blocked) it lasts one session.
* :func:`render_identity` - the sidebar line saying who you are, with sign-in and
  sign-out buttons when login is configured (``[auth]`` in ``.streamlit/secrets.toml``).
* :func:`train_output`, :func:`events` - a finished run's model, metrics and
  out-of-fold predictions, and a run's progress events, from the store.
"""
from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import streamlit as st

from nestedae_core.jobs import (
    JobManager,
    JobRecord,
    JobSettings,
    TrainOutput,
    job_store_path,
    load_settings,
    progress_events,
)
from nestedae_core.jobs import train_output as _read_train_output

__all__ = [
    "BROWSER_COOKIE",
    "get_manager",
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

#: Cookie holding the per-browser identity (a random 32-hex-digit id).
BROWSER_COOKIE = "nestedae_browser"
_BROWSER_RE = re.compile(r"[0-9a-f]{32}")
_ID = "nae.jobs.identity"
_COOKIE_SET = "nae.jobs.cookie_set"


# --------------------------------------------------------------------------- manager
@st.cache_resource(show_spinner=False)
def _manager(db_path: str, settings_json: str) -> JobManager:
    return JobManager(db_path, settings=JobSettings.model_validate_json(settings_json))


def settings() -> JobSettings:
    """The job settings from the environment (limits, read-only mode, admins)."""
    return load_settings()


def get_manager() -> JobManager:
    """The server's job manager (shared by every session; thread-safe)."""
    s = settings()
    return _manager(str(job_store_path(s)), s.model_dump_json())


def startup() -> None:
    """Create the manager (and so run start-up recovery) once per server; never raises."""
    try:
        get_manager()
    except Exception:  # the pages show their own message when they need the manager
        logger.exception("could not start the job manager")


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
            if value:
                return str(value)
    except Exception:  # login not available in this context
        return None
    return None


def identity() -> str:
    """The user's identity: the signed-in e-mail when logged in, else ``browser-<id>`` from the cookie (or new)."""
    user = _login_identity()
    if user:
        return user
    ss = st.session_state
    if not ss.get(_ID):
        cookie = ""
        try:
            cookie = str(st.context.cookies.get(BROWSER_COOKIE) or "")
        except Exception:
            cookie = ""
        ss[_ID] = "browser-" + (cookie if _BROWSER_RE.fullmatch(cookie) else uuid.uuid4().hex)
    return str(ss[_ID])


def identity_label(who: str | None = None) -> str:
    """How the user is shown: ``signed in as <e-mail>`` or ``this browser (id 1a2b3c…)``."""
    who = who or identity()
    if who.startswith("browser-"):
        return f"this browser (id {who[8:14]}…)"
    return f"signed in as {who}"


def render_identity(where: Any = None) -> None:
    """Sidebar: who you are, sign-in/out buttons when login is configured; keeps the browser id in a cookie."""
    box = where if where is not None else st.sidebar
    who = identity()
    if login_configured():
        if who.startswith("browser-"):
            box.caption(f"Your runs and models are filed under {identity_label(who)}. Sign in to keep them across browsers.")
            box.button("Sign in", on_click=st.login, key="nae.jobs.login", icon=":material/login:")
        else:
            box.caption(identity_label(who))
            box.button("Sign out", on_click=st.logout, key="nae.jobs.logout", icon=":material/logout:")
    if who.startswith("browser-") and st.session_state.get(_COOKIE_SET) != who:
        browser_id = who[8:]
        if _BROWSER_RE.fullmatch(browser_id):  # only our own hex id goes into the script
            box.html(f"<script>document.cookie = '{BROWSER_COOKIE}={browser_id}; path=/; max-age=31536000; SameSite=Lax';</script>",
                     unsafe_allow_javascript=True)
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
