"""Session state behind small typed accessors, and cached dataset loaders.

Session state
-------------
Pages never touch ``st.session_state`` keys of other pages directly; they use
these accessors. The chosen composition (shared by Compose, Predict, Explain,
Latents) is a :class:`nestedae_core.chemistry.composition.Composition`, mirrored to the
URL query parameter ``formula`` so that a view can be shared:

* :func:`sync_url` (called by the entry script on every run, before the page)
  reads ``?formula=`` once per session and stores it, then keeps the URL equal
  to the stored composition (page switches clear query parameters);
* :func:`get_composition` / :func:`set_composition` read and write it.
* An unreadable ``?formula=`` chooses nothing: :func:`url_formula_error` keeps
  its error, the URL keeps the text as given (never silently another formula)
  until a composition is chosen, and :func:`stop_for_bad_url_formula` shows the
  message and a box to correct it on pages that need a composition, instead
  of results for a default one.

Cached data
-----------
:func:`load_dataset` returns a dataset as a DataFrame, cached with
``st.cache_data`` keyed on the dataset name (plus the file's location and
modification time, so that a replaced file is re-read). ``st.cache_data`` hands
every caller its own copy, but treat the frames as read-only anyway.
:func:`dataset_site_fractions` caches the site fractions of a dataset's rows
(parsing the device formulas once per file); :func:`dataset_matches` and the
nearest-device lookup of Predict use them through
:mod:`nestedae_core.data.lookup`.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from nestedae_core.api import (
    DATA_DIR_ENV, ETL, HTL, Composition, CompositionError, DataMissingError, SiteTotalError, dataset_info,
    dataset_stamp, dataset_status, formula_column as formula_column_of, matching_rows,
    nearest_devices as nearest_devices_of, parse_formula, read_dataset, site_fractions,
    StackChoice, common_stack as common_stack_of, composition_family, measured_values as measured_values_of,
)
from app.ui import error_hint, escape_markdown

__all__ = [
    "FORMULA_PARAM",
    "get_composition",
    "set_composition",
    "url_formula_error",
    "url_formula_text",
    "composition_error_text",
    "show_url_formula_error",
    "stop_for_bad_url_formula",
    "sync_url",
    "get_value",
    "set_value",
    "available_datasets",
    "load_dataset",
    "dataset_formula_counts",
    "dataset_matches",
    "dataset_site_fractions",
    "formula_column",
    "shared_choice_widget",
    "STACK_LABELS",
    "STACK_SHORT_NAMES",
]

#: URL query parameter that carries the chosen composition.
FORMULA_PARAM = "formula"

_COMPOSITION = "nae.composition"
_URL_READ = "nae.url_read"
_URL_ERROR = "nae.url_error"
_URL_TEXT = "nae.url_text"
_URL_FIX = "nae.url_fix"
_URL_LAST = "nae.url_last"  # the ?formula= this session last read or wrote

#: What the Compose page's check box is called (the dashboard's remedy for off site totals).
SCALE_SITES_LABEL = "Scale each site to its nominal total"


# --------------------------------------------------------------------------- composition


def get_composition(default: Composition | None = None) -> Composition | None:
    """The composition chosen in this session (on Compose or from the URL), else ``default``."""
    value = st.session_state.get(_COMPOSITION)
    return value if isinstance(value, Composition) else default


def set_composition(comp: Composition, *, update_url: bool = True) -> None:
    """Store ``comp`` as the session's composition and (by default) write ``?formula=`` to the URL."""
    if not isinstance(comp, Composition):
        raise TypeError(f"set_composition expects a Composition, got {type(comp).__name__}")
    st.session_state[_COMPOSITION] = comp
    st.session_state.pop(_URL_ERROR, None)
    if update_url and st.query_params.get(FORMULA_PARAM) != comp.formula:
        _write_url(comp.formula)


def _write_url(text: str) -> None:
    st.query_params[FORMULA_PARAM] = text
    st.session_state[_URL_LAST] = text


def url_formula_error() -> CompositionError | None:
    """The :class:`CompositionError` raised by an unreadable ``?formula=``, while no composition has been chosen since."""
    value = st.session_state.get(_URL_ERROR)
    return value if isinstance(value, CompositionError) else None


def url_formula_text() -> str:
    """The formula text of the link this session was opened with (as given; empty when none)."""
    return str(st.session_state.get(_URL_TEXT) or "")


def composition_error_text(exc: CompositionError, *, here: bool = False) -> tuple[str, str]:
    """(message, hint) for a formula the dashboard could not read, in the dashboard's words.

    A site-total problem is described without the API's ``renormalize=True``;
    its hint names the check box of the Compose page instead (``here``: the
    page showing the message is Compose).
    """
    hint = error_hint(exc) or ""
    if isinstance(exc, SiteTotalError):
        where = "" if here else " on the Compose page"
        return (f"{exc.describe()}.",
                f"To accept site totals that are off and scale each site, tick '{SCALE_SITES_LABEL}'{where}. {hint}")
    return str(exc), hint


def show_url_formula_error(*, here: bool = False) -> None:
    """Show why the formula of the link could not be read (the user's text shown as plain text)."""
    exc = url_formula_error()
    if exc is None:
        return
    message, hint = composition_error_text(exc, here=here)
    st.error(escape_markdown(f"The formula in the link (?{FORMULA_PARAM}={url_formula_text()}) could not be read: {message}"),
             icon=":material/link_off:")
    st.caption(f"Hint: {hint} No results are shown until a composition is chosen.")


def _on_url_fix() -> None:
    text = st.session_state.get(_URL_FIX, "")
    st.session_state[_URL_TEXT] = text
    try:
        set_composition(parse_formula(text))
    except CompositionError as exc:
        st.session_state[_URL_ERROR] = exc
        if text and st.query_params.get(FORMULA_PARAM) != text:
            _write_url(text)


def stop_for_bad_url_formula() -> None:
    """On a page that needs a composition: if ``?formula=`` could not be read and none was chosen
    since, show the message and a box to correct the formula, then stop the page.

    No results are computed for any other composition meanwhile.
    """
    if url_formula_error() is None or get_composition() is not None:
        return
    show_url_formula_error()
    st.session_state.setdefault(_URL_FIX, url_formula_text())
    st.text_input("Formula", key=_URL_FIX, on_change=_on_url_fix,
                  help="Correct the formula and press Enter, or choose one on the Compose page.")
    st.stop()


def sync_url() -> None:
    """Read ``?formula=`` on the session's first run, and whenever a link inside the app brings another formula
    (e.g. Design's "Predict it"); otherwise keep the URL equal to the stored composition.

    Call once per run from the entry script, before the page runs. An unreadable
    formula in the URL is not an error of the app: it chooses no composition,
    its error is kept for :func:`url_formula_error`, and the URL keeps the text
    as given (also across page switches) until a valid composition is chosen.
    """
    ss = st.session_state
    text = st.query_params.get(FORMULA_PARAM)
    if not ss.get(_URL_READ) or (text and text != ss.get(_URL_LAST)):
        ss[_URL_READ] = True
        if text:
            ss[_URL_TEXT] = ss[_URL_LAST] = text
            try:
                ss[_COMPOSITION] = parse_formula(text)
                ss.pop(_URL_ERROR, None)
            except CompositionError as exc:
                ss[_URL_ERROR] = exc
            return
    comp = get_composition()
    if comp is not None:
        if st.query_params.get(FORMULA_PARAM) != comp.formula:
            _write_url(comp.formula)
    elif url_formula_error() is not None and url_formula_text() and st.query_params.get(FORMULA_PARAM) != url_formula_text():
        _write_url(url_formula_text())


# --------------------------------------------------------------------------- other values


def get_value(key: str, default: Any = None) -> Any:
    """A page's own session value under the namespaced key ``"nae.<key>"``."""
    return st.session_state.get(f"nae.{key}", default)


def set_value(key: str, value: Any) -> None:
    """Store a page's own session value under ``"nae.<key>"``."""
    st.session_state[f"nae.{key}"] = value


# --------------------------------------------------------------------------- datasets

#: Datasets that hold tabular data worth browsing (generated data lives on the Learn page).
_BROWSABLE = ("mhp-pbe-paper", "mhp-pbe", "mhp-hse", "mhp-dft", "psc-devices", "psc-gaps", "elem-prop")


def available_datasets(names: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """Names of the datasets present on this machine (never downloads), in registry order.

    ``names`` restricts the candidates (default: every file dataset worth browsing).
    """
    wanted = tuple(names) if names is not None else _BROWSABLE
    return [s.name for s in dataset_status() if s.available and s.name in wanted]


def _file_key(name: str) -> str:
    """Cache key of dataset ``name``: its file's (or, when derived, its source files') path and modification time."""
    stamp = dataset_stamp(name)
    if "missing" in stamp.split("|"):
        info = dataset_info(name)
        files = ", ".join(dataset_info(s).filename for s in info.sources) if info.kind == "derived" else info.filename
        raise DataMissingError(
            f"dataset '{name}' is not available on this machine: run `nestedae data fetch {name}` "
            f"or set {DATA_DIR_ENV} to a folder holding {files}"
        )
    return stamp


def load_dataset(name: str) -> pd.DataFrame:
    """Dataset ``name`` as a DataFrame, cached per (name, file, mtime); never downloads.

    Raises:
        DataMissingError: the dataset is not on this machine (the message says how to get it).
        DataError: the file fails its checksum or cannot be read.
    """
    return _load_cached_keyed(name, _file_key(name))


@st.cache_data(show_spinner="Loading dataset…", max_entries=16)
def _load_cached_keyed(name: str, stamp: str) -> pd.DataFrame:
    return read_dataset(name, download=False)


def formula_column(name: str) -> str | None:
    """The column holding the formula in dataset ``name`` (``None`` if it has none)."""
    return formula_column_of(name)


def dataset_formula_counts(name: str) -> dict[str, int]:
    """Distinct formulas of dataset ``name`` -> number of rows, most frequent first (ties alphabetical)."""
    if formula_column(name) is None:
        return {}
    return dict(_formulas_cached(name, _file_key(name)))


@st.cache_data(show_spinner=False, max_entries=16)
def _formulas_cached(name: str, stamp: str) -> list[tuple[str, int]]:
    df = read_dataset(name, download=False)
    counts = df[formula_column(name)].dropna().astype(str).value_counts()
    return sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))


def dataset_matches(name: str, comp: Composition) -> pd.DataFrame:
    """Rows of dataset ``name`` whose composition equals ``comp`` (:func:`nestedae_core.data.lookup.matching_rows`)."""
    return matching_rows(load_dataset(name), dataset_site_fractions(name), comp)


def dataset_site_fractions(name: str) -> pd.DataFrame:
    """The 14 site-fraction columns (K ... I; A and B amounts, X fractions of the site) of each row; cached.

    See :func:`nestedae_core.data.lookup.site_fractions` (device formulas are
    parsed; rows that do not parse are NaN). Index aligned with :func:`load_dataset`.
    """
    return _fractions_cached(name, _file_key(name))


@st.cache_data(show_spinner="Reading compositions…", max_entries=16)
def _fractions_cached(name: str, stamp: str) -> pd.DataFrame:
    return site_fractions(read_dataset(name, download=False), formula_column_of(name))


def nearest_devices(comp: Composition, *, etl: str | None = None, htl: str | None = None,
                    same_stack_only: bool = False) -> pd.DataFrame:
    """The measured devices of ``psc-devices`` nearest to ``comp`` (:func:`nestedae_core.data.lookup.nearest_devices`)."""
    name = "psc-devices"
    return nearest_devices_of(load_dataset(name), dataset_site_fractions(name), comp, etl=etl, htl=htl,
                                  same_stack_only=same_stack_only)


def measured_values(name: str, comp: Composition, columns: tuple[str, ...],
                    where: tuple[tuple[str, str], ...] = ()) -> pd.DataFrame:
    """What dataset ``name`` holds for exactly ``comp`` (:func:`nestedae_core.data.composition_devices.measured_values`)."""
    return measured_values_of(load_dataset(name), dataset_site_fractions(name), comp, columns,
                                               where=dict(where))


def common_stack(comp: Composition, etls: list[str], htls: list[str]) -> StackChoice | None:
    """The stack most used by ``comp``'s family in ``psc-devices`` (:func:`nestedae_core.data.composition_devices.common_stack`);
    ``None`` without the device data."""
    name = "psc-devices"
    if name not in available_datasets([name]):
        return None
    return _common_stack_cached(composition_family(comp), comp.formula, tuple(etls), tuple(htls), _file_key(name))


@st.cache_data(show_spinner=False, max_entries=64)
def _common_stack_cached(family: str, _formula: str, etls: tuple[str, ...], htls: tuple[str, ...],
                         stamp: str) -> StackChoice | None:
    # keyed by family (``_formula``, one member of it, is not hashed): every composition of a family shares the answer
    name = "psc-devices"
    return common_stack_of(load_dataset(name), dataset_site_fractions(name), parse_formula(_formula),
                                            etls=etls, htls=htls)


# ---------------------------------------------------------------------- shared device stack

#: Widget label of each device-stack input.
STACK_LABELS: dict[str, str] = {ETL: "Electron transport layer (ETL)", HTL: "Hole transport layer (HTL)"}
#: Short name of each device-stack input (table headers, captions).
STACK_SHORT_NAMES: dict[str, str] = {ETL: "ETL", HTL: "HTL"}


def shared_choice_widget(container: Any, label: str, options: list[str], *, column: str, widget_key: str, default: str, **kwargs: Any) -> str:
    """A selectbox for a categorical input (e.g. the ETL stack) whose choice is shared by pages.

    The choice lives under a plain session key (``nae.choice.<column>``), which
    survives page switches (widget keys do not), and is written back whenever the
    widget changes; Predict and Explain therefore show the same stack.
    """
    shared_key = f"choice.{column}"
    current = get_value(shared_key, default)
    st.session_state[widget_key] = current if current in options else default

    def _store() -> None:
        set_value(shared_key, st.session_state[widget_key])

    return container.selectbox(label, options, key=widget_key, on_change=_store, **kwargs)


def open_composition(page: str, formula: str, *, etl: str | None = None, htl: str | None = None) -> None:
    """Go to ``page`` (e.g. ``"pages/predict.py"``) on ``formula`` with the device stack ``etl``/``htl`` chosen there
    (the shared choices of :func:`shared_choice_widget`), as a proposal of the Design page was predicted."""
    for column, value in ((ETL, etl), (HTL, htl)):
        if value:
            set_value(f"choice.{column}", value)
    st.switch_page(page, query_params={FORMULA_PARAM: formula})

