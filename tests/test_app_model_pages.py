"""AppTest tests of the Train, Predict, Screen and Compare pages and of app/model_state.py.

The whole app runs from ``streamlit_app.py`` and ``at.switch_page`` moves to a
page (helpers in tests/app_driver.py). The default model is the shipped bundle;
when it is missing, a tiny one is trained once per session and named by
``NESTEDAE_DEFAULT_MODEL`` (the ``default_model`` and ``app_env`` fixtures of
tests/conftest.py). Saved models go to a temporary ``NESTEDAE_MODELS_DIR``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import model_state
from app_driver import exceptions, n_plots, open_app, texts
from nestedae_core import store

pytestmark = pytest.mark.app


# --------------------------------------------------------------------------- model_state (no page)


def test_running_jobs_setting_reads_the_old_max_jobs_variable(monkeypatch):
    from app import jobs_state

    monkeypatch.delenv("NESTEDAE_MAX_RUNNING", raising=False)
    monkeypatch.delenv("NESTEDAE_MAX_JOBS", raising=False)
    assert jobs_state.settings().max_running == 1
    monkeypatch.setenv("NESTEDAE_MAX_JOBS", "3")
    assert jobs_state.settings().max_running == 3


def test_model_options_list_default_first(app_env, default_model):
    opts = model_state.model_options()
    assert opts[0].builtin and opts[0].path.resolve() == default_model.resolve()
    frame = model_state.bundles_frame(opts)
    assert list(frame["default"]) == [True, False]  # the default model, then the other shipped one
    assert list(frame["model"]) == ["measured-default", "paper-default"] and frame["shipped"].all()
    assert any(c.startswith("MAE band gap, DFT PBE (no SOC) (eV)") for c in frame.columns)  # the paper's band gap is DFT-PBE
    assert "band gap, DFT PBE (no SOC)" in model_state._label(opts[0])


# --------------------------------------------------------------------------- pages render


@pytest.mark.parametrize("page", ["pages/train.py", "pages/predict.py", "pages/screen.py", "pages/compare.py"])
def test_page_renders_on_default_model(app_env, page):
    at = open_app(page)
    assert at.title[0].value == Path(page).stem.capitalize()
    assert not at.error
    assert n_plots(at) <= 8


def test_train_page_offers_the_measured_preset_first_with_its_description(app_env):
    at = open_app("pages/train.py")
    box = at.selectbox(key="train.preset")
    assert box.options[0].startswith("measured: DFT band gaps (PBE, HSE06+SOC) and decomposition energy") and box.value == "measured"
    assert all(not o.endswith(": ") for o in box.options)  # every preset has a description
    assert at.radio(key="train.measured.split").value == "grouped"
    models = next(d.value for d in at.dataframe if "path" in d.value.columns)
    cells = models[[c for c in models.columns if c.startswith("MAE ")]].astype(str).to_numpy().ravel()
    assert "—" in cells and not any(c in ("None", "nan", "") for c in cells)


def test_train_page_lists_devices(app_env):
    at = open_app("pages/train.py")
    at.selectbox(key="train.preset").set_value("paper").run()
    assert "Devices detected on this server" in texts(at) and "cpu" in texts(at)
    assert at.selectbox(key="train.paper.device").options[0] == "auto (best available)"
    assert "No runs yet" in texts(at)
    assert "targets: band gap, DFT PBE (no SOC) (eV)" in texts(at)  # the paper preset's band gap is named by its fidelity


def test_predict_shows_numbers_with_units(app_env):
    at = open_app("pages/predict.py")
    metrics = {m.label: m.value for m in at.metric}
    assert all(k.startswith("band gap, ") for k in metrics if k.startswith("band gap"))  # never a bare "band gap"
    gap = next(v for k, v in metrics.items() if k.startswith("band gap, DFT PBE (no SOC"))
    pce = next(v for k, v in metrics.items() if k.startswith("PCE"))
    # the uncertainty: the prediction interval when calibrated, else ± (model disagreement, said so)
    assert (gap.endswith(" eV") and " ± " in gap) or (" eV (90 % interval " in gap and gap.endswith(")"))
    assert (pce.endswith(" %") and " ± " in pce) or (" % (90 % interval " in pce and pce.endswith(")"))
    assert any(c.value.startswith("model disagreement ± ") for c in at.caption)
    assert any("Shockley–Queisser" in k and v.endswith(" %") for k, v in metrics.items())
    assert 1 <= n_plots(at) <= 8
    assert "MAPbI3" in texts(at)
    if not any(k.startswith("band gap, measured") for k in metrics):  # e.g. the paper model: PBE only, and it says so
        sq = next(k for k in metrics if "Shockley–Queisser" in k)
        assert sq == "Shockley–Queisser limit at the DFT PBE (no SOC) gap (no measured gap)"
        assert "The measured-scale band gap needs the measured model" in texts(at)
    # side-by-side table with unit-bearing columns and a download
    table = next(d.value for d in at.dataframe if "PCE (%)" in d.value.columns)
    pbe = next(c for c in table.columns if c.startswith("band gap, DFT PBE (no SOC") and c.endswith(") (eV)"))[: -len(" (eV)")]
    assert {f"{pbe} (eV)", f"{pbe} model disagreement (eV)", "PCE (%)"} <= set(table.columns)
    assert any(c.startswith("SQ limit") and c.endswith("(%)") for c in table.columns)
    assert not [c for c in table.columns if c.startswith("band gap") and not c.startswith("band gap, ")]
    assert len(table) >= 2
    assert len(at.get("download_button")) >= 2
    # the line-scan table: fidelity-named columns and x without float noise
    scan = next(d.value for d in at.dataframe if any(c.startswith("x (fraction of") for c in d.value.columns))
    x = scan[next(c for c in scan.columns if c.startswith("x (fraction of"))]
    assert [repr(float(v)) for v in x][:4] == ["0.0", "0.05", "0.1", "0.15"] and any(c.startswith("band gap, DFT PBE (no SOC") for c in scan.columns)


@pytest.fixture
def calibrated_env(tiny_paper, app_env, tmp_path, monkeypatch):
    """The tiny paper chain (cross-validated, so calibrated) saved and made the default model."""
    assert tiny_paper.model.calibration, "cross-validation stores the out-of-fold calibration"
    path = store.save_bundle(tiny_paper, tmp_path / "calibrated")
    monkeypatch.setenv(model_state.DEFAULT_MODEL_ENV, str(path))
    return path


def test_predict_and_screen_show_the_interval_of_a_calibrated_model(calibrated_env):
    at = open_app("pages/predict.py")
    assert not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    gap = metrics["band gap, DFT PBE (no SOC) · materials stage"]
    assert " eV (90 % interval " in gap and "±" not in gap
    lo, hi = (float(v) for v in gap.split("interval ")[1].rstrip(")").split("–"))
    assert lo <= float(gap.split()[0]) <= hi
    assert any(c.value.startswith("model disagreement ± ") for c in at.caption)  # still there, in smaller print
    assert "Uncertainty: prediction intervals" in texts(at)
    table = next(d.value for d in at.dataframe if "band gap, DFT PBE (no SOC) (eV)" in d.value.columns)
    assert {"band gap, DFT PBE (no SOC) 90 % interval lower (eV)", "band gap, DFT PBE (no SOC) 90 % interval upper (eV)", "PCE 90 % interval lower (%)"} <= set(table.columns)
    scan = next(d.value for d in at.dataframe if any(c.startswith("x (fraction of") for c in d.value.columns))
    assert (scan["band gap, DFT PBE (no SOC) 90 % interval lower (eV)"] <= scan["band gap, DFT PBE (no SOC) (eV)"]).all()
    assert "90 % prediction intervals" in texts(at)  # the scan's bands
    at.switch_page("pages/screen.py").run()
    at.select_slider(key="screen.n").set_value(4)
    at.slider(key="screen.gap").set_value((0.5, 3.5)).run()
    at.button(key="screen.run").click().run()
    assert not at.exception, exceptions(at)
    ranked = at.dataframe[0].value
    assert {"PCE 90 % interval lower (%)", "PCE 90 % interval upper (%)", "PCE model disagreement (%)"} <= set(ranked.columns)
    assert (ranked["PCE 90 % interval lower (%)"] <= ranked["PCE (%)"]).all()


@pytest.fixture(scope="module")
def measured_bundle(data_dir, tmp_path_factory):
    """A tiny chain of the measured preset (DFT -> measured film gap -> device), cross-validated and saved."""
    from nestedae_core.perovskite.presets import PRESETS, preset
    from nestedae_core.train import cross_validate

    if "measured" not in PRESETS:
        pytest.skip("no measured preset in this checkout")
    result = cross_validate(preset("measured", epochs=10, folds=3), device="cpu")
    return store.save_bundle(result, tmp_path_factory.mktemp("measured") / "measured-tiny")


def test_predict_and_screen_use_the_measured_gap_of_a_measured_model(measured_bundle, app_env, monkeypatch):
    monkeypatch.setenv(model_state.DEFAULT_MODEL_ENV, str(measured_bundle))
    at = open_app("pages/predict.py")
    assert not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    gaps = [k.split(" · ")[0] for k in metrics if k.startswith("band gap")]
    # the measured gap leads; each DFT gap says its functional, spin-orbit coupling and phase
    assert gaps == ["band gap, measured", "band gap, DFT PBE (no SOC, cubic)", "band gap, DFT HSE06+SOC (cubic)"]
    assert list(metrics)[0].startswith("band gap, measured")
    assert all(" eV (90 % interval " in metrics[k] for k in metrics if k.startswith("band gap"))
    hse = next(v for k, v in metrics.items() if k.startswith("band gap, DFT HSE06+SOC"))
    assert float(hse.split("interval ")[1].split("–")[0]) >= 0  # never below 0 eV: the head's bounds
    assert "Shockley–Queisser limit at the measured gap" in metrics
    assert "needs the measured model" not in texts(at)
    # the stability output: the decomposition energy with its interval, last
    decomp = next(k for k in metrics if k.startswith("decomposition energy"))
    assert decomp.startswith("decomposition energy (DFT, cubic)") and " eV/f.u. (90 % interval " in metrics[decomp]
    assert "Lower is more stable" in texts(at)
    table = next(d.value for d in at.dataframe if "band gap, measured (eV)" in d.value.columns)
    assert "SQ limit (%)" in table.columns and "decomposition energy (cubic) (eV/f.u.)" in table.columns
    # another phase for the DFT gaps: named with them; the measured gap does not move
    at.selectbox(key="predict.phase").set_value("Tetra").run()
    tetra = {m.label: m.value for m in at.metric}
    assert any(k.startswith("band gap, DFT HSE06+SOC (tetragonal)") for k in tetra)
    assert next(v for k, v in tetra.items() if k.startswith("band gap, measured")) == next(
        v for k, v in metrics.items() if k.startswith("band gap, measured"))
    at.switch_page("pages/screen.py").run()
    assert at.slider(key="screen.gap").label == "Band-gap window, measured gap (eV)"
    at.select_slider(key="screen.n").set_value(4)
    at.slider(key="screen.gap").set_value((1.5, 1.7)).run()
    at.button(key="screen.run").click().run()
    assert not at.exception, exceptions(at)
    ranked = at.dataframe[0].value
    if "rank" in ranked.columns:  # some candidate passes inside the domain
        assert ranked["band gap, measured (eV)"].between(1.5, 1.7).all()
    # the stability filter: decomposition energy at most X eV/f.u.
    at.slider(key="screen.gap").set_value((0.5, 3.5))
    at.checkbox(key="screen.decomp_on").check().run()
    at.number_input(key="screen.decomp_max").set_value(0.0).run()
    at.button(key="screen.run").click().run()
    assert not at.exception, exceptions(at)
    assert "decomposition energy at most 0.00 eV/f.u." in " ".join(s.value for s in at.success)
    frames = [d.value for d in at.dataframe if "decomposition energy (cubic) (eV/f.u.)" in d.value.columns]
    assert frames or "No candidate passes the windows" in texts(at)
    assert all((f["decomposition energy (cubic) (eV/f.u.)"] <= 0.0).all() for f in frames)


def test_predict_and_screen_say_a_model_has_no_stability_head(app_env):
    """The shipped default predates the decomposition head: Predict and Screen say "not in this model", nothing fails."""
    from nestedae_core import predict

    if predict.has_decomposition(store.load_default_bundle()):
        pytest.skip("the default model has a decomposition head")
    at = open_app("pages/predict.py")
    assert not at.exception, exceptions(at)
    metrics = {m.label: m.value for m in at.metric}
    if not any(k.startswith("band gap") for k in metrics):
        pytest.skip("the default model predicts no band gap")
    assert metrics.get("decomposition energy (stability)") == "not in this model"
    at.switch_page("pages/screen.py").run()
    assert not at.exception, exceptions(at)
    assert at.checkbox(key="screen.decomp_on").disabled and "not in this model" in texts(at)


def test_predict_invalid_formula_is_a_specific_message(app_env):
    at = open_app("pages/predict.py")
    at.text_input(key="predict.formula").input("MAPbX3").run()
    assert not at.exception, exceptions(at)
    errors = " ".join(e.value for e in at.error)
    assert "unknown species" in errors
    assert "Still showing the last valid composition" in texts(at)
    at.text_input(key="predict.formula").input("CsPbBr3").run()
    assert not at.error
    assert "CsPbBr3" in texts(at)


def test_predict_out_of_domain_warning(app_env):
    at = open_app("pages/predict.py")
    at.text_input(key="predict.formula").input("KBaCl3").run()  # no device was ever made of it
    assert not at.exception, exceptions(at)
    warning = " ".join(w.value for w in at.warning)
    assert "Outside the training domain" in warning and "device" in warning  # the device stage ('devices' in the paper chain)
    assert "outside the training data of stage" in warning  # the library's domain message: which stage and why


def test_predict_flags_pce_above_the_sq_limit(app_env, monkeypatch):
    import nestedae_core.physics as physics

    real = physics.sq_limit

    def low_limit(gap, **kw):  # pretend the limit is 1 % so any prediction exceeds it
        out = real(gap, **kw)
        out["pce_percent"] = out["pce_percent"] * 0 + 1.0
        return out

    monkeypatch.setattr(physics, "sq_limit", low_limit)
    at = open_app("pages/predict.py")
    errors = " ".join(e.value for e in at.error)
    assert "Above the Shockley–Queisser limit" in errors and "1.0 %" in errors
    table = next(d.value for d in at.dataframe if any(c.startswith("band gap, DFT PBE (no SOC") for c in d.value.columns))
    assert table["note"].str.contains("PCE above the SQ limit").all()


def test_predict_follows_the_shared_composition(app_env):
    at = open_app("pages/compose.py")
    at.text_input(key="compose.formula").input("FAPbI3").run()
    at.switch_page("pages/predict.py").run()
    assert not at.exception, exceptions(at)
    assert at.text_input(key="predict.formula").value == "FAPbI3"
    at.text_input(key="predict.formula").input("CsPbI3").run()
    assert at.query_params.get("formula") == "CsPbI3"


def test_predict_stack_choice_changes_pce(app_env):
    at = open_app("pages/predict.py")
    etls = at.selectbox(key="predict.etl").options
    assert len(etls) > 1
    values = set()
    for etl in etls[:3]:
        at.selectbox(key="predict.etl").set_value(etl).run()
        assert not at.exception
        values.add(next(m.value for m in at.metric if m.label.startswith("PCE")))
    assert len(values) > 1


def test_predict_nearest_devices(app_env, data_dir):
    at = open_app("pages/predict.py")
    near = at.dataframe[-1].value
    assert "measured PCE (%)" in near.columns and "ETL" in near.columns
    assert (near["composition"] == "MAPbI3").all() and near["same composition"].all()  # 984 MAPbI3 devices
    assert "Devices with the same composition come first" in texts(at)


def test_predict_nearest_devices_empty_state(default_model, tmp_path, monkeypatch, no_data_env):
    monkeypatch.setenv(store.MODELS_DIR_ENV, str(tmp_path / "models"))
    at = open_app("pages/predict.py")
    assert any("psc-devices" in i.value and "missing" in i.value for i in at.info)
    assert at.metric  # predictions need no data


def test_screen_runs_and_times(app_env):
    at = open_app("pages/screen.py")
    at.multiselect(key="screen.a").set_value(["Cs", "FA", "MA"])
    at.multiselect(key="screen.x").set_value(["I", "Br"])
    at.select_slider(key="screen.n").set_value(10)
    at.slider(key="screen.gap").set_value((0.5, 3.5))
    at.slider(key="screen.tol").set_value((0.6, 1.2)).run()
    assert "726 candidates" in texts(at)
    at.button(key="screen.run").click().run()
    assert not at.exception, exceptions(at)
    done = " ".join(s.value for s in at.success)
    assert "Screened **726** candidates in **" in done and " s**" in done and "ms per candidate" in done
    table = at.dataframe[0].value
    assert len(table) > 0 and table["rank"].iloc[0] == 1
    # the window's gap is named: the measured-scale one, else the DFT gap said to be one
    gap = next(c for c in table.columns if c.startswith(("band gap, measured (eV)", "band gap, DFT PBE (no SOC")))
    assert "PCE (%)" in table.columns and "PCE model disagreement (%)" in table.columns and gap in table.columns
    word = "measured" if "measured" in gap else "DFT PBE (no SOC)"
    assert at.slider(key="screen.gap").label.startswith(f"Band-gap window, {word} gap")
    assert table["PCE (%)"].is_monotonic_decreasing and table["in training domain"].all()
    assert n_plots(at) == 1
    csv_buttons = [b for b in at.get("download_button") if b.key != "screen.report"]
    assert len(csv_buttons) == 1 + (len(at.dataframe) > 1)  # in-domain table, and the out-of-domain one apart
    assert at.get("download_button")[0].key == "screen.report"  # the shareable HTML report of the result
    # a narrow window filters
    at.slider(key="screen.gap").set_value((1.6, 1.7))
    at.button(key="screen.run").click().run()
    filtered = at.dataframe[0].value
    assert len(filtered) < len(table)
    assert filtered[gap].between(1.6, 1.7).all()


def _screen_with_out_of_domain_candidates():
    """Screen run over K/MA, Ba/Pb, Cl/I: a grid where part of the candidates leave the training domain."""
    at = open_app("pages/screen.py")
    at.multiselect(key="screen.a").set_value(["K", "MA"])
    at.multiselect(key="screen.b").set_value(["Ba", "Pb"])
    at.multiselect(key="screen.x").set_value(["Cl", "I"])
    at.select_slider(key="screen.n").set_value(4)
    at.slider(key="screen.gap").set_value((0.5, 3.5))
    at.slider(key="screen.tol").set_value((0.6, 1.2)).run()
    at.button(key="screen.run").click().run()
    return at


def test_screen_lists_out_of_domain_candidates_apart(app_env):
    at = _screen_with_out_of_domain_candidates()
    assert not at.exception, exceptions(at)
    assert len(at.dataframe) == 2, texts(at)  # ranked in-domain candidates, and the out-of-domain ones apart
    ranked, outside = at.dataframe[0].value, at.dataframe[1].value
    assert ranked["in training domain"].all() and list(ranked["rank"]) == list(range(1, len(ranked) + 1))
    assert (~outside["in training domain"]).all() and "rank" not in outside.columns
    assert not set(ranked["formula"]) & set(outside["formula"])
    assert any("never ranked with the others" in w.value for w in at.warning)
    assert any(e.label.startswith("Outside the training domain") for e in at.expander)


def test_screen_table_leads_with_the_ranking_target_then_the_window_gap(app_env):
    at = open_app("pages/screen.py")
    at.select_slider(key="screen.n").set_value(4)
    at.slider(key="screen.gap").set_value((0.5, 3.5)).run()
    at.button(key="screen.run").click().run()
    assert not at.exception, exceptions(at)
    gap = at.slider(key="screen.gap").label.split("window, ")[1].split(" gap")[0]  # the window's fidelity
    cols = list(at.dataframe[0].value.columns)
    # the ranked PCE, then at once how sure each rank is (in view, not past the interval columns)
    assert cols[:4] == ["rank", "formula", "PCE (%)", "P(beats the next) (probability)"], cols
    pce = [c for c in cols if c.startswith("PCE ")]
    name = next(c for c in cols if c.startswith("band gap, "))[: -len(" (eV)")]  # the window's gap, named with its fidelity
    assert gap.split(" (")[0] in name
    gaps = [c for c in cols if c.startswith(name)]
    assert cols[4:3 + len(pce)] == pce[1:]  # then PCE's interval and disagreement together
    start = 3 + len(pce)
    assert cols[start] == f"{name} (eV)" and cols[start:start + len(gaps)] == gaps
    assert cols.index("tolerance factor (dimensionless)") > max(cols.index(c) for c in cols if c.endswith("(eV)") or c.endswith("(%)"))


def test_screen_names_the_stage_that_leaves_the_training_domain(app_env):
    at = _screen_with_out_of_domain_candidates()
    assert not at.exception, exceptions(at)
    ranked, outside = at.dataframe[0].value, at.dataframe[1].value
    assert "first stage outside its training data" not in ranked.columns
    stages = outside["first stage outside its training data"]
    assert len(stages) and stages.str.fullmatch(r"\w+ \(stage \d of \d\)").all(), list(stages)


def test_screen_too_many_candidates_is_refused(app_env):
    at = open_app("pages/screen.py")
    at.multiselect(key="screen.a").set_value(["K", "Rb", "Cs", "MA", "FA"])
    at.multiselect(key="screen.b").set_value(["Ge", "Sn", "Pb"])
    at.multiselect(key="screen.x").set_value(["Cl", "Br", "I"])
    at.select_slider(key="screen.n").set_value(50).run()
    assert any("more than 200,000" in w.value for w in at.warning)
    assert at.button(key="screen.run").disabled


# --------------------------------------------------------------------------- Compare


def _report(split: str, scale: float) -> dict:
    def model(mae: float) -> dict:
        folds = [{"fold": i, "n": 20, "mae": mae * (1 + 0.05 * i), "rmse": mae * 1.3, "r2": 0.8} for i in range(3)]
        return {"mae": mae * 1.05, "mae_std": mae * 0.05, "rmse": mae * 1.3, "r2": 0.8, "seconds": 1.5, "folds": folds}

    def mixed(maes: list[float]) -> dict:  # lower on average than the baseline, but not on every fold
        folds = [{"fold": i, "n": 20, "mae": m, "rmse": m * 1.3, "r2": 0.5} for i, m in enumerate(maes)]
        return {"mae": sum(maes) / len(maes), "mae_std": 0.02, "rmse": 0.1, "r2": 0.5, "seconds": 1.0, "folds": folds}

    return {
        "split": split, "folds": 3, "seed": 0, "created": "2026-01-01T00:00:00+00:00",
        "tasks": {
            "pce-devices": {"dataset": "psc-devices", "target": "JV_reverse_scan_PCE", "unit": "%", "n": 60,
                            "description": "PCE from stage-1 latents + ETL + HTL",
                            "groups": ["Perovskite_composition_long_form", "ETL_stack_sequence", "HTL_stack_sequence"],
                            "models": {"nestedae": model(2.4 * scale), "random_forest": model(2.6 * scale), "mean": model(3.8)}},
            "bandgap-paper": {"dataset": "mhp-pbe-paper", "target": "Gap", "unit": "eV", "n": 60, "description": "band gap",
                              "models": {"nestedae": model(0.17 * scale), "ridge": model(0.3)}},
            "voc-devices": {"dataset": "psc-devices", "target": "JV_reverse_scan_Voc", "unit": "V", "n": 60, "description": "Voc",
                            "groups": ["Perovskite_composition_long_form", "ETL_stack_sequence", "HTL_stack_sequence"],
                            "models": {"nestedae": mixed([0.05, 0.09, 0.06]), "ridge": mixed([0.07, 0.07, 0.07])}},
        },
    }


@pytest.fixture
def fake_benchmark(tmp_path, monkeypatch):
    """The shipped reports replaced by small JSON files in tmp_path (one per split, random first on disk)."""
    from nestedae_core import benchmark

    paths = {}
    for split, scale in (("random", 1.0), ("grouped", 1.3)):
        p = tmp_path / f"accuracy-{split}.json"
        p.write_text(json.dumps(_report(split, scale)), encoding="utf-8")
        paths[split] = p
    monkeypatch.setattr(benchmark, "shipped_benchmark_paths", lambda: dict(paths))
    return paths


def test_compare_page_from_reports(app_env, fake_benchmark):
    at = open_app("pages/compare.py")
    assert at.radio(key="compare.split").options == ["grouped folds", "random folds"]  # the honest split first
    all_text = texts(at)
    assert "Grouped split, 3 folds, seed 0" in all_text
    assert "identical for every model" in all_text
    assert "leakage" in all_text.lower()
    table = at.dataframe[0].value
    assert list(table["model"]) == ["nestedae", "random_forest", "mean"]  # best first
    assert "MAE (%)" in table.columns and "MAE sd over folds (%)" in table.columns
    assert n_plots(at) == 4  # bars, per-fold lines, paired differences, grouped vs random
    # lower on every fold: better, with the rule stated
    assert "every fold" in all_text and "p < 0.05" in all_text
    assert any("NestedAE is better than random_forest" in s.value for s in at.success)
    paired = next(d.value for d in at.dataframe if "difference (%)" in d.value.columns)
    assert list(paired["fold"]) == [1, 2, 3] and (paired["difference (%)"] < 0).all()
    gap = at.dataframe[-1].value
    assert "increase (%)" in gap.columns and (gap["increase (%)"].loc[gap["model"] == "nestedae"] > 0).all()
    at.radio(key="compare.split").set_value("random").run()
    assert "Random split" in texts(at)
    at.selectbox(key="compare.task").set_value("bandgap-paper").run()
    assert not at.exception
    assert "MAE (eV)" in at.dataframe[0].value.columns
    assert "target Gap, band gap, DFT PBE (no SOC), for the crystal phases of its rows (eV)" in texts(at)  # the band gap names its fidelity


def test_compare_page_names_no_winner_when_folds_disagree(app_env, fake_benchmark):
    at = open_app("pages/compare.py")
    at.selectbox(key="compare.task").set_value("voc-devices").run()
    assert not at.exception
    assert not at.success and any("No winner" in i.value and "does not hold across folds" in i.value for i in at.info)
    assert "better than" not in texts(at)


def test_compare_page_reads_a_two_split_report_and_the_papers_scoring(app_env, tmp_path, monkeypatch):
    from nestedae_core import benchmark

    both = _report("grouped", 1.3)
    for m in both["tasks"]["pce-devices"]["models"].values():
        m["mae_paper_batches"] = m["mae"] * 0.9
    both["other_splits"] = {"random": _report("random", 1.0)}
    p = tmp_path / "accuracy.json"
    p.write_text(json.dumps(both), encoding="utf-8")
    monkeypatch.setattr(benchmark, "shipped_benchmark_paths", lambda: {"accuracy": p})
    at = open_app("pages/compare.py")
    assert at.radio(key="compare.split").options == ["grouped folds", "random folds"]
    assert "MAE, paper's batch scoring (%)" in at.dataframe[0].value.columns
    assert "short last batch" in texts(at)
    at.radio(key="compare.split").set_value("random").run()
    assert "MAE, paper's batch scoring (%)" not in at.dataframe[0].value.columns


def test_compare_page_says_when_the_two_splits_coincide(app_env, tmp_path, monkeypatch):
    from nestedae_core import benchmark

    paths = {}
    for split in ("random", "grouped"):  # the same results under both splits: no group repeats
        p = tmp_path / f"accuracy-{split}.json"
        p.write_text(json.dumps(_report(split, 1.0)), encoding="utf-8")
        paths[split] = p
    monkeypatch.setattr(benchmark, "shipped_benchmark_paths", lambda: dict(paths))
    at = open_app("pages/compare.py")
    at.selectbox(key="compare.task").set_value("bandgap-paper").run()
    assert not at.exception
    assert "the two splits **coincide**" in texts(at) and "no group value repeats" in texts(at)
    assert "several phases" not in texts(at) and "this is **leakage**" not in texts(at)


def test_compare_page_names_leakage_when_the_splits_differ(app_env, fake_benchmark):
    at = open_app("pages/compare.py")
    at.selectbox(key="compare.task").set_value("bandgap-paper").run()
    assert not at.exception
    assert "this is **leakage**" in texts(at) and "coincide" not in texts(at)


def test_compare_page_without_reports(app_env, monkeypatch):
    from nestedae_core import benchmark

    monkeypatch.setattr(benchmark, "shipped_benchmark_paths", lambda: {})
    at = open_app("pages/compare.py")
    assert any("No benchmark report is available" in i.value for i in at.info)
    assert not at.error


def test_compare_page_on_shipped_reports(app_env):
    from nestedae_core import benchmark

    if not benchmark.shipped_benchmark_paths():
        pytest.skip("no shipped benchmark reports yet")
    at = open_app("pages/compare.py")
    assert at.dataframe and "nestedae" in set(at.dataframe[0].value["model"])


# --------------------------------------------------------------------------- training through the job manager


def _wait_for_results(at: AppTest) -> None:
    """Rerun the page until the results show; the test's timeout (pytest-timeout) bounds the wait."""
    try:
        # the polled status panel may lag the results by one poll: wait for both
        while not (any("Cross-validation results" in s.value for s in at.subheader)
                   and any("Finished in" in s.value for s in at.success)):
            assert not at.exception, exceptions(at)
            assert not at.error, [e.value for e in at.error]
            time.sleep(0.3)
            at.run()
    except pytest.fail.Exception:  # the timeout: show the page it was stuck on
        print("training did not finish in time:\n" + texts(at))
        raise


@pytest.mark.training  # trains a model
def test_tiny_training_run_saved_and_made_active(app_env):
    at = open_app("pages/train.py")
    at.selectbox(key="train.preset").set_value("synthetic").run()
    at.number_input(key="train.synthetic.materials.epochs").set_value(5)
    at.number_input(key="train.synthetic.devices.epochs").set_value(5)
    at.text_input(key="train.synthetic.name").input("tiny-ui-run")
    at.button(key="train.synthetic.submit").click().run()
    assert not at.exception, exceptions(at)
    assert not at.error, [e.value for e in at.error]
    job_id = at.session_state["train.selected_job"]
    _wait_for_results(at)
    assert any("Finished in" in s.value for s in at.success)
    assert n_plots(at) == 4  # loss curves, fold MAE, parity, residuals
    fold_tables = [d.value for d in at.dataframe if "MAE (a.u.)" in d.value.columns]
    assert len(fold_tables) == 2 and list(fold_tables[0]["fold"])[-1] == "mean ± sd"
    sd = list(fold_tables[0]["MAE sd (a.u.)"])
    assert sd[:-1] == ["—"] * (len(sd) - 1) and float(sd[-1]) >= 0  # a single fold has no sd: a dash, never "None"
    # save (made active by default) and find it in the model list
    at.button(key=f"train.save_btn.{job_id}").click().run()
    assert not at.exception, exceptions(at)
    saved = app_env / "tiny-ui-run"
    assert (saved / "manifest.json").is_file()
    assert any("Saved model `tiny-ui-run`" in s.value for s in at.success)
    picker = at.selectbox(key="train.model_picker")
    assert [o for o in picker.options[1:] if o.startswith("tiny-ui-run (synthetic")]  # after the default (and the other shipped model)
    assert picker.options[0].split(" (")[1].startswith("default;") and all("(default;" not in o for o in picker.options[1:])
    assert picker.value == str(saved)  # the active model
    assert "tiny-ui-run" in set(at.dataframe[-1].value["model"])
    # saving again under the same name is refused with a message
    at.button(key=f"train.save_btn.{job_id}").click().run()
    assert any("already exists" in e.value for e in at.error)
    # the active model is used on Predict: a synthetic model takes no composition
    at.switch_page("pages/predict.py").run()
    assert not at.exception, exceptions(at)
    assert any("cannot predict from a composition" in i.value for i in at.info)
    # back to the default model from the picker
    default = at.selectbox(key="predict.model_picker").options[0]
    at.selectbox(key="predict.model_picker").set_value(default).run()
    assert not at.exception, exceptions(at)
    assert any(m.label.startswith("band gap, ") for m in at.metric)


def test_invalid_training_settings_are_messages(app_env):
    at = open_app("pages/train.py")
    at.selectbox(key="train.preset").set_value("synthetic").run()
    at.text_input(key="train.synthetic.materials.encoder_hidden").input("64, lots")
    at.button(key="train.synthetic.submit").click().run()
    assert not at.exception, exceptions(at)
    assert any("is not a list of layer sizes" in e.value for e in at.error)
    at.text_input(key="train.synthetic.materials.encoder_hidden").input("")
    at.text_input(key="train.synthetic.name").input("bad name!")
    at.button(key="train.synthetic.submit").click().run()
    assert any("not allowed" in e.value for e in at.error)
    assert "No runs yet" in texts(at)


def test_device_stack_is_shared_by_predict_and_explain_and_survives_page_switches(app_env):
    at = open_app("pages/predict.py")
    at.selectbox(key="predict.etl").set_value("SnO2-c").run()
    assert not at.exception, exceptions(at)
    at.switch_page("pages/compose.py").run()
    at.switch_page("pages/predict.py").run()
    assert at.selectbox(key="predict.etl").value == "SnO2-c"
    at.switch_page("pages/explain.py").run()
    assert not at.exception, exceptions(at)
    etl_boxes = [b for b in at.selectbox if b.label.startswith("Electron transport layer")]
    assert etl_boxes and etl_boxes[0].value == "SnO2-c"


def test_predict_tiles_name_the_stage_readably_and_intervals_drive_the_error_bars(measured_bundle, app_env, monkeypatch):
    """Walkthrough fixes: ' · film stage' (not '(film)'), intervals as the side-by-side error bars, blank missing gaps."""
    monkeypatch.setenv(model_state.DEFAULT_MODEL_ENV, str(measured_bundle))
    at = open_app("pages/predict.py")
    assert not at.exception, exceptions(at)
    tiles = [m.label for m in at.metric if "Shockley" not in m.label]
    assert tiles and all(k.endswith(" stage") and " · " in k for k in tiles)
    assert not any(k.endswith(")") for k in tiles)  # no doubled brackets
    assert "Error bars: 90 % prediction intervals" in texts(at) and "Error bars: model disagreement" not in texts(at)


def test_predict_nearest_devices_show_blanks_for_missing_gaps(app_env, data_dir):
    at = open_app("pages/predict.py")
    near = at.dataframe[-1].value
    gaps = near["measured band gap (eV)"]
    assert gaps.map(lambda v: isinstance(v, str)).all() and "None" not in set(gaps) and "nan" not in set(gaps)


def test_predict_out_of_domain_gives_every_stage_its_reason(app_env):
    at = open_app("pages/predict.py")
    at.text_input(key="predict.formula").input("KBaCl3").run()
    warning = " ".join(w.value for w in at.warning)
    stages = warning.split("stage(s) ")[1].split(".")[0].split(", ")
    assert stages and all(f"- **{s}**: " in warning for s in stages)
    assert warning.count("outside the training data of stage") == len(stages)
