"""Design: from a target to compositions. Set a gap window and what to maximise, with the ions allowed,
Pb-free or a Pb cap and the fraction step; the search runs as a job (progress, cancel, limits, Dask when
configured) and its proposals come back ranked, each with its intervals, domain verdict per stage and the
nearest measured composition, one click from Predict and Explain.

The page only configures, starts and presents: the search is :func:`nestedae_core.design.run_design` in a
``design`` job of the server's job manager.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app import figures_model as fm
from app import jobs_state, model_state, quantities, state, ui
from nestedae_core.api import (
    DESIGN_KIND, ETL, HTL, SITE_IONS, DesignProblem, NestedAEError, Objective, QuantityRange, composition_problem,
    design_figures, design_live, design_output, design_payload, design_report, figure_filename, model_provenance, pareto_figure,
)

K_SELECTED = "design.selected"
REFRESH_S = 2.0
RESOLUTIONS = {"0.05": 0.05, "0.02": 0.02, "0.01": 0.01, "1/64": 1 / 64}
OBJECTIVES = {"highest PCE (mean)": ("pce_percent", "mean"), "highest PCE, pessimistic (interval's lower end)": ("pce_percent", "lower")}
SHOWN = 50
NO_SECOND = "none (one objective)"
#: Second objectives offered when the model predicts the quantity: label -> (schema key, goal)
SECOND_OBJECTIVES = {
    "lowest decomposition energy (most stable)": ("decomposition_eV_per_fu", "minimize"),
    "measured band gap closest to the window's centre": ("bandgap_eV", "target"),
    "highest Voc": ("voc_V", "maximize"),
    "highest Jsc": ("jsc_mA_per_cm2", "maximize"),
    "highest FF": ("ff", "maximize"),
}

st.title("Design")
st.caption("Which compositions give a measured band gap in your window with the highest efficiency? The search proposes "
           "compositions whose site fractions are multiples of the step and sum to one exactly, predicts each through the "
           "whole chain, and ranks those inside the model's domain; the rest are listed apart. A design is a ranked "
           "hypothesis for the lab, on our data's coverage: check the intervals and the nearest measured composition.")

model_state.model_picker(key="design.model_picker")
model = None
with ui.user_errors():
    model = model_state.active_model()
if model is None:
    st.stop()
if (why := composition_problem(model)) is not None:
    st.info(f"The active model ({model.spec.name}) cannot predict from a composition: {why}. Choose a perovskite model above.",
            icon=":material/info:")
    st.stop()
try:
    settings = jobs_state.settings()
    manager = jobs_state.get_manager()
except NestedAEError as exc:
    ui.show_error(exc, jobs_state.jobs_error_hint(exc))
    st.stop()
owner = jobs_state.identity()
cat_cols = [c for p in model.prep for c in p.categorical_columns]
targets = fm.target_infos(model)
predicted = {t.key for t in targets}
seconds = [NO_SECOND] + [k for k, (q, _) in SECOND_OBJECTIVES.items() if q in predicted]

# ---------------------------------------------------------------------- the problem
with st.form("design.new"):
    st.subheader("New design")
    c1, c2, c3 = st.columns(3)
    window = c1.slider("Measured band-gap window (eV)", 1.0, 3.2, (1.30, 1.40), 0.01,
                       help="1.30-1.40 eV: single junction; 1.65-1.75 eV: top cell of a tandem")
    goal = c2.selectbox("Objective", list(OBJECTIVES))
    resolution = c3.selectbox("Fraction step", list(RESOLUTIONS), index=2)
    d1, d2, d3 = st.columns(3)
    a_ions = d1.multiselect("A-site ions", list(SITE_IONS["A"]), ["Cs", "FA", "MA"])
    b_ions = d2.multiselect("B-site ions", list(SITE_IONS["B"]), ["Pb", "Sn"])
    x_ions = d3.multiselect("X-site ions", list(SITE_IONS["X"]), ["Br", "I"])
    e1, e2, e3, e4 = st.columns(4)
    pb = e1.radio("Lead", ["allowed", "Pb-free", "at most a fraction"], horizontal=False)
    max_pb = e2.number_input("Largest Pb fraction of the B site", 0.0, 1.0, 0.5, 0.05, disabled=False)
    max_ions = e3.number_input("At most ions per site", 1, 6, 3)
    budget = e4.number_input("Model evaluations", 10, settings.max_design_evals, min(500, settings.max_design_evals), 50, key="design.budget")
    f1, f2, f3 = st.columns(3)
    etl = htl = None
    if ETL in cat_cols and HTL in cat_cols:
        etls, htls = model.categories(ETL), model.categories(HTL)
        etl = f1.selectbox("ETL", etls, etls.index(model.default_category(ETL)))
        htl = f2.selectbox("HTL", htls, htls.index(model.default_category(HTL)))
    seed = f3.number_input("Seed", 0, 2**31 - 1, 0)
    second = st.selectbox("Second objective (optional)", seconds, key="design.second",
                          help="With two objectives the search looks for the trade-off between them: the Pareto front, "
                               "drawn as it fills while the design runs.")
    start = st.form_submit_button("Run design", type="primary", icon=":material/play_arrow:")

if start:
    with ui.user_errors():
        quantity, statistic = OBJECTIVES[goal]
        objectives = [Objective(quantity=quantity, statistic=statistic)]
        if second != NO_SECOND:
            q2, goal2 = SECOND_OBJECTIVES[second]
            objectives.append(Objective(quantity=q2, goal=goal2, target=round((window[0] + window[1]) / 2, 4) if goal2 == "target" else None))
        problem = DesignProblem(
            objectives=objectives,
            constraints=[QuantityRange(quantity="bandgap_eV", minimum=window[0], maximum=window[1])],
            a_ions=a_ions, b_ions=b_ions, x_ions=x_ions, max_ions=int(max_ions), pb_free=pb == "Pb-free",
            max_pb=float(max_pb) if pb == "at most a fraction" else None, resolution=RESOLUTIONS[resolution],
            etl=etl, htl=htl, max_evals=int(budget), seed=int(seed),
        )
        name = (f"design-gap-{window[0]:.2f}-{window[1]:.2f}-{quantity}" + ("-lower" if statistic == "lower" else "")
                + (f"-and-{objectives[1].quantity}" if len(objectives) > 1 else ""))
        job_id = manager.submit(DESIGN_KIND, design_payload(problem, model_state.active_model_path()), owner=owner, name=name[:64])
        st.session_state[K_SELECTED] = job_id

# ---------------------------------------------------------------------- your designs
st.subheader("Your designs")
try:
    mine = manager.jobs(owner, kind=DESIGN_KIND)
except NestedAEError as exc:
    ui.show_error(exc, jobs_state.jobs_error_hint(exc))
    st.stop()
if not mine:
    st.caption("No designs yet: set a problem above and run it.")
    st.stop()
ids = [r.id for r in mine]
if st.session_state.get(K_SELECTED) not in ids:
    st.session_state[K_SELECTED] = ids[0]
labels = {r.id: f"{r.name} ({r.status}, problem: {'; '.join(c.get('quantity', '') + ' ' + str(c.get('minimum')) + '-' + str(c.get('maximum')) for c in r.payload.get('problem', {}).get('constraints', []))})" for r in mine}
chosen = st.selectbox("Design", ids, key=K_SELECTED, format_func=lambda i: labels.get(i, i))


def view_names(level: float) -> dict[str, str]:
    """Table headers for the proposals' schema columns, as the other pages name them (``PCE (%)``,
    ``PCE 90 % interval lower (%)`` ...)."""
    names = {"rank": "rank", "formula": "formula", "status": "status", "domain_stage": "stage outside its training domain",
             "p_beats_next": "P(beats next)", "nearest_formula": "nearest measured composition",
             "nearest_bandgap_eV": "its measured band gap (eV)", "nearest_pce_percent": "its measured PCE (%)",
             "etl": "ETL stack", "htl": "HTL stack"}
    for t in targets:
        u = t.unit or "dimensionless"
        names[f"{t.key}_mean"] = f"{t.label} ({u})"
        names[f"{t.key}_lower"], names[f"{t.key}_upper"] = quantities.interval_columns(t.label, u, level)
    return names


def proposals_view(table: pd.DataFrame, level: float, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """What the table shows, with readable headers: formula, the gap and PCE with intervals (and the objectives'
    quantities), domain, rank confidence, nearest measured."""
    keys = list(dict.fromkeys(["bandgap_eV", "pce_percent", *extra]))
    cols = ["rank", "formula", *(f"{k}_{s}" for k in keys for s in ("mean", "lower", "upper")), "status", "domain_stage",
            "p_beats_next", "nearest_formula", "nearest_bandgap_eV", "nearest_pce_percent", "etl", "htl"]
    return table[[c for c in cols if c in table]].rename(columns=view_names(level))


def design_panel(job_id: str, was_active: bool) -> None:
    """The selected design: progress (and the Pareto front filling) while it runs, its proposals when done, its
    message when it failed. When a run the page saw active ends, the whole page reruns so the selector's
    label shows its new status."""
    rec = manager.get(job_id)
    if rec is None:
        st.caption("This design is gone.")
        return
    if was_active and not rec.is_active:
        st.rerun()
    if rec.is_active:
        ev = rec.last_event or {}
        best = ev.get("best")
        st.progress(min(1.0, rec.fraction), text=f"{rec.status}: {ev.get('evaluations', 0)} of {ev.get('budget', '?')} model evaluations"
                    + (f" · best so far {best:.3g}" if isinstance(best, (int, float)) else ""))
        if st.button("Cancel design", key=f"design.cancel.{job_id}", icon=":material/stop_circle:"):
            with ui.user_errors():
                manager.cancel(job_id, owner)
                st.rerun()
        live_front(rec)
        return
    if rec.status != "done":
        st.error(f"This design {rec.status}: " + ui.escape_markdown(rec.error or "no reason recorded"), icon=":material/error:")
        return
    with ui.user_errors():
        out = design_output(rec)
        render_result(out, rec.name)


def live_front(rec) -> None:  # type: ignore[no-untyped-def]
    """A running two-objective design: the candidates evaluated so far and their Pareto front."""
    with ui.user_errors():
        problem = DesignProblem.model_validate(rec.payload.get("problem") or {})
        if len(problem.objectives) < 2:
            return
        live = design_live(rec)
        if live is None or not len(live):
            st.caption("The Pareto front appears here as the first candidates are evaluated.")
            return
        ui.plot(pareto_figure(live, problem, title="Pareto front so far"), key=f"design.live.{rec.id}")


def render_result(out, name: str) -> None:  # type: ignore[no-untyped-def]
    s = out.summary
    st.success(f"{s['evaluations']} model evaluations in {s['elapsed_s']:.1f} s ({s['sampler']}, seed {s['seed']}): "
               f"{s['ranked']} proposals in domain, {s['out_of_domain']} outside it (listed after, never ranked among them).",
               icon=":material/check_circle:")
    for note in s.get("notes", []):
        st.warning(ui.escape_markdown(note), icon=":material/warning:")
    table = out.proposals
    ranked = table[table["status"] == "ranked"]
    if len(ranked) >= 2 and float(ranked["p_beats_next"].iloc[0]) < 0.75:
        st.info(f"The top proposals are within each other's intervals: the first beats the second with probability "
                f"{float(ranked['p_beats_next'].iloc[0]):.2f}. Treat the top of the list as a set to test, not a single answer.",
                icon=":material/balance:")
    ranked_rows = table[table["status"] == "ranked"].head(SHOWN)
    apart_rows = table[table["status"] != "ranked"].head(SHOWN)
    problem = out.problem
    extra = tuple(o.quantity for o in problem.objectives)
    config = {c: st.column_config.NumberColumn(c, format="%.4g") for c in proposals_view(table, problem.level, extra).columns
              if c.endswith(")") and not c.startswith("P(")}
    config["P(beats next)"] = st.column_config.ProgressColumn("P(beats next)", min_value=0.0, max_value=1.0, format="%.2f")
    if len(table):
        shown = pd.concat([ranked_rows, apart_rows]).drop_duplicates("formula")
        pick = st.selectbox("Open a proposal", shown["formula"].tolist(), key="design.pick")
        row = shown[shown["formula"] == pick].iloc[0]
        l1, l2 = st.columns(2)
        if l1.button("Predict it", icon=":material/online_prediction:", key="design.to_predict"):
            state.open_composition("pages/predict.py", str(row["formula"]), etl=str(row["etl"]) or None, htl=str(row["htl"]) or None)
        if l2.button("Explain it", icon=":material/insights:", key="design.to_explain"):
            state.open_composition("pages/explain.py", str(row["formula"]), etl=str(row["etl"]) or None, htl=str(row["htl"]) or None)
        st.caption("Both open the proposal with the device stack the design used.")
    st.markdown(f"**Ranked proposals** (inside every stage's domain; the best {len(ranked_rows)} shown)")
    if len(ranked_rows):
        st.dataframe(proposals_view(ranked_rows, problem.level, extra), hide_index=True, width="stretch", column_config=config)
    else:
        st.caption("None: every candidate that meets the constraints lies outside the model's domain at some stage.")
    if len(apart_rows):
        st.markdown("**Outside the model's domain** (not ranked: the chain extrapolates for these; the stage it leaves first is named)")
        st.dataframe(proposals_view(apart_rows, problem.level, extra).drop(columns=["rank", "P(beats next)"], errors="ignore"), hide_index=True,
                     width="stretch", column_config=config)
    from nestedae_core.api import DesignResult

    result = DesignResult(problem=out.problem, sampler=s["sampler"], proposals=table, history=out.history, evaluated=out.evaluated,
                          evaluations=s["evaluations"], trials=s["trials"], elapsed_s=s["elapsed_s"], stopped=s["stopped"], notes=s["notes"])
    for fname, fig in design_figures(result):
        ui.plot(fig, key=f"design.fig.{fname}")
    c1, c2 = st.columns(2)
    c1.download_button("Proposals (CSV)", ui.csv_bytes(table), file_name=figure_filename("design", name) + ".csv", mime="text/csv",
                       icon=":material/download:")
    c2.download_button("Report (HTML)", lambda: design_report(result, table, provenance=model_provenance(model)),
                       file_name=figure_filename("design", name) + ".html", mime="text/html", icon=":material/description:")


_rec = manager.get(chosen)
_active = _rec is not None and _rec.is_active
st.fragment(run_every=REFRESH_S if _active else None)(design_panel)(chosen, _active)
