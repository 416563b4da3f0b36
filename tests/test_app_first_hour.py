"""A scientist's first hour on the dashboard (issue 18): no late failures on a fresh install without data,
zero amounts accepted, the measured gap first on Predict."""
from __future__ import annotations

import pytest

from app_driver import exceptions, open_app, texts
from nestedae_core import store

pytestmark = pytest.mark.app


@pytest.fixture
def fresh_install(default_model, tmp_path, monkeypatch, no_data_env):
    """No dataset anywhere, an empty models folder and a job store of our own."""
    monkeypatch.setenv(store.MODELS_DIR_ENV, str(tmp_path / "models"))
    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    for var in ("NESTEDAE_READ_ONLY", "NESTEDAE_DASK_SCHEDULER"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_train_without_data_is_refused_up_front_and_offers_the_synthetic_preset(fresh_install):
    at = open_app("pages/train.py")
    assert not at.exception, exceptions(at)
    assert at.selectbox(key="train.preset").value == "measured"
    refusal = " ".join(e.value for e in at.error)
    assert "Cannot train here" in refusal and "nestedae data fetch" in refusal and "NESTEDAE_DATA_DIR" in refusal
    assert "PSC_efficiencies_dataset.csv" in refusal
    assert at.button(key="train.measured.submit").disabled  # nothing can be queued
    at.button(key="train.use_synthetic").click().run()
    assert not at.exception, exceptions(at)
    assert at.selectbox(key="train.preset").value == "synthetic"
    assert not at.error and not at.button(key="train.synthetic.submit").disabled


def test_sweep_without_data_is_refused_up_front(fresh_install):
    at = open_app("pages/sweep.py")
    assert not at.exception, exceptions(at)
    refusal = " ".join(e.value for e in at.error)
    assert "Cannot sweep here" in refusal and "nestedae data fetch" in refusal
    start = next(b for b in at.button if b.label == "Start sweep")
    assert start.disabled
    at.button(key="sweep.use_synthetic").click().run()
    assert at.selectbox(key="sweep.preset").value == "synthetic"
    assert not at.error and not next(b for b in at.button if b.label == "Start sweep").disabled


def _walk(node, out):  # type: ignore[no-untyped-def]
    """Every element under ``node``, in page order."""
    children = getattr(node, "children", None)
    for child in (children.values() if isinstance(children, dict) else []):
        out.append(child)
        _walk(child, out)
    return out


def test_predict_leads_with_the_measured_gap_and_warns_above_the_numbers(app_env):
    at = open_app("pages/predict.py")
    labels = [m.label for m in at.metric]
    assert labels[0].startswith("band gap, measured"), labels
    assert any("PBE" in x for x in labels[1:4]) and any("HSE" in x for x in labels[1:4])
    at.text_input(key="predict.formula").input("CsGeCl3").run()  # far from the training data
    assert not at.exception, exceptions(at)
    kinds = [e.type for e in _walk(at.main, [])]
    assert "warning" in kinds and kinds.index("warning") < kinds.index("metric")
    assert "Outside the training domain" in at.warning[0].value


def test_predict_side_by_side_lists_the_measured_gap_first(app_env):
    at = open_app("pages/predict.py")
    table = next(d.value for d in at.dataframe if "#" in d.value.columns and "formula" in d.value.columns)
    quantities = [c for c in table.columns if c.endswith("(eV)") or c.endswith("(%)")]
    assert quantities[0].startswith("band gap, measured"), quantities  # before the DFT PBE and HSE gaps
    gaps = [c for c in quantities if c.startswith("band gap")]
    assert any("PBE" in c for c in gaps) and any("HSE" in c for c in gaps)
    assert list(table.columns).index(quantities[0]) < min(list(table.columns).index(c) for c in gaps if "PBE" in c)


def test_predict_reads_zero_amounts(app_env):
    at = open_app("pages/predict.py")
    at.text_input(key="predict.formula").input("MAPb(I1.0Br0.0)3").run()
    assert not at.exception, exceptions(at)
    assert not at.error, [e.value for e in at.error]
    assert "Still showing the last valid composition" not in texts(at)
    assert "Predictions for **MAPbI3**" in texts(at)


def test_predict_phase_selector_changes_the_dft_gaps(app_env):
    at = open_app("pages/predict.py")
    phase = at.selectbox(key="predict.phase")
    assert phase.label == "Crystal phase of the DFT gaps" and len(phase.options) > 1
    pbe = next(m.value for m in at.metric if "PBE" in m.label)
    assert phase.value == "Cubic" and "tetragonal" in phase.options  # the phases by name
    phase.set_value("Tetra").run()
    assert not at.exception, exceptions(at)
    assert next(m.value for m in at.metric if "PBE" in m.label) != pbe


def test_predict_defaults_to_the_family_stack_and_shows_our_measured_values(app_env, data_dir):
    at = open_app("pages/predict.py")
    at.text_input(key="predict.formula").input("FASnI3").run()
    assert not at.exception, exceptions(at)
    etl, htl = at.selectbox(key="predict.etl").value, at.selectbox(key="predict.htl").value
    page = texts(at)
    assert f"ETL **{etl}**, HTL **{htl}**, the most common stack of Sn perovskites in the device data" in page
    assert (etl, htl) != ("TiO2-c | TiO2-mp", "Spiro-MeOTAD")  # not the n-i-p stack of the Pb devices
    assert "**In our data** (psc-devices): median" in page  # the measured values beside the prediction
    at.text_input(key="predict.formula").input("MAPbI3").run()
    assert "the most common stack of Pb perovskites" in texts(at)
    assert at.selectbox(key="predict.etl").value != etl  # the default follows the family until the user picks


def test_data_table_is_paged_filtered_and_sorted(app_env, data_dir):
    import pandas as pd

    at = open_app("pages/data.py")
    assert not at.exception, exceptions(at)
    assert at.selectbox(key="data.dataset").value == "psc-devices"
    table = at.dataframe[0].value
    assert len(table) == 50  # one page of the 2,018 devices
    sort = at.selectbox(key="data.psc-devices.table.sort")
    assert {"composition", "ETL stack", "HTL stack", "PCE (%)"} <= set(sort.options)
    sort.set_value("PCE (%)").run()
    from nestedae_core.vocabulary import DEVICE_COMPOSITION, PCE

    pce = PCE
    values = pd.to_numeric(at.dataframe[0].value[pce]).tolist()
    assert values == sorted(values, reverse=True)
    best = values[0]
    at.number_input(key="data.psc-devices.table.page").set_value(2).run()
    page2 = pd.to_numeric(at.dataframe[0].value[pce]).tolist()
    assert max(page2) <= min(values)
    assert "Showing rows 51–100 of 2,018, sorted by PCE (%)" in texts(at)
    at.text_input(key="data.psc-devices.text").input("Sn").run()  # the filter shrinks the table: back to page 1
    assert not at.exception, exceptions(at)
    assert at.number_input(key="data.psc-devices.table.page").value == 1
    shown = at.dataframe[0].value
    assert 0 < len(shown) <= 50 and shown[DEVICE_COMPOSITION].str.contains("Sn").all()


def test_batch_table_reads_zero_amounts_and_leads_with_the_predictions(app_env):
    at = open_app("pages/predict.py")
    at.text_area(key="predict.batch_text").input("note,formula\nfirst,FA1.00Cs0.00PbI3\nsecond,MAPb(I1.0Br0.0)3\n").run()
    assert not at.exception, exceptions(at)
    result = next(d.value for d in at.dataframe if "model_sha256" in d.value)
    assert list(result["composition"]) == ["FAPbI3", "MAPbI3"] and (result["error"] == "").all()
    cols = list(result.columns)
    assert cols[0] == "formula" and cols[1].endswith("_mean")  # the formula, then the predictions
    assert cols.index("note") > cols.index("model_sha256")  # the other inputs last


def test_compare_colours_are_one_per_model_and_the_same_in_both_figures():
    import pandas as pd

    from app import figures_model as fm

    models = ["nestedae", "mean", "ridge", "lightgbm", "mlp", "rf", "knn", "gp"]
    summary = pd.DataFrame({"model": models, "MAE": range(8, 0, -1), "MAE sd": [0.1] * 8})
    per_fold = pd.DataFrame({"model": [m for m in models for _ in range(3)], "fold": [1, 2, 3] * 8, "MAE": 1.0})
    bars = fm.benchmark_bars_figure(summary, unit="eV")
    colours = dict(zip(bars.data[0].x, bars.data[0].marker.color))
    assert len(set(colours.values())) == len(models)  # no two models share a colour
    lines = {t.name: t.line.color for t in fm.benchmark_folds_figure(per_fold, unit="eV").data}
    assert lines == colours


def test_compare_per_fold_labels_sit_outside_the_plots():
    import pandas as pd

    from app import figures_model as fm

    models = ["nestedae", "mean", "ridge", "lightgbm", "mlp", "random_forest", "kernel_ridge", "hist_gradient_boosting", "xgboost"]
    per_fold = pd.DataFrame({"model": [m for m in models for _ in range(5)], "fold": list(range(1, 6)) * len(models),
                             "MAE": [0.1 * (i + 1) for i in range(5 * len(models))]})
    legend = fm.benchmark_folds_figure(per_fold, unit="eV").layout.legend
    # the model names stand in one column right of the plot, not in rows across the fold axis and its title
    assert legend.orientation == "v" and legend.x >= 1.0 and legend.xanchor == "left"
    paired = fm.paired_differences_figure({"folds": [0, 1, 2], "differences": [-0.03, 0.01, -0.02], "mean_difference": -0.0133,
                                           "model": "nestedae", "baseline": "xgboost"}, unit="eV")
    label = next(a for a in paired.layout.annotations if a.text.startswith("mean"))
    assert "-0.0133" in label.text
    assert label.xref == "paper" and label.x >= 1.0 and label.xanchor == "left"  # beside the plot, never on a fold's bar
    assert paired.layout.margin.r >= 60  # with room for it


def test_loss_curves_leave_room_for_the_toolbar_above_the_stage_titles():
    import pandas as pd

    from app import figures_model as fm

    events = pd.DataFrame({"stage": ["dft", "film"] * 3, "stage_index": [0, 1] * 3, "epoch": [1, 1, 2, 2, 3, 3],
                           "series": "mean", "loss": [1.0, 2.0, 0.5, 1.0, 0.25, 0.5]})
    fig = fm.loss_curves_figure(events, stages=["dft", "film"])
    assert [a.text for a in fig.layout.annotations][:2] == ["stage 1: dft", "stage 2: film"]
    assert fig.layout.margin.t >= fm.TOOLBAR_MARGIN_PX


def test_compose_gauges_each_have_room_for_their_own_ticks():
    from app import figures

    fig = figures.factor_bullet_figure(0.95, 0.45, tolerance_range=(0.8, 1.0), octahedral_range=(0.41, 0.9))
    top, bottom = (t.domain.y for t in fig.data)
    assert top[0] - bottom[1] >= 0.15 and bottom[0] >= 0.1  # tick labels below each gauge, never on the next one
    assert all(t.gauge.axis.ticks == "outside" and t.gauge.axis.nticks for t in fig.data)  # both gauges have ticks
