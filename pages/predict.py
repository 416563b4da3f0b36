"""Predict: composition + device stack -> band gap -> PCE, with ensemble uncertainty.

* One query: the session's composition (shared with Compose, via
  :mod:`app.state`) or a formula typed here, an ETL and an HTL; every target
  with its ensemble mean ± sd and unit, an out-of-domain warning, and a flag
  when the PCE exceeds the Shockley–Queisser limit at the predicted band gap.
* Side by side: up to five compositions / device stacks (table, bars with
  error bars, PCE against band gap under the SQ limit).
* Line scan between two end members (MAPbI3 -> MAPbBr3, FAPbI3 -> CsPbI3, or
  any two formulas): band gap and PCE with ±1 sd bands.
* The measured devices of ``psc-devices`` nearest to the composition (distance
  in the standardised 15 site descriptors), with their stacks and measured PCE.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app import figures_model as fm
from app import model_state, state, ui
from nestedae_core import predict
from nestedae_core.chemistry.composition import Composition, parse_formula
from nestedae_core.chemistry.physics import sq_limit
from nestedae_core.data.lookup import DISTANCE, SAME_COMPOSITION, SAME_STACK
from nestedae_core.errors import CompositionError, NestedAEError
from nestedae_core.query import composition_problem
from nestedae_core.vocabulary import BANDGAP_PBE, DEVICE_COMPOSITION, ETL, HTL, MEASURED_BANDGAP, PCE, display, label

DEFAULT_FORMULA = "MAPbI3"
MAX_COMPARE = 5
SCANS = {
    "MAPbI3 → MAPbBr3 (iodide → bromide)": ("MAPbI3", "MAPbBr3"),
    "FAPbI3 → CsPbI3 (FA → Cs)": ("FAPbI3", "CsPbI3"),
    "MAPbI3 → MASnI3 (Pb → Sn)": ("MAPbI3", "MASnI3"),
    "Custom": None,
}
EXAMPLES = ["FAPbI3", "Cs0.05FA0.79MA0.16PbBr0.51I2.49"]

K_FORMULA = "predict.formula"
K_FORMULA_ERROR = "predict.formula_error"
K_SEEN = "predict.seen_formula"
K_ETL, K_HTL = "predict.etl", "predict.htl"
K_ROWS = "predict.compare_rows"
K_ROWS_VERSION = "predict.compare_version"
K_SCAN = "predict.scan"
DISTANCE_LABEL = "descriptor distance (standardised, dimensionless)"
#: Headers of the nearest-devices table.
NEAREST_COLUMNS = {
    DEVICE_COMPOSITION: label(DEVICE_COMPOSITION),
    SAME_COMPOSITION: "same composition",
    DISTANCE: DISTANCE_LABEL,
    ETL: state.STACK_SHORT_NAMES[ETL],
    HTL: state.STACK_SHORT_NAMES[HTL],
    MEASURED_BANDGAP: display(MEASURED_BANDGAP),
    PCE: f"measured {display(PCE)}",
    SAME_STACK: "same stack",
}

st.title("Predict")
st.caption("Composition and device stack → band gap → power conversion efficiency, with the spread of the "
           "fold ensemble as uncertainty (± 1 standard deviation).")

picker_col, info_col = st.columns([2, 3], vertical_alignment="bottom")
with picker_col:
    model_state.model_picker(key="predict.model_picker")
model = None
with ui.user_errors():
    model = model_state.active_model()
if model is None:
    st.stop()
targets = fm.target_infos(model)
target_cols = {t.column for t in targets}
with info_col:
    st.caption(" · ".join(f"{k}: {v}" for k, v in model.summary().items() if k in ("name", "stages", "split") or "MAE" in k))

if (problem := composition_problem(model)) is not None:  # does the model take compositions at all?
    st.info(f"The active model ({model.spec.name}) cannot predict from a composition: {problem}. "
            "Choose a perovskite model (e.g. the default) above.", icon=":material/info:")
    st.stop()

cat_cols = [c for p in model.prep for c in p.categorical_columns]
has_stack = ETL in cat_cols and HTL in cat_cols


def fmt(value: float, std: float, unit: str, digits: int = 3) -> str:
    """``1.753 ± 0.022 eV``."""
    return f"{value:.{digits}f} ± {std:.{digits}f}{(' ' + unit) if unit else ''}"


# ---------------------------------------------------------------------- composition and stack
def _shared() -> Composition:
    return state.get_composition() or parse_formula(DEFAULT_FORMULA)


def _on_formula() -> None:
    ss = st.session_state
    try:
        comp = parse_formula(ss.get(K_FORMULA, ""))
    except CompositionError as exc:
        ss[K_FORMULA_ERROR] = str(exc)
        return
    ss.pop(K_FORMULA_ERROR, None)
    state.set_composition(comp)
    ss[K_SEEN] = comp.formula


shared = _shared()
ss = st.session_state
if ss.get(K_SEEN) != shared.formula and not ss.get(K_FORMULA_ERROR):
    ss[K_FORMULA] = shared.formula  # follow a composition chosen on another page
    ss[K_SEEN] = shared.formula
ss.setdefault(K_FORMULA, shared.formula)

st.subheader("One composition")
c1, c2, c3 = st.columns([3, 2, 2])
with c1:
    st.text_input("Composition (formula)", key=K_FORMULA, on_change=_on_formula,
                  help="Any notation of the Compose page, e.g. MAPbI3, Cs0.05FA0.79MA0.16PbBr0.51I2.49, "
                       "(FAPbI3)0.85(MAPbBr3)0.15. Shared with Compose, Explain and Latents.")
etl = htl = None
if has_stack:
    etls, htls = model.categories(ETL), model.categories(HTL)
    etl = state.shared_choice_widget(c2, state.STACK_LABELS[ETL], etls, column=ETL, widget_key=K_ETL,
                                     default=model.default_category(ETL), help="Layers from the substrate up, as in the device data. Shared with Explain.")
    htl = state.shared_choice_widget(c3, state.STACK_LABELS[HTL], htls, column=HTL, widget_key=K_HTL,
                                     default=model.default_category(HTL), help="Shared with Explain.")

if ss.get(K_FORMULA_ERROR):
    ui.show_error(CompositionError(ss[K_FORMULA_ERROR]))
    st.caption(f"Still showing the last valid composition, **{shared.formula}**.")

query = None
with ui.user_errors():
    query = predict.predict_composition(model, shared, etl=etl, htl=htl)

if query is not None:
    cols = st.columns(max(1, len(query.targets)) + (1 if BANDGAP_PBE in query.targets and PCE in query.targets else 0))
    for col, (c, t) in zip(cols, query.targets.items()):
        col.metric(f"{t['label']} ({t['stage']})", fmt(t["mean"], t["std"], t["unit"], 3 if t["unit"] != "%" else 2))
    limit = None
    if BANDGAP_PBE in query.targets and PCE in query.targets:
        gap = query.targets[BANDGAP_PBE]["mean"]
        if gap > 0:
            limit = sq_limit(gap)["pce_percent"]
            cols[-1].metric("Shockley–Queisser limit at this gap", f"{limit:.1f} %",
                            help="Radiative limit of a single-junction cell at the predicted band gap "
                                 "(5778 K blackbody sun scaled to 1000 W/m², cell at 300 K).")
    st.caption(f"Mean ± 1 sd over the {model.members} fold models of the ensemble, for **{query.formula}**"
               + (f" with ETL **{query.categorical.get(ETL)}** and HTL **{query.categorical.get(HTL)}**." if has_stack else "."))
    if not query.in_domain:
        outside = [s for s, ok in query.stage_in_domain.items() if not ok]
        st.warning(
            f"**Outside the training domain** of stage(s) {', '.join(outside)} "
            f"(distance {', '.join(f'{query.domain_distance[s]:.2f}' for s in outside)} in standardised units, "
            "beyond what the training data covers): the model extrapolates here, trust the numbers less "
            "than the ± suggests.", icon=":material/warning:")
    if limit is not None and query.targets[PCE]["mean"] > limit:
        st.error(
            f"**Above the Shockley–Queisser limit:** the predicted PCE {query.targets[PCE]['mean']:.2f} % exceeds the "
            f"radiative limit of {limit:.1f} % at the predicted band gap {query.targets[BANDGAP_PBE]['mean']:.3f} eV. "
            "No single-junction cell can do this; the prediction is unphysical here.", icon=":material/report:")
    if query.defaulted:
        st.caption("Not given, so the most common training value was used: " + ", ".join(f"{c} = {query.categorical[c]}" for c in query.defaulted))


# ---------------------------------------------------------------------- side by side
st.subheader(f"Side by side (up to {MAX_COMPARE})")
st.caption("Edit the table: one composition and device stack per row. Rows beyond five are ignored.")


def _rows_default() -> pd.DataFrame:
    first = {"formula": shared.formula}
    rows = [first] + [{"formula": f} for f in EXAMPLES if f != shared.formula]
    df = pd.DataFrame(rows[:MAX_COMPARE])
    if has_stack:
        df[ETL] = [etl] * len(df)
        df[HTL] = [htl] * len(df)
    return df


if K_ROWS not in ss:
    ss[K_ROWS] = _rows_default()
    ss[K_ROWS_VERSION] = 0
b1, b2, _ = st.columns([1, 1, 4])
if b1.button("Add the one above", icon=":material/add:", key="predict.add", disabled=query is None):
    base = ss[K_ROWS]
    if len(base) >= MAX_COMPARE:
        st.warning(f"The table already has {MAX_COMPARE} rows; remove one first.")
    else:
        row = {"formula": shared.formula}
        if has_stack:
            row.update({ETL: etl, HTL: htl})
        ss[K_ROWS] = pd.concat([base, pd.DataFrame([row])], ignore_index=True)
        ss[K_ROWS_VERSION] += 1
if b2.button("Reset table", icon=":material/restart_alt:", key="predict.reset"):
    ss[K_ROWS] = _rows_default()
    ss[K_ROWS_VERSION] += 1

editor_config = {"formula": st.column_config.TextColumn("composition (formula)", required=True, width="large")}
if has_stack:
    editor_config[ETL] = st.column_config.SelectboxColumn(state.STACK_SHORT_NAMES[ETL], options=model.categories(ETL), required=True, default=model.default_category(ETL))
    editor_config[HTL] = st.column_config.SelectboxColumn(state.STACK_SHORT_NAMES[HTL], options=model.categories(HTL), required=True, default=model.default_category(HTL))
edited = st.data_editor(ss[K_ROWS], num_rows="dynamic", column_config=editor_config, hide_index=True,
                        key=f"predict.editor.{ss[K_ROWS_VERSION]}", width="stretch")


def compare_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Predictions for up to five rows (formula, ETL, HTL); a row that fails gets its message in 'note'."""
    out = []
    for r in rows.head(MAX_COMPARE).itertuples(index=False):
        rec = r._asdict()
        text = str(rec.get("formula") or "").strip()
        if not text:
            continue
        e = rec.get(ETL) if has_stack else None
        h = rec.get(HTL) if has_stack else None
        num = len(out) + 1
        item = {"label": f"{num}. {text}" + (f" | {e} | {h}" if has_stack else ""), "short": f"{num}. {text}", "formula": text}
        if has_stack:
            item.update({state.STACK_SHORT_NAMES[ETL]: e, state.STACK_SHORT_NAMES[HTL]: h})
        try:
            q = predict.predict_composition(model, text, etl=e or None, htl=h or None)
        except NestedAEError as exc:
            item["note"] = str(exc)
            item["_ok"] = False
            out.append(item)
            continue
        item["_ok"] = True
        item["formula"] = q.formula
        for c, t in q.targets.items():
            short = "band gap" if c == BANDGAP_PBE else t["label"]
            u = t["unit"]
            item[f"{short} ({u})" if u else short] = t["mean"]
            item[f"{short} sd ({u})" if u else f"{short} sd"] = t["std"]
        if BANDGAP_PBE in q.targets and PCE in q.targets and q.targets[BANDGAP_PBE]["mean"] > 0:
            lim = sq_limit(q.targets[BANDGAP_PBE]["mean"])["pce_percent"]
            item["SQ limit (%)"] = lim
            item["gap"], item["gap_std"] = q.targets[BANDGAP_PBE]["mean"], q.targets[BANDGAP_PBE]["std"]
            item["pce"], item["pce_std"] = q.targets[PCE]["mean"], q.targets[PCE]["std"]
        item["in domain"] = q.in_domain
        item["note"] = "" if q.in_domain else "outside the training domain"
        if "SQ limit (%)" in item and item["pce"] > item["SQ limit (%)"]:
            item["note"] = (item["note"] + "; " if item["note"] else "") + "PCE above the SQ limit"
        out.append(item)
    return pd.DataFrame(out)


if len(edited) > MAX_COMPARE:
    st.warning(f"Only the first {MAX_COMPARE} rows are predicted.")
table = compare_table(edited)
if table.empty:
    st.info("Add at least one composition to the table.")
else:
    shown = table.drop(columns=[c for c in ("gap", "gap_std", "pce", "pce_std", "_ok", "short", "label") if c in table.columns])
    shown.insert(0, "#", range(1, len(shown) + 1))
    ui.table_with_download(shown, "predictions-side-by-side", key="predict.dl-compare",
                           column_config={c: st.column_config.NumberColumn(c, format="%.3f") for c in shown.columns if "(" in c})
    failed = table[~table["_ok"].astype(bool)]
    plotted = table.dropna(subset=["gap"]) if "gap" in table else table.iloc[0:0]
    if len(plotted):
        left, right = st.columns(2)
        with left:
            ui.plot(fm.prediction_bars_figure(plotted), key="predict.bars")
        with right:
            ui.plot(fm.pce_vs_gap_figure(plotted), key="predict.sq")
    for r in failed.itertuples(index=False):
        st.error(f"Row '{r.formula}': {r.note}", icon=":material/error:")


# ---------------------------------------------------------------------- line scan
st.subheader("Line scan between two end members")
s1, s2, s3, s4 = st.columns([2, 2, 2, 1])
choice = s1.selectbox("End members", list(SCANS), key="predict.scan_choice")
ends = SCANS[choice]
start_text = s2.text_input("Start (x = 0)", ends[0] if ends else "MAPbI3", key=f"predict.scan_start.{choice}", disabled=ends is not None)
end_text = s3.text_input("End (x = 1)", ends[1] if ends else "MAPbBr3", key=f"predict.scan_end.{choice}", disabled=ends is not None)
steps = s4.number_input("Points (count)", 3, 201, 21, key="predict.scan_steps")
with ui.user_errors():
    start_c, end_c = parse_formula(start_text), parse_formula(end_text)
    scan = predict.line_scan(model, start_c, end_c, int(steps), etl=etl, htl=htl)
    gap_t = next((t for t in targets if t.column == BANDGAP_PBE), None)
    pce_t = next((t for t in targets if t.column == PCE), None)
    ui.plot(fm.line_scan_figure(scan, start=start_c.formula, end=end_c.formula, gap=gap_t, pce=pce_t), key="predict.scan")
    if has_stack:
        st.caption(f"Device stack for the scan: ETL {etl}, HTL {htl}. Shaded bands: ± 1 sd over the ensemble; "
                   "open circles: outside the training domain.")
    nice = scan.rename(columns={c: c.replace(f"{BANDGAP_PBE}_", "band gap ").replace(f"{PCE}_", "PCE ") for c in scan.columns})
    nice = nice.rename(columns={c: f"{c} (eV)" for c in nice.columns if c.startswith("band gap")})
    nice = nice.rename(columns={c: f"{c} (%)" for c in nice.columns if c.startswith("PCE")})
    nice = nice.rename(columns={"x": f"x (fraction of {end_c.formula})"})
    with st.expander("Line-scan table"):
        ui.table_with_download(nice, f"line-scan-{start_c.formula}-{end_c.formula}", key="predict.dl-scan")


# ---------------------------------------------------------------------- nearest measured devices
st.subheader("Nearest measured devices")
if "psc-devices" not in state.available_datasets(["psc-devices"]):
    ui.missing_dataset("psc-devices", "The measured devices are shown here when the device data set is present.")
else:
    with ui.user_errors():
        same_stack_only = st.toggle("Only devices with the chosen ETL and HTL", False, key="predict.same_stack", disabled=not has_stack)
        near = state.nearest_devices(shared, etl=etl, htl=htl, same_stack_only=same_stack_only)
        near = near.rename(columns=NEAREST_COLUMNS)
        if near.empty:
            st.info("No measured device matches these filters.")
        else:
            exact = int(near["same composition"].sum())
            st.caption(f"{'Devices with the same composition come first' if exact else 'No device has exactly this composition; the nearest ones by site descriptors'} "
                       f"(distance = Euclidean, over the 15 site descriptors standardised on the device data). "
                       f"Source: psc-devices (Jacobsson et al. 2022).")
            ui.table_with_download(near, "nearest-devices", key="predict.dl-near",
                                   column_config={DISTANCE_LABEL: st.column_config.NumberColumn(format="%.3f")})
