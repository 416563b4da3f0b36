"""AppTest tests of the Latents, Explain and Learn pages on the default model.

The whole app runs from ``streamlit_app.py``; ``at.switch_page`` moves to a page.
The default model and the environment come from the ``default_model`` and
``app_env`` fixtures of tests/conftest.py (the shipped bundle, or a tiny model
trained once and named by ``NESTEDAE_DEFAULT_MODEL`` when the bundle is missing);
the helpers from tests/app_driver.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_driver import exceptions, n_plots, open_app, texts

pytestmark = pytest.mark.app

PAGES = ["pages/latents.py", "pages/explain.py", "pages/learn.py"]


def _no_errors(at: AppTest) -> None:
    assert not at.exception, exceptions(at)
    assert not at.error, [e.value for e in at.error]


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.fixture
def measured_default(app_env, monkeypatch):
    """The shipped measured-default bundle (DFT -> measured film gap -> device) as the app's default model."""
    from app import model_state
    from nestedae_core import store

    path = store.shipped_bundle_path("measured-default")
    if not path.is_dir():
        pytest.skip("no shipped measured-default bundle")
    monkeypatch.setenv(model_state.DEFAULT_MODEL_ENV, str(path))
    return path


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_default_model(app_env, page):
    at = open_app(page)
    assert at.title[0].value == Path(page).stem.capitalize()
    _no_errors(at)
    assert n_plots(at) <= 8


# --------------------------------------------------------------------------- Explain


def test_explain_shows_numbers_with_units(paper_default):
    at = open_app("pages/explain.py")
    _no_errors(at)
    m = _metrics(at)
    assert m["band gap, DFT PBE (no SOC): prediction"].endswith(" eV") and m["base value (background average)"].endswith(" eV")
    pred = float(m["band gap, DFT PBE (no SOC): prediction"].split()[0])
    assert at.selectbox(key="explain.output").value.startswith("band gap, DFT PBE (no SOC) (eV) ← stage 1 inputs")  # the fidelity is named
    base = float(m["base value (background average)"].split()[0])
    total = float(m["sum of attributions"].split()[0])
    assert pred == pytest.approx(base + total, abs=2e-3)  # additivity, as shown
    assert n_plots(at) == 1  # the waterfall
    assert "MAPbI3" in texts(at) and "add up to the prediction" in texts(at)
    table = at.dataframe[0].value
    assert "SHAP (eV)" in table.columns and len(table) == 15
    assert any("site (all its descriptors)" in g for g in at.dataframe[1].value["group"])
    assert len(at.get("download_button")) >= 2
    # the whole chain: PCE in %
    chain = next(o for o in at.selectbox(key="explain.output").options if o.startswith("PCE") and "whole chain" in o)
    at.selectbox(key="explain.output").set_value(chain).run()
    _no_errors(at)
    m = _metrics(at)
    assert m["PCE: prediction"].endswith(" %")
    names = set(at.dataframe[0].value["description"])
    assert {"ETL stack", "HTL stack", "X-site ionic radius (Å)"} <= names


def test_an_explanation_never_waits_for_the_shap_warm_up(paper_default, monkeypatch):
    """A hosted server compiles shap's exact explainer in a background thread after the first page; an
    explanation (default: permutation, no numba) must not wait for it. Waiting held the session's script
    thread, and so every page it then clicked, for minutes on a fresh, busy 2-core server (the load test)."""
    import threading

    from app import explain_state

    release = threading.Event()
    monkeypatch.setattr(explain_state, "warm_up_explainer", lambda: release.wait(75))  # long enough to fail the 60-s run, short if it does
    explain_state._warm_up_thread.clear()
    explain_state.local_attribution.clear()  # an earlier test's cached explanation would skip the computation
    try:
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"), default_timeout=60)
        at.run()
        assert explain_state._warm_up_thread().is_alive()  # the warm-up started and is still "compiling"
        at.switch_page("pages/explain.py").run()
        _no_errors(at)
        assert any(k.startswith("band gap, DFT PBE (no SOC): prediction") for k in _metrics(at))
    finally:
        release.set()
        explain_state._warm_up_thread.clear()


def test_explain_global_view_and_latents(paper_default, data_dir):
    at = open_app("pages/explain.py")
    at.radio(key="explain.view").set_value("Global: over many rows").run()
    at.select_slider(key="explain.global_n").set_value(50).run()
    _no_errors(at)
    assert n_plots(at) == 2  # bar + beeswarm
    table = at.dataframe[0].value
    assert "mean |SHAP| (eV)" in table.columns and len(table) == 15
    assert "rows of `mhp-pbe-paper`" in texts(at)
    at.radio(key="explain.terms").set_value("latents").run()  # the latent space: one click away
    latents = next(o for o in at.selectbox(key="explain.output_latent").options if o.startswith("stage-1 latents"))
    at.selectbox(key="explain.output_latent").set_value(latents)
    at.radio(key="explain.view").set_value("Local: this composition").run()
    _no_errors(at)
    assert any(k.startswith("materials.z1: prediction") for k in _metrics(at))
    assert "SHAP (dimensionless)" in at.dataframe[0].value.columns


@pytest.mark.slow
def test_explain_fidelity_panel(paper_default):
    at = open_app("pages/explain.py")
    at.radio(key="explain.view").set_value("Fidelity: compare explainers").run()
    assert n_plots(at) == 0 and "Press the button" in texts(at)
    at.multiselect(key="explain.cmp_methods").set_value(["exact", "permutation"])
    at.button(key="explain.cmp_run").click().run()
    _no_errors(at)
    assert n_plots(at) == 1
    table = at.dataframe[0].value
    assert list(table["explainer"]) == ["exact", "permutation"]
    assert "additivity error (eV)" in table.columns and (table["additivity error (eV)"] < 1e-3).all()
    diff = table["max |difference| vs exact (eV)"]
    assert not diff.isna().any() and "None" not in set(diff.astype(str))  # a blank or "—", never "None"


def test_explain_opens_on_the_measured_gap_in_the_users_inputs(measured_default):
    """Issue 18: the page opens on the measured band gap explained end to end in the user's own inputs (site
    fractions, descriptors, phase), not on a DFT gap or in latent units; the latent space is one click away."""
    from app import model_state
    from nestedae_core.api import predict_composition

    at = open_app("pages/explain.py")
    _no_errors(at)
    assert at.radio(key="explain.terms").value == "inputs"
    assert at.selectbox(key="explain.cat.phase").label == "Crystal phase of the DFT gaps"  # named as on Predict
    output = at.selectbox(key="explain.output")
    assert output.value.startswith("band gap, measured (eV) ← whole chain: 14 site fractions, 15 site descriptors")
    assert all("latents" not in o for o in output.options)  # every output here is in the user's inputs
    assert output.options[1].startswith("PCE (%) ← whole chain") and output.options[1].endswith("ETL stack, HTL stack")
    m = _metrics(at)
    pred = float(m["band gap, measured: prediction"].split()[0])
    base, total = (float(m[k].split()[0]) for k in ("base value (background average)", "sum of attributions"))
    assert pred == pytest.approx(base + total, abs=2e-3)
    described = set(at.dataframe[0].value["description"])
    assert any(d.startswith("Pb fraction of the B site") for d in described)  # the user's composition ...
    assert "X-site ionic radius (Å)" in described  # ... its descriptors ...
    assert not any(".z" in d for d in described)  # ... and no latent
    groups = set(at.dataframe[1].value["group"])
    assert {"X site (all its ion fractions)", "X site (all its descriptors)"} <= groups
    # the same gap as Predict's ensemble mean for this composition
    res = predict_composition(model_state.load_model(str(measured_default)), "MAPbI3")
    assert pred == pytest.approx(res.to_json()["bandgap_eV"]["mean"], abs=1.5e-3)
    # the latents, one click away
    at.radio(key="explain.terms").set_value("latents").run()
    _no_errors(at)
    latent_options = at.selectbox(key="explain.output_latent").options
    assert latent_options[0].startswith("band gap, measured (eV) ← stage 2 inputs: the 16 dft latents, 14 site fractions")
    assert any(o.startswith("stage-1 latents") for o in latent_options)
    described = set(at.dataframe[0].value["description"])
    assert any(d.startswith("dft.z") for d in described)
    # the explainer comparison covers the headline output too
    at.radio(key="explain.terms").set_value("inputs").run()
    at.radio(key="explain.view").set_value("Fidelity: compare explainers").run()
    at.multiselect(key="explain.cmp_methods").set_value(["permutation", "gradient"])
    at.button(key="explain.cmp_run").click().run()
    _no_errors(at)
    table = at.dataframe[0].value
    assert list(table["explainer"]) == ["permutation", "gradient"] and "prediction (eV)" in table.columns
    assert table["prediction (eV)"].to_numpy() == pytest.approx([pred, pred], abs=2e-3)


def test_explain_on_the_default_model_names_its_gaps(app_env):
    """Whatever the default model, its band gaps are named; the explainer comparison offers what can run."""
    at = open_app("pages/explain.py")
    _no_errors(at)
    gaps = [o for o in at.selectbox(key="explain.output").options if o.startswith("band gap")]
    assert gaps and all(o.startswith("band gap, ") for o in gaps)
    assert any(k.startswith("band gap, ") and k.endswith(": prediction") for k in _metrics(at))
    at.radio(key="explain.view").set_value("Fidelity: compare explainers").run()
    _no_errors(at)
    offered = at.multiselect(key="explain.cmp_methods").options
    assert {"permutation", "gradient"} <= set(offered)
    if "exact" not in offered:
        assert "The exact explainer is not offered here" in texts(at)


def test_explain_invalid_formula_is_a_specific_message(app_env):
    at = open_app("pages/explain.py")
    at.text_input(key="explain.formula").input("MAPbX3").run()
    assert not at.exception, exceptions(at)
    assert "unknown species" in " ".join(e.value for e in at.error)
    assert "Still showing the last valid composition" in texts(at)
    assert at.metric  # the last valid composition is still explained
    at.text_input(key="explain.formula").input("CsPbBr3").run()
    _no_errors(at)
    assert "CsPbBr3" in texts(at)


def test_explain_follows_the_shared_composition(app_env):
    at = open_app("pages/compose.py")
    at.text_input(key="compose.formula").input("FAPbI3").run()
    at.switch_page("pages/explain.py").run()
    _no_errors(at)
    assert at.text_input(key="explain.formula").value == "FAPbI3"
    assert "FAPbI3" in texts(at)


# --------------------------------------------------------------------------- Latents


def test_latents_views(paper_default):
    at = open_app("pages/latents.py")
    _no_errors(at)
    assert n_plots(at) == 1
    assert any("red star is **MAPbI3**" in c.value for c in at.caption)
    colours = at.selectbox(key="latents.colour").options
    assert any(c.startswith("predicted band gap, DFT PBE (no SOC) (eV)") for c in colours)
    assert "band gap, DFT PBE (no SOC) (eV)" in colours and not any(c.startswith("measured band gap, DFT") for c in colours)
    assert any("fraction of the X site" in c for c in colours)
    at.radio(key="latents.view").set_value("Correlations").run()
    _no_errors(at)
    corr = at.dataframe[0].value
    assert len(corr) == 12 and "Gap (predicted)" in corr.columns
    at.radio(key="latents.corr_method").set_value("spearman").run()
    _no_errors(at)
    at.radio(key="latents.view").set_value("Active latents").run()
    _no_errors(at)
    assert _metrics(at)["active latents (median over fold models)"].endswith("of 12")
    assert "**Rule.**" in texts(at)
    at.radio(key="latents.view").set_value("Traversal").run()
    _no_errors(at)
    assert next(v for k, v in _metrics(at).items() if k.startswith("predicted band gap, DFT PBE (no SOC)")).endswith(" eV")
    # stage 2: ETL/HTL colours and the device stack in the traversal
    stage2 = at.radio(key="latents.stage").options[1]
    at.radio(key="latents.stage").set_value(stage2)
    at.radio(key="latents.view").set_value("Map").run()
    _no_errors(at)
    colours = at.selectbox(key="latents.colour").options
    assert "ETL stack" in colours and "HTL stack" in colours
    at.selectbox(key="latents.colour").set_value("ETL stack").run()
    _no_errors(at)
    at.radio(key="latents.dims").set_value(3).run()
    _no_errors(at)
    assert n_plots(at) == 1


def test_latents_and_explain_without_data_use_the_background(default_model, tmp_path, monkeypatch, no_data_env):
    from nestedae_core import store

    monkeypatch.setenv(store.MODELS_DIR_ENV, str(tmp_path / "models"))
    at = open_app("pages/latents.py")
    _no_errors(at)
    assert any("stored background" in i.value for i in at.info)
    assert n_plots(at) == 1
    at.radio(key="latents.view").set_value("Correlations").run()
    _no_errors(at)
    assert "Gap" not in at.dataframe[0].value.columns  # no measured band gap without the data
    at.switch_page("pages/explain.py").run()
    at.radio(key="explain.view").set_value("Global: over many rows").run()
    _no_errors(at)
    assert "stored background rows" in texts(at)


def test_latents_invalid_formula_is_a_specific_message(app_env):
    at = open_app("pages/latents.py")
    at.text_input(key="latents.formula").input("MAPb(I0.5Br0.6)3").run()
    assert not at.exception, exceptions(at)
    assert at.error and "Still showing the last valid composition" in texts(at)
    assert n_plots(at) == 1


# --------------------------------------------------------------------------- Learn


@pytest.fixture(scope="module")
def learn_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("learn-jobs") / "jobs.sqlite"


@pytest.fixture
def learn_env(app_env: Path, learn_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``app_env`` with one job store for this module's Learn tests: Learn finds a run by its exact
    configuration, so the same training (5 epochs, default noise) and latent-size scan are trained once
    and found by the next test, as a second visitor of the server finds them."""
    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(learn_store))
    return app_env


def test_learn_trains_and_counts_active_latents(learn_env):
    at = open_app("pages/learn.py")
    assert "1 · The generating equations" in [h.value for h in at.header]
    assert any("true_y1 = 1.6" in c.value for c in at.code)
    assert any("Press **Train**" in i.value for i in at.info)
    at.number_input(key="learn.epochs").set_value(5)
    at.button(key="learn.train").click().run()
    _no_errors(at)
    m = _metrics(at)
    assert m["active latents (median over fold models)"].endswith("of 6")
    assert m["true factors"] == "3"
    assert m["y1 validation MAE (stage 1)"].endswith(" a.u.")
    assert {"3 · What the latents recover", "4 · What SHAP says", "5 · Where attributions mislead"} <= {h.value for h in at.header}
    assert 5 <= n_plots(at) <= 8
    # it trained as a job of the server's job manager, in a worker process (as the Train page does)
    import os

    from app import jobs_state

    done = [j for j in jobs_state.get_manager().jobs(kind="train") if j.status == "done"]
    assert any(j.payload["spec"]["stages"][0]["epochs"] == 5 for j in done)
    assert all(int(j.worker.rpartition(":")[2]) != os.getpid() for j in done)
    # the latent-size scan is one job training one model per size, through the same job manager
    at.button(key="learn.sweep").click().run()
    _no_errors(at)
    sweep = next(d.value for d in at.dataframe if "latent size (count)" in d.value.columns)
    assert sorted(sweep["latent size (count)"]) == [1, 2, 3, 4, 5, 6]
    assert (sweep["validation MAE (a.u.)"] > 0).all()
    sweep_jobs = [j for j in jobs_state.get_manager().jobs(kind="latent_size_scan") if j.status == "done"]
    assert len(sweep_jobs) == 1 and sweep_jobs[0].payload["sizes"] == [1, 2, 3, 4, 5, 6]
    # changing a setting keeps the old results with a note
    at.select_slider(key="learn.noise").set_value(0.1).run()
    assert any("settings changed" in w.value for w in at.warning)


def test_learn_warns_when_the_model_is_under_trained(learn_env):
    at = open_app("pages/learn.py")
    at.number_input(key="learn.epochs").set_value(5)  # y1 MAE far above 3x the noise sd (0.05)
    at.button(key="learn.train").click().run()
    _no_errors(at)
    assert any("under-trained" in w.value and "more epochs" in w.value for w in at.warning)
    assert "that is the model's overfitting" not in texts(at)
    at.button(key="learn.sweep").click().run()
    _no_errors(at)
    assert any("scan cannot tell" in w.value for w in at.warning)
    assert "latents beyond what the data needs" not in texts(at)
    # with more noise the same short training is within 3x the noise sd: no warning, the overfitting reading stays
    at.select_slider(key="learn.noise").set_value(0.2).run()
    at.button(key="learn.train").click().run()
    _no_errors(at)
    assert not any("under-trained" in w.value for w in at.warning)
    assert "that is the model's overfitting" in texts(at)


@pytest.mark.slow
def test_learn_correlated_pair_splits_credit(app_env):
    at = open_app("pages/learn.py")
    at.number_input(key="learn.epochs").set_value(30)
    at.toggle(key="learn.pair").set_value(True)
    at.button(key="learn.train").click().run()
    _no_errors(at)
    split = next(d.value for d in at.dataframe if "mean |SHAP| (a.u.)" in d.value.columns)
    assert "x_dup" in set(split["feature"])
    assert split["mean |SHAP| (a.u.)"].gt(0).all()
    assert n_plots(at) <= 8


def test_explain_local_offers_exact_only_where_the_fidelity_view_does(app_env):
    at = open_app("pages/explain.py")
    _no_errors(at)
    local = at.radio(key="explain.local_method").options
    at.radio(key="explain.view").set_value("Fidelity: compare explainers").run()
    offered = at.multiselect(key="explain.cmp_methods").options
    assert ("exact" in local) == ("exact" in offered)
    if "exact" not in offered:  # no caption promising what is not offered
        assert "a few seconds for the 15 descriptors" not in texts(at) and "Press the button" in texts(at)


@pytest.mark.slow
def test_learn_shows_ground_truth_beside_the_explainers_and_exports_the_lesson(app_env):
    at = open_app("pages/learn.py")
    at.number_input(key="learn.epochs").set_value(5)
    at.button(key="learn.train").click().run()
    _no_errors(at)
    headers = {h.value for h in at.header}
    assert {"6 · Ground truth beside every explainer", "7 · Correlated inputs: two truths part ways", "8 · The lesson"} <= headers
    err = next(d.value for d in at.dataframe if "MAE (a.u.)" in d.value.columns and "ground truth" in d.value.columns)
    assert set(err["explainer"]) == {"exact", "permutation", "kernel", "gradient"}
    assert set(err["ground truth"]) == {"interventional", "observational"}
    assert (err["MAE (a.u.)"] > 0).all() and err["MAE (a.u.)"].notna().all()
    study = next(d.value for d in at.dataframe if "x0 + x_dup, summed per row (a.u.)" in d.value.columns)
    assert all("(" in c for c in study.columns if c != "ground truth")  # every quantity names its unit
    study = study.rename(columns={"correlation of x_dup with x0 (dimensionless)": "correlation", "ground truth": "game",
                                  "x0: mean |Shapley value| (a.u.)": "x0", "x_dup: mean |Shapley value| (a.u.)": "x_dup"})
    obs = study[study.game == "observational"].set_index("correlation")
    inter = study[study.game == "interventional"].set_index("correlation")
    assert obs.loc[0.98, "x_dup"] > 0.5 * obs.loc[0.98, "x0"] and inter["x_dup"].abs().max() < 1e-9
    assert "x0 alone scores" in texts(at)
    assert n_plots(at) <= 8
    # the correlation slider moves the reading; the lesson unfolds step by step
    at.select_slider(key="learn.rho").set_value(0.5).run()
    _no_errors(at)
    assert "At ρ = 0.5 the truth" in texts(at)
    at.toggle(key="learn.lesson").set_value(True).run()
    _no_errors(at)
    steps = [m.value for m in at.markdown if m.value.startswith("**Step ")]
    assert 3 <= len(steps) <= 5 and all(s.rstrip("*").endswith("?") for s in steps)
    assert sum("*Answer:*" in m.value for m in at.markdown) == len(steps)
    assert any(b.label == "Download the lesson (HTML)" for b in at.get("download_button"))
