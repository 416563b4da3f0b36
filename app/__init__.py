"""NestedAE Studio: the Streamlit dashboard on top of :mod:`nestedae_core`.

Shared building blocks for the pages in ``pages/``:

* :mod:`app.navigation` - the page list (one entry per page) and ``st.navigation``;
* :mod:`app.state` - typed accessors for ``st.session_state`` (the chosen
  composition, mirrored to the URL) and cached dataset loaders;
* :mod:`app.ui` - error display, tables with CSV download, citations, empty states;
* :mod:`app.figures` - plotly figure builders (plain functions, unit-tested).

The app only calls nestedae_core's public API; nestedae_core never imports Streamlit.
"""


def _leave_multipage_v1() -> None:
    """Work around a Streamlit quirk: a ``pages/`` folder next to the entry script.

    Until the entry script has called ``st.navigation`` once in this server
    process, Streamlit treats an app with a ``pages/`` folder as an old-style
    (v1) multipage app: the first session that opens ``/data`` runs
    ``pages/data.py`` directly, without ``streamlit_app.py`` (no page config,
    no menu, no URL sync). This package is imported by every page, so on that
    first import inside a script run we switch Streamlit to ``st.navigation``
    mode and rerun; the rerun goes through the entry script and lands on the
    same page (page hashes are derived from the URL path in both modes).
    A no-op outside Streamlit, once ``st.navigation`` ran, and if Streamlit's
    internals change.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
    except ImportError:  # pragma: no cover - Streamlit internals moved
        return
    if get_script_run_ctx() is None or not getattr(PagesManager, "uses_pages_directory", False):
        return
    PagesManager.uses_pages_directory = False
    import streamlit as st

    st.rerun()


_leave_multipage_v1()
