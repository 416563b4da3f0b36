"""Explain: SHAP attributions of the band gap, of each latent, of the PCE and of the whole chain.

* Opens on the measured band gap (the film stage's target) explained in the user's own
  inputs: site fractions, site descriptors, phase (and the stack, for device outputs),
  end to end through the chain. A model without a measured gap (the paper's chain)
  opens on its first band gap w.r.t. the first stage's inputs (the descriptors).
* "Explain in terms of": *your inputs* (every output end to end from the raw inputs)
  or, one click away, *latent space* (each stage's output w.r.t. its own inputs, the
  upstream latents as given values, and each latent of each stage).
* Local view: a waterfall for the chosen composition (shared with Compose and
  Predict) and device stack, from the base value to the prediction, in the
  output's unit; the same numbers as a table and summed by site.
* Global view: mean |SHAP| bars and a beeswarm over a seeded sample of the
  stage's data set (or the model's stored background when the data is absent).
* Fidelity: the explainers (exact, permutation, gradient, kernel) side by side
  on the chosen composition, with their time and additivity error.

All numbers come from :mod:`nestedae_core.explain`, cached in
:mod:`app.explain_state`. The output block is an ``st.fragment``: changing the
output, view or method reruns only that block.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from app import explain_state as es
from app import figures_explain as fx
from app import quantities, state, ui
from app.report_button import report_button
from nestedae_core.api import (
    query_phase,
    DESCRIPTOR_UNITS, EXPLAINER_NOTES, SITE_FRACTION_LABELS, target_fidelity, Attribution, ExplainSettings, composition_problem, explain_outputs,
    predict_composition, prediction_report, query_frame,
)

VIEWS = ["Local: this composition", "Global: over many rows", "Fidelity: compare explainers"]
#: What the outputs are explained in: the user's own inputs (default) or the latent space.
TERMS = {
    "inputs": "your inputs (composition, descriptors, stack)",
    "latents": "latent space (each stage's own inputs; the latents)",
}
#: The output select box of each TERMS option (kept apart: their options differ).
OUTPUT_KEYS = {"inputs": "explain.output", "latents": "explain.output_latent"}
LOCAL_METHODS = {
    "permutation": "permutation (fast; exactly additive)",
    "exact": "exact (every coalition; a few seconds for 15+ inputs)",
    "gradient": "gradient (integrated gradients; fastest, approximate)",
}
GLOBAL_METHODS = {
    "permutation": "permutation (Shapley estimate)",
    "gradient": "gradient (integrated gradients; faster)",
}
SAMPLE_SIZES = [50, 100, 200]
#: Help of the base value (index: the explainer is exact).
BASE_VALUE_HELP = (
    "The model's average output over its stored background ({n} rows): where the waterfall starts.",
    "The model's average output over a background of {n} rows: the exact explainer uses fewer rows than the others "
    "(it evaluates every coalition of the inputs for each), so its base value differs slightly from theirs.",
)

es.warm_up()
st.title("Explain")
st.caption("Which inputs drive a prediction, and by how much: Shapley (SHAP) attributions of the band gap, each latent, "
           "the PCE and the whole chain, in the output's own unit.")

model, key = es.model_header("explain")

if (problem := composition_problem(model)) is not None:
    st.info(f"The active model ({model.spec.name}) does not take a composition ({problem}). Choose a perovskite model "
            "(e.g. the default) above, or see the Learn page for attributions on the synthetic data set.",
            icon=":material/info:")
    st.stop()

query = es.composition_controls("explain", model)


# ---------------------------------------------------------------------- output choices
@dataclass(frozen=True)
class Choice:
    """One thing to explain: an output of a stage w.r.t. some inputs."""

    label: str
    stage: int
    output: str  # target column, or "latents"
    name: str  # the output's name, a band gap with its fidelity and phase (e.g. "band gap, DFT PBE (no SOC, cubic)")
    inputs: str  # "stage" or "chain"
    unit: str
    terms: str  # a key of TERMS: "inputs" (the raw inputs, end to end) or "latents"

    @property
    def is_latent(self) -> bool:
        return self.output == "latents"

    @property
    def comparable(self) -> bool:
        """The explainer comparison covers every target (not the latents, explained per fold model)."""
        return not self.is_latent


def _numeric_text(cols: list[str]) -> list[str]:
    """``["14 site fractions", "15 site descriptors"]``: the numeric inputs ``cols``, counted by kind."""
    fractions = [c for c in cols if c in SITE_FRACTION_LABELS]
    descriptors = [c for c in cols if c in DESCRIPTOR_UNITS]
    other = [c for c in cols if c not in fractions and c not in descriptors]
    return [f"{len(v)} {k}" for k, v in (("site fractions", fractions), ("site descriptors", descriptors),
                                          ("numeric inputs", other)) if v]


def _inputs_text(i: int, inputs: str) -> str:
    parts = []
    stages = range(i + 1) if inputs == "chain" else [i]
    for s in stages:
        p = model.prep[s]
        if p.n_upstream and inputs == "stage":
            parts.append(f"the {p.n_upstream} {model.stage_names[s - 1]} latents")
        parts += _numeric_text(list(p.numeric_columns))
        parts += [fx.feature_label(c, with_unit=False) for c in p.categorical_columns]
    return ", ".join(parts)


def _raw_inputs_text(i: int) -> str:
    """The user's own inputs of stages 0..i: ``14 site fractions, 15 site descriptors, crystal phase, ETL stack``."""
    cats = list(dict.fromkeys(c for s in range(i + 1) for c in model.prep[s].categorical_columns))
    numeric = [c for c in model.raw_columns(i) if c not in cats]
    return ", ".join(_numeric_text(numeric) + [fx.feature_label(c, with_unit=False) for c in cats])


def _headline() -> tuple[int, str]:
    """(stage, target) the page opens on: the measured band gap when a stage predicts one, else the first stage's
    first target (the paper chain's DFT-PBE gap)."""
    for i, st_spec in enumerate(model.spec.stages):
        for t in st_spec.targets:
            if target_fidelity(st_spec, t) == "measured":
                return i, t.column
    return 0, model.spec.stages[0].targets[0].column


def _choices() -> list[Choice]:
    """Every output in the user's inputs (the headline first, then the last stage's outputs back to the first),
    then in latent space (the later stages' outputs w.r.t. their own inputs, then each stage's latents)."""
    inputs: list[Choice] = []
    latents: list[Choice] = []
    for i, st_spec in enumerate(model.spec.stages):
        for t in st_spec.targets:
            unit = t.unit or ""
            out_name = quantities.target_name(st_spec, t, query_phase(model))  # DFT gaps at the model's phase
            name = f"{out_name} ({unit or 'dimensionless'})"
            if i == 0:  # the first stage's inputs are the user's own
                inputs.append(Choice(f"{name} ← stage 1 inputs: {_raw_inputs_text(0)}", 0, t.column, out_name, "stage", unit, "inputs"))
            else:
                inputs.append(Choice(f"{name} ← whole chain: {_raw_inputs_text(i)}", i, t.column, out_name, "chain", unit, "inputs"))
                latents.append(Choice(f"{name} ← stage {i + 1} inputs: {_inputs_text(i, 'stage')}", i, t.column, out_name, "stage", unit, "latents"))
    for i, st_spec in enumerate(model.spec.stages):
        latents.append(Choice(f"stage-{i + 1} latents ({st_spec.name}.z1 … z{st_spec.latent_dim}, dimensionless) ← {_inputs_text(i, 'stage')}",
                              i, "latents", "latents", "stage", "", "latents"))
    head = _headline()
    inputs.sort(key=lambda c: (0 if (c.stage, c.output) == head else 1, -c.stage))  # stable: targets keep their order
    return inputs + latents


CHOICES = _choices()
UNITS = {c: u for c, u in DESCRIPTOR_UNITS.items() if u}


def _group(name: str) -> str:
    if name[:2] in ("A_", "B_", "X_") and name in DESCRIPTOR_UNITS:
        return f"{name[0]} site (all its descriptors)"
    if name in SITE_FRACTION_LABELS:  # "Sn fraction of the B site"
        return f"{SITE_FRACTION_LABELS[name].rsplit(' ', 2)[-2]} site (all its ion fractions)"
    if ".z" in name:
        return f"{name.split('.')[0]} latents"
    return fx.feature_label(name, with_unit=False)


def _by_group(att: Attribution, row: int = 0) -> pd.DataFrame:
    unit = att.unit or "dimensionless"
    s = att.sum_by(_group, row)
    return pd.DataFrame({"group": s.index, f"sum of SHAP ({unit})": s.to_numpy()})


def _num(v: float, unit: str, digits: int = 3) -> str:
    return f"{v:.{digits}f} {unit}".strip() if unit else f"{v:.{digits}f}"


def _caveats() -> None:
    with st.expander("What SHAP can and cannot tell you", icon=":material/help:"):
        st.markdown(
            "- **Correlated descriptors share credit.** Swapping iodide for bromide changes the X-site radius, weight, "
            "electron affinity, ionisation energy and electronegativity together. SHAP splits their joint effect among "
            "them in a way that depends on the model, so read the **sum over a site** (the *by group* table) rather "
            "than one descriptor.\n"
            "- **Attributions are relative to a background.** The base value is the average prediction over the model's "
            "stored background (k-means summary of its training inputs). The bars explain why this prediction differs "
            "from that average; another reference set gives other numbers.\n"
            "- **They describe the model, not physics.** SHAP faithfully explains what the network computes, including "
            "its mistakes and shortcuts. A large attribution is not a causal effect.\n"
            "- **Masked inputs are taken independently** (interventional Shapley values), so the model is also evaluated "
            "on descriptor combinations no real composition has.\n"
            "- **Latents are per fold model.** Latent *k* of one fold model has nothing to do with latent *k* of "
            "another, so latent attributions are shown for one fold model at a time."
        )


# ---------------------------------------------------------------------- the output block
@st.fragment
def output_block() -> None:
    terms = st.radio("Explain in terms of", list(TERMS), format_func=TERMS.get, horizontal=True, key="explain.terms",
                     help="Your inputs: each output end to end, from the site fractions, the site descriptors, the phase "
                          "and the device stack. Latent space: each stage's output from its own inputs (the upstream "
                          "latents as given values), and each latent of each stage.")
    c1, c2 = st.columns([3, 2])
    shown = [c for c in CHOICES if c.terms == terms]
    labels = [c.label for c in shown]
    label = c1.selectbox("Explain this output", labels, key=OUTPUT_KEYS[terms],
                         help="'whole chain' explains an output end to end from your inputs; 'stage N inputs' from that "
                              "stage's own inputs, the upstream latents taken as given values.")
    choice = shown[labels.index(label)]
    view = c2.radio("View", VIEWS, horizontal=True, key="explain.view")
    member: int | None = None
    latent = None
    if choice.is_latent:
        l1, l2 = st.columns(2)
        names = model.latent_names(choice.stage)
        latent = l1.selectbox("Latent", names, key=f"explain.latent.{choice.stage}")
        member = l2.number_input(f"Fold model (1–{model.members})", 1, model.members, 1, key="explain.member",
                                 help="Each fold model learnt its own latent basis; latents are explained per fold model.") - 1
    if view == VIEWS[0]:
        local_view(choice, member, latent)
    elif view == VIEWS[1]:
        global_view(choice, member, latent)
    else:
        fidelity_view(choice)
    _caveats()


def _stack(choice: Choice) -> tuple[tuple[str, str], ...]:
    """The categorical choices (phase, device stack) the stage's raw inputs take; the others are left out, which
    keeps the cache shared across stacks for the band gaps."""
    raw = set(model.raw_columns(choice.stage))
    return tuple((c, v) for c, v in query.categorical if c in raw)


def _local(choice: Choice, method: str, member: int | None, latent: str | None) -> Attribution:
    if choice.is_latent:
        return es.local_latent_attributions(key, query.formula, _stack(choice), choice.stage, choice.inputs, method, int(member or 0))[latent]
    return es.local_attribution(key, query.formula, _stack(choice), choice.stage, choice.output, choice.inputs, method, member)


def _n_inputs(choice: Choice) -> int:
    """How many inputs the explainer varies: the raw columns along the whole chain, else the stage's own inputs."""
    return len(model.raw_columns(choice.stage)) if choice.inputs == "chain" else len(model.input_names(choice.stage))


def _exact_ok(choice: Choice) -> bool:
    """True when the exact explainer can run: it enumerates every coalition, 2^inputs of them per background row."""
    return 2 ** _n_inputs(choice) <= ExplainSettings().exact_max_rows


def local_view(choice: Choice, member: int | None, latent: str | None) -> None:
    m1, m2 = st.columns([2, 1])
    offered = [m for m in LOCAL_METHODS if m != "exact" or _exact_ok(choice)]
    if st.session_state.get("explain.local_method") not in (None, *offered):
        st.session_state.pop("explain.local_method")
    method = m1.radio("Explainer", offered, format_func=LOCAL_METHODS.get, horizontal=True, key="explain.local_method",
                      help=None if "exact" in offered else
                      f"The exact explainer is not offered here: {_n_inputs(choice)} inputs need 2^{_n_inputs(choice)} coalitions per background row.")
    top = m2.slider("Features shown (count)", 5, 20, 10, key="explain.local_top")
    with ui.user_errors():
        att = _local(choice, method, member, latent)
        unit = att.unit
        pred, base = float(att.predictions[0]), float(att.base_values[0])
        out_name = latent or choice.name
        cols = st.columns(4)
        cols[0].metric(f"{out_name}: prediction", _num(pred, unit), help="Ensemble mean of the fold models" if member is None else f"Fold model {member + 1}")
        cols[1].metric("base value (background average)", _num(base, unit),
                       help=BASE_VALUE_HELP[att.explainer == "exact"].format(n=att.background_size))
        cols[2].metric("sum of attributions", ("+" if pred - base >= 0 else "") + _num(pred - base, unit))
        cols[3].metric(f"explainer: {att.explainer}", f"{att.seconds * 1000:.0f} ms",
                       help=f"Additivity error {att.additivity_error():.2g} {unit}; background of {att.background_size} rows.")
        if att.explainer == "exact":
            st.caption(f"The exact explainer averages over a smaller background ({att.background_size} rows, to bound its "
                       f"2^{_n_inputs(choice)} coalitions per row), so its base value differs slightly from the permutation "
                       "and gradient explainers'; the prediction is the same. The Fidelity view compares them.")
        ui.plot(fx.waterfall_figure(att, top=top, units=UNITS,
                                    title=f"Why {out_name} = {_num(pred, unit)} for {query.formula}"), key="explain.waterfall")
        j = int(np.argmax(np.abs(att.values[0])))
        v = float(att.values[0, j])
        stack = f" with {query.stack_text}" if query.categorical and any(c in state.STACK_SHORT_NAMES for c, _ in _stack(choice)) else ""
        st.caption(
            f"For **{query.formula}**{stack}, the {'fold model' if member is not None else 'model'} gives **{_num(pred, unit)}**. "
            f"The average over the background is {_num(base, unit)}; each bar shows how far one input moves this "
            f"prediction from that average (red: up, blue: down), and the bars add up to the prediction "
            f"(additivity error {att.additivity_error():.1g}{(' ' + unit) if unit else ''}). The largest single "
            f"contribution is **{fx.feature_label(att.feature_names[j], UNITS, with_unit=False)}**, "
            f"{'raising' if v >= 0 else 'lowering'} it by {_num(abs(v), unit)}."
        )
        left, right = st.columns([1, 1])
        with left:
            table = att.top(k=len(att.feature_names)).rename(columns={"value": f"SHAP ({unit or 'dimensionless'})", "data": "input value"})
            table.insert(1, "description", [fx.feature_label(f, UNITS) for f in table["feature"]])
            table = table.drop(columns=["unit"])
            table["input value"] = [f"{v:.5g}" if isinstance(v, (int, float, np.floating)) else str(v) for v in table["input value"]]
            ui.table_with_download(table.drop(columns=["feature"]), f"shap-local-{out_name}-{query.formula}", key="explain.dl_local",
                                   label="CSV", download=table)
        with right:
            ui.table_with_download(_by_group(att), f"shap-local-groups-{out_name}-{query.formula}", key="explain.dl_groups", label="CSV",
                                   caption="Attributions summed by group: Shapley values add, so a site's total is as "
                                           "meaningful as the single values, and more robust to correlated descriptors.")

        def _explain_report(att=att, method=method, name=out_name) -> str:  # type: ignore[no-untyped-def]
            cats = dict(query.categorical)
            res = predict_composition(model, query.formula, categorical=cats)
            frame = query_frame(model, [query.formula], categorical=cats)
            atts = explain_outputs(model, frame, method=method)
            shown = {k: a for k, a in atts.items() if (a.stage, a.output, a.inputs) == (att.stage, att.output, att.inputs)}
            if not shown:  # the output on screen (a latent, another target) first, then the standard ones
                atts = {name: att, **atts}
            return prediction_report(res, attributions=atts, title=f"Explanation for {query.formula}")

        report_button(_explain_report, f"explanation-{query.formula}", key="explain.report",
                      help="This composition's prediction with the attributions of the output shown here and of the band gaps "
                           "and the PCE, and the model (name, checksum, version), as one HTML file. Interactive, works offline.")


def global_view(choice: Choice, member: int | None, latent: str | None) -> None:
    g1, g2, g3 = st.columns([2, 1, 1])
    method = g1.radio("Explainer", list(GLOBAL_METHODS), format_func=GLOBAL_METHODS.get, horizontal=True, key="explain.global_method")
    n = g2.select_slider("Rows in the sample (count)", SAMPLE_SIZES, value=100, key="explain.global_n")
    top = g3.slider("Features shown (count)", 5, 20, 12, key="explain.global_top")
    with ui.user_errors():
        rows = es.stage_rows(key, choice.stage)
        if choice.is_latent:
            att = es.global_latent_attributions(key, choice.stage, choice.inputs, method, int(member or 0), n)[latent]
        else:
            att = es.global_attribution(key, choice.stage, choice.output, choice.inputs, method, member, n)
        out_name = latent or choice.name
        unit = att.unit or "dimensionless"
        src = (f"a random sample (seed 0) of {att.n_rows} rows of `{rows.source}`" if rows.from_dataset
               else f"the model's {att.n_rows} stored background rows")
        if rows.note:
            st.info(rows.note, icon=":material/info:")
        left, right = st.columns([2, 3])
        with left:
            ui.plot(fx.global_bar_figure(att, top=top, units=UNITS, title=f"Global importance for {out_name}"), key="explain.bar")
        with right:
            ui.plot(fx.beeswarm_figure(att, top=top, units=UNITS, title=f"Every row's attributions for {out_name}"), key="explain.swarm")
        imp = fx.global_importance_frame(att, UNITS)
        first = imp.iloc[0]
        st.caption(
            f"Computed on {src} with the {att.explainer} explainer in {att.seconds:.1f} s. "
            f"Left: how much each input moves {out_name}, on average over the rows (mean |SHAP|, {unit}); "
            f"**{first['description']}** matters most ({first[f'mean |SHAP| ({unit})']:.3g} {unit if unit != 'dimensionless' else ''}). "
            "Right: one dot per row; its position is the input's effect on that row, its colour the input's value "
            "(blue low, red high; grey: a categorical input such as the ETL or HTL stack, which has no low or high; "
            "hover a dot for its stack). Red dots on the right mean 'larger values raise the output'."
        )
        ui.table_with_download(imp, f"shap-global-{out_name}", key="explain.dl_global")


def fidelity_view(choice: Choice) -> None:
    if not choice.comparable:
        st.info("The explainer comparison covers the predicted quantities (band gaps, PCE, ...), not the latents, "
                "which are explained one fold model at a time. Choose one of those outputs above.", icon=":material/info:")
        return
    notes = EXPLAINER_NOTES
    n_inputs = _n_inputs(choice)
    exact_ok = _exact_ok(choice)
    offered = ["exact", "permutation", "gradient", "kernel"] if exact_ok else ["permutation", "gradient", "kernel"]
    if any(m not in offered for m in st.session_state.get("explain.cmp_methods", [])):
        st.session_state.pop("explain.cmp_methods")
    methods = st.multiselect("Explainers to compare", offered,
                             default=[m for m in ("exact", "permutation", "gradient") if m in offered], key="explain.cmp_methods",
                             help="; ".join(f"{k}: {v}" for k, v in notes.items()))
    if not exact_ok:
        st.caption(f"The exact explainer is not offered here: {n_inputs} inputs need 2^{n_inputs} coalitions per background row.")
    run_key = (key, query.formula, _stack(choice), choice.stage, choice.output, choice.inputs, tuple(methods))
    ss = st.session_state
    if st.button("Run the comparison", icon=":material/play_arrow:", key="explain.cmp_run", disabled=not methods):
        ss["explain.cmp_requested"] = run_key
    if ss.get("explain.cmp_requested") != run_key:
        st.caption((f"The exact explainer enumerates every coalition of the {n_inputs} inputs (2^{n_inputs} per background row): "
                    "it may take a few seconds. " if exact_ok else "")
                   + "Press the button to run the comparison.")
        return
    with ui.user_errors():
        table = es.comparison(key, query.formula, _stack(choice), choice.stage, choice.output, choice.inputs, tuple(methods), None)
        unit = str(table["unit"].iloc[0])
        ui.plot(fx.explainer_comparison_figure(table, units=UNITS, title=f"Explainers on {query.formula}"), key="explain.cmp")
        summary = table[["explainer", "is_exact", "base", "prediction", "additivity_error", "max_abs_diff_vs_exact", "seconds", "background_size"]].rename(
            columns={"base": f"base ({unit})", "prediction": f"prediction ({unit})", "additivity_error": f"additivity error ({unit})",
                     "max_abs_diff_vs_exact": f"max |difference| vs exact ({unit})", "seconds": "time (s)",
                     "background_size": "background rows (count)", "is_exact": "exact Shapley values"})
        diff_col = f"max |difference| vs exact ({unit})"
        # as text, so that a missing value (no exact run, or the exact row itself) shows "—" rather than "None"
        summary[diff_col] = [f"{v:.1e}" if pd.notna(v) else "—" for v in summary[diff_col]]
        sci = st.column_config.NumberColumn(format="%.1e")
        ui.table_with_download(summary, f"explainer-comparison-{choice.name}-{query.formula}", key="explain.dl_cmp",
                               download=table, column_config={f"additivity error ({unit})": sci,
                                                              "time (s)": st.column_config.NumberColumn(format="%.3f")})
        st.caption(
            "Every explainer starts from the same background and ends at the same prediction; they differ in how they "
            "share the difference among the inputs. *exact* enumerates every coalition; *permutation* samples orderings "
            "(exactly additive, close to exact when inputs interact little); *gradient* integrates the model's "
            "gradient along straight paths (equal to Shapley values only for additive models); *kernel* fits a weighted "
            "regression. A large 'max |difference| vs exact' means the cheap explainer is not to be trusted for this row. "
            "The exact run may use a smaller background (to bound memory), hence a slightly different base value.")


output_block()
