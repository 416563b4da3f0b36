"""Cached attribution and latent-space computations of the Explain, Latents and Learn pages.

Every heavy call of :mod:`nestedae_core.explain` and
:mod:`nestedae_core.explain.latents` goes through one of these functions,
cached with ``st.cache_data`` (shared by all sessions) and keyed by plain
strings: the model's bundle path plus its manifest's modification time
(:func:`model_key`), never the model object itself; the model is fetched
inside from :func:`app.model_state.load_model` (itself cached).

Rows of a stage (:func:`stage_rows`): :func:`nestedae_core.perovskite.rows.stage_rows`
decides them (the stage's dataset when it is on this machine, else the model's
stored background, with a note); this module only loads and caches the
dataset. Global attributions are computed on a bounded, seeded sample of those
rows (:meth:`~nestedae_core.perovskite.rows.StageRows.sample`).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from app import model_state, quantities, state, ui
from nestedae_core.api import (
    ActiveLatents, Attribution, CompositionError, DataError, InputError, NestedAE, NestedAEError, StageRows,
    active_latents, dataset_stamp, explain_latents, explain_stage_output, explainer_comparison, formula_column,
    PHASE, PHASE_LABEL, latent_correlations, latent_traversal, load_dataset_table, parse_formula, pca_projection, phase_name,
    query_frame,
    stage_rows as rows_of_stage, warm_up_explainer,
)

__all__ = [
    "model_key",
    "current_model",
    "stage_rows",
    "query_row",
    "local_attribution",
    "local_latent_attributions",
    "global_attribution",
    "global_latent_attributions",
    "comparison",
    "latent_coordinates",
    "row_predictions",
    "correlations",
    "active",
    "traversal",
    "warm_up",
    "Query",
    "composition_controls",
    "model_header",
]


def model_key(path: str | Path, datasets: tuple[str, ...] = ()) -> str:
    """Cache key of a bundle: ``<resolved path>@<manifest mtime>``, then ``|<dataset>=<file stamp>`` for each of
    ``datasets`` (so a re-saved bundle, or a dataset that appears, disappears or changes, gives a new key)."""
    p = Path(path).resolve()
    try:
        stamp = (p / "manifest.json").stat().st_mtime_ns
    except OSError:
        stamp = 0
    return f"{p}@{stamp}" + "".join(f"|{d}={_dataset_stamp(d)}" for d in datasets)


def _path_of(key: str) -> str:
    return key.split("|", 1)[0].rsplit("@", 1)[0]


def _model(key: str) -> NestedAE:
    return model_state.load_model(_path_of(key))


def current_model() -> tuple[NestedAE, str]:
    """This session's model and its cache key (raises BundleError when missing).

    The key covers the bundle and the files of its stages' datasets (see :func:`model_key`).
    """
    path = model_state.active_model_path()
    model = model_state.load_model(path)
    return model, model_key(path, tuple(dict.fromkeys(s.dataset for s in model.spec.stages)))


@st.cache_resource(show_spinner=False)
def _warm_up_thread() -> threading.Thread:
    thread = threading.Thread(target=warm_up_explainer, name="nestedae-shap-warm-up", daemon=True)
    thread.start()
    return thread


def warm_up() -> None:
    """Start :func:`nestedae_core.explain.warm_up` once per server process, in a background thread.

    shap compiles its explainers (numba) on first use: several seconds on a
    busy 2-core machine. Doing it early keeps that out of the first real explanation.
    Explanations never wait for it: the default permutation explainer needs no
    numba, and an exact one that comes while the warm-up compiles waits only on
    numba's own compile lock (then reuses the compiled kernels). Waiting here
    held a session's script thread (and so every page it clicked) until the
    compilation ended: minutes on a fresh, busy 2-core server.
    """
    _warm_up_thread()


# --------------------------------------------------------------------------- rows


def _dataset_stamp(name: str) -> str:
    if name.startswith("synthetic"):
        return "generated"
    try:
        stamp = dataset_stamp(name)  # a derived dataset: the stamps of its source files
    except NestedAEError:  # an unknown name or a bad file: the loader reports it
        return "?"
    return "missing" if "missing" in stamp.split("|") else stamp


@st.cache_data(show_spinner="Loading the stage's data…", max_entries=16)
def _dataset_table(name: str, stamp: str) -> pd.DataFrame:
    return load_dataset_table(name, download=False)


@st.cache_data(show_spinner=False, max_entries=16)
def _stage_rows(key: str, stage: int) -> StageRows:
    model = _model(key)
    name = model.spec.stages[stage].dataset
    table = fractions = reason = None
    stamp = _dataset_stamp(name)
    if stamp != "missing":
        try:
            table = _dataset_table(name, stamp)
            if formula_column(name) is not None:
                fractions = state.dataset_site_fractions(name)
        except DataError as exc:
            table, reason = None, str(exc)
    return rows_of_stage(model, stage, table, site_fractions=fractions, reason=reason)


def stage_rows(key: str, stage: int) -> StageRows:
    """The rows of ``stage`` (dataset or background, see :func:`nestedae_core.perovskite.rows.stage_rows`); cached."""
    return _stage_rows(key, int(stage))


def query_row(model: NestedAE, formula: str, categorical: tuple[tuple[str, str], ...] = ()) -> pd.DataFrame:
    """Raw-input row of one composition (and device stack) for this model."""
    return query_frame(model, [formula], categorical=dict(categorical) or None)


# --------------------------------------------------------------------------- attributions


@st.cache_data(show_spinner="Computing attributions…", max_entries=256)
def local_attribution(key: str, formula: str, categorical: tuple[tuple[str, str], ...], stage: int, output: str,
                      inputs: str, method: str, member: int | None) -> Attribution:
    """Attribution of one output of ``stage`` for one composition (+ stack)."""
    model = _model(key)
    frame = query_row(model, formula, categorical)
    return explain_stage_output(model, stage, output, frame, inputs=inputs, method=method, member=member)  # type: ignore[arg-type]


@st.cache_data(show_spinner="Computing latent attributions…", max_entries=128)
def local_latent_attributions(key: str, formula: str, categorical: tuple[tuple[str, str], ...], stage: int, inputs: str,
                              method: str, member: int) -> dict[str, Attribution]:
    """Every latent of ``stage`` for one composition, one explainer pass."""
    model = _model(key)
    frame = query_row(model, formula, categorical)
    return explain_latents(model, frame, stage, method=method, member=member, inputs=inputs)  # type: ignore[arg-type]


@st.cache_data(show_spinner="Computing attributions over the sample…", max_entries=64)
def global_attribution(key: str, stage: int, output: str, inputs: str, method: str, member: int | None, n: int) -> Attribution:
    """Attributions of one output over a seeded sample of at most ``n`` rows of the stage's data."""
    model = _model(key)
    frame = stage_rows(key, stage).sample(n)
    return explain_stage_output(model, stage, output, frame, inputs=inputs, method=method, member=member)  # type: ignore[arg-type]


@st.cache_data(show_spinner="Computing latent attributions over the sample…", max_entries=32)
def global_latent_attributions(key: str, stage: int, inputs: str, method: str, member: int, n: int) -> dict[str, Attribution]:
    """Every latent of ``stage`` over a seeded sample of at most ``n`` rows."""
    model = _model(key)
    frame = stage_rows(key, stage).sample(n)
    return explain_latents(model, frame, stage, method=method, member=member, inputs=inputs)  # type: ignore[arg-type]


@st.cache_data(show_spinner="Running every explainer on this row…", max_entries=64)
def comparison(key: str, formula: str, categorical: tuple[tuple[str, str], ...], stage: int, output: str, inputs: str,
               methods: tuple[str, ...], member: int | None) -> pd.DataFrame:
    """:func:`nestedae_core.explain.explainer_comparison` of one output of ``stage`` (w.r.t. ``inputs``: ``stage`` or
    ``chain``) for one composition (+ phase and stack)."""
    model = _model(key)
    frame = query_row(model, formula, categorical)
    return explainer_comparison(model, frame, stage=stage, output=output, inputs=inputs,  # type: ignore[arg-type]
                                methods=methods, member=member)


# --------------------------------------------------------------------------- latents


@st.cache_data(show_spinner="Computing latents…", max_entries=64)
def latent_coordinates(key: str, stage: int, space: str, n_components: int, member: int | None,
                       query: tuple[str, tuple[tuple[str, str], ...]] | None) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Any]]:
    """Coordinates of the stage's rows (and of the query composition) in latent space.

    ``space``: ``raw`` (the member's latents, columns ``<stage>.z1`` ...) or ``pca``
    (columns ``PC1`` ..; the query is projected with the same fit, by appending it
    to the rows). Returns (rows' coordinates, query coordinates or None, info:
    ``explained_variance_ratio``, ``components``, ``latent_names``, ``query_error``).
    """
    model = _model(key)
    stage_frame = stage_rows(key, stage).frame
    q = None
    info: dict[str, Any] = {}
    if query is not None:
        try:
            q = query_row(model, query[0], query[1])
        except (InputError, DataError) as exc:  # e.g. an unknown stack: map without the highlight
            info["query_error"] = str(exc)
    cols = model.raw_columns(stage)
    frame = stage_frame.loc[:, cols] if q is None else pd.concat([stage_frame.loc[:, cols], q.loc[:, cols]], ignore_index=True)
    if space == "pca":
        scores = pca_projection(model, frame, stage, n_components, member=member)
        info.update({k: scores.attrs.get(k) for k in ("explained_variance_ratio", "components", "latent_names")})
        coords = pd.DataFrame(scores.to_numpy(), columns=list(scores.columns))
    else:
        z = model.latents(stage, frame)
        zz = z.mean(axis=0) if member is None else z[int(member)]
        coords = pd.DataFrame(zz, columns=model.latent_names(stage))
    if q is not None:
        return coords.iloc[: len(stage_frame)].reset_index(drop=True), coords.iloc[len(stage_frame):].reset_index(drop=True), info
    return coords, None, info


@st.cache_data(show_spinner="Predicting the stage's rows…", max_entries=32)
def row_predictions(key: str, stage: int) -> pd.DataFrame:
    """Ensemble-mean predictions of every stage up to ``stage`` for its rows: ``<target> (predicted)`` columns."""
    model = _model(key)
    stage_frame = stage_rows(key, stage).frame
    out = pd.DataFrame(index=stage_frame.index)
    pred = None
    for i in range(stage + 1):  # each stage encoded once: its latents feed the next stage
        upstream = pred.latents if pred is not None and model.spec.stages[i].upstream else None
        pred = model.predict_stage(i, stage_frame, upstream_latents=upstream)
        for j, t in enumerate(pred.targets):
            out[f"{t} (predicted)"] = pred.mean[:, j]
    return out


@st.cache_data(show_spinner="Correlating latents…", max_entries=64)
def correlations(key: str, stage: int, method: str, member: int | None) -> pd.DataFrame:
    """:func:`nestedae_core.explain.latents.latent_correlations` over the stage's rows."""
    model = _model(key)
    return latent_correlations(model, stage_rows(key, stage).frame, stage, method=method, member=member)  # type: ignore[arg-type]


@st.cache_data(show_spinner="Counting active latents…", max_entries=64)
def active(key: str, stage: int, threshold: float, weight_threshold: float) -> ActiveLatents:
    """:func:`nestedae_core.explain.latents.active_latents` over the stage's rows, every fold model."""
    model = _model(key)
    return active_latents(model, stage_rows(key, stage).frame, stage, threshold=threshold,
                          weight_threshold=weight_threshold, member=None)


@st.cache_data(show_spinner="Decoding the traversal…", max_entries=128)
def traversal(key: str, formula: str, categorical: tuple[tuple[str, str], ...], stage: int, latent: str, member: int) -> pd.DataFrame:
    """:func:`nestedae_core.explain.latents.latent_traversal` from one composition over the library's default
    range plus the composition's own value of the latent (``attrs["start"]``), so a slider can start there."""
    model = _model(key)
    frame = query_row(model, formula, categorical)
    k = model.latent_names(stage).index(latent) if latent in model.latent_names(stage) else int(latent)
    start = float(model.latents(stage, frame)[member, 0, k])
    default = latent_traversal(model, frame, stage, latent, member=member)
    values = np.unique(np.round(np.r_[default["value"].to_numpy(dtype=float), start], 12))
    trav = latent_traversal(model, frame, stage, latent, values, member=member)
    trav.attrs["start"] = start
    return trav


# --------------------------------------------------------------------------- shared controls


@dataclass
class Query:
    """The composition and device stack chosen on a page."""

    formula: str
    categorical: tuple[tuple[str, str], ...]
    error: str | None = None

    @property
    def stack_text(self) -> str:
        return ", ".join(f"{state.STACK_SHORT_NAMES.get(c, c)} {v}" for c, v in self.categorical)


def composition_controls(prefix: str, model: NestedAE, *, default: str = "MAPbI3", show_stack: bool = True) -> Query:
    """Formula box (shared with Compose/Predict through :mod:`app.state`) and, when the model has categorical
    inputs, one select box per input (ETL/HTL). An unreadable formula shows its message and keeps the last
    valid composition (``Query.error``)."""
    ss = st.session_state
    k_formula, k_error, k_seen = f"{prefix}.formula", f"{prefix}.formula_error", f"{prefix}.seen_formula"
    state.stop_for_bad_url_formula()  # an unreadable ?formula=: its message, not results for the default
    shared = state.get_composition() or parse_formula(default)

    def on_formula() -> None:
        try:
            comp = parse_formula(ss.get(k_formula, ""))
        except CompositionError as exc:
            ss[k_error] = str(exc)
            return
        ss.pop(k_error, None)
        state.set_composition(comp)
        ss[k_seen] = comp.formula

    if ss.get(k_seen) != shared.formula and not ss.get(k_error):
        ss[k_formula] = shared.formula
        ss[k_seen] = shared.formula
    ss.setdefault(k_formula, shared.formula)
    cats = [(c, model.categories(c), model.default_category(c)) for p in model.prep for c in p.categorical_columns] if show_stack else []
    cols = st.columns([3] + [2] * len(cats)) if cats else [st.container()]
    with cols[0]:
        st.text_input("Composition (formula)", key=k_formula, on_change=on_formula,
                      help="Any notation of the Compose page, e.g. MAPbI3, Cs0.05FA0.79MA0.16PbBr0.51I2.49. "
                           "Shared with Compose, Predict, Explain and Latents.")
    chosen: list[tuple[str, str]] = []
    for col_widget, (col, options, default_cat) in zip(cols[1:], cats):
        key = f"{prefix}.cat.{col}"
        if col == PHASE:  # named and shown as on Predict: "Crystal phase of the DFT gaps", "cubic"
            chosen.append((col, state.shared_choice_widget(col_widget, f"{PHASE_LABEL.capitalize()} of the DFT gaps", options, column=col,
                                                           widget_key=key, default=default_cat, format_func=lambda v: phase_name(v) or v)))
            continue
        chosen.append((col, state.shared_choice_widget(col_widget, state.STACK_LABELS.get(col, col), options, column=col, widget_key=key, default=default_cat)))
    error = ss.get(k_error)
    if error:
        ui.show_error(CompositionError(error))
        st.caption(f"Still showing the last valid composition, **{shared.formula}**.")
    return Query(shared.formula, tuple(chosen), error)


def model_header(prefix: str) -> tuple[NestedAE, str]:
    """The model picker with a one-line summary beside it; returns (model, cache key) or stops the page.

    Shared by the Explain and Latents pages (``prefix`` keeps their widget keys apart).
    """
    picker_col, info_col = st.columns([2, 3], vertical_alignment="bottom")
    with picker_col:
        model_state.model_picker(key=f"{prefix}.model_picker")
    model = key = None
    with ui.user_errors():
        model, key = current_model()
    if model is None or key is None:
        st.stop()
    with info_col:
        st.caption(" · ".join(f"{k}: {v}" for k, v in quantities.model_summary(model).items() if k in ("name", "stages") or "MAE" in k))
    return model, key
