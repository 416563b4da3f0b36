"""Train: configure a NestedAE chain, train it in a worker process, watch it, inspect, save and delete models.

Training never runs in this script nor in the server's threads: the run is a
``train`` job of the server's job manager (:func:`app.jobs_state.get_manager`),
run by a worker process and recorded in the durable job store. The runs listed
are the user's (:func:`app.jobs_state.identity`), read from the store, so a reload
or a server restart shows them again (a run the restart cut short is
*interrupted*, with its progress so far). A fragment polls the selected run
every second (progress bar, live loss curves per stage and fold, queue
position, cancel button) and reruns the page once it finishes, to show per-fold
metrics, out-of-fold parity and residual plots and the save form.

Saved models have an owner: only the owner (or an admin) may overwrite or delete
one; everyone may use it. The server's limits are shown, and a read-only demo
server (``NESTEDAE_READ_ONLY=1``) says that training and saving are off.
"""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import streamlit as st

from app import figures_model as fm
from app import jobs_state, model_state, quantities, ui
from app.report_button import report_button
from nestedae_core.api import (
    ACTIVE_STATUSES, NO_DATA_PRESET, PRESETS, BundleInfo, ChainSpec, ConfigError, DataError, NestedAEError,
    PermissionRefused, available_devices, dataset_status, missing_data_message, models_dir, payload_spec, preset,
    train_payload,
)
pass

#: Presets offered, with a one-line description.
PRESET_HELP = {
    "paper": "NestedAE paper chain: 15 site descriptors → band gap → (+ ETL, HTL) → PCE; fast recipe",
    "paper-jv": "Paper chain with extra heads: decomposition energy; Voc, Jsc, FF",
    "pbe-extended": "One stage: band gap from descriptors + site fractions + phase (mhp-pbe)",
    "synthetic": "Two-stage synthetic data with known ground truth (no data files needed; trains in seconds)",
    "paper-exact": "Paper chain with the paper's own recipe (Adam 1e-3, small batches, 1500 epochs): slow",
}
ACTIVATIONS = ["relu", "tanh", "gelu", "silu", "elu", "sigmoid", "identity"]

#: The preset of the shipped default model, listed first and preselected.
DEFAULT_PRESET = "measured"
K_PRESET = "train.preset"
K_SELECTED = "train.selected_job"
K_SEEN = "train.seen.{}"
K_SAVED_MSG = "train.saved_message"


def k(*parts: object) -> str:
    """Widget key of this page, e.g. ``train.paper.materials.latent_dim``."""
    return "train." + ".".join(str(p) for p in parts)


def parse_layers(text: str, what: str) -> list[int]:
    """``"64, 32"`` -> ``[64, 32]``; empty -> ``[]``; anything else raises ConfigError naming ``what``."""
    items = [t.strip() for t in str(text or "").replace(";", ",").split(",") if t.strip()]
    try:
        sizes = [int(t) for t in items]
    except ValueError:
        raise ConfigError(f"{what}: '{text}' is not a list of layer sizes; write e.g. 64, 32 (or leave empty for none)") from None
    if any(s < 1 or s > 4096 for s in sizes):
        raise ConfigError(f"{what}: layer sizes must be between 1 and 4096, got '{text}'")
    return sizes


def _layers_text(sizes: list[int]) -> str:
    return ", ".join(str(s) for s in sizes)


# ---------------------------------------------------------------------- header
st.title("Train")
st.caption(
    "Configure each stage of the chain, train it with k-fold cross-validation in the background "
    "(the k fold models become the ensemble), watch the losses, then save the model and make it active."
)
try:
    manager = jobs_state.get_manager()
except NestedAEError as exc:  # a job setting refused (e.g. NESTEDAE_ADMINS): one line, not a traceback
    ui.show_error(exc, jobs_state.jobs_error_hint(exc) or "Fix the job settings named above in the server's environment and restart it.")
    st.stop()
owner = jobs_state.identity()
limits = manager.settings
devices = available_devices()
if limits.read_only:
    st.info("**Read-only demo.** Training, saving and deleting models are switched off on this server; the saved "
            "models and the runs below can be inspected, and the other pages work as usual.", icon=":material/visibility:")


# ---------------------------------------------------------------------- configuration
def use_preset(name: str) -> None:
    """Callback of "Use the synthetic preset": switch the preset selector before it is drawn."""
    st.session_state[K_PRESET] = name


def stage_form(p: str, s, index: int) -> dict:
    """Widgets of one stage; returns the raw values (hidden layers still as text)."""
    st.caption(
        f"Data: `{s.dataset}` · inputs: "
        + (f"stage {index} latents + " if s.upstream else "")
        + f"{len(s.numeric_inputs)} numeric, {len(s.categorical_inputs)} categorical"
        + (f" ({', '.join(s.categorical_inputs)})" if s.categorical_inputs else "")
        + " · targets: " + ", ".join(quantities.target_name(s, t) + (f" ({t.unit})" if t.unit else "") for t in s.targets)
    )
    c1, c2, c3, c4 = st.columns(4)
    v: dict = {}
    with c1:
        st.markdown("**Encoder**")
        v["latent_dim"] = st.number_input("Latent size (count)", 1, 256, s.latent_dim, key=k(p, s.name, "latent_dim"))
        v["encoder_hidden"] = st.text_input("Encoder hidden layers", _layers_text(s.encoder_hidden), key=k(p, s.name, "encoder_hidden"),
                                            help="Units per hidden layer, comma separated (empty: one linear layer, as in the paper).")
        v["activation"] = st.selectbox("Hidden activation", ACTIVATIONS, ACTIVATIONS.index(s.activation), key=k(p, s.name, "activation"))
        v["latent_activation"] = st.selectbox("Latent activation", ACTIVATIONS, ACTIVATIONS.index(s.latent_activation), key=k(p, s.name, "latent_activation"))
    with c2:
        st.markdown("**Heads and decoder**")
        v["head_hidden"] = st.text_input("Property head hidden layers", _layers_text(s.head_hidden), key=k(p, s.name, "head_hidden"))
        v["head_dropout"] = st.number_input("Head dropout (fraction)", 0.0, 0.95, float(s.head_dropout), 0.05, key=k(p, s.name, "head_dropout"))
        v["decoder_hidden"] = st.text_input("Decoder hidden layers", _layers_text(s.decoder_hidden), key=k(p, s.name, "decoder_hidden"))
    with c3:
        st.markdown("**Loss**")
        v["l1"] = st.number_input("L1 on encoder weights", 0.0, 10.0, float(s.l1), format="%.4g", key=k(p, s.name, "l1"))
        v["l2"] = st.number_input("L2 weight decay", 0.0, 10.0, float(s.l2), format="%.4g", key=k(p, s.name, "l2"))
        v["reconstruction_weight"] = st.number_input("Reconstruction weight", 0.0, 100.0, float(s.reconstruction_weight), key=k(p, s.name, "reconstruction_weight"))
        v["categorical_weight"] = st.number_input("Categorical (cross-entropy) weight", 0.0, 100.0, float(s.categorical_weight), key=k(p, s.name, "categorical_weight"),
                                                  disabled=not s.categorical_inputs)
    with c4:
        st.markdown("**Optimisation**")
        v["epochs"] = st.number_input("Epochs (count)", 1, 100_000, int(s.epochs), key=k(p, s.name, "epochs"))
        v["batch_size"] = st.number_input("Batch size (rows; 0 = full batch)", 0, 100_000, int(s.batch_size or 0), key=k(p, s.name, "batch_size"))
        v["lr"] = st.number_input("Learning rate", 1e-6, 1.0, float(s.lr), format="%.4g", key=k(p, s.name, "lr"))
        v["schedule"] = st.selectbox("Schedule", ["cosine", "constant"], ["cosine", "constant"].index(s.schedule), key=k(p, s.name, "schedule"))
        v["patience"] = st.number_input("Early-stopping patience (epochs; 0 = off)", 0, 100_000, int(s.patience or 0), key=k(p, s.name, "patience"))
    return v


def stage_update(s, v: dict) -> dict:
    """Turn a stage's raw widget values into a StageSpec update."""
    return {
        "latent_dim": int(v["latent_dim"]),
        "encoder_hidden": parse_layers(v["encoder_hidden"], f"stage '{s.name}' encoder hidden layers"),
        "activation": v["activation"],
        "latent_activation": v["latent_activation"],
        "head_hidden": parse_layers(v["head_hidden"], f"stage '{s.name}' head hidden layers"),
        "head_dropout": float(v["head_dropout"]),
        "decoder_hidden": parse_layers(v["decoder_hidden"], f"stage '{s.name}' decoder hidden layers"),
        "l1": float(v["l1"]),
        "l2": float(v["l2"]),
        "reconstruction_weight": float(v["reconstruction_weight"]),
        "categorical_weight": float(v["categorical_weight"]),
        "epochs": int(v["epochs"]),
        "batch_size": int(v["batch_size"]) or None,
        "lr": float(v["lr"]),
        "schedule": v["schedule"],
        "patience": int(v["patience"]) or None,
    }


mine = manager.jobs(owner, kind="train")
with st.expander("Configure a training run", expanded=True, icon=":material/tune:"):
    names = [n for n in PRESET_HELP if n in PRESETS] + [n for n in PRESETS if n not in PRESET_HELP]
    if DEFAULT_PRESET in names:  # the shipped default's preset first
        names = [DEFAULT_PRESET] + [n for n in names if n != DEFAULT_PRESET]
    p = st.selectbox("Datasets and starting configuration (preset)", names, key=K_PRESET, index=0,
                     format_func=lambda n: f"{n}: {PRESET_HELP.get(n) or preset(n).description}")
    base = preset(p)
    no_data = missing_data_message(base)  # refused here, before a job is queued, never in the worker
    if no_data:
        st.error(f"Cannot train here: {no_data}", icon=":material/cloud_download:")
        if NO_DATA_PRESET in PRESETS and p != NO_DATA_PRESET:
            st.button(f"Use the {NO_DATA_PRESET} preset (no data needed)", key=k("use_synthetic"), on_click=use_preset,
                      args=(NO_DATA_PRESET,), icon=":material/science:")
    dev_names = ["auto"] + [n for n, _ in devices]
    desc = dict(devices)
    st.caption("Devices detected on this server: " + "; ".join(f"**{n}**: {d}" for n, d in devices)
               + f". *auto* uses {devices[0][0]}.")
    with st.form(k(p, "form"), border=False):
        c1, c2, c3, c4 = st.columns(4)
        split = c1.radio("Split", ["random", "grouped"], index=["random", "grouped"].index(base.split), key=k(p, "split"), horizontal=True,
                         help="grouped keeps every material (formula) or device recipe (composition + ETL + HTL) in one fold: "
                              "an honest estimate for unseen recipes.")
        lo_folds, hi_folds = ChainSpec.field_range("folds")  # the configuration's own bounds
        folds = c2.number_input("Folds (= ensemble members)", int(lo_folds or 2), int(hi_folds or 20), base.folds, key=k(p, "folds"))
        seed = c3.number_input("Seed", 0, 2**31 - 1, base.seed, key=k(p, "seed"))
        device = c4.selectbox("Device", dev_names, key=k(p, "device"),
                              format_func=lambda n: "auto (best available)" if n == "auto" else f"{n}: {desc[n]}")
        tabs = st.tabs([f"Stage {i + 1}: {s.name}" for i, s in enumerate(base.stages)])
        raw = []
        for i, (tab, s) in enumerate(zip(tabs, base.stages)):
            with tab:
                raw.append(stage_form(p, s, i))
        default_name = f"{p}-{dt.datetime.now():%Y%m%d-%H%M}"
        name = st.text_input("Run name (the default name of the saved model)", default_name, key=k(p, "name"),
                             help="Letters, digits, '-', '_' and '.' only.")
        submitted = st.form_submit_button("Train", type="primary", icon=":material/play_arrow:", key=k(p, "submit"),
                                          disabled=limits.read_only or bool(no_data))
    st.caption(jobs_state.limits_text(limits))
    if submitted and not no_data:
        with ui.user_errors("Change the setting or wait as the message says, then press Train again."):
            spec = base.with_updates(folds=int(folds), split=split, seed=int(seed),
                                     stages=[stage_update(s, v) for s, v in zip(base.stages, raw)])
            job_id = manager.submit("train", train_payload(spec, device=device), owner=owner, name=name)
            st.session_state[K_SELECTED] = job_id
            st.toast(f"Run '{name.strip()}' queued; it starts in a worker process", icon=":material/model_training:")
            mine = manager.jobs(owner, kind="train")


# ---------------------------------------------------------------------- runs
STATUS_WORDS = {"queued": "queued", "running": "running", "done": "finished", "failed": "failed",
                "cancelled": "cancelled", "interrupted": "interrupted"}

st.subheader("Your runs")
counts = manager.counts()
st.caption(
    f"Your runs and models are filed under {jobs_state.identity_label(owner)}. Server: {counts['running']} running, "
    f"{counts['queued']} queued (all users; at most {limits.max_running} train{'s' if limits.max_running == 1 else ''} "
    "at once, in worker processes; the others wait in order)."
)
if not mine:
    st.info("No runs yet. Configure one above and press **Train**. "
            "The *synthetic* preset with a few hundred epochs trains in under a minute.", icon=":material/model_training:")
else:
    ids = [j.id for j in reversed(mine)]
    if st.session_state.get(K_SELECTED) not in ids:
        st.session_state[K_SELECTED] = ids[0]
    by_id = {j.id: j for j in mine}
    selected = st.selectbox("Run", ids, key=K_SELECTED,
                            format_func=lambda i: f"{by_id[i].name} · {payload_spec(by_id[i].payload).name} · "
                                                  f"{STATUS_WORDS.get(by_id[i].status, by_id[i].status)} · "
                                                  f"submitted {dt.datetime.fromtimestamp(by_id[i].submitted):%Y-%m-%d %H:%M:%S}")
    job = manager.get(selected) or by_id[selected]
    spec = payload_spec(job.payload)
    # the status the selector's label shows: when the run moved on since (queued -> failed), the panel
    # below sees the difference and redraws the page, so the label never says "queued" beside a red error
    st.session_state[K_SEEN.format(job.id)] = by_id[selected].status

    def live_panel(job_id: str) -> None:
        """Status, progress, queue position, cancel button and loss curves of one run (polled)."""
        try:
            _live_panel(job_id)
        except NestedAEError as exc:  # the store failed meanwhile (locked, damaged, disk full): its message
            ui.show_error(exc, jobs_state.jobs_error_hint(exc))

    def _live_panel(job_id: str) -> None:
        j = manager.get(job_id)
        if j is None:
            st.info("This run is no longer kept on the server.")
            return
        if st.session_state.get(K_SEEN.format(j.id)) != j.status:
            st.rerun()  # status changed (started, finished): redraw the whole page
        if j.status == "queued":
            st.info(f"Queued: position **{j.queue_position}** in line; it starts when a training slot is free.",
                    icon=":material/hourglass_top:")
        elif j.status == "running":
            st.progress(min(1.0, j.fraction), text=jobs_state.progress_text(j))
        elif j.status == "done":
            device = (j.result or {}).get("record", {}).get("device", "")
            st.success(f"Finished in {j.elapsed_s:.1f} s{f' on {device}' if device else ''}.", icon=":material/check_circle:")
        elif j.status == "cancelled":
            st.info(f"Cancelled: {jobs_state.plain(j.error or '')}", icon=":material/cancel:")
        elif j.status == "interrupted":
            st.warning(f"Interrupted at {100 * j.fraction:.0f} %: the server or its worker stopped while this run trained. "
                       "Its progress so far is shown below; press **Train** to run it again.", icon=":material/restart_alt:")
        else:
            st.error(jobs_state.plain(j.error or "training failed"), icon=":material/error:")
            if "data fetch" in (j.error or "") or "not available locally" in (j.error or ""):
                st.caption(f"Hint: get the dataset as the message says, or train the *{NO_DATA_PRESET}* preset, which needs no data.")
            else:
                st.caption("Hint: fix the setting named in the message (a smaller learning rate often helps) and train again.")
        if j.is_active:
            if st.button("Cancel run", key=k("cancel", j.id), icon=":material/stop:"):
                with ui.user_errors():
                    manager.cancel(j.id, owner)
                st.rerun()
        events = jobs_state.events(j.id)
        if events:
            ui.plot(fm.loss_curves_figure(events, stages=[s.name for s in spec.stages]), key=k("loss", j.id))
        elif j.status == "running":
            st.caption("Loss curves appear after the first epochs.")

    st.fragment(live_panel, run_every=1.0 if job.is_active else None)(job.id)

    # ------------------------------------------------------------------ results
    result = None
    if job.status == "done":
        with ui.user_errors("Train the run again."):
            result = jobs_state.train_output(job)
    if result is not None:
        targets = fm.target_infos(spec)
        st.subheader("Cross-validation results")
        st.caption(f"{spec.folds}-fold {spec.split} split, seed {spec.seed}: each fold model is validated on rows it never saw.")
        table = fm.fold_metrics_frame(result.metrics, targets)
        cols = st.columns(len(targets))
        for col, t in zip(cols, targets):
            with col:
                st.markdown(f"**{t.label}** ({t.stage})")
                part = table[(table["stage"] == t.stage) & (table["target"] == t.label)].drop(columns=["stage", "target", "unit"])
                u = t.unit or "dimensionless"
                part = part.rename(columns={"MAE": f"MAE ({u})", "MAE sd": f"MAE sd ({u})", "RMSE": f"RMSE ({u})", "R²": "R² (dimensionless)", "n": "rows (count)"})
                shown = part.assign(**{f"MAE sd ({u})": [f"{v:.4g}" if pd.notna(v) else "—" for v in part[f"MAE sd ({u})"]]})  # per fold: no sd
                ui.table_with_download(shown, f"{job.name}-{t.stage}-{t.column}-fold-metrics", key=k("dl-metrics", job.id, t.stage, t.column), label="CSV",
                                       download=part,
                                       column_config={c: st.column_config.NumberColumn(c, format="%.4g") for c in part.columns
                                                      if "(" in c and "count" not in c and not c.startswith("MAE sd")})
        ui.plot(fm.fold_metrics_figure(result.metrics, targets), key=k("folds", job.id))
        st.markdown("**Out-of-fold predictions** (every row predicted by the fold model that did not train on it)")
        ui.plot(fm.parity_figure(result.oof, targets), key=k("parity", job.id))
        ui.plot(fm.residuals_figure(result.oof, targets), key=k("resid", job.id))
        oof_all = pd.concat([d.assign(stage=s) for s, d in result.oof.items()], ignore_index=True) if result.oof else pd.DataFrame()
        with st.expander("Out-of-fold predictions table"):
            ui.table_with_download(oof_all, f"{job.name}-oof", key=k("dl-oof", job.id))
        with st.expander("Run record (configuration, seed, versions, data checksums)"):
            record = {"spec": json.loads(spec.to_json()), "record": result.record}
            st.json(record, expanded=1)
            st.download_button("Download run record (JSON)", json.dumps(record, indent=1, default=str), f"{job.name}-record.json",
                               "application/json", key=k("dl-record", job.id), on_click="ignore", icon=":material/download:")

        def make_report(job=job, result=result, spec=spec) -> str:
            from nestedae_core.api import model_provenance, training_report

            settings = {"preset": spec.name, "folds": spec.folds, "split": spec.split, "seed": spec.seed,
                        **{f"{s.name} epochs": s.epochs for s in spec.stages}, **{f"{s.name} latent size": s.latent_dim for s in spec.stages}}
            return training_report(job.name, result.metrics, result.oof, provenance=model_provenance(result.model), settings=settings)

        report_button(make_report, f"{job.name}-training-report", key=k("report", job.id),
                      help="A single HTML file with this run's validation metrics and out-of-fold parity plots (works offline).")

        st.markdown("**Save this model**")
        if job.saved_model:
            st.success(f"Saved as `{job.saved_model}` in `{manager.models_dir}`.", icon=":material/save:")
        with st.form(k("save", job.id), border=True):
            c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
            save_name = c1.text_input("Model name", job.name, key=k("save_name", job.id), help="Letters, digits, '-', '_' and '.' only.")
            overwrite = c2.checkbox("Overwrite", False, key=k("overwrite", job.id), help="Replace a saved model of yours with the same name.")
            make_active = c3.checkbox("Make active", True, key=k("make_active", job.id), help="Use it on Predict, Screen, Explain, Latents.")
            do_save = st.form_submit_button("Save model", icon=":material/save:", key=k("save_btn", job.id), disabled=limits.read_only)
        if do_save:
            refused = None
            with ui.user_errors("Choose another name, or tick Overwrite to replace your own saved model."):
                try:
                    path = manager.save(job.id, save_name, owner=owner, overwrite=overwrite)
                except PermissionRefused as exc:
                    refused = str(exc)
                else:
                    if make_active:
                        model_state.set_active_model(path)
                    st.session_state[K_SAVED_MSG] = f"Saved model `{path.name}` to `{path.parent}`" + (" and made it active." if make_active else ".")
                    st.rerun()
            if refused:
                st.error(jobs_state.plain(refused), icon=":material/lock:")
                st.caption("Models belong to whoever saved them: you can use this one, not replace or delete it. Save under a new name.")
    elif job.status in ACTIVE_STATUSES:
        st.caption("Results (per-fold metrics, parity and residual plots) appear here when the run finishes.")

    with st.expander("All your runs"):
        runs = pd.DataFrame([j.summary() for j in reversed(mine)]).rename(columns={"elapsed_s": "elapsed (s)", "progress_percent": "progress (%)"})
        ui.table_with_download(runs, "training-runs", key=k("dl-runs"))

# ---------------------------------------------------------------------- saved models
st.subheader("Models")
msg = st.session_state.pop(K_SAVED_MSG, None)
if msg:
    st.success(msg, icon=":material/save:")
st.caption(f"Saved models live in `{models_dir()}`. The active model is used by Predict, Screen, Explain and Latents. "
           "Everyone can use every model; only its owner (or an admin) can replace or delete it.")
chosen = model_state.model_picker(key="train.model_picker", label="Active model")
options = model_state.model_options()
if options:
    models = model_state.bundles_frame(options)
    for column in [c for c in models.columns if c.startswith("MAE ")]:  # a model without this target: "—", not None
        models[column] = [f"{v:.4g}" if pd.notna(v) else "—" for v in models[column]]
    owners = manager.store.model_owners()

    def owner_word(info: BundleInfo) -> str:
        if info.builtin or info.path.parent.resolve() != models_dir().resolve():
            return "built-in"
        who = owners.get(info.name)
        if who is None:
            return "no owner (saved outside the app)"
        return "you" if who == owner else "another user"

    models.insert(1, "owner", [owner_word(o) for o in options])
    ui.table_with_download(models, "saved-models", key=k("dl-models"))
    deletable = [o.name for o in options if not o.builtin and o.path.parent.resolve() == models_dir().resolve()
                 and manager.may_modify(o.name, owner) is None]
    if deletable and not limits.read_only:
        with st.expander("Delete one of your models", icon=":material/delete:"):
            c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
            victim = c1.selectbox("Model", deletable, key=k("delete_name"))
            sure = c2.checkbox("Yes, delete it for good", False, key=k("delete_sure"))
            if c3.button("Delete", key=k("delete_btn"), icon=":material/delete:", disabled=not sure):
                with ui.user_errors():
                    path = manager.models_dir / victim
                    if model_state.active_model_path().resolve() == path.resolve():
                        model_state.set_active_model(None)
                    manager.delete_model(victim, owner=owner)
                    st.session_state[K_SAVED_MSG] = f"Deleted model `{victim}`."
                    st.rerun()
with ui.user_errors():
    if chosen is not None:
        model = model_state.active_model()
        summary = quantities.model_summary(model)
        st.caption(" · ".join(f"{key}: {value}" for key, value in summary.items()))
