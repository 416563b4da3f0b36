"""Predict: composition + device stack -> band gaps -> PCE, with prediction intervals.

* One query: the session's composition (shared with Compose, via
  :mod:`app.state`) or a formula typed here, an ETL and an HTL; every target
  with its unit and uncertainty (the prediction interval when the model is
  calibrated, else ± the fold models' disagreement, said so), the measured band
  gap first, every band gap named by its fidelity (measured, DFT PBE (no SOC),
  DFT HSE06+SOC) and a DFT gap by its crystal phase (cubic unless picked here), the
  decomposition energy (stability; "not in this model" for a model without that
  head), the domain message when the query
  leaves the training data, and a flag when the PCE exceeds the
  Shockley–Queisser limit at the measured-scale band gap (at the PBE gap,
  labelled so, for a model without a measured stage).
* Side by side: up to five compositions / device stacks (table, bars with
  error bars, PCE against band gap under the SQ limit).
* Line scan between two end members (MAPbI3 -> MAPbBr3, FAPbI3 -> CsPbI3, or
  any two formulas): band gap and PCE with interval (or disagreement) bands.
* The measured devices of ``psc-devices`` nearest to the composition (distance
  in the standardised 15 site descriptors), with their stacks and measured PCE.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app import figures_model as fm
from app import model_state, quantities, state, ui
from app.report_button import report_button
from nestedae_core.api import (
    DECOMPOSITION, DECOMPOSITION_KEY, DECOMPOSITION_MEANING, DEFAULT_LEVEL, DEVICE_COMPOSITION, DISTANCE, ETL, HTL,
    MEASURED_BANDGAP, NO_DECOMPOSITION_NOTE, PCE, PHASE, PHASE_LABEL, SAME_COMPOSITION, SAME_STACK, BatchColumns,
    Composition, CompositionError, NestedAEError, bandgaps, column_display as display, column_label as label,
    composition_problem, explain_outputs, fidelity_label, line_scan, parse_formula, phase_name, predict_composition,
    predict_rows, prediction_report, query_frame, query_phase, read_small_table, screening_gap_column, sq_limit,
    BANDGAP_HSE, BANDGAP_PBE_DFT, DEVICE_TARGETS,
)

DEFAULT_FORMULA = "MAPbI3"
#: level of the prediction intervals shown
LEVEL = DEFAULT_LEVEL
MAX_COMPARE = 5
#: result tiles per row (more truncates their labels and values at 1400 px)
TILES_PER_ROW = 4
#: lets a result tile wrap its label and value instead of cutting them off with "…"
TILE_CSS = """<style>
.st-key-predict-tiles [data-testid="stMetricValue"], .st-key-predict-tiles [data-testid="stMetricValue"] *,
.st-key-predict-tiles [data-testid="stMetricLabel"], .st-key-predict-tiles [data-testid="stMetricLabel"] * {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important; }
.st-key-predict-tiles [data-testid="stMetricValue"] { font-size: 1.5rem; line-height: 1.25; }
</style>"""
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
K_ETL, K_HTL, K_PHASE = "predict.etl", "predict.htl", "predict.phase"
#: (dataset, its columns) whose values for exactly the queried composition are shown beside the prediction
MEASURED_SOURCES = (("psc-devices", (MEASURED_BANDGAP, *DEVICE_TARGETS)), ("mhp-dft", (BANDGAP_PBE_DFT, BANDGAP_HSE)))
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
st.caption("Composition and device stack → band gap → power conversion efficiency. Every band gap says which it is: "
           f"**{fidelity_label('measured')}** (what a film or device shows, first), **{fidelity_label('PBE')}** or "
           f"**{fidelity_label('HSE')}** (computed, for the crystal phase named with it). The uncertainty is the prediction "
           "interval when the model is calibrated; otherwise ± is the disagreement of the fold models, not an error bar.")

picker_col, info_col = st.columns([2, 3], vertical_alignment="bottom")
with picker_col:
    model_state.model_picker(key="predict.model_picker")
model = None
with ui.user_errors():
    model = model_state.active_model()
if model is None:
    st.stop()
cat_cols = [c for p in model.prep for c in p.categorical_columns]
#: the crystal phase of the DFT gaps: the model's default (cubic) unless picked below
chain_phase = query_phase(model)
targets = fm.target_infos(model, phase=chain_phase)
target_cols = {t.column for t in targets}
#: the band gap the SQ limit, the plots and the scan use: the measured-scale one, else a DFT gap (labelled so),
#: as the screening window does (:func:`nestedae_core.predict.screening_gap_column`)
_sq_gap = screening_gap_column(model)
sq_gap_t = next((t for t in targets if _sq_gap is not None and t.key == _sq_gap[0]), None)
with info_col:
    st.caption(" · ".join(f"{k}: {v}" for k, v in quantities.model_summary(model).items() if k in ("name", "stages", "split") or "MAE" in k))

if (problem := composition_problem(model)) is not None:  # does the model take compositions at all?
    st.info(f"The active model ({model.spec.name}) cannot predict from a composition: {problem}. "
            "Choose a perovskite model (e.g. the default) above.", icon=":material/info:")
    st.stop()

has_stack = ETL in cat_cols and HTL in cat_cols


def digits_of(unit: str) -> int:
    return 2 if unit == "%" else 3


def tile_label(t: dict) -> str:
    """A result tile's label: ``band gap, measured · film stage``, ``band gap, DFT HSE06+SOC (cubic) · dft stage``."""
    return f"{quantities.entry_name(t)} · {t['stage']} stage"


def tile_rows(entries: list) -> list[list]:
    """The measured band gap first, then the SQ limit at it, the DFT gaps, the other outcomes, and the stability
    (decomposition energy) last, at most :data:`TILES_PER_ROW` a row (a new row where the band gaps end)."""
    rows = []
    measured = [e for e in entries if e.get("fidelity") == "measured"]
    sq = [e for e in entries if e.get("sq")]
    dft = [e for e in entries if e.get("fidelity") and e.get("fidelity") != "measured"]
    stability = [e for e in entries if e.get("stability")]
    first = measured + sq + dft
    rest = [e for e in entries if e not in first and e not in stability] + stability
    for group in (first, rest):
        rows += [group[i:i + TILES_PER_ROW] for i in range(0, len(group), TILES_PER_ROW)]
    return rows


def measured_first(outputs: dict[str, dict]) -> list[tuple[str, dict]]:
    """``(column, output)`` pairs with the measured band gap first, the others in chain order (the table's columns)."""
    return sorted(outputs.items(), key=lambda ct: ct[1].get("fidelity") != "measured")


def gap_extrapolated(stage_in_domain: dict[str, bool], gap_stage: str) -> list[str]:
    """The flagged stages at or before ``gap_stage``: the gap the SQ limit uses is extrapolated when any."""
    order = [s.name for s in model.spec.stages]
    upto = order[: order.index(gap_stage) + 1] if gap_stage in order else order
    return [s for s in upto if not stage_in_domain.get(s, True)]


def sq_names(fidelity: str | None) -> tuple[str, str]:
    """(metric label, table column) of the SQ limit at a gap of this fidelity."""
    if fidelity == "measured":
        return "Shockley–Queisser limit at the measured gap", "SQ limit (%)"
    word = fidelity_label(fidelity or "")
    return f"Shockley–Queisser limit at the {word} gap (no measured gap)", f"SQ limit at the {word} gap (%)"


# ---------------------------------------------------------------------- composition and stack
def _shared() -> Composition:
    state.stop_for_bad_url_formula()  # an unreadable ?formula=: its message, not results for MAPbI3
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
has_phase = PHASE in cat_cols
c1, c2, c3, *c4 = st.columns([3, 2, 2, 2] if has_phase else [3, 2, 2])
with c1:
    st.text_input("Composition (formula)", key=K_FORMULA, on_change=_on_formula,
                  help="Any notation of the Compose page, e.g. MAPbI3, Cs0.05FA0.79MA0.16PbBr0.51I2.49, "
                       "(FAPbI3)0.85(MAPbBr3)0.15. Shared with Compose, Explain and Latents.")
etl = htl = None
family_stack = None
if has_stack:
    etls, htls = model.categories(ETL), model.categories(HTL)
    with ui.user_errors():  # the default stack: the one most used by this composition's family in the device data
        family_stack = state.common_stack(shared, etls, htls)
    default_etl = family_stack.etl if family_stack is not None else model.default_category(ETL)
    default_htl = family_stack.htl if family_stack is not None else model.default_category(HTL)
    etl = state.shared_choice_widget(c2, state.STACK_LABELS[ETL], etls, column=ETL, widget_key=K_ETL,
                                     default=default_etl, help="Layers from the substrate up, as in the device data. Shared with Explain.")
    htl = state.shared_choice_widget(c3, state.STACK_LABELS[HTL], htls, column=HTL, widget_key=K_HTL,
                                     default=default_htl, help="Shared with Explain.")
    if (etl, htl) == (default_etl, default_htl):
        st.caption(f"Device stack: ETL **{etl}**, HTL **{htl}**, "
                   + (family_stack.describe() if family_stack is not None else "the most common stack in the training data")
                   + ". Choose another above.")
phase = chain_phase
if has_phase:
    phase = state.shared_choice_widget(c4[0], f"{PHASE_LABEL.capitalize()} of the DFT gaps", model.categories(PHASE), column=PHASE,
                                       widget_key=K_PHASE, default=chain_phase, format_func=lambda v: phase_name(v) or v,
                                       help="The DFT band gaps (and the decomposition energy) are computed for one crystal phase; the "
                                            "measured gap and the device stage always use the films' phase (cubic or pseudo-cubic). "
                                            "Shared with Explain.")

if ss.get(K_FORMULA_ERROR):
    ui.show_error(CompositionError(ss[K_FORMULA_ERROR]))
    st.caption(f"Still showing the last valid composition, **{shared.formula}**.")

query = None
with ui.user_errors():
    query = predict_composition(model, shared, etl=etl, htl=htl, categorical={PHASE: phase} if has_phase else None)


def measured_in_data(comp: Composition) -> dict[str, pd.Series]:
    """Target column -> what our datasets hold for exactly ``comp`` (n, median, quartiles), for the tiles."""
    found: dict[str, pd.Series] = {}
    for name, columns in MEASURED_SOURCES:
        if name not in state.available_datasets([name]):
            continue
        where = ((PHASE, phase),) if phase and name == "mhp-dft" else ()
        with ui.user_errors():
            for _, row in state.measured_values(name, comp, tuple(columns), where).iterrows():
                found[row["column"]] = pd.concat([row, pd.Series({"dataset": name})])
    return found


if query is not None:
    if not query.in_domain:  # first, above the numbers: they are extrapolated
        outside = [s for s, ok in query.stage_in_domain.items() if not ok]
        reasons = {name: why for name, why in query.domain_reasons.items() if why} or {outside[0]: query.domain_message}
        st.warning(
            f"**Outside the training domain** of stage(s) {', '.join(outside)}. "
            "The model extrapolates here: trust the numbers less than the uncertainty suggests.\n\n"
            + "\n".join(f"- **{name}**: {reason.rstrip('.')}." for name, reason in reasons.items()), icon=":material/warning:")
    seen = measured_in_data(shared)
    gaps = bandgaps(query)
    sq_gap = query.targets[sq_gap_t.column] if sq_gap_t is not None and sq_gap_t.column in query.targets else None
    show_sq = sq_gap is not None and PCE in query.targets and sq_gap["mean"] > 0
    st.html(TILE_CSS)
    tiles = st.container(key="predict-tiles")
    decomposition = next((t for t in query.targets.values() if t["key"] == DECOMPOSITION_KEY), None)
    entries = [{**t, "column": c} for c, t in query.targets.items() if t is not decomposition] + ([{"sq": True}] if show_sq else [])
    if gaps:  # a perovskite model: its stability, or that it has none
        entries.append({"stability": True, **(decomposition or {})})
    limit = None
    for row in tile_rows(entries):
        cols = tiles.columns(TILES_PER_ROW)
        for col, t in zip(cols, row):
            if t.get("sq"):
                limit = sq_limit(sq_gap["mean"])["pce_percent"]
                sq_label, _ = sq_names(sq_gap["fidelity"])
                col.metric(sq_label, f"{limit:.1f} %",
                           help="Detailed-balance limit of a single-junction cell at the predicted band gap, under the "
                                "AM1.5G reference spectrum (ASTM G-173), cell at 300 K. It belongs to the measured-scale gap.")
                if sq_gap["fidelity"] != "measured":
                    col.caption(f"At the {fidelity_label(sq_gap['fidelity'])} gap, for orientation only: the limit belongs to the measured-scale gap, "
                                "which this model does not predict.")
                if flagged := gap_extrapolated(query.stage_in_domain, sq_gap["stage"]):
                    col.caption(f":orange[**Extrapolated gap:**] the query is outside the training domain of stage(s) "
                                f"{', '.join(flagged)}, so the gap, and this limit at it, are extrapolated.")
                continue
            if t.get("stability"):
                if "mean" not in t:
                    col.metric(f"{label(DECOMPOSITION)} (stability)", "not in this model",
                               help=NO_DECOMPOSITION_NOTE)
                    col.caption(f"{label(DECOMPOSITION).capitalize()}: {NO_DECOMPOSITION_NOTE}.")
                    continue
                where = f", {phase_name(t['phase'])}" if t.get("phase") else ""
                col.metric(f"{label(DECOMPOSITION)} (DFT{where}) · {t['stage']} stage", quantities.estimate(t, digits_of(t["unit"])),
                           help=DECOMPOSITION_MEANING)
                col.caption(f"Lower is more stable; below 0 eV/f.u. computed stable against decomposing. "
                            f"{quantities.disagreement(t, digits_of(t['unit']))}")
                continue
            col.metric(tile_label(t), quantities.estimate(t, digits_of(t["unit"])))
            col.caption(quantities.disagreement(t, digits_of(t["unit"])))
            if (m := seen.get(t["column"])) is not None:
                d = digits_of(t["unit"])
                spread = f", quartiles {m['p25']:.{d}f} to {m['p75']:.{d}f}" if m["n"] > 1 else ""
                n, u = int(m["n"]), f" {t['unit']}" if t["unit"] else ""
                what = ("device" if m["dataset"] == "psc-devices" else "calculation") + ("s" if n > 1 else "")
                col.caption(f"**In our data** ({m['dataset']}): {'median ' if n > 1 else ''}{m['median']:.{d}f}{u} "
                            f"over {n} {what}{spread}.")
    missing = [f for f in ("measured", "PBE", "HSE") if f not in gaps]
    if gaps and missing:
        notes = [f"Band gaps of this model: {', '.join(quantities.entry_name(g) for g in gaps.values())}."]
        if "measured" in missing:
            notes.append(f"The measured-scale band gap needs the measured model: {quantities.NO_MEASURED_GAP}.")
        if others := [f for f in missing if f != "measured"]:
            notes.append(f"Not predicted here: the {' and '.join(fidelity_label(f) for f in others)} gap.")
        st.caption(" ".join(notes))
    calibrated = any(quantities.has_interval(t) for t in query.targets.values())
    st.caption(f"Predictions for **{query.formula}**"
               + (f" with ETL **{query.categorical.get(ETL)}** and HTL **{query.categorical.get(HTL)}**" if has_stack else "")
               + f": the mean over the {model.members} fold models of the ensemble. "
               + ("Uncertainty: prediction intervals from the model's calibration on out-of-fold residuals; model "
                  f"disagreement: the spread (1 sd) of the {model.members} fold models." if calibrated else
                  f"Uncertainty: {quantities.DISAGREEMENT_NOTE}."))
    if limit is not None and query.targets[PCE]["mean"] > limit:
        st.error(
            f"**Above the Shockley–Queisser limit:** the predicted PCE {query.targets[PCE]['mean']:.2f} % exceeds the "
            f"radiative limit of {limit:.1f} % at the predicted {quantities.entry_name(sq_gap)} "
            f"{sq_gap['mean']:.3f} eV. No single-junction cell can do this; the prediction is unphysical here.", icon=":material/report:")
    if query.defaulted:
        st.caption("Not given, so the most common training value was used: " + ", ".join(f"{c} = {query.categorical[c]}" for c in query.defaulted))

    def _prediction_report(q=query) -> str:  # type: ignore[no-untyped-def]
        frame = query_frame(model, [q.formula], categorical=q.categorical)
        return prediction_report(q, attributions=explain_outputs(model, frame))

    report_button(_prediction_report, f"prediction-{query.formula}", key="predict.report",
                  help="This prediction as one HTML file: the chain with its intervals, the domain verdict, the attributions "
                       "of the band gaps and the PCE, and the model (name, checksum, version). Interactive, works offline.")


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
b1, b2, _ = st.columns([2, 2, 3])  # wide enough that the labels are never cut ("Add the one a…")
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
            q = predict_composition(model, text, etl=e or None, htl=h or None)
        except NestedAEError as exc:
            item["note"] = str(exc)
            item["_ok"] = False
            out.append(item)
            continue
        item["_ok"] = True
        item["formula"] = q.formula
        for c, t in measured_first(q.targets):
            name = quantities.entry_name(t)
            u = f" ({t['unit']})" if t["unit"] else ""
            item[f"{name}{u}"] = t["mean"]
            if quantities.has_interval(t):
                lower, upper = quantities.interval_columns(name, t["unit"], t["level"])
                item[lower], item[upper] = t["lower"], t["upper"]
            item[f"{name} model disagreement{u}"] = t["disagreement"]
        gap = q.targets[sq_gap_t.column] if sq_gap_t is not None and sq_gap_t.column in q.targets else None
        if gap is not None and PCE in q.targets and gap["mean"] > 0:
            lim = sq_limit(gap["mean"])["pce_percent"]
            item[sq_names(gap["fidelity"])[1]] = lim
            item["gap"], item["gap_std"] = gap["mean"], gap["disagreement"]
            item["pce"], item["pce_std"] = q.targets[PCE]["mean"], q.targets[PCE]["disagreement"]
            if quantities.has_interval(gap) and quantities.has_interval(q.targets[PCE]):
                item["gap_lower"], item["gap_upper"] = gap["lower"], gap["upper"]
                item["pce_lower"], item["pce_upper"] = q.targets[PCE]["lower"], q.targets[PCE]["upper"]
            item["_limit"] = lim
        item["in domain"] = q.in_domain
        item["note"] = "" if q.in_domain else f"outside the training domain ({q.domain_message})"
        if "_limit" in item and item["pce"] > item["_limit"]:
            item["note"] = (item["note"] + "; " if item["note"] else "") + "PCE above the SQ limit"
        out.append(item)
    return pd.DataFrame(out)


if len(edited) > MAX_COMPARE:
    st.warning(f"Only the first {MAX_COMPARE} rows are predicted.")
table = compare_table(edited)
if table.empty:
    st.info("Add at least one composition to the table.")
else:
    shown = table.drop(columns=[c for c in ("gap", "gap_std", "pce", "pce_std", "gap_lower", "gap_upper", "pce_lower", "pce_upper",
                                            "_ok", "_limit", "short", "label") if c in table.columns])
    shown.insert(0, "#", range(1, len(shown) + 1))
    ui.table_with_download(shown, "predictions-side-by-side", key="predict.dl-compare",
                           column_config={c: st.column_config.NumberColumn(c, format="%.3f") for c in shown.columns if "(" in c})
    failed = table[~table["_ok"].astype(bool)]
    plotted = table.dropna(subset=["gap"]) if "gap" in table else table.iloc[0:0]
    if len(plotted):
        left, right = st.columns(2)
        gap_label = sq_gap_t.label if sq_gap_t is not None else "band gap"
        sq_name = "Shockley–Queisser limit" + ("" if sq_gap_t is None or sq_gap_t.fidelity == "measured"
                                               else f" (drawn at the {fidelity_label(sq_gap_t.fidelity)} gap: no measured gap)")
        with left:
            ui.plot(fm.prediction_bars_figure(plotted, gap_label=gap_label), key="predict.bars")
        with right:
            ui.plot(fm.pce_vs_gap_figure(plotted, gap_label=gap_label, sq_name=sq_name), key="predict.sq")
        bars = (f"Error bars: {quantities.level_text(LEVEL)} prediction intervals (the model's calibration on out-of-fold residuals)"
                if fm.has_intervals(plotted) else
                "Error bars: model disagreement (± 1 sd of the fold models; this model has no calibrated prediction interval)")
        st.caption(bars
                   + ("." if sq_gap_t is None or sq_gap_t.fidelity == "measured" else f"; {quantities.NO_MEASURED_GAP}."))
    for r in failed.itertuples(index=False):
        st.error(ui.escape_markdown(f"Row '{r.formula}': {r.note}"), icon=":material/error:")


# ---------------------------------------------------------------------- many compositions (CSV)
K_BATCH_TEXT = "predict.batch_text"
BATCH_MAX_ROWS = 5000
st.subheader("Many compositions (CSV)")
st.caption(f"Upload a CSV, or paste a table (e.g. cells copied from a spreadsheet), with a header line and one composition per "
           f"row, optionally with an ETL and an HTL column (a blank cell takes the most common stack). Up to {BATCH_MAX_ROWS:,} rows "
           "here; for bigger files use `nestedae predict --csv IN --formula-column COL --out OUT`, which writes the same columns.")
up_col, paste_col = st.columns(2)
with up_col:
    upload = st.file_uploader("CSV file", type=["csv", "tsv", "txt"], key="predict.batch_upload")
with paste_col:
    pasted = st.text_area("…or paste a table", key=K_BATCH_TEXT, height=120,
                          placeholder="formula,etl,htl\nMAPbI3,SnO2-c,Spiro-MeOTAD\nFAPbI3,,")
source = upload.getvalue() if upload is not None else (pasted if pasted.strip() else None)
if source is not None:
    btable = None
    with ui.user_errors("The first line names the columns; separate cells by commas (or tabs, as a spreadsheet copies them)."):
        btable = read_small_table(source, max_rows=BATCH_MAX_ROWS,  # refuses a table too wide by its header, unparsed
                                        name=f"'{upload.name}'" if upload is not None else "the pasted table")
    if btable is not None:
        names = list(btable.columns)
        guess = next((c for c in names if c.strip().lower() in ("formula", "composition", "perovskite_composition_short_form")), names[0])
        none = "(none: the most common stack)"

        def _guess(word: str) -> str:
            return next((c for c in names if word in c.lower()), none)

        k1, k2, k3 = st.columns(3)
        f_col = k1.selectbox("Formula column", names, index=names.index(guess), key="predict.batch_formula")
        e_col = h_col = none
        if has_stack:
            e_col = k2.selectbox("ETL column", [none, *names], index=[none, *names].index(_guess("etl")), key="predict.batch_etl")
            h_col = k3.selectbox("HTL column", [none, *names], index=[none, *names].index(_guess("htl")), key="predict.batch_htl")
        bcols = BatchColumns(f_col, None if e_col == none else e_col, None if h_col == none else h_col)
        result = None
        with ui.user_errors():
            result = predict_rows(model, btable, bcols, level=LEVEL)
        if result is not None:
            bad = result[result["error"] != ""]
            ok_n = len(result) - len(bad)
            if len(bad):
                st.warning(f"{len(bad)} of {len(result)} rows could not be predicted; their `error` column says which column "
                           "is wrong and why (rows are numbered from 1, the first row under the header).", icon=":material/warning:")
                st.dataframe(bad[["row", "error"]], hide_index=True, key="predict.batch_errors")
            outside = int((result["in_domain"] == False).sum())  # noqa: E712 (object column: True/False/None)
            st.caption(f"{ok_n} of {len(result)} rows predicted; {outside} outside the training domain (see `domain_stage` and "
                       "`domain_message`). Columns: every quantity with its fidelity and unit (`bandgap_eV_mean`, "
                       "`_std` = model disagreement, `_lower`/`_upper` = the prediction interval), then the model that produced them "
                       "(`model_name`, `model_sha256`, `nestedae_version`).")
            # the predicted rows (the failed ones are listed above; the CSV holds every row, with its error)
            st.dataframe(result[result["error"] == ""] if ok_n else result, hide_index=True, key="predict.batch_table")
            st.download_button("Download the predictions (CSV)", ui.csv_bytes(result), file_name="predictions-batch.csv",
                               mime="text/csv", key="predict.batch_dl", icon=":material/download:", on_click="ignore")


# ---------------------------------------------------------------------- line scan
def scan_table(scan: pd.DataFrame, end: str) -> pd.DataFrame:
    """The line scan with readable, fidelity- and unit-bearing column names; x rounded (no float noise)."""
    names = {"x": f"x (fraction of {end})"}
    for t in targets:
        u = f" ({t.unit})" if t.unit else ""
        lower, upper = quantities.interval_columns(t.label, t.unit, LEVEL)
        names.update({f"{t.key}_mean": f"{t.label}{u}", f"{t.key}_std": f"{t.label} model disagreement{u}",
                      f"{t.key}_lower": lower, f"{t.key}_upper": upper})
    out = scan.assign(x=quantities.round_fraction(scan["x"]))
    return out.rename(columns=names)


st.subheader("Line scan between two end members")
s1, s2, s3, s4 = st.columns([2, 2, 2, 1])
choice = s1.selectbox("End members", list(SCANS), key="predict.scan_choice")
ends = SCANS[choice]
start_text = s2.text_input("Start (x = 0)", ends[0] if ends else "MAPbI3", key=f"predict.scan_start.{choice}", disabled=ends is not None)
end_text = s3.text_input("End (x = 1)", ends[1] if ends else "MAPbBr3", key=f"predict.scan_end.{choice}", disabled=ends is not None)
steps = s4.number_input("Points (count)", 3, 201, 21, key="predict.scan_steps")
with ui.user_errors():
    start_c, end_c = parse_formula(start_text), parse_formula(end_text)
    scan = line_scan(model, start_c, end_c, int(steps), etl=etl, htl=htl, level=LEVEL)
    pce_t = next((t for t in targets if t.column == PCE), None)
    level = LEVEL if any(c.endswith("_lower") for c in scan.columns) else None  # when the scan carries intervals
    ui.plot(fm.line_scan_figure(scan, start=start_c.formula, end=end_c.formula, gap=sq_gap_t, pce=pce_t, level=level), key="predict.scan")
    band = (f"Shaded bands: {quantities.level_text(level)} prediction intervals" if level is not None
            else "Shaded bands: ± 1 sd over the ensemble (model disagreement, not an error bar)")
    st.caption((f"Device stack for the scan: ETL {etl}, HTL {htl}. " if has_stack else "")
               + f"{band}; open circles: outside the training domain.")
    nice = scan_table(scan, end_c.formula)
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
            gap_col = NEAREST_COLUMNS[MEASURED_BANDGAP]
            shown_near = near.copy()
            if gap_col in shown_near:  # a blank, not "None", for a device that reports no band gap; the CSV stays numeric
                shown_near[gap_col] = [f"{v:g}" if pd.notna(v) else "" for v in pd.to_numeric(near[gap_col], errors="coerce")]
            ui.table_with_download(shown_near, "nearest-devices", key="predict.dl-near", download=near,
                                   column_config={DISTANCE_LABEL: st.column_config.NumberColumn(format="%.3f")})
