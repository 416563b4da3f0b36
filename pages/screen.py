"""Screen: rank many candidate compositions by predicted PCE inside a band-gap window.

Choose the ions allowed on each site and the grid step; every composition on
that grid is predicted by the active model (:func:`nestedae_core.predict.screen`),
filtered by the band-gap and tolerance-factor windows and ranked. The band-gap
window is meant for the measured-scale gap; a model without one filters on its
DFT gap, and the page says so. An optional stability filter keeps candidates
whose predicted decomposition energy is at most a bound (eV per formula unit; a
model without that head says "not in this model"). Candidates inside the training domain are
ranked; those outside it are listed apart, never in the ranking. The result
stays in the session until the next run; the tables download as CSV.
"""
from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from app import figures_model as fm
from app import model_state, quantities, ui
from app.report_button import report_button
from nestedae_core.api import (
    RANK_CONFIDENCE,
    DECOMPOSITION, DECOMPOSITION_MEANING, DEFAULT_LEVEL, ETL, HTL, IONS, NO_DECOMPOSITION_NOTE, PCE, SITE_IONS,
    TOLERANCE_RANGE, column_label as label, composition_problem, fidelity_label, grid_size, has_decomposition,
    model_provenance, query_phase, screen_compositions, screening_gap_column, screening_report,
)

#: Grid divisions offered (step = 1/n).
DIVISIONS = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 50]
MAX_CANDIDATES = 200_000
#: level of the prediction intervals shown
LEVEL = DEFAULT_LEVEL
SHOW_ROWS = 300
K_RESULT = "screen.result"
K_RATE = "screen.seconds_per_candidate"

st.title("Screen")
st.caption("Enumerate compositions on a grid of site fractions, predict band gap and PCE for each, "
           "keep those inside the windows and rank them.")

model_state.model_picker(key="screen.model_picker")
model = None
with ui.user_errors():
    model = model_state.active_model()
if model is None:
    st.stop()
if (problem := composition_problem(model)) is not None:
    st.info(f"The active model ({model.spec.name}) cannot predict from a composition: {problem}. "
            "Choose a perovskite model (e.g. the default) above.", icon=":material/info:")
    st.stop()
targets = fm.target_infos(model, phase=query_phase(model))
by_col = {t.column: t for t in targets}
#: the gap of the window (:func:`nestedae_core.predict.screening_gap_column`): the measured-scale one, else a DFT gap (said so)
_gap = screening_gap_column(model)
gap_t = next((t for t in targets if _gap is not None and t.key == _gap[0]), None)
cat_cols = [c for p in model.prep for c in p.categorical_columns]
has_stack = ETL in cat_cols and HTL in cat_cols


# ---------------------------------------------------------------------- settings
with st.container(border=True):
    c1, c2, c3, c4 = st.columns([2, 2, 2, 2])
    a_ions = c1.multiselect("A-site ions", list(SITE_IONS["A"]), ["Cs", "FA", "MA"], key="screen.a")
    b_ions = c2.multiselect("B-site ions", list(SITE_IONS["B"]), ["Pb"], key="screen.b")
    x_ions = c3.multiselect("X-site ions", list(SITE_IONS["X"]), ["I", "Br"], key="screen.x")
    n = c4.select_slider("Grid step (site fraction)", DIVISIONS, value=10, key="screen.n",
                         format_func=lambda d: f"1/{d} = {1 / d:.3g}" if d > 1 else "1 (end members)")
    count = grid_size(a_ions, b_ions, x_ions, n)
    rate = st.session_state.get(K_RATE)
    estimate = f" (about {count * rate:.1f} s at the last measured speed)" if rate and count else ""
    st.caption(f"**{count:,} candidates**{estimate}. Each site's fractions are multiples of 1/{n} and sum to 1.")

    d1, d2, d3, d4 = st.columns(4)
    etl = htl = None
    if has_stack:
        etls, htls = model.categories(ETL), model.categories(HTL)
        etl = d1.selectbox("ETL", etls, etls.index(model.default_category(ETL)), key="screen.etl")
        htl = d2.selectbox("HTL", htls, htls.index(model.default_category(HTL)), key="screen.htl")
    gap_window = d3.slider(f"Band-gap window, {fidelity_label('measured' if gap_t is None else gap_t.fidelity)} gap (eV)", 0.5, 3.5, (1.2, 1.8), 0.05,
                           key="screen.gap", disabled=gap_t is None,
                           help="Applied to the measured-scale band gap, the one a solar cell's absorber has.")
    if gap_t is not None and gap_t.fidelity != "measured":
        d3.caption(f"On the {gap_t.label}: {quantities.NO_MEASURED_GAP}. DFT gaps sit off measured ones, "
                   "so this window is not the measured 1.2–1.8 eV.")
    tol_window = d4.slider("Tolerance-factor window (dimensionless)", 0.6, 1.2, (float(TOLERANCE_RANGE[0]), float(TOLERANCE_RANGE[1])), 0.01,
                           key="screen.tol")
    has_decomp = has_decomposition(model)
    e1, e2 = st.columns(2, vertical_alignment="bottom")  # room for the whole checkbox label
    use_decomp = e1.checkbox(f"Stability: {label(DECOMPOSITION)} at most", key="screen.decomp_on", disabled=not has_decomp,
                             help=DECOMPOSITION_MEANING)
    decomp_max = e2.number_input("Decomposition energy at most (eV/f.u.)", -2.0, 4.0, 0.0, 0.05, key="screen.decomp_max",
                                 disabled=not (has_decomp and use_decomp), help=DECOMPOSITION_MEANING)
    if not has_decomp:
        e2.caption(f"{label(DECOMPOSITION).capitalize()}: {NO_DECOMPOSITION_NOTE}.")
    decomposition_max = float(decomp_max) if has_decomp and use_decomp else None
    r1, r2 = st.columns([2, 6], vertical_alignment="bottom")
    default_rank = model.spec.stages[-1].targets[0].column
    rank_by = r1.selectbox("Rank by (highest first)", [t.column for t in targets], [t.column for t in targets].index(default_rank),
                           format_func=lambda c: by_col[c].title("predicted"), key="screen.rank")
    run = r2.button("Screen", type="primary", icon=":material/filter_alt:", key="screen.run",
                    disabled=count == 0 or count > MAX_CANDIDATES)
    if count > MAX_CANDIDATES:
        st.warning(f"{count:,} candidates is more than {MAX_CANDIDATES:,}: use a coarser step or fewer ions.")
    elif count == 0:
        st.info("Choose at least one ion on every site.")

if run:
    params = dict(a=a_ions, b=b_ions, x=x_ions, n=n, etl=etl, htl=htl, gap=gap_window, tol=tol_window, rank=rank_by, decomp=decomposition_max,
                  model=str(model_state.active_model_path()))
    with ui.user_errors():
        with st.spinner(f"Predicting {count:,} candidates…"):
            t0 = time.perf_counter()
            ranked = screen_compositions(model, a_ions, b_ions, x_ions, 1.0 / n, etl=etl, htl=htl,
                                    bandgap_window=gap_window if gap_t is not None else None,
                                    tolerance_window=tol_window, rank_by=rank_by, max_candidates=MAX_CANDIDATES, level=LEVEL,
                                    decomposition_max=decomposition_max)
            seconds = time.perf_counter() - t0
        st.session_state[K_RESULT] = {"ranked": ranked, "seconds": seconds, "count": count, "params": params,
                                      "provenance": model_provenance(model)}
        st.session_state[K_RATE] = seconds / max(count, 1)

# ---------------------------------------------------------------------- results
res = st.session_state.get(K_RESULT)
if res is None:
    st.info("Choose the ions, the step and the windows, then press **Screen**.", icon=":material/filter_alt:")
    st.stop()
ranked: pd.DataFrame = res["ranked"]
p = res["params"]
if p["model"] != str(model_state.active_model_path()):
    st.warning("These results come from another model than the active one; press **Screen** to redo them.")
st.success(
    f"Screened **{res['count']:,}** candidates in **{res['seconds']:.2f} s** "
    f"({1000 * res['seconds'] / max(res['count'], 1):.3f} ms per candidate); **{len(ranked):,}** pass the windows "
    f"({gap_t.label if gap_t is not None else 'band gap'} {p['gap'][0]:.2f}–{p['gap'][1]:.2f} eV, "
    f"tolerance factor {p['tol'][0]:.2f}–{p['tol'][1]:.2f}"
    + (f", {label(DECOMPOSITION)} at most {p['decomp']:.2f} eV/f.u." if p.get("decomp") is not None else "") + ").",
    icon=":material/timer:",
)
calibrated = any(f"{t.key}_lower" in ranked for t in targets)
st.caption((f"Device stack: ETL {p['etl']}, HTL {p['htl']}. " if has_stack else "")
           + ("Uncertainty: prediction intervals (columns *lower*/*upper*); model disagreement: ± 1 sd over the "
              f"{model.members} fold models." if calibrated else
              f"Model disagreement: ± 1 sd over the {model.members} fold models; {quantities.DISAGREEMENT_NOTE}."))


def _screen_report(res=res, p=p) -> str:  # type: ignore[no-untyped-def]
    settings = {"A-site ions": ", ".join(p["a"]), "B-site ions": ", ".join(p["b"]), "X-site ions": ", ".join(p["x"]),
                "grid step (site fraction)": f"1/{p['n']}", "ETL": p["etl"], "HTL": p["htl"],
                "band-gap window (eV)": f"{p['gap'][0]:.2f}–{p['gap'][1]:.2f}" + (f" ({gap_t.label})" if gap_t is not None else ""),
                "tolerance-factor window": f"{p['tol'][0]:.2f}–{p['tol'][1]:.2f}", "ranked by": p["rank"],
                f"{label(DECOMPOSITION)} at most (eV/f.u.)": "no filter" if p.get("decomp") is None else f"{p['decomp']:.2f}",
                "candidates on the grid": f"{res['count']:,}"}
    return screening_report(res["ranked"], provenance=res.get("provenance") or model_provenance(model), settings=settings)


report_button(_screen_report, "screening-result", key="screen.report",
              help="This screening result as one HTML file: its settings, the ranking (in-domain first), a scatter of the "
                   "candidates and the model (name, checksum, version). Interactive, works offline.")


#: header of :data:`nestedae_core.RANK_CONFIDENCE` in the table
BEATS_NEXT = "P(beats the next) (probability)"
#: the column that names, per out-of-domain candidate, the first stage whose training data it leaves
STAGE_COLUMN = "first stage outside its training data"
_stage_names = [st.name for st in model.spec.stages]


def _stage_text(name: str) -> str:
    """``"film (stage 2 of 3)"`` for a stage name; "" stays "" (inside every stage's domain)."""
    if not name:
        return ""
    if name not in _stage_names:
        return str(name)
    return f"{name} (stage {_stage_names.index(name) + 1} of {len(_stage_names)})"


def display_order(rank_column: str) -> list[fm.TargetInfo]:
    """Targets in display order: the ranking target, the window's band gap, then the others in chain order."""
    first = list(dict.fromkeys(c for c in (rank_column, gap_t.column if gap_t is not None else None) if c in by_col))
    return [by_col[c] for c in first] + [t for t in targets if t.column not in first]


def display_table(df: pd.DataFrame, *, ranked: bool = True) -> pd.DataFrame:
    """Candidates with readable, fidelity- and unit-bearing column names; ``rank`` when ranked.

    Order: formula, the ranking target, how sure its rank is (P(beats the next)), its interval, the window's band
    gap with its interval, the
    other targets, the descriptors, the stage that leaves the training domain (out-of-domain rows only),
    the site fractions last."""
    out = pd.DataFrame({"formula": df["formula"].to_numpy()})
    if ranked:
        out.insert(0, "rank", range(1, len(df) + 1))
    for t in display_order(p["rank"]):
        if f"{t.key}_mean" in df:
            u = t.unit or "dimensionless"
            out[f"{t.label} ({u})"] = df[f"{t.key}_mean"].to_numpy()
            if ranked and t.column == p["rank"] and RANK_CONFIDENCE in df:  # beside the ranked value, in view
                out[BEATS_NEXT] = df[RANK_CONFIDENCE].to_numpy()
            if f"{t.key}_lower" in df and f"{t.key}_upper" in df:
                lower, upper = quantities.interval_columns(t.label, u, LEVEL)
                out[lower] = df[f"{t.key}_lower"].to_numpy()
                out[upper] = df[f"{t.key}_upper"].to_numpy()
            out[f"{t.label} model disagreement ({u})"] = df[f"{t.key}_std"].to_numpy()
    out["tolerance factor (dimensionless)"] = df["tolerance_factor"].to_numpy()
    out["octahedral factor (dimensionless)"] = df["octahedral_factor"].to_numpy()
    out["in training domain"] = df["in_domain"].to_numpy()
    if not ranked and "domain_stage" in df:
        out[STAGE_COLUMN] = [_stage_text(s) for s in df["domain_stage"]]
    for ion in IONS:
        if ion in df and (df[ion] > 0).any():
            out[f"{ion} (site fraction)"] = df[ion].to_numpy()
    return out


if ranked.empty:
    st.info("No candidate passes the windows: widen the band-gap or tolerance-factor window (or the stability bound).")
    st.stop()
inside = ranked[ranked["in_domain"].astype(bool)].reset_index(drop=True)
outside = ranked[~ranked["in_domain"].astype(bool)].reset_index(drop=True)
rank_t = by_col.get(p["rank"], targets[-1])
number = {c: st.column_config.NumberColumn(c, format="%.3f") for c in display_table(ranked.head(1)).columns if "(" in c}
st.subheader(f"Ranked by predicted {rank_t.label}: inside the training domain")
if inside.empty:
    st.info("No candidate inside the training domain passes the windows; those outside it are listed below.", icon=":material/info:")
else:
    table = display_table(inside)
    if len(inside) > 1:
        p_next = inside[RANK_CONFIDENCE].to_numpy()[:-1]
        close = int((p_next < 0.6).sum())
        spread_from = "the prediction intervals" if calibrated else "the model disagreement (which understates the error)"
        st.caption(f"**How sure is each rank?** *{BEATS_NEXT}*: the chance that a candidate truly beats the next one, from "
                   f"{spread_from}, errors taken as normal and independent. 0.5 is a coin toss. "
                   f"The first beats the second with probability {p_next[0]:.2f}; {close:,} of the {len(p_next):,} "
                   "neighbouring pairs are below 0.6, i.e. their order is not known: read the ranking as groups, not places.")
    ui.table_with_download(table.head(SHOW_ROWS), "screening-candidates", key="screen.dl", download=table,
                           caption=f"Showing the best {min(SHOW_ROWS, len(table)):,} of {len(table):,} in-domain candidates; "
                                   "the CSV holds all of them.",
                           column_config=number)
    x_t = gap_t or targets[0]
    y_t = by_col.get(PCE, rank_t)
    ui.plot(fm.screen_scatter_figure(inside, x=x_t, y=y_t, top=10), key="screen.scatter")
if len(outside):
    st.warning(f"{len(outside):,} of the {len(ranked):,} candidates lie outside the training domain: their predictions are "
               "extrapolations, so they are listed apart and never ranked with the others.", icon=":material/warning:")
    with st.expander(f"Outside the training domain ({len(outside):,} candidates, not ranked)"):
        far = display_table(outside, ranked=False)
        ui.table_with_download(far.head(SHOW_ROWS), "screening-candidates-outside-domain", key="screen.dl_outside", download=far,
                               caption=f"Showing {min(SHOW_ROWS, len(far)):,} of {len(far):,}; the CSV holds all of them.",
                               column_config=number)
