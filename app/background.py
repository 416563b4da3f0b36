"""Work the server does once, in a background thread, after its first page (never in a page's script run).

* :func:`warm_up_later` - :data:`WARM_UP_DELAY_S` seconds after the first page (while the
  browser draws it), load the explainers (and so torch) and compile shap's exact explainer
  (:func:`app.explain_state.warm_up`). The first page itself needs neither: Home reads the
  model's files only (:func:`app.model_state.active_overview`).
"""
from __future__ import annotations

import logging
import threading
import time

import streamlit as st

__all__ = ["WARM_UP_DELAY_S", "warm_up_later"]

logger = logging.getLogger(__name__)

#: Seconds the warm-up waits after the first page: the browser draws it meanwhile, not competing with the
#: compilation for the CPU (nor the server's replies with it for the interpreter lock).
WARM_UP_DELAY_S = 3.0


def _warm_up(delay_s: float) -> None:
    """Sleep ``delay_s`` seconds, then load the explainers and start their warm-up; never raises (logged)."""
    time.sleep(delay_s)
    try:
        from app import explain_state  # torch and the explainers load here, in the background

        explain_state.warm_up()
    except Exception:  # noqa: BLE001 - a warm-up that fails only leaves the first explanation slower
        logger.exception("the background warm-up failed")


@st.cache_resource(show_spinner=False)
def _started() -> threading.Thread:
    thread = threading.Thread(target=_warm_up, args=(WARM_UP_DELAY_S,), name="nestedae-warm-up-later", daemon=True)
    thread.start()
    return thread


def warm_up_later() -> threading.Thread:
    """Start :func:`_warm_up` once per server process (cached); returns its thread."""
    return _started()
