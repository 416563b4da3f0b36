"""The "Download report" button of Predict, Explain, Screen (and Train): a self-contained HTML file.

The report is built only when the button is clicked (Streamlit runs the callable
on click), from the library's builders in :mod:`nestedae_core.report`.
"""
from __future__ import annotations

import html
import logging
from collections.abc import Callable

import streamlit as st

from nestedae_core.api import NestedAEError, figure_filename

__all__ = ["report_button"]

logger = logging.getLogger(__name__)


def _safe(make: Callable[[], str]) -> Callable[[], str]:
    """``make``, or a one-paragraph HTML page saying why the report could not be built."""

    def build() -> str:
        try:
            return make()
        except NestedAEError as exc:
            return f"<!DOCTYPE html><html><body><p>The report could not be built: {html.escape(str(exc))}</p></body></html>"

    return build


def report_button(make: Callable[[], str], name: str, *, key: str, label: str = "Download report",
                  help: str | None = None, disabled: bool = False) -> None:
    """A download button for the HTML report that ``make()`` returns; the file is ``<name>.html`` (``name`` made file-safe)."""
    st.download_button(
        label, data=_safe(make), file_name=f"{figure_filename(name)}.html", mime="text/html", key=key, on_click="ignore",
        icon=":material/summarize:", disabled=disabled,
        help=help or "A single HTML file with the figures (interactive, works offline), the numbers and the model that produced them.",
    )
