"""Sweep: search hyperparameters with Optuna; every trial a training job on the same grouped folds.

The page only configures, starts and presents: the sweep itself is
:class:`nestedae_core.sweep.Sweep` (Optuna ask/tell), its trials are ordinary
``sweep-trial`` jobs of the server's job manager (worker processes or a Dask
cluster, never this server's threads; the job limits apply), and the study lives
in the job store. Each visit advances the selected sweep (:meth:`Sweep.step`:
record finished trials, start new ones as slots allow); a fragment refreshes it
every few seconds while trials run. The best trial's model can be saved.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app import jobs_state, ui
from nestedae_core.api import (
    MAX_TRIALS, NO_DATA_PRESET, PRESETS, NestedAEError, Sweep, SweepConfig, list_sweeps, missing_data_message,
)

K_SELECTED = "sweep.selected"
K_MESSAGE = "sweep.message"
K_PRESET = "sweep.preset"
#: Presets offered, fastest first after the default chain.
PRESET_ORDER = ["measured", "synthetic", "paper", "paper-jv", "pbe-extended", "paper-exact"]
REFRESH_S = 3.0

st.title("Sweep")
st.caption(
    "Search architectures, learning rate, training length and seed with Optuna (TPE sampler). Every trial is a "
    "training job cross-validated on the same grouped folds, so trials compare fairly; the value is the mean "
    "validation-fold MAE of the last stage's first target (lower is better). The best trial can be saved as a model."
)

try:
    settings = jobs_state.settings()
    manager = jobs_state.get_manager()
except NestedAEError as exc:  # an invalid setting, or a job store that is locked, damaged, read-only or full
    ui.show_error(exc, jobs_state.jobs_error_hint(exc))
    st.stop()
owner = jobs_state.identity()
read_only = settings.read_only
if read_only:
    st.info("This server is a read-only demo (NESTEDAE_READ_ONLY=1): sweeps cannot be started and models cannot be saved.",
            icon=":material/lock:")
st.caption(jobs_state.limits_text(settings))

# ---------------------------------------------------------------------- start a sweep
presets = [p for p in PRESET_ORDER if p in PRESETS] + [p for p in PRESETS if p not in PRESET_ORDER]


def _use_preset(name: str) -> None:
    st.session_state[K_PRESET] = name


st.subheader("New sweep")
preset_name = st.selectbox("Preset (chain)", presets, index=0, disabled=read_only, key=K_PRESET)
no_data = missing_data_message(preset_name)  # refused here, before any trial is queued
if no_data:
    st.error(f"Cannot sweep here: {no_data}", icon=":material/cloud_download:")
    if NO_DATA_PRESET in PRESETS and preset_name != NO_DATA_PRESET:
        st.button(f"Use the {NO_DATA_PRESET} preset (no data needed)", key="sweep.use_synthetic", on_click=_use_preset,
                  args=(NO_DATA_PRESET,), icon=":material/science:")
with st.form("sweep.new"):
    c2, c3, c4 = st.columns(3)
    n_trials = c2.number_input("Trials (count)", 1, MAX_TRIALS, 8, disabled=read_only)
    parallel = c3.number_input("Trials at once (count)", 1, 16, min(2, settings.max_running), disabled=read_only,
                               help=f"Trial jobs running at once; the server runs at most {settings.max_running} jobs of all users at once.")
    epochs = c4.number_input("Base epochs (0: the preset's)", 0, 100_000, 0, disabled=read_only,
                             help="Each trial trains every stage for this many epochs times its sampled scale (0.25 to 1).")
    started = st.form_submit_button("Start sweep", type="primary", disabled=read_only or bool(no_data), icon=":material/play_arrow:")

if started and not read_only and not no_data:
    with ui.user_errors():
        config = SweepConfig(preset=preset_name, n_trials=int(n_trials), parallel=int(parallel), epochs=int(epochs) or None)
        sweep = Sweep.create(config, manager, owner=owner)
        sweep.step()
        st.session_state[K_SELECTED] = sweep.name
        st.session_state[K_MESSAGE] = f"Sweep {sweep.name} started: {config.n_trials} trials of preset {config.preset}."

# ---------------------------------------------------------------------- your sweeps
st.subheader("Your sweeps")
try:
    mine = list_sweeps(owner=owner)
except NestedAEError as exc:
    ui.show_error(exc, jobs_state.jobs_error_hint(exc))
    st.stop()
if not mine:
    st.caption("No sweeps yet for " + ui.escape_markdown(jobs_state.identity_label(owner)) + ".")
    st.stop()

names = [s["study"] for s in mine]
if st.session_state.get(K_SELECTED) not in names:
    st.session_state[K_SELECTED] = names[0]
chosen = st.selectbox("Sweep", names, key=K_SELECTED,
                      format_func=lambda n: next(f"{n} ({s['preset']}, {s['n_trials']} trials)" for s in mine if s["study"] == n))
message = st.session_state.pop(K_MESSAGE, None)
if message:
    st.success(ui.escape_markdown(message), icon=":material/check_circle:")


def trials_frame(sweep: Sweep) -> pd.DataFrame:
    """The trials as a table: number, state, value, job status and progress, seed, parameters."""
    rows = []
    for r in sweep.rows():
        row = {
            "trial": r["trial"],
            "state": r["state"],
            "value": r["value"],
            "error": r["error"],  # beside the state: why a trial failed is read first, not in the far-right column
            "job": r["job_status"] or "not started",
            "progress (%)": r["progress_percent"],
            "seed": r["seed"],
        }
        row.update({k: v for k, v in r["params"].items() if k != "seed"})
        rows.append(row)
    return pd.DataFrame(rows)


def sweep_panel(name: str) -> None:
    """The selected sweep: advance it, show its trials, cancel it (a store that fails shows its message)."""
    try:
        _sweep_panel(name)
    except NestedAEError as exc:
        ui.show_error(exc, jobs_state.jobs_error_hint(exc))


def _sweep_panel(name: str) -> None:
    try:
        sweep = Sweep.open(name, manager, owner=owner)
        if not read_only:
            sweep.step()
    except NestedAEError as exc:
        ui.show_error(exc, jobs_state.jobs_error_hint(exc))
        return
    counts = sweep.counts()
    finished = counts["complete"] + counts["fail"]
    state = sweep.state()
    st.progress(min(1.0, finished / max(1, counts["n_trials"])),
                text=f"{state}: {counts['complete']} complete, {counts['fail']} failed, {counts['running']} running "
                     f"of {counts['n_trials']} trials · objective: {sweep.objective.label(sweep.base)}")
    if sweep.last_refusal:
        st.warning("A trial is waiting: " + ui.escape_markdown(sweep.last_refusal), icon=":material/hourglass_top:")
    frame = trials_frame(sweep)
    if not frame.empty:
        st.dataframe(frame, hide_index=True, width="stretch",
                     column_config={"value": st.column_config.NumberColumn("value (MAE)", format="%.5g"),
                                    "progress (%)": st.column_config.ProgressColumn("progress", min_value=0, max_value=100, format="%.0f%%")})
    best = sweep.best()
    if best is not None:
        st.metric("Best value (mean fold MAE)", f"{best['value']:.5g}", help=f"trial {best['trial']}, seed {best['seed']}")
    was_running = f"sweep.was_running.{name}"
    if state in ("running", "stopping"):
        st.session_state[was_running] = True
        if state == "running" and not read_only and st.button("Cancel sweep", key=f"sweep.cancel.{name}", icon=":material/stop_circle:"):
            with ui.user_errors():
                n = sweep.cancel()
                st.session_state[K_MESSAGE] = f"Sweep {name} cancelled; {n} running trial(s) asked to stop."
                st.rerun()
    elif st.session_state.pop(was_running, None):
        st.rerun()  # it just ended: the whole page once, so the save form below sees the final best trial


try:
    _running = Sweep.open(chosen, manager, owner=owner).state() in ("running", "stopping")
except NestedAEError:
    _running = False
st.fragment(run_every=REFRESH_S if _running else None)(sweep_panel)(chosen)

# ---------------------------------------------------------------------- save the best trial
st.subheader("Save the best trial")
try:
    current = Sweep.open(chosen, manager, owner=owner)
    best = current.best()
except NestedAEError as exc:
    ui.show_error(exc)
    best = None
if best is None:
    st.caption("No trial has completed yet.")
else:
    with st.form("sweep.save"):
        default_name = f"{chosen[:50]}-best"
        save_name = st.text_input("Model name", default_name, max_chars=64, disabled=read_only)
        overwrite = st.checkbox("Overwrite my model of that name", value=False, disabled=read_only)
        save = st.form_submit_button("Save best trial as a model", disabled=read_only, icon=":material/save:")
    if save and not read_only:
        with ui.user_errors():
            path = current.save_best(save_name, overwrite=overwrite)
            st.success(f"Saved trial {best['trial']} as model {ui.escape_markdown(path.name)}; pick it on Predict, Explain or Screen.",
                       icon=":material/check_circle:")
