"""Learn: a synthetic two-scale data set with known ground truth, taken apart step by step.

1. The generating equations (:func:`nestedae_core.data.synthetic.generate`) and which features matter.
2. A small NestedAE trained on it (:func:`nestedae_core.train.cross_validate` with the
   ``synthetic`` preset and the generated tables): a ``train`` job of the server's job
   manager (:func:`app.jobs_state.get_manager`), run in a worker process like every
   training of the app; the page shows a progress bar from the job's progress events
   until it finishes. A configuration trained once (by anyone) is reused from the job
   store (never mutate its result): Learn submits its jobs *shared* and finds them by
   their share key (a digest of kind and payload, :meth:`JobManager.find_shared`),
   never by name, so no run a user names on Train can stand in for Learn's. A found
   run whose results lack what this page reads is reported and trained again. The job
   itself is filed under the user who started it.
3. What the latents recover: active latents against the true number of factors, and the
   latents against the hidden true factors (recovered up to an invertible mixing).
4. What SHAP says: relevant against irrelevant features.
5. Where attributions mislead: a near copy of x0 (``correlated_pair``) splits x0's credit.
6. Ground truth (exact Shapley values of the true y1, both games) beside four explainers of the model, with
   each error (:func:`nestedae_core.data.synthetic_truth.explainer_errors`).
7. A correlation slider for x_dup: both games' credit and a model's accuracy (``synthetic_truth.correlation_study``).
8. The lesson: four questions, one figure and one-sentence answer each, exported as HTML (``report.render``).

Controls: noise, seed, the correlated pair and the number of epochs.
"""
from __future__ import annotations

from dataclasses import dataclass

import time

import numpy as np
import pandas as pd
import streamlit as st

from app import explain_state as es
from app import figures_explain as fx
from app import figures_latents as fl
from app import figures_learn as flearn
from app import figures_model as fm
from app import jobs_state
from app import ui
from nestedae_core.api import (
    LATENT_SIZE_SCAN_KIND, Attribution, ChainSpec, JobRecord, NestedAE, NestedAEError, SyntheticData,
    active_latents, correlation_study, explain_chain, explain_stage_output, explainer_errors, factor_recovery,
    generate_synthetic, latent_size_scan_payload, lesson_report, material_feature_names, pca_projection, preset,
    read_scan, synthetic_tables, train_payload,
)
from app.report_button import report_button

NOISES = [0.0, 0.02, 0.05, 0.1, 0.2]
SAMPLE = 100  # rows explained for the global views
UNIT = "a.u."
K_TRAINED = "learn.trained"
K_RETRAINED = "learn.retrained"  # ids of found jobs whose results were unusable (trained again once)


@dataclass(frozen=True)
class Config:
    noise: float
    seed: int
    pair: bool
    epochs: int

    def key(self) -> tuple[float, int, bool, int]:
        """Plain tuple (kept in session state: the class is redefined on every rerun)."""
        return (self.noise, self.seed, self.pair, self.epochs)

    def text(self) -> str:
        return (f"noise {self.noise:g} {UNIT}, seed {self.seed}, {'with' if self.pair else 'without'} the correlated pair, "
                f"{self.epochs} epochs")

    def job_name(self) -> str:
        """The name of this configuration's training job (a valid model name)."""
        return f"learn-n{self.noise:g}-s{self.seed}-{'pair' if self.pair else 'plain'}-e{self.epochs}"


# ---------------------------------------------------------------------- cached work
@st.cache_data(show_spinner=False, max_entries=16)
def _data(noise: float, seed: int, pair: bool) -> SyntheticData:
    return generate_synthetic(noise=noise, seed=seed, correlated_pair=pair)


def _spec(data: SyntheticData, epochs: int, seed: int) -> ChainSpec:
    """The ``synthetic`` preset with the data's material features as stage-1 inputs (x_dup included)."""
    return preset("synthetic", epochs=epochs, seed=seed).with_updates(
        stages=[{"numeric_inputs": material_feature_names(data)}])


def _tables(cfg_noise: float, cfg_seed: int, pair: bool, stages: dict[str, str] | None = None) -> dict:
    """The generated tables as job payload sources (the worker regenerates them: the generator is deterministic)."""
    return synthetic_tables(noise=cfg_noise, seed=cfg_seed, correlated_pair=pair, stages=stages)


def _payload(cfg: Config) -> dict:
    """The ``train`` payload of ``cfg``: the synthetic preset on the generated tables, on the CPU."""
    data = _data(cfg.noise, cfg.seed, cfg.pair)
    return train_payload(_spec(data, cfg.epochs, cfg.seed), device="cpu", tables=_tables(cfg.noise, cfg.seed, cfg.pair))


def _job(cfg: Config, *, retry: bool = False, fresh: bool = False) -> JobRecord:
    """The training job of ``cfg`` (cross-validated, on the generated tables), submitted when there is none.

    The latest queued, running or finished *shared* job of exactly this payload is reused (whoever
    started it; found by its share key, never by name); with ``retry``, a failed, cancelled or
    interrupted one is replaced by a new job; with ``fresh``, a new job is always submitted.
    """
    manager = jobs_state.get_manager()
    payload = _payload(cfg)
    if not fresh:
        found = manager.find_shared("train", payload, statuses=("queued", "running", "done") if retry else
                                    ("queued", "running", "done", "failed", "cancelled", "interrupted"))
        if found is not None:
            return found
    job_id = manager.submit("train", payload, owner=jobs_state.identity(), name=cfg.job_name(), shared=True)
    return manager.get(job_id)


def _output_problem(result: object) -> str | None:
    """What a found run's results lack that this page reads (None when they are complete)."""
    metrics = getattr(result, "metrics", None)
    for stage, target in (("materials", "y1"), ("devices", "y2")):
        try:
            float(metrics[stage][target]["mae"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError, IndexError):
            return f"no validation MAE of {target} for stage '{stage}'"
    model = getattr(result, "model", None)
    try:
        names = [s.name for s in model.spec.stages]  # type: ignore[union-attr]
    except AttributeError:
        return "no trained model"
    if names[:2] != ["materials", "devices"]:
        return f"stages {', '.join(names)} instead of materials and devices"
    return None


def _usable_output(job: JobRecord, cfg: Config, what: str) -> tuple[JobRecord, object] | None:
    """``(job, its TrainOutput)`` when the run's results are what this page needs.

    A found run whose results are unreadable or lack what the page reads is said so in one line and
    trained again (once per run); None when no usable result can be shown now.
    """
    problem = None
    try:
        result = jobs_state.train_output(job)
        problem = _output_problem(result)
    except NestedAEError as exc:
        result, problem = None, str(exc)
    if problem is None:
        return job, result
    retrained = st.session_state.setdefault(K_RETRAINED, [])
    st.warning(f"The stored run for these settings cannot be shown ({jobs_state.plain(problem)}); "
               + ("training it again." if job.id not in retrained else "press **Train** to try again."),
               icon=":material/sync_problem:")
    if job.id in retrained:
        return None
    retrained.append(job.id)
    fresh = _wait_for(_job(cfg, fresh=True), what)
    if fresh is None:
        return None
    try:
        result = jobs_state.train_output(fresh)
        problem = _output_problem(result)
    except NestedAEError as exc:
        problem = str(exc)
    if problem is not None:
        st.error(f"Training again did not give usable results ({jobs_state.plain(problem)}). Press **Train** to try again.",
                 icon=":material/error:")
        return None
    return fresh, result


def _wait_for(job: JobRecord, what: str) -> JobRecord | None:
    """Show the job's progress bar until it finishes; the finished job when it is done, otherwise say why not (None)."""
    manager = jobs_state.get_manager()
    rec = manager.get(job.id) or job
    if rec.is_active:
        bar = st.progress(min(1.0, rec.fraction), text=f"{what}: {jobs_state.progress_text(rec)}")
        while rec.is_active:
            time.sleep(0.3)
            rec = manager.get(job.id) or rec
            bar.progress(min(1.0, rec.fraction), text=f"{what}: {jobs_state.progress_text(rec)}")
        bar.empty()
    if rec.status == "done":
        return rec
    if rec.status == "cancelled":
        st.info(f"The training was cancelled ({jobs_state.plain(rec.error or '')}). Press **Train** to run it again.", icon=":material/cancel:")
    elif rec.status == "interrupted":
        st.warning(f"The training was interrupted at {100 * rec.fraction:.0f} % (the server or its worker stopped). "
                   "Press **Train** to run it again.", icon=":material/restart_alt:")
    else:
        st.error(jobs_state.plain(rec.error or "training failed"), icon=":material/error:")
        st.caption("Hint: try fewer epochs or another seed, then press **Train** again.")
    return None


def _sample(frame: pd.DataFrame, n: int = SAMPLE) -> pd.DataFrame:
    return frame.sample(n=min(n, len(frame)), random_state=0).sort_index()


@st.cache_data(show_spinner=False, max_entries=16)
def _shap(job_id: str, noise: float, seed: int, pair: bool, _model: NestedAE) -> tuple[Attribution, Attribution]:
    """y1 w.r.t. the material features, and y2 end to end (material + device features), on samples of the tables.

    ``_model`` is the result of job ``job_id`` (cached by the job id, not hashed).
    """
    data = _data(noise, seed, pair)
    y1 = explain_stage_output(_model, 0, 0, _sample(data.materials), method="permutation")
    y2 = explain_chain(_model, _sample(data.devices), method="permutation")
    return y1, y2


TRUTH_ROWS = 30  # materials on which every explainer meets the ground truth
CORRELATIONS = [0.0, 0.5, 0.9, 0.98, 0.99]


@st.cache_data(show_spinner=False, max_entries=16)
def _truth(job_id: str, noise: float, seed: int, pair: bool, _model: NestedAE) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Each explainer of the model's y1 against both games' exact Shapley values (cached by the job id)."""
    data = _data(noise, seed, pair)
    return explainer_errors(data, _sample(data.materials, TRUTH_ROWS), _model, n_draws=64)


@st.cache_data(show_spinner=False, max_entries=8)
def _correlation_study(noise: float, seed: int) -> pd.DataFrame:
    """Both games' credit of x0 and x_dup, and a model's accuracy, over :data:`CORRELATIONS`."""
    return correlation_study(_data(noise, seed, False), CORRELATIONS, n_rows=12, n_draws=16)


def _study_columns() -> dict[str, str]:
    """Headers of the correlation study's table: each quantity with its unit."""
    return {"correlation": "correlation of x_dup with x0 (dimensionless)", "game": "ground truth",
            "x0": f"x0: mean |Shapley value| ({UNIT})", "x_dup": f"x_dup: mean |Shapley value| ({UNIT})",
            "pair_sum": f"x0 + x_dup, summed per row ({UNIT})", "mae_with_pair": f"validation MAE of a model using both ({UNIT})"}


SWEEP_SIZES = [1, 2, 3, 4, 5, 6]
#: A validation MAE above this many times the generator's noise sd means the model is far from what the data allow.
UNDER_TRAINED_FACTOR = 3.0


def _under_trained(mae: float, noise_sd: float) -> bool:
    """True when a validation MAE (a.u.) is far above the data's noise sd (a.u.): the model has not learnt yet.

    With no noise (sd 0) there is no floor to compare against, so nothing is called under-trained.
    """
    return noise_sd > 0 and mae > UNDER_TRAINED_FACTOR * noise_sd


def _sweep_job(noise: float, seed: int, epochs: int) -> JobRecord:
    """One shared ``latent_size_scan`` job (sizes 1-6, stage 1 alone, on the data without the correlated pair), reused by
    every session: found by its share key (kind and payload), never by name."""
    manager = jobs_state.get_manager()
    data = _data(noise, seed, False)
    payload = latent_size_scan_payload(_spec(data, epochs, seed), SWEEP_SIZES, device="cpu",
                                   tables=_tables(noise, seed, False, stages={"materials": "materials"}))
    found = manager.find_shared(LATENT_SIZE_SCAN_KIND, payload)
    if found is not None:
        return found
    name = f"learn-sweep-n{noise:g}-s{seed}-e{epochs}"
    return manager.get(manager.submit(LATENT_SIZE_SCAN_KIND, payload, owner=jobs_state.identity(), name=name, shared=True))


def _sweep_rows(job: JobRecord) -> pd.DataFrame | None:
    """The scan job's result rows as a table; None (said in one line) when they lack the columns shown."""
    rows = job.result.get("rows") if isinstance(job.result, dict) else None
    frame = pd.DataFrame(rows) if isinstance(rows, list) and rows else None
    needed = {"latent_size", "val_mae", "val_mae_std"}
    if frame is None or not needed <= set(frame.columns):
        st.warning("The stored latent-size scan for these settings has no usable results. Turn to other settings "
                   "and back, or ask the server's admin to clear it.", icon=":material/sync_problem:")
        return None
    return frame


def _show_sweep(sweep: pd.DataFrame, true_size: int, noise_sd: float) -> None:
    """The latent-size scan's figure, reading and table (no reading when even its best model is under-trained)."""
    ui.plot(fl.latent_size_scan_figure(sweep, unit=UNIT, target_label="y1", true_size=true_size,
                                        title="Validation error against the latent size"), key="learn.sweep_fig")
    reading = read_scan(sweep)  # the one-standard-error rule, in the library
    best, enough, sd = reading.best, reading.enough, reading.standard_error
    if _under_trained(reading.best_mae, noise_sd):
        st.warning(f"Even the best latent size reaches only {reading.best_mae:.3f} {UNIT}, more than "
                   f"{UNDER_TRAINED_FACTOR:g}× the noise sd ({noise_sd:g} {UNIT}): these models are under-trained, so the "
                   "scan cannot tell how many latents the data need. Train with more epochs and run it again.",
                   icon=":material/hourglass_empty:")
    else:
        st.caption(f"Lowest validation MAE at latent size {best}; from size {enough} on, the error is within one "
                   f"fold standard deviation ({sd:.3f} {UNIT}) of that minimum. The truth has {true_size} factors: "
                   "latents beyond what the data needs add capacity, not information.")
    shown = sweep.rename(columns={"latent_size": "latent size (count)", "val_mae": f"validation MAE ({UNIT})",
                                  "val_mae_std": f"MAE sd over folds ({UNIT})", "n_active": "active latents (count)",
                                  "seconds": "training time (s)"})
    ui.table_with_download(shown, "latent-size-scan", key="learn.dl_sweep")


# ---------------------------------------------------------------------- page
es.warm_up()
st.title("Learn")
st.caption("A synthetic two-scale data set whose every equation is known: train a small NestedAE on it and check what the "
           "latents and the attributions recover, and where they mislead.")

with st.container(border=True):
    st.markdown("**Data-set and training settings**")
    c1, c2, c3, c4, c5 = st.columns([2, 1, 2, 1, 1], vertical_alignment="bottom")
    noise = c1.select_slider(f"Noise sd on y1 and y2 ({UNIT})", NOISES, value=0.05, key="learn.noise")
    seed = int(c2.number_input("Seed", 0, 9999, 0, key="learn.seed"))
    pair = c3.toggle("Add x_dup (copy of x0)", False, key="learn.pair",
                     help="x_dup = 0.98 x0 + noise (correlation ≈ 0.98): a feature no equation uses but that carries x0's information. See step 5.")
    epochs = int(c4.number_input("Epochs", 5, 1500, 300, step=50, key="learn.epochs",
                                 help="Full-batch epochs per stage. Training runs in a worker process: with 300 epochs, "
                                      "2 stages × 5 folds take about 5–15 s on a laptop CPU (a few of them to start "
                                      "the worker; longer while other runs train); a progress bar shows how far it is."))
    run = c5.button("Train", type="primary", icon=":material/play_arrow:", key="learn.train")
cfg = Config(float(noise), seed, bool(pair), epochs)

# ---------------------------------------------------------------------- 1
st.header("1 · The generating equations")
data = None
with ui.user_errors():
    data = _data(cfg.noise, cfg.seed, cfg.pair)
if data is None:
    st.stop()
truth = data.truth
st.markdown("Every number below comes from these functions (the loadings are this seed's own, rounded as printed):")
st.code("\n".join(truth.equations), language=None, wrap_lines=True)
roles = ([(f, "relevant: drives the factors") for f in truth.relevant_material_features]
         + [(f, "irrelevant: pure noise") for f in truth.irrelevant_material_features]
         + [(f, "proxy: a near copy of x0 that no equation uses") for f in truth.proxy_material_features]
         + [(f, "relevant device feature") for f in truth.relevant_device_features]
         + [(f, "irrelevant device feature") for f in truth.irrelevant_device_features])
left, right = st.columns([2, 3])
with left:
    ui.table_with_download(pd.DataFrame(roles, columns=["feature", "role"]), "synthetic-feature-roles", key="learn.dl_roles", label="CSV",
                           caption=f"{len(data.materials)} materials, {len(data.devices)} devices, {truth.n_factors} true factors.")
with right:
    loadings = pd.DataFrame(truth.factor_loadings, columns=truth.relevant_material_features,
                            index=[f"true_z{k + 1}" for k in range(truth.n_factors)]).reset_index(names="factor")
    ui.table_with_download(loadings, "synthetic-factor-loadings", key="learn.dl_loadings", label="CSV",
                           caption="Loadings W of each true factor on the relevant features: z_k = tanh(W_k · x).")
    with st.expander("Preview the materials table"):
        ui.table_with_download(data.materials.head(200), "synthetic-materials-preview", key="learn.dl_materials",
                               caption="First 200 rows. Columns starting with true_ are hidden truth, never model inputs.")

# ---------------------------------------------------------------------- 2
st.header("2 · Train a small NestedAE on it")
st.markdown("Stage 1 encodes the material features into **6 latents** and predicts y1; stage 2 takes those latents plus the "
            "device features (d0…, stack) and predicts y2, as in the perovskite chain. 5-fold cross-validation; the fold "
            "models form the ensemble.")
ss = st.session_state
if run:
    with ui.user_errors():
        _job(cfg, retry=True)
        ss[K_TRAINED] = cfg.key()
trained = Config(*ss[K_TRAINED]) if ss.get(K_TRAINED) else None
if trained is None:
    st.info("Press **Train** above (about 5–15 s with 300 epochs, in a worker process; a progress bar shows how far it is). "
            "Steps 3–8 need the trained model.", icon=":material/model_training:")
    st.stop()
if trained.key() != cfg.key():
    st.warning(f"The settings changed; the results below are still those of the last run ({trained.text()}). Press **Train** "
               "to update them.", icon=":material/sync_problem:")
job = None
usable = None
with ui.user_errors():
    what = f"Training 2 stages × 5 folds ({trained.text()})"
    job = _wait_for(_job(trained), what)
    if job is not None:
        usable = _usable_output(job, trained, what)
if usable is None:
    st.stop()
job, result = usable
seconds = job.elapsed_s
tdata = _data(trained.noise, trained.seed, trained.pair)
model = result.model
m = result.metrics
cols = st.columns(4)
cols[0].metric("y1 validation MAE (stage 1)", f"{m['materials']['y1']['mae']:.3f} {UNIT}")
cols[1].metric("y2 validation MAE (stage 2)", f"{m['devices']['y2']['mae']:.3f} {UNIT}")
cols[2].metric("noise floor (MAE)", f"{0.7979 * trained.noise:.3f} {UNIT}",
               help="Gaussian noise of sd σ has a mean absolute value of σ·√(2/π) ≈ 0.80 σ: no model can do better on average.")
cols[3].metric("training time", f"{seconds:.1f} s")
noise_sd = float(tdata.config.noise)
y1_mae = float(m["materials"]["y1"]["mae"])
under_trained = _under_trained(y1_mae, noise_sd)  # stage 1 is what steps 3-4 and the scan read
if under_trained:
    st.warning(f"**The model is under-trained.** Its y1 validation MAE ({y1_mae:.3f} {UNIT}) is more than "
               f"{UNDER_TRAINED_FACTOR:g}× the data's noise sd ({noise_sd:g} {UNIT}): after {trained.epochs} epochs it has "
               "not yet learnt the structure, so the latents, attributions and scan below describe an unfinished model. "
               "Train with more epochs (e.g. 300).", icon=":material/hourglass_empty:")
targets = fm.target_infos(model)
ui.plot(fm.parity_figure(result.oof, targets), key="learn.parity")
st.caption("Out-of-fold predictions against the truth: each point was predicted by the fold model that did not see it. "
           "The gap between the MAE and the noise floor is what the model has not yet learnt.")

# ---------------------------------------------------------------------- 3
st.header("3 · What the latents recover")
corr = r2 = None
with ui.user_errors():
    act = active_latents(model, tdata.materials, 0)
    pca = pca_projection(model, tdata.materials, 0, n_components=min(3, truth.n_factors) if truth.n_factors >= 1 else 1)
    share = float(np.sum(pca.attrs["explained_variance_ratio"]))
    cols = st.columns(3)
    cols[0].metric("active latents (median over fold models)", f"{act.n_active} of {len(act.latent_names)}")
    cols[1].metric("true factors", str(truth.n_factors))
    cols[2].metric(f"variance in the first {len(pca.columns)} principal components", f"{100 * share:.0f} %",
                   help="PCA of fold model 1's six latents over all materials.")
    verdict = ("matches" if act.n_active == truth.n_factors else
               "is larger than" if act.n_active > truth.n_factors else "is smaller than")
    st.markdown(
        f"**Active latents.** By the rule *{act.rule}*, the model uses **{act.n_active}** latents; the data has "
        f"**{truth.n_factors}** true factors, so the count {verdict} the truth. "
        + ("The L1 penalty has not switched the spare latents off. " if act.n_active > truth.n_factors else "")
        + (f"Still, {len(pca.columns)} principal components hold {100 * share:.0f} % of the latents' variance: the latent "
           "space is effectively about as low-dimensional as the truth."
           if share >= 0.9 else
           f"The first {len(pca.columns)} principal components hold only {100 * share:.0f} % of the latents' variance: the "
           "model spreads (non-linear mixtures of) the factors over more latent directions than it needs. Counting "
           "latents does not reveal the true dimension here; the latent-size scan below does it better."))
    left, right = st.columns([2, 3])
    with left:
        ui.plot(fl.active_latents_figure(act, 0, title="Which latents carry information (fold model 1)"), key="learn.active")
    names = model.latent_names(0)
    corr, r2 = factor_recovery(model.latents(0, tdata.materials)[0], tdata.materials[truth.factor_columns], names)
    with right:
        ui.plot(fl.factor_recovery_figure(corr, r2, title="Latents against the hidden true factors"), key="learn.recovery")
    st.caption(
        f"Left: the rule behind the count. Right: single latents correlate only partly with single factors, since "
        f"any invertible mix of the factors predicts y1 equally well, so the model has no reason to align its latents "
        f"with them. Taken together, the latents recover each factor with R² between {r2.min():.2f} and {r2.max():.2f}: "
        "the factors are recovered **up to rotation** (a linear mix), not one by one.")
    with st.expander("How many latents are needed? Latent-size scan (trains 6 more models)"):
        sweep_epochs = min(trained.epochs, 200)
        if st.button(f"Run the scan: latent sizes 1–6, stage 1 only, {sweep_epochs} epochs", key="learn.sweep"):
            ss["learn.sweep_for"] = (trained.noise, trained.seed, sweep_epochs)
        if ss.get("learn.sweep_for") == (trained.noise, trained.seed, sweep_epochs):
            sweep_job = _wait_for(_sweep_job(trained.noise, trained.seed, sweep_epochs),
                                  f"Latent-size scan (6 runs × 5 folds, {sweep_epochs} epochs)")
            sweep_rows = _sweep_rows(sweep_job) if sweep_job is not None else None
            if sweep_rows is not None:
                _show_sweep(sweep_rows, truth.n_factors, tdata.config.noise)

# ---------------------------------------------------------------------- 4
st.header("4 · What SHAP says")
with ui.user_errors():
    with st.spinner("Computing attributions on 100 materials and 100 devices…"):
        att1, att2 = _shap(job.id, trained.noise, trained.seed, trained.pair, model)
    relevant1 = set(truth.relevant_material_features)
    relevant2 = relevant1 | set(truth.relevant_device_features)
    imp1, imp2 = att1.mean_abs(), att2.mean_abs()
    share1 = float(imp1[[f for f in imp1.index if f in relevant1 | set(truth.proxy_material_features)]].sum() / imp1.sum())
    share2 = float(imp2[[f for f in imp2.index if f in relevant2 | set(truth.proxy_material_features)]].sum() / imp2.sum())
    top1 = set(imp1.index[: len(relevant1)])
    cols = st.columns(3)
    cols[0].metric("y1: attribution on relevant features", f"{100 * share1:.0f} %")
    cols[1].metric("y2 (whole chain): attribution on relevant features", f"{100 * share2:.0f} %")
    cols[2].metric(f"y1: top {len(relevant1)} features are the relevant ones", "yes" if top1 <= relevant1 | set(truth.proxy_material_features) else "no")
    left, right = st.columns(2)
    with left:
        ui.plot(fx.global_bar_figure(att1, top=len(att1.feature_names), highlight=sorted(relevant1), title="y1 from the material features"),
                key="learn.shap1")
    with right:
        ui.plot(fx.global_bar_figure(att2, top=len(att2.feature_names), highlight=sorted(relevant2), title="y2 end to end (materials + devices)"),
                key="learn.shap2")
    noise_feats = truth.irrelevant_material_features
    st.caption(
        f"Red bars: features the equations use; blue: the rest. Mean |SHAP| over {att1.n_rows} rows, in {UNIT} "
        f"The relevant features take {100 * share1:.0f} % of the credit for y1. "
        + ("The model is under-trained (see step 2), so these bars show an unfinished model, not what it would learn. "
           if under_trained else
           f"The noise features ({noise_feats[0]}…{noise_feats[-1]}) get small but non-zero values: that is the "
           "model's overfitting, not structure. ")
        + "For y2, d0, d1 and the stack act directly; the material features act only through the latents, and the chain "
        "explanation hands their credit back to them.")

# ---------------------------------------------------------------------- 5
st.header("5 · Where attributions mislead")
pair_numbers: tuple[float, float] | None = None
st.markdown(
    "- **Correlated features share credit.** With x_dup, a near copy of x0, the data cannot tell which of the two the "
    "truth uses; the model may lean on either, and SHAP splits x0's credit between them. Only the **sum** is identifiable.\n"
    "- **Attributions describe the model, not causes.** x_dup causes nothing, yet it gets credit because the model uses it.\n"
    "- **They are relative to a background** (here the training data's k-means summary): the base value and every bar "
    "change with it.")
if not trained.pair:
    st.info("Turn on **Add x_dup** above and press **Train** to see the credit split between x0 and its copy.", icon=":material/lightbulb:")
else:
    with ui.user_errors():
        base_cfg = Config(trained.noise, trained.seed, False, trained.epochs)
        base_what = "Training the same model without x_dup for comparison"
        base_job = _wait_for(_job(base_cfg), base_what)
        base_usable = _usable_output(base_job, base_cfg, base_what) if base_job is not None else None
        if base_usable is None:
            st.stop()
        base_job, base_result = base_usable
        with st.spinner("Computing its attributions…"):
            base1, _ = _shap(base_job.id, trained.noise, trained.seed, False, base_result.model)
        with_pair = att1.mean_abs()
        without = base1.mean_abs()
        split = pd.DataFrame({
            "model": ["without x_dup", "with x_dup", "with x_dup", "with x_dup"],
            "feature": ["x0", "x0", "x_dup", "x0 + x_dup (summed per row)"],
            f"mean |SHAP| ({UNIT})": [float(without["x0"]), float(with_pair["x0"]), float(with_pair["x_dup"]),
                                       float(np.abs(att1.frame()["x0"] + att1.frame()["x_dup"]).mean())],
        })
        ui.plot(fx.credit_split_figure(split, unit=UNIT, title="x0's credit, with and without its near copy"), key="learn.pair_fig")
        frac = float(with_pair["x_dup"] / max(with_pair["x0"] + with_pair["x_dup"], 1e-12))
        pair_sum, alone = float(split.iloc[3, 2]), float(split.iloc[0, 2])
        close = abs(pair_sum - alone) <= 0.15 * max(alone, 1e-12)
        st.caption(f"With the copy present, x_dup takes {100 * frac:.0f} % of the pair's credit although no equation uses it "
                   f"(how much depends on the seed and the training: the data cannot decide). The pair's summed effect, "
                   f"{pair_sum:.3f} {UNIT}, is {'close to' if close else 'not the same as'} x0's credit in the model without "
                   f"the copy ({alone:.3f} {UNIT}){'' if close else ': the two models also differ elsewhere'}.")
        ui.table_with_download(split, "correlated-pair-credit", key="learn.dl_pair")
        pair_numbers = (alone, pair_sum)

# ---------------------------------------------------------------------- 6
st.header("6 · Ground truth beside every explainer")
st.markdown(
    "The function behind y1 is known, so its **exact Shapley values** are too: every one of the 2^F coalitions is "
    "evaluated. Two truths, because \"leaving a feature out\" has two meanings: **interventional** (the other features "
    "drawn independently of the ones kept: what exact, permutation and kernel SHAP estimate with their background) and "
    "**observational** (drawn *given* the ones kept: credit follows correlation). Beside them, the trained model's "
    "attributions by four explainers, and how far each is from each truth.")
errors = attrs = None
with ui.user_errors():
    with st.spinner(f"Ground truth and four explainers on {TRUTH_ROWS} materials…"):
        errors, attrs = _truth(job.id, trained.noise, trained.seed, trained.pair, model)
if errors is not None and attrs is not None:
    truth_fig = flearn.truth_comparison_figure(attrs, unit=UNIT, title="y1: the true function's Shapley values and four explainers of the model")
    ui.plot(truth_fig, key="learn.truth")
    inter = errors[errors.game == "interventional"].set_index("explainer")
    best = str(inter["mae"].idxmin())
    spread = max(float((attrs[a] - attrs[b]).abs().to_numpy().mean()) for a in inter.index for b in inter.index)
    st.caption(
        f"Hatched: the exact truth. Mean |Shapley value| over {TRUTH_ROWS} materials, in {UNIT} Against the interventional "
        f"truth the closest explainer is **{best}** (MAE {inter.loc[best, 'mae']:.3f} {UNIT}, "
        f"{100 * inter.loc[best, 'relative']:.0f} % of the truth's mean size). "
        + (f"The explainers differ from each other by at most {spread:.3f} {UNIT}, less than from the truth: what they share "
           "(the model's error and the finite background they all average over) matters more than their method " if spread < inter["mae"].min() else
           f"The explainers differ from each other by up to {spread:.3f} {UNIT}, as much as from the truth: here the "
           "explainer's own approximation matters ")
        + "(`nestedae benchmark explainers` separates the two by explaining the true function itself).")
    shown_err = errors.rename(columns={"mae": f"MAE ({UNIT})", "max": f"largest error ({UNIT})",
                                       "relative": "MAE / mean |truth| (dimensionless)", "rank_agreement": "rank agreement (Spearman, dimensionless)",
                                       "seconds": "explainer time (s)", "game": "ground truth"})
    ui.table_with_download(shown_err, "explainers-vs-ground-truth", key="learn.dl_truth")

# ---------------------------------------------------------------------- 7
st.header("7 · Correlated inputs: two truths part ways")
rho = float(st.select_slider("Correlation of x_dup with x0", CORRELATIONS, value=0.98, key="learn.rho",
                             help="x_dup = ρ x0 + √(1−ρ²) u. No equation uses x_dup."))
study = None
with ui.user_errors():
    with st.spinner("Exact Shapley values at every correlation, and a model's accuracy…"):
        study = _correlation_study(trained.noise, trained.seed)
if study is not None:
    corr_fig = flearn.correlation_figure(study, rho, unit=UNIT, title="x0 and its copy: credit against correlation")
    ui.plot(corr_fig, key="learn.corr")
    here = study[study.correlation == rho].set_index("game")
    o, i_ = here.loc["observational"], here.loc["interventional"]
    question = "x0 alone scores 0.090, the pair only 0.083: why?"
    pair_answer = (
        (f"(This run: x0 alone {pair_numbers[0]:.3f}, the pair {pair_numbers[1]:.3f} {UNIT}) " if pair_numbers else "")
        + f"At ρ = {rho:g} the truth keeps the pair's credit where it was: interventionally x0 keeps all "
        f"{i_['x0']:.3f} {UNIT} and x_dup gets {i_['x_dup']:.3f}; observationally they split it "
        f"({o['x0']:.3f} and {o['x_dup']:.3f}) and the pair still sums to {o['pair_sum']:.3f}, while a model using both keeps "
        f"its accuracy (MAE {float(o['mae_with_pair']):.3f} {UNIT}). So a smaller pair sum is not in the data: a model "
        "given the copy is a different fit that spreads its weight over x0 and x_dup, and an interventional explainer "
        "moves each one independently, to inputs the data never hold (x0 high, x_dup low), where the two halves of a "
        "non-linear model do not add up to the whole; accuracy cannot show this, since x_dup adds no information.")
    st.caption(f"**{question}** " + pair_answer)
    ui.table_with_download(study.rename(columns=_study_columns()), "correlation-study", key="learn.dl_corr")

# ---------------------------------------------------------------------- 8
st.header("8 · The lesson")
st.markdown("Four questions for a class, each with one figure and a one-sentence answer; download them as one HTML file.")
steps: list[tuple[str, object, str]] = [(
    "Does the model predict y1 as well as the data allow?", fm.parity_figure(result.oof, targets),
    f"Its validation MAE is {y1_mae:.3f} {UNIT} against a noise floor of {0.7979 * noise_sd:.3f} {UNIT}: "
    + ("it has not learnt the structure yet (train longer)." if under_trained else "the gap is what it has not learnt."))]
if errors is not None and attrs is not None:
    steps.append(("Does SHAP find the features y1 really depends on?", truth_fig,
                  f"The truth gives {', '.join(truth.irrelevant_material_features[:1])}… exactly zero and the explainers "
                  f"nearly zero; the best explainer is {inter.loc[best, 'mae']:.3f} {UNIT} (MAE) from the exact values, an error "
                  "all four share (the model's and the background's), not the explainer's own."))
if r2 is not None and corr is not None:
    steps.append(("Do the latents recover the hidden factors?", fl.factor_recovery_figure(corr, r2),
                  f"Only up to rotation: together the latents explain each factor with R² {r2.min():.2f}–{r2.max():.2f}, "
                  "single latents do not match single factors."))
if study is not None:
    steps.append((question, corr_fig, pair_answer))
for n, (q, fig, a) in enumerate(steps if st.toggle("Show the lesson here", False, key="learn.lesson") else [], start=1):
    with st.container(border=True):
        st.markdown(f"**Step {n}. {q}**")
        ui.plot(fig, key=f"learn.lesson{n}")
        st.markdown(f"*Answer:* {a}")
report_button(lambda: lesson_report("NestedAE Learn: a lesson with ground truth", steps,
                                    subtitle=f"synthetic data, {trained.text()}; equations: " + "; ".join(truth.equations)),
              "nestedae-learn-lesson", key="learn.lesson_html", label="Download the lesson (HTML)")
