"""Small Streamlit helpers every page uses: errors, tables with CSV download, citations, empty states.

* :func:`user_errors` - ``with user_errors():`` shows any
  :class:`~nestedae_core.errors.NestedAEError` as ``st.error`` plus a hint,
  never a traceback (other exceptions are bugs and propagate).
* :func:`escape_markdown` - text a user typed, uploaded or put in the URL (or a
  library message quoting it) made safe to put in any Streamlit element that
  renders Markdown: it shows as typed, never as a link, image, icon or format.
* :func:`table_with_download` - ``st.dataframe`` plus a CSV download button.
* :func:`plot` - ``st.plotly_chart`` with the app's defaults.
* :func:`citation` / :func:`missing_dataset` - dataset citation and the
  empty state of a dataset that is not on this machine.
* :func:`apply_filters` - pure filtering of a table (text, numeric ranges, categories).
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
import streamlit as st

from nestedae_core.api import (
    DATA_DIR_ENV, SITE_IONS, BundleError, CompositionError, ConfigError, DataError, DataMissingError, InputError,
    NestedAEError, TrainingError, citation_text, csv_bytes as csv_bytes_of, dataset_info,
)

__all__ = [
    "escape_markdown",
    "ERROR_HINTS",
    "error_hint",
    "show_error",
    "user_errors",
    "table_with_download",
    "plot",
    "unit_column_config",
    "citation",
    "missing_dataset",
    "fix_commands",
    "apply_filters",
    "csv_bytes",
]

# Characters with a meaning anywhere in Streamlit's Markdown: links and images ([ ]), autolinks and
# HTML (< >), emphasis and code (* _ ` ~; an underscore inside a word, as in ETL_stack, never is),
# tables (|), LaTeX ($), entities (&), headings (#), colour and icon directives (:red[...]).
_MD_ESCAPE = re.compile(r"[\\`*\[\]<>#|~$&]|:(?=\S)|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# Block markers at the start of a line (indentation is dropped: four spaces would make a code block).
_MD_LINE_START = re.compile(r"^[ \t]*(?:([-+=])|(\d+)([.)]))?", re.MULTILINE)
# GitHub-flavoured Markdown turns bare URLs, www. names and e-mail addresses into links, and
# Streamlit turns :material/name: and :emoji: into icons, even when their characters are escaped;
# an invisible word joiner (U+2060) inside the trigger stops them.
_WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?<=:/)(?=/)|(?<=www)(?=\.)|(?<=@)|(?<=:)(?=[A-Za-z0-9+_-])", re.IGNORECASE)


def escape_markdown(text: object) -> str:
    """``text`` made inert for Streamlit Markdown (``st.markdown``, ``st.error``, captions, labels...).

    Every character with a Markdown meaning is backslash-escaped, so that the
    text shows exactly as given; bare URLs, ``www.`` names and e-mail
    addresses get an invisible word joiner so that they are not turned into
    links. Use it for anything a user typed, uploaded or put in the URL, and
    for library messages that quote such text.
    """
    value = str(text).replace("\r\n", "\n").replace("\r", "\n")
    value = _AUTOLINK.sub(_WORD_JOINER, value)
    value = _MD_ESCAPE.sub(lambda m: "\\" + m.group(0), value)
    value = _MD_LINE_START.sub(_escape_line_start, value)
    return value.replace("\n", "  \n")  # a line break, not a new paragraph


def _escape_line_start(match: re.Match[str]) -> str:
    if match.group(1):
        return "\\" + match.group(1)
    if match.group(2):
        return match.group(2) + "\\" + match.group(3)
    return ""


#: Default hint shown under an error, by error class (most specific first).
ERROR_HINTS: list[tuple[type[NestedAEError], str]] = [
    (CompositionError, "Formulas look like MAPbI3, Cs0.05FA0.79MA0.16PbBr0.51I2.49, "
                       "Cs0.05(FA0.83MA0.17)0.95Pb(I0.83Br0.17)3 or (FAPbI3)0.85(MAPbBr3)0.15; "
                       "ions: " + " | ".join(" ".join(ions) for ions in SITE_IONS.values()) + "."),
    (DataMissingError, f"Run `nestedae data fetch NAME` on a machine with internet, or set "
                       f"{DATA_DIR_ENV} to a folder holding the dataset files, then reload."),
    (DataError, "Check the dataset files (`nestedae data list` shows their status)."),
    (BundleError, "Train and save a model on the Train page, or pick another saved model."),
    (ConfigError, "Change the highlighted setting and try again."),
    (TrainingError, "Try a smaller learning rate or fewer epochs, or check the data."),
    (InputError, "Check the input values and try again."),
]


def error_hint(exc: BaseException) -> str | None:
    """The default hint for ``exc`` from :data:`ERROR_HINTS`, or ``None``."""
    for cls, hint in ERROR_HINTS:
        if isinstance(exc, cls):
            return hint
    return None


def show_error(exc: BaseException, hint: str | None = None) -> None:
    """Show ``exc`` as an error box and a hint below it (``hint`` or the default for its class).

    The message is shown as plain text (:func:`escape_markdown`): library
    messages quote what the user typed. ``hint`` is the app's own Markdown.
    """
    st.error(escape_markdown(exc), icon=":material/error:")
    text = hint if hint is not None else error_hint(exc)
    if text:
        st.caption(f"Hint: {text}")


@contextmanager
def user_errors(hint: str | None = None) -> Iterator[None]:
    """Context manager: show a :class:`NestedAEError` raised in the block as a message, not a traceback.

    The rest of the block is skipped; the page goes on after the ``with``.
    Any other exception is a bug and propagates.

    Example::

        with user_errors("Pick a dataset that is present."):
            df = state.load_dataset(name)
            st.dataframe(df)
    """
    try:
        yield
    except NestedAEError as exc:
        show_error(exc, hint)


def csv_bytes(df: pd.DataFrame) -> bytes:
    """``df`` as UTF-8 CSV bytes, without the index; text cells a spreadsheet would run as a formula get a ``'`` in front."""
    return csv_bytes_of(df)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "table"


def table_with_download(
    df: pd.DataFrame,
    name: str,
    *,
    caption: str | None = None,
    key: str | None = None,
    hide_index: bool = True,
    column_config: Mapping[str, Any] | None = None,
    height: int | str = "auto",
    label: str = "Download CSV",
    download: pd.DataFrame | None = None,
    static: bool = False,
) -> None:
    """Show ``df`` with ``st.dataframe`` and a button that downloads it as ``<name>.csv``.

    ``name`` also makes the widget key unique on the page (pass ``key`` when the
    same table name appears twice). ``download`` is the frame to put in the CSV
    when it differs from the one shown (e.g. all columns of a table shown in part).
    ``static``: a plain ``st.table`` instead (no sorting nor scrolling, ``column_config`` and
    ``height`` unused), for a short table on a page that should not load the data grid's
    JavaScript (Home, the first page).
    """
    slug = _slug(name)
    if static:
        st.table(df, hide_index=hide_index)
    else:
        st.dataframe(df, hide_index=hide_index, column_config=dict(column_config or {}), height=height)
    # a row that wraps, not fixed columns: in a narrow column a fixed share cut the button's label to "C.."
    row = st.container(horizontal=True, vertical_alignment="center", gap="medium")
    with row:
        st.download_button(
            label,
            # made on click (Streamlit runs the callable then), not on every run of the page
            data=functools.partial(csv_bytes, df if download is None else download),
            file_name=f"{slug}.csv",
            mime="text/csv",
            key=key or f"download-{slug}",
            icon=":material/download:",
            on_click="ignore",
        )
        st.caption(caption or f"{len(df):,} rows × {df.shape[1]} columns", width="stretch")


def unit_column_config(
    columns: Sequence[str],
    labels: Mapping[str, str] | None = None,
    info: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """``column_config`` that titles known columns with their unit, e.g. ``PCE (%)``.

    Numeric columns listed in ``info`` (default :data:`app.figures.COLUMN_INFO`)
    get their label and unit; ``labels`` renames any other column.
    """
    from app.figures import COLUMN_INFO, axis_title

    known = info or COLUMN_INFO
    config: dict[str, Any] = {}
    for column in columns:
        if labels and column in labels:
            config[column] = st.column_config.Column(labels[column])
        elif column in known:
            config[column] = st.column_config.NumberColumn(axis_title(column, known), format="%.4g")
    return config


def plot(fig: Any, *, key: str | None = None) -> None:
    """Show a plotly figure at full width with the Streamlit theme."""
    from app.figure_export import chart_config  # the camera button's format (PNG/SVG) and a file name that says what it is

    st.plotly_chart(fig, key=key, width="stretch", config=chart_config(fig, key))


def citation(name: str) -> None:
    """Show the citation of dataset ``name`` (:func:`nestedae_core.data.citation_text`)."""
    text = citation_text(name)
    st.caption("**Data source.** " + text.replace("\n", "  \n"))


def fix_commands(name: str) -> str:
    """Markdown telling how to make dataset ``name`` available."""
    info = dataset_info(name)
    return (
        f"Run `nestedae data fetch {name}` on a machine with internet access, or copy "
        f"`{info.filename}` into a folder and set `{DATA_DIR_ENV}` to it, then reload this page."
    )


def missing_dataset(name: str, message: str | None = None) -> None:
    """Empty state for a dataset that is not on this machine: what is missing and the fix (not an error)."""
    info = dataset_info(name)
    st.info(
        f"**{info.title}** (`{name}`) is missing on this machine.  \n{fix_commands(name)}",
        icon=":material/cloud_download:",
    )
    if message:
        st.caption(message)


def apply_filters(
    df: pd.DataFrame,
    *,
    text_column: str | None = None,
    text: str = "",
    ranges: Mapping[str, tuple[float, float]] | None = None,
    full_ranges: Mapping[str, tuple[float, float]] | None = None,
    categories: Mapping[str, Sequence[Any]] | None = None,
) -> pd.DataFrame:
    """Rows of ``df`` that pass every filter (a new frame; ``df`` is not modified).

    Args:
        text_column: column searched for ``text`` (case-insensitive substring; empty text keeps all).
        ranges: column -> (low, high), inclusive. Rows with a missing value in
            that column are kept only while the range equals ``full_ranges[column]``
            (the slider is untouched), so that an untouched slider never hides rows.
        full_ranges: column -> (min, max) of the whole column.
        categories: column -> allowed values (an empty selection keeps all).
    """
    mask = pd.Series(True, index=df.index)
    if text_column and text.strip():
        mask &= df[text_column].astype(str).str.contains(text.strip(), case=False, regex=False, na=False)
    for column, (low, high) in (ranges or {}).items():
        values = pd.to_numeric(df[column], errors="coerce")
        inside = values.between(low, high)
        full = (full_ranges or {}).get(column)
        if full is not None and low <= full[0] and high >= full[1]:
            inside |= values.isna()
        mask &= inside
    for column, allowed in (categories or {}).items():
        if allowed:
            mask &= df[column].isin(list(allowed))
    return df.loc[mask]


#: Rows per page offered by :func:`paged_table`.
PAGE_SIZES = (25, 50, 100, 250)
#: Pixel height of one row of ``st.dataframe`` (and of its header).
ROW_PX = 35


def sort_and_page(df: pd.DataFrame, *, sort_by: str | None, descending: bool, page: int, page_size: int) -> pd.DataFrame:
    """Rows ``page`` (1-based) of ``df`` sorted by column ``sort_by`` (stable; missing values last; ``None``: file order)."""
    if sort_by is not None and sort_by in df.columns:
        values = df[sort_by]
        numeric = pd.to_numeric(values, errors="coerce")
        key = numeric if numeric.notna().sum() >= values.notna().sum() else values.astype(str).str.lower().where(values.notna())
        order = key.sort_values(ascending=not descending, kind="stable", na_position="last").index
        df = df.loc[order]
    start = (max(1, page) - 1) * page_size
    return df.iloc[start:start + page_size]


def paged_table(df: pd.DataFrame, sortable: Mapping[str, str], *, key: str, filters: Any = None) -> tuple[pd.DataFrame, str]:
    """Sort, page-size and page controls for ``df``; returns (the rows of the page, one line saying which).

    ``sortable``: label -> column offered in "Sort by" (columns ``df`` lacks are left out).
    ``filters``: what selected ``df``; when it changes, the table goes back to its first page.
    """
    options = {label: column for label, column in sortable.items() if column in df.columns}
    c1, c2, c3, c4 = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
    choice = c1.selectbox("Sort by", ["file order", *options], key=f"{key}.sort")
    descending = c2.toggle("Largest first", value=True, key=f"{key}.desc", disabled=choice == "file order",
                           help="Off: smallest (or A to Z) first. Rows without a value come last.")
    size = c3.selectbox("Rows per page", PAGE_SIZES, index=1, key=f"{key}.size")
    pages = max(1, -(-len(df) // size))
    if st.session_state.get(f"{key}.filters") != filters or st.session_state.get(f"{key}.page", 1) > pages:
        st.session_state[f"{key}.page"] = 1  # other rows: start from the first page
    st.session_state[f"{key}.filters"] = filters
    page = int(c4.number_input(f"Page (of {pages:,})", 1, pages, 1, key=f"{key}.page"))
    rows = sort_and_page(df, sort_by=options.get(choice), descending=descending, page=page, page_size=size)
    first = (page - 1) * size + 1 if len(rows) else 0
    return rows, f"rows {first:,}–{first + len(rows) - 1:,} of {len(df):,}" + (f", sorted by {choice}" if choice in options else "")
