"""Latents: the latent space of each stage, taken apart.

* Map: the stage's rows (its data set, else the model's stored background) in
  2D or 3D, on raw latents or their principal components, coloured by a target
  (measured or predicted), a site fraction, ETL or HTL; hover shows the formula;
  the chosen composition (shared with Compose) is the red star.
* Correlations: each latent against the stage's inputs and targets (Pearson or
  Spearman; the correlation ratio eta for ETL/HTL).
* Traversal: move one latent of one fold model and watch the decoded inputs and
  the predictions change.
* Active latents: how many latents carry information, by the rule of
  :func:`nestedae_core.explain.latents.active_latents`.

Numbers come from :mod:`nestedae_core.explain.latents`, cached in :mod:`app.explain_state`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app import explain_state as es
from app import figures_explain as fx
from app import figures_latents as fl
from app import quantities, ui
from app.figures import COLUMN_INFO, axis_title
from nestedae_core.api import (
    BANDGAP_PBE, DECOMPOSITION, DESCRIPTOR_UNITS, DEVICE_TARGET, IONS, MATERIAL_TARGET, MEASURED_BANDGAP, PCE,
    TRUTH_PREFIX, StageRows, composition_problem, target_fidelity, traversal_sensitivity,
)

VIEWS = ["Map", "Correlations", "Traversal", "Active latents"]
NO_COLOUR = "(none)"
#: Measured columns offered as colours (besides the model's targets), in menu order.
MEASURED_COLOURS = (MEASURED_BANDGAP, BANDGAP_PBE, PCE, DECOMPOSITION, f"{TRUTH_PREFIX}{MATERIAL_TARGET}", MATERIAL_TARGET, DEVICE_TARGET)

es.warm_up()
st.title("Latents")
st.caption("What each stage's encoder learnt: maps of the latent space, what each latent correlates with, what moving "
           "one latent does, and how many latents actually carry information.")

model, key = es.model_header("latents")

takes_composition = composition_problem(model) is None

query = es.composition_controls("latents", model) if takes_composition else None
stage_labels = [f"Stage {i + 1}: {s.name} ({s.latent_dim} latents)" for i, s in enumerate(model.spec.stages)]


def _target_title(column: str) -> str:
    """A target's name with its band-gap fidelity and unit, e.g. ``band gap (PBE) (eV)``; other columns by their label."""
    for s in model.spec.stages:
        for t in s.targets:
            if t.column == column:
                return f"{quantities.target_name(s, t)} ({t.unit or 'dimensionless'})"
    return axis_title(column) if column in COLUMN_INFO else fx.feature_label(column)


def _fidelity(column: str) -> str | None:
    return next((target_fidelity(s, t) for s in model.spec.stages for t in s.targets if t.column == column), None)


def _measured(column: str) -> str:
    """The data value of a column: ``measured …``; a band gap of a model names its kind (``band gap, DFT PBE (no SOC) (eV)``)."""
    title = _target_title(column)
    if title.startswith(("measured", "DFT", "band gap, ")) or "(measured)" in title:  # a gap names its kind already
        return title
    if _fidelity(column) in ("PBE", "HSE"):
        return f"DFT {title}"
    return title if "(DFT)" in title else f"measured {title}"


def colour_options(stage: int, rows: StageRows) -> dict[str, tuple[pd.Series, bool]]:
    """Colour label (with unit) -> (values aligned with the rows, is categorical)."""
    frame = rows.frame
    out: dict[str, tuple[pd.Series, bool]] = {}
    preds = es.row_predictions(key, stage)
    for s in range(stage, -1, -1):  # this stage's targets first
        for t in model.spec.stages[s].targets:
            if t.column in frame.columns:
                out[_measured(t.column)] = (frame[t.column], False)
            col = f"{t.column} (predicted)"
            if col in preds.columns:
                out[f"predicted {_target_title(t.column)}"] = (preds[col], False)
    for c in MEASURED_COLOURS:
        if c in frame.columns and not any(c == t.column for s in model.spec.stages for t in s.targets):
            out[_measured(c)] = (frame[c], False)
    for p in model.prep[: stage + 1]:
        for c in p.categorical_columns:
            out[fx.feature_label(c, with_unit=False)] = (frame[c].astype(str), True)
    for ion in IONS:
        if ion in frame.columns and pd.to_numeric(frame[ion], errors="coerce").fillna(0).abs().sum() > 0:
            out[fx.feature_label(ion)] = (frame[ion], False)
    for c in model.prep[stage].numeric_columns:
        out[fx.feature_label(c, {k: v for k, v in DESCRIPTOR_UNITS.items() if v})] = (frame[c], False)
    return out


def member_picker(label: str, key_: str, *, allow_all: str | None = None, all_first: bool = True, help: str | None = None) -> int | None:
    members: list[int | None] = list(range(model.members))
    opts = ([None] + members if all_first else members + [None]) if allow_all else members
    value = st.selectbox(label, opts, format_func=lambda m: allow_all if m is None else f"fold model {m + 1}", key=key_,
                         help=help or "Each fold model of the ensemble learnt its own latent basis: latent k of one "
                                      "fold model has nothing to do with latent k of another.")
    return value


def _stack(stage: int) -> tuple[tuple[str, str], ...]:
    return query.categorical if query is not None and stage > 0 else ()


# ---------------------------------------------------------------------- views
def map_view(stage: int, rows: StageRows) -> None:
    c1, c2, c3, c4 = st.columns([2, 1, 2, 3])
    space = c1.radio("Coordinates", ["pca", "raw"], horizontal=True, key="latents.space",
                     format_func={"pca": "principal components", "raw": "raw latents"}.get)
    dims = c2.radio("Dimensions", [2, 3], horizontal=True, key="latents.dims", format_func=lambda d: f"{d}D")
    with c3:
        member = member_picker("Fold model", "latents.map_member",
                               allow_all="all fold models together" if space == "pca" else None,
                               help="PCA over all fold models' latents side by side gives a map that depends on no "
                                    "single member's basis. Raw latents are per fold model.")
    opts = colour_options(stage, rows)
    names = [NO_COLOUR] + list(opts)
    default = next((n for n in names if n.startswith("predicted")), names[0])
    if st.session_state.get("latents.colour") not in names:
        st.session_state["latents.colour"] = default
    colour = c4.selectbox("Colour by", names, key="latents.colour")
    q = (query.formula, _stack(stage)) if query is not None else None
    with ui.user_errors():
        coords, qc, info = es.latent_coordinates(key, stage, space, dims, member, q)
        axes = list(coords.columns)
        notes = {}
        if space == "pca":
            x, y = axes[0], axes[1]
            z = axes[2] if dims == 3 and len(axes) > 2 else None
            for a, share in zip(axes, info.get("explained_variance_ratio") or []):
                notes[a] = f"{100 * share:.0f} % of variance"
        else:
            act = es.active(key, stage, 1e-2, 1e-2)
            order = list(np.argsort(-act.variance[member or 0]))
            ranked = [axes[i] for i in order]
            a1, a2, a3 = st.columns(3)
            x = a1.selectbox("x axis", axes, index=axes.index(ranked[0]), key=f"latents.x.{stage}")
            y = a2.selectbox("y axis", axes, index=axes.index(ranked[1 if len(ranked) > 1 else 0]), key=f"latents.y.{stage}")
            z = a3.selectbox("z axis", axes, index=axes.index(ranked[2 if len(ranked) > 2 else 0]), key=f"latents.z.{stage}") if dims == 3 else None
        values, categorical = opts.get(colour, (None, False))
        hover = rows.frame[rows.label_column].astype(str) if rows.label_column else [f"row {i}" for i in range(len(coords))]
        fig = fl.latent_map_figure(coords, x=x, y=y, z=z, color=values, color_title=colour, categorical=categorical, hover=hover,
                                   highlight=qc, highlight_label=query.formula if query is not None else "", axis_notes=notes)
        ui.plot(fig, key="latents.map")
        if info.get("query_error"):
            st.warning(f"The chosen composition is not drawn: {info['query_error']}", icon=":material/warning:")
        what = (f"{len(coords)} rows of `{rows.source}`" if rows.from_dataset else f"the model's {len(coords)} stored background rows")
        coord_text = ("principal components of the latents" + (" of all fold models side by side" if member is None else f" of fold model {member + 1}")
                      if space == "pca" else f"raw latents of fold model {(member or 0) + 1} (axes default to the most variable ones)")
        stack = f" with {query.stack_text}" if query is not None and stage > 0 and query.categorical else ""
        st.caption(f"Each dot is one of {what}, placed by the {coord_text}. "
                   + (f"The red star is **{query.formula}**{stack}, encoded by the same model. " if qc is not None else "")
                   + "Rows that the encoder puts close together look alike to the model; a smooth colour gradient "
                     "means the latent space orders the rows by that quantity.")
        table = pd.concat([pd.DataFrame({"label": list(hover)}), coords.add_suffix(" (dimensionless)")], axis=1)
        if values is not None:
            table[colour] = list(values)
        with st.expander("Coordinates table"):
            ui.table_with_download(table, f"latent-map-stage{stage + 1}-{space}", key="latents.dl_map")


def correlation_view(stage: int, rows: StageRows) -> None:
    c1, c2 = st.columns(2)
    method = c1.radio("Correlation", ["pearson", "spearman"], horizontal=True, key="latents.corr_method",
                      format_func={"pearson": "Pearson (linear)", "spearman": "Spearman (rank, monotonic)"}.get)
    with c2:
        member = member_picker("Fold model", "latents.corr_member", allow_all="ensemble-mean latents (hard to interpret)", all_first=False)
    with ui.user_errors():
        corr = es.correlations(key, stage, method, member)
        labels = {c: f"{_target_title(c.replace(' (predicted)', ''))} predicted" if c.endswith("(predicted)")
                  else (_target_title(c) if any(c == t.column for s in model.spec.stages for t in s.targets) else fx.feature_label(c, with_unit=False))
                  for c in corr.columns}
        ui.plot(fl.correlation_heatmap_figure(corr, method=method, labels=labels,
                                              title=f"Latents of stage {stage + 1} vs its inputs and targets"), key="latents.corr")
        finite = corr.drop(columns=list(corr.attrs.get("categorical_columns", []))).abs()
        best = finite.stack().sort_values(ascending=False)
        text = ""
        if len(best):
            (lat, col), v = best.index[0], best.iloc[0]
            text = f"The strongest link is **{lat}** with **{labels.get(col, col)}** (|{'ρ' if method == 'spearman' else 'r'}| = {v:.2f}). "
        blank = [i for i in corr.index if corr.loc[i].isna().all()]
        st.caption(text + "Red: the latent grows with the quantity; blue: it shrinks. For ETL and HTL the cell is the "
                   "correlation ratio η (0: the latent does not depend on the stack, 1: the stack fixes it). "
                   + (f"Blank rows ({', '.join(blank)}) are constant latents. " if blank else "")
                   + "Correlated inputs light up together: a latent that tracks the X-site radius also tracks every other "
                     "X-site descriptor.")
        ui.table_with_download(corr.reset_index(), f"latent-correlations-stage{stage + 1}-{method}", key="latents.dl_corr")


def traversal_view(stage: int, rows: StageRows) -> None:
    if query is None:
        st.info("The traversal starts from a composition; this model does not take one.", icon=":material/info:")
        return
    c1, c2, c3 = st.columns(3)
    with c1:
        member = member_picker("Fold model", "latents.trav_member")
    act = es.active(key, stage, 1e-2, 1e-2)
    names = model.latent_names(stage)
    ranked = [names[i] for i in np.argsort(-act.variance[member])]
    if st.session_state.get(f"latents.trav_latent.{stage}") not in names:
        st.session_state[f"latents.trav_latent.{stage}"] = ranked[0]
    latent = c2.selectbox("Latent to move", names, key=f"latents.trav_latent.{stage}",
                          format_func=lambda n: n + ("" if act.active[member, names.index(n)] else " (inactive)"))
    with ui.user_errors():
        trav = es.traversal(key, query.formula, _stack(stage), stage, latent, member)
        p = model.prep[stage]
        start = float(trav.attrs.get("start", trav["value"].iloc[len(trav) // 2]))
        values = [float(v) for v in trav["value"]]
        nearest = int(np.argmin(np.abs(np.asarray(values) - start)))  # the composition's own value
        k_slider = f"latents.trav_value.{stage}.{latent}.{member}.{query.formula}"
        current = c3.select_slider(f"{latent} value (dimensionless)", values, value=values[nearest], key=k_slider,
                                   format_func=lambda v: f"{v:+.2f}")
        i = values.index(current)
        targets = [(t.column, quantities.target_name(model.spec.stages[stage], t), t.unit) for t in model.spec.stages[stage].targets]
        cont = model.input_names(stage)[: p.layout.n_continuous]
        default_inputs = list(traversal_sensitivity(trav, rows.frame, cont).index[:3])  # the inputs that move most
        units = {c: u for c, u in DESCRIPTOR_UNITS.items() if u}
        shown = st.multiselect("Decoded inputs to draw", cont, default=default_inputs, key=f"latents.trav_inputs.{stage}.{latent}.{member}",
                               format_func=lambda c: fx.feature_label(c, units, with_unit=False), max_selections=6)
        cols = st.columns(max(1, len(targets)) + len(p.categorical_columns))
        for col, (c, lab, unit) in zip(cols, targets):
            delta = float(trav[c].iloc[i] - trav[c].iloc[nearest])
            col.metric(f"predicted {lab} (fold model {member + 1})", f"{trav[c].iloc[i]:.3f} {unit}".strip(),
                       delta=f"{delta:+.3f} {unit}".strip() if i != nearest else None, delta_color="off")
        for col, c in zip(cols[len(targets):], p.categorical_columns):
            col.metric(f"decoded {fx.feature_label(c, with_unit=False)}", str(trav[c].iloc[i]),
                       help=f"Most probable category, probability {trav[f'{c}_p'].iloc[i]:.2f}")
        fig = fl.traversal_figure(trav, targets=targets, inputs=[(c, fx.feature_label(c, units, with_unit=False), fx.feature_unit(c, units)) for c in shown],
                                  current=current, start=values[nearest], title=f"Moving {latent} of fold model {member + 1} from {query.formula}")
        ui.plot(fig, key="latents.trav")
        state = "an **active**" if act.active[member, names.index(latent)] else "an **inactive** (nearly constant)"
        st.caption(f"{latent} is {state} latent of fold model {member + 1}. The other latents stay at {query.formula}'s values "
                   f"(grey dotted line: its own {latent} = {start:+.2f}, where the slider starts); the red line is the slider. Orange panels: what the property "
                   "head predicts; blue panels: what the decoder reconstructs, in the inputs' units. A flat curve means this "
                   "latent does not influence that quantity; values far outside the dotted line are extrapolation.")
        shown_cols = ["value"] + [c for c, _, _ in targets] + list(cont) + [c for c in p.categorical_columns] + [f"{c}_p" for c in p.categorical_columns]
        with st.expander("Traversal table"):
            ui.table_with_download(trav[[c for c in shown_cols if c in trav]].rename(columns={"value": f"{latent} (dimensionless)"}),
                                   f"latent-traversal-{latent}-{query.formula}", key="latents.dl_trav")


def active_view(stage: int, rows: StageRows) -> None:
    c1, c2 = st.columns(2)
    threshold = c1.select_slider("Threshold (fraction of the largest latent)", [1e-3, 3e-3, 1e-2, 3e-2, 1e-1], value=1e-2,
                                 key="latents.act_threshold", format_func=lambda v: f"{v:g}")
    with c2:
        member = member_picker("Fold model to draw", "latents.act_member")
    with ui.user_errors():
        act = es.active(key, stage, threshold, threshold)
        per = act.n_active_per_member
        L = len(act.latent_names)
        m1, m2 = st.columns(2)
        m1.metric("active latents (median over fold models)", f"{act.n_active} of {L}")
        m2.metric(f"active in fold model {member + 1}", f"{int(per[member])} of {L}",
                  help="Active counts per fold model: " + ", ".join(f"{m + 1}: {int(n)}" for m, n in zip(act.members, per)))
        st.markdown(f"**Rule.** A latent is *active* when its variance over the {act.n_rows} rows is at least "
                    f"**{act.threshold:g}×** the largest latent variance of its fold model **and** the L1 norm of the encoder "
                    f"weights producing it is at least **{act.weight_threshold:g}×** the largest such norm. A latent that fails "
                    "either is nearly constant: the decoder and the heads can only read a bias from it. "
                    f"(Library rule: {act.rule}.)")
        ui.plot(fl.active_latents_figure(act, act.members.index(member), title=f"Stage {stage + 1}: which latents carry information"),
                key="latents.active")
        st.caption("Bars below the dashed line mark latents the L1 penalty has switched off. When every latent is active, "
                   "the stage uses its whole latent budget; a smaller latent size may do as well (see the latent-size scan "
                   "on the Learn page).")
        frame = act.frame()
        frame["member"] = frame["member"] + 1
        frame = frame.rename(columns={"member": "fold model", "variance": "variance (dimensionless)",
                                      "relative_variance": "variance / largest", "weight_norm": "encoder weight L1 norm",
                                      "relative_weight_norm": "weight norm / largest"})
        ui.table_with_download(frame, f"active-latents-stage{stage + 1}", key="latents.dl_active")


@st.fragment
def stage_block() -> None:
    c1, c2 = st.columns([2, 3])
    label = c1.radio("Stage", stage_labels, key="latents.stage", horizontal=True)
    stage = stage_labels.index(label)
    view = c2.radio("View", VIEWS, key="latents.view", horizontal=True)
    with ui.user_errors():
        rows = es.stage_rows(key, stage)
        if rows.note:
            st.info(rows.note, icon=":material/info:")
        {"Map": map_view, "Correlations": correlation_view, "Traversal": traversal_view, "Active latents": active_view}[view](stage, rows)


stage_block()
