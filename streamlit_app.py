"""NestedAE Studio: entry script of the Streamlit dashboard.

Run with ``streamlit run streamlit_app.py``. Page config is set once here, then
the menu (the page list lives in :mod:`app.navigation`, every page registered
explicitly), both before the heavy imports, so that a cold start shows the menu
at once. The tab icon is ``app/static/icon.png`` (no font server needed).
Datasets are read from ``$NESTEDAE_DATA_DIR`` or the download cache.

Who the user is (:func:`app.jobs_state.render_identity`: the signed-in user when
login is configured in ``.streamlit/secrets.toml``, else a per-browser id kept in
a cookie) is shown in the sidebar. After the page, the server's job manager is
started once (:func:`app.jobs_state.startup`): its start-up recovery marks jobs a
stopped server left running as interrupted, runs queued ones and removes the
temporary folders of killed saves; then, once a page has loaded the explainers,
shap's exact explainer is compiled in a background thread (the default permutation
explainer needs no compiling). The first page never loads torch: Home describes the
model from its bundle's files. (Torch is never imported in a background thread: a
page importing it at the same time can get a half-initialised torch.)

A page that needs the job system when it cannot be used (an invalid
``NESTEDAE_*`` setting, a job store that is locked, damaged, read-only or on a
full disk, an unreachable Dask scheduler) shows one message naming the setting
or the file and what to do; the pages that need no jobs are not affected.
"""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

_ROOT = Path(__file__).resolve().parent
if str(_ROOT) not in sys.path:  # `app` is a plain folder next to this script
    sys.path.insert(0, str(_ROOT))

from app.navigation import ROOT as _APP_ROOT  # noqa: E402  (light: the menu comes before the heavy imports)
from app.navigation import build_navigation  # noqa: E402
from nestedae_core.api import JobStoreError  # noqa: E402

#: The browser tab's icon, shipped with the app (a Material icon would be fetched from a font server).
PAGE_ICON = _APP_ROOT / "app" / "static" / "icon.png"

st.set_page_config(
    page_title="NestedAE Studio",
    page_icon=str(PAGE_ICON),
    layout="wide",
    initial_sidebar_state="expanded",
    menu_items={
        "About": "NestedAE Studio: nested autoencoders for multi-scale halide-perovskite modelling "
        "(Thota, Sharma Priyadarshini & Hernandez, Mater. Horiz. 11, 700, 2024)."
    },
)
# The menu first thing, before torch and the library load: a cold start shows the real menu at once,
# never Streamlit's list of the raw file names in pages/.
page = build_navigation()

from app import figure_export, jobs_state, state, ui  # noqa: E402  (no torch: Home reads the model's files only)

state.sync_url()
figure_export.format_control()  # PNG or SVG from every figure's camera button
jobs_state.render_identity()
try:
    page.run()
except (jobs_state.JobsUnavailable, JobStoreError) as exc:  # a page that needs jobs: the message, never a traceback
    ui.show_error(exc, jobs_state.jobs_error_hint(exc))
finally:
    jobs_state.startup()  # once per server (cached); after the page so that it never delays it
    if "app.explain_state" in sys.modules:  # a page loaded the explainers (never Home: it needs no torch)
        from app import explain_state

        explain_state.warm_up()  # shap's exact explainer compiled once per server, in the background
