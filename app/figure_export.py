"""Figure downloads: every plotly figure of the app downloads as PNG or SVG under a name that says what it is.

Plotly's modebar has one image button (the camera); its format and file name
come from the chart's config. :func:`chart_config` names the file after the
figure (the page and figure key, then its title, e.g.
``explain-waterfall-Why-band-gap-PBE-1.766-eV-for-MAPbI3.svg``), and the sidebar's
"Figure downloads" choice (:func:`format_control`) sets PNG or SVG for every
figure. Both formats are drawn by plotly.js in the browser, so they work offline
with no extra package.
"""
from __future__ import annotations

import re
from typing import Any

import streamlit as st

from nestedae_core.api import figure_filename

__all__ = ["FORMAT_KEY", "FORMATS", "chart_config", "figure_name", "format_control", "image_format"]

#: Session key of the chosen download format.
FORMAT_KEY = "figures.image_format"
#: Offered formats: label -> plotly.js format.
FORMATS = {"PNG": "png", "SVG": "svg"}
_TAG = re.compile(r"<[^>]+>")


def figure_name(fig: Any, key: str | None = None) -> str:
    """File name stem of a figure: its key (``predict.bars`` -> ``predict-bars``) and its title, file-safe."""
    title = ""
    try:
        title = fig.layout.title.text or ""
    except AttributeError:
        pass
    title = _TAG.sub(" ", str(title))
    return figure_filename((key or "").replace(".", "-"), title[:80]) if (key or title) else "nestedae-figure"


def image_format() -> str:
    """The plotly.js format of the camera button: ``png`` (default) or ``svg``."""
    return FORMATS.get(str(st.session_state.get(FORMAT_KEY, "PNG")), "png")


def chart_config(fig: Any, key: str | None = None, fmt: str | None = None) -> dict[str, Any]:
    """Plotly config of an app figure: no plotly logo; the camera button saves ``fmt`` (default: the
    sidebar's choice) as ``<figure_name>.<fmt>``, PNG at twice the screen resolution."""
    fmt = fmt or image_format()
    options: dict[str, Any] = {"format": fmt, "filename": figure_name(fig, key)}
    if fmt == "png":
        options["scale"] = 2
    return {"displaylogo": False, "toImageButtonOptions": options}


def format_control() -> None:
    """The sidebar's "Figure downloads" choice (PNG or SVG for the camera button of every figure)."""
    st.sidebar.radio("Figure downloads", list(FORMATS), key=FORMAT_KEY, horizontal=True,
                     help="Format of the camera button at the top right of every figure: PNG (an image) or SVG "
                          "(vector graphics, for papers and slides). The file is named after the figure.")
