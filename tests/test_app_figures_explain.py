"""Tests of app/figures_explain.py on the library's own outputs.

Attributions come from :mod:`nestedae_core.explain` (a linear function with known
Shapley values, and a tiny NestedAE trained on a small synthetic set), latent
analyses from :mod:`nestedae_core.explain.latents` on that model. Checked: the
numbers drawn are the library's numbers, and every axis carries its unit.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from app import figures_explain as fx
from app import figures_latents as fl
from nestedae_core import explain, train
from nestedae_core.explain import latents as latent_analysis
from nestedae_core.sweep import latent_size
from nestedae_core.perovskite import presets as presets
from nestedae_core.data import synthetic as synthetic

pytestmark = pytest.mark.unit

W = np.array([2.0, -1.0, 0.5, 0.0])


def _axis_titles(fig: go.Figure) -> list[str]:
    layout = fig.to_plotly_json()["layout"]
    out = []
    for k, v in layout.items():
        if (k.startswith("xaxis") or k.startswith("yaxis")) and isinstance(v, dict) and v.get("title", {}).get("text"):
            out.append(v["title"]["text"])
    scene = layout.get("scene", {})
    out += [scene[a]["title"]["text"] for a in ("xaxis", "yaxis", "zaxis") if a in scene and "title" in scene[a]]
    return out


@pytest.fixture(scope="module")
def linear_att() -> explain.Attribution:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    bg = rng.normal(size=(16, 4))
    return explain.explain_function(lambda a: a @ W + 1.0, X, bg, feature_names=["A_ion_rad", "X_En", "x2", "x3"],
                                    method="exact", output="band gap", unit="eV")


@pytest.fixture(scope="module")
def tiny() -> tuple[object, synthetic.SyntheticData]:
    data = synthetic.generate(n_materials=80, n_devices=200, seed=1)
    spec = presets.preset("synthetic", epochs=8, folds=2)
    res = train.cross_validate(spec, tables={"materials": data.materials, "devices": data.devices}, device="cpu")
    return res.model, data


# --------------------------------------------------------------------------- labels


def test_feature_labels_and_units():
    assert fx.feature_label("B_ion_rad") == "B-site ionic radius (Å)"
    assert fx.feature_label("X_En") == "X-site electronegativity (Pauling)"
    assert fx.feature_label("materials.z3") == "materials.z3 (dimensionless)"
    assert fx.feature_label("ETL_stack_sequence") == "ETL stack"
    assert fx.feature_label("x0") == "x0 (a.u.)"
    assert fx.feature_label("x0", {"x0": "m"}) == "x0 (m)"
    assert fx.format_value(1.23456, "eV") == "1.235 eV"
    assert fx.format_value("PTAA", "category") == "PTAA"


# --------------------------------------------------------------------------- attribution figures


def test_global_bar_is_mean_abs_sorted_with_unit(linear_att):
    fig = fx.global_bar_figure(linear_att)
    bar = fig.data[0]
    ma = linear_att.mean_abs()
    assert list(bar.x) == pytest.approx(list(ma.to_numpy()[::-1]))  # largest on top
    assert bar.y[-1] == "A-site ionic radius (Å)"  # |w| = 2 is the largest
    assert "(eV)" in fig.layout.xaxis.title.text
    table = fx.global_importance_frame(linear_att)
    assert list(table.columns[3:5]) == ["mean |SHAP| (eV)", "mean SHAP (eV)"]
    assert table["share of total (%)"].sum() == pytest.approx(100)
    assert table["feature"].iloc[-1] == "x3"  # weight 0: no credit
    assert table["mean |SHAP| (eV)"].iloc[-1] == pytest.approx(0, abs=1e-9)


def test_beeswarm_points_colours_and_axes(linear_att):
    fig = fx.beeswarm_figure(linear_att, top=3)
    tr = fig.data[0]
    assert len(tr.x) == 3 * linear_att.n_rows
    # SHAP values of the top feature are drawn unchanged (it is the last panel, at the top)
    assert np.sort(tr.x[-linear_att.n_rows:]) == pytest.approx(np.sort(linear_att.values[:, 0]))
    c = np.asarray(tr.marker.color, dtype=float)
    assert c.min() >= 0 and c.max() <= 1
    # colour follows the feature value: for A_ion_rad (w = +2) SHAP and colour rise together
    top = slice(2 * linear_att.n_rows, 3 * linear_att.n_rows)
    assert np.corrcoef(np.asarray(tr.x[top]), c[top])[0, 1] > 0.8
    assert "(eV)" in fig.layout.xaxis.title.text and "unit" in fig.layout.yaxis.title.text
    assert list(fig.layout.yaxis.ticktext)[-1] == "A-site ionic radius (Å)"


def test_beeswarm_draws_categorical_inputs_grey(linear_att):
    import dataclasses

    att = dataclasses.replace(linear_att, feature_names=["A_ion_rad", "ETL_stack_sequence", "x2", "x3"],
                              categories={"ETL_stack_sequence": ["SnO2-c", "TiO2-c"]},
                              data=np.c_[linear_att.data[:, 0], (linear_att.data[:, 1] > 0).astype(float), linear_att.data[:, 2:]])
    fig = fx.beeswarm_figure(att, top=4)
    numeric, cats = fig.data[0], fig.data[1]
    assert len(numeric.x) == 3 * att.n_rows and len(cats.x) == att.n_rows  # the stack's dots are not on the colour scale
    assert cats.marker.color == fx.CATEGORY_GREY and "no low/high" in cats.name and fig.layout.showlegend
    assert any("ETL stack = SnO2-c" in t or "ETL stack = TiO2-c" in t for t in cats.text)
    assert not fx.beeswarm_figure(linear_att, top=3).layout.showlegend  # no categorical input: no legend


def test_waterfall_goes_from_base_to_prediction(linear_att):
    row = 3
    frame = fx.waterfall_frame(linear_att, row, top=2)
    assert frame["step"].iloc[0].startswith("base value") and frame["step"].iloc[-1] == "prediction"
    assert frame["step"].iloc[-2] == "2 other features"
    pred = float(linear_att.predictions[row])
    assert frame["running total (eV)"].iloc[-1] == pytest.approx(pred, abs=1e-6)
    assert frame["SHAP (eV)"].iloc[1:-1].sum() == pytest.approx(pred - linear_att.base_values[row], abs=1e-6)
    fig = fx.waterfall_figure(linear_att, row, top=2)
    wf = fig.data[0]
    assert list(wf.measure) == ["absolute", "relative", "relative", "relative", "total"]
    assert wf.x[0] == pytest.approx(linear_att.base_values[row])
    assert fig.layout.xaxis.title.text.endswith("(eV)")
    assert any("A-site ionic radius = " in y for y in wf.y)


def test_figures_accept_a_shap_explanation(linear_att):
    exp = linear_att.to_shap_explanation()
    view = fx.as_view(exp, unit="eV")
    assert view.values.shape == linear_att.values.shape
    assert view.predictions == pytest.approx(linear_att.predictions, abs=1e-6)
    fig = fx.waterfall_figure(exp, 0)
    assert fig.data[0].x[-1] == pytest.approx(linear_att.predictions[0], abs=1e-6)
    assert len(fx.beeswarm_figure(exp).data[0].x) == linear_att.values.size


def test_categorical_inputs_show_category_names(tiny):
    model, data = tiny
    att = explain.explain_chain(model, data.devices.head(6), method="permutation")
    assert "stack" in att.categories
    frame = fx.waterfall_frame(att, 0, top=len(att.feature_names))
    stack = frame[frame["step"] == "stack"]
    assert stack["input value"].iloc[0] in data.devices["stack"].unique()
    fig = fx.beeswarm_figure(att, top=len(att.feature_names))  # every feature: the stack's rank is not the point
    assert any(c in t for t in fig.data[1].text for c in ("layer_A", "layer_B", "layer_C"))  # the categorical trace


def test_explainer_comparison_panel(tiny):
    model, data = tiny
    table = explain.explainer_comparison(model, data.materials.head(1), kind="first", methods=("exact", "permutation", "gradient"))
    fig = fx.explainer_comparison_figure(table, top=5)
    bars = [t for t in fig.data if t.orientation == "h"]
    assert [t.name for t in bars] == ["exact", "permutation", "gradient"]
    assert len(bars[0].x) == 5
    exact = table.iloc[0]
    drawn = dict(zip(bars[0].y, bars[0].x))
    feat = max((c for c in table.columns if c.startswith("x")), key=lambda c: abs(exact[c]))
    assert drawn[fx.feature_label(feat)] == pytest.approx(exact[feat])
    titles = _axis_titles(fig)
    assert any("SHAP value (a.u.)" in t for t in titles) and any("(s, log scale)" in t for t in titles)


# --------------------------------------------------------------------------- latent figures


def test_latent_map_numeric_categorical_highlight_and_3d(tiny):
    model, data = tiny
    pca = latent_analysis.pca_projection(model, data.devices, 1, 3)
    fig = fl.latent_map_figure(pca, x="PC1", y="PC2", color=data.devices["y2"], color_title="y2 (a.u.)",
                               hover=data.devices["device_id"], highlight=pca.head(1), highlight_label="D0000",
                               axis_notes={"PC1": "40 % of variance"})
    assert fig.data[0].marker.colorbar.title.text == "y2 (a.u.)"
    assert list(fig.data[0].x) == pytest.approx(list(pca["PC1"]))
    assert fig.data[-1].name == "D0000" and fig.data[-1].marker.symbol == "star"
    assert fig.layout.xaxis.title.text == "PC1 (dimensionless, 40 % of variance)"
    cat = fl.latent_map_figure(pca, x="PC1", y="PC2", z="PC3", color=data.devices["stack"], categorical=True, color_title="stack")
    assert {t.name.split(" (")[0] for t in cat.data} == set(data.devices["stack"])
    assert sum(len(t.x) for t in cat.data) == len(data.devices)
    assert isinstance(cat.data[0], go.Scatter3d)
    titles = _axis_titles(cat)
    assert len(titles) == 3 and all("dimensionless" in t for t in titles)


def test_correlation_heatmap_from_latent_correlations(tiny):
    model, data = tiny
    corr = latent_analysis.latent_correlations(model, data.devices, 1, method="spearman")
    fig = fl.correlation_heatmap_figure(corr, method="spearman")
    hm = fig.data[0]
    assert np.asarray(hm.z, dtype=float).shape == corr.shape
    assert hm.zmin == -1 and hm.zmax == 1
    assert "stack (η)" in list(hm.x)
    assert "Spearman" in hm.colorbar.title.text
    titles = _axis_titles(fig)
    assert len(titles) == 2 and all("dimensionless" in t for t in titles)


def test_traversal_figure(tiny):
    model, data = tiny
    trav = latent_analysis.latent_traversal(model, data.materials.head(1), 0, "z2")
    fig = fl.traversal_figure(trav, targets=[("y1", "y1", "a.u.")], inputs=[("x0", "x0", "a.u."), ("x1", "x1", "a.u.")],
                              current=float(trav["value"].iloc[5]), start=0.0)
    assert len(fig.data) == 3
    assert list(fig.data[0].y) == pytest.approx(list(trav["y1"]))
    titles = _axis_titles(fig)
    assert "y1 (a.u.)" in titles and "x0 (a.u.)" in titles and any(t == "materials.z2 (dimensionless)" for t in titles)
    assert len([s for s in fig.layout.shapes if s.line.dash == "solid"]) == 3  # the slider's value in every panel


def test_active_latents_figure(tiny):
    model, data = tiny
    act = latent_analysis.active_latents(model, data.materials, 0, threshold=0.05)
    fig = fl.active_latents_figure(act, 1)
    assert list(fig.data[0].x) == act.latent_names
    assert np.asarray(fig.data[0].y) == pytest.approx(np.maximum(act.relative_variance[1], 1e-6))
    assert fig.layout.yaxis.type == "log" and "dimensionless" in fig.layout.yaxis.title.text
    assert any(s.y0 == pytest.approx(0.05) for s in fig.layout.shapes)


def test_latent_size_scan_figure():
    sweep = pd.DataFrame({"latent_size": [1, 1, 2, 2, 3, 3], "seed": [0, 1] * 3, "target": "y1",
                          "val_mae": [0.3, 0.32, 0.2, 0.22, 0.1, 0.12], "val_mae_std": 0.01, "n_active": [1, 1, 2, 2, 3, 2],
                          "seconds": 1.0})
    fig = fl.latent_size_scan_figure(sweep, unit="a.u.", true_size=3)
    assert list(fig.data[0].y) == pytest.approx([0.31, 0.21, 0.11])
    assert list(fig.data[1].y) == pytest.approx([1, 2, 2.5])
    titles = _axis_titles(fig)
    assert "validation MAE (a.u.)" in titles and "active latents (count)" in titles


@pytest.mark.training  # trains a model
def test_latent_size_scan_figure_on_a_real_sweep():
    data = synthetic.generate(n_materials=60, n_devices=20, seed=2)
    sweep = latent_size.latent_size_scan(presets.preset("synthetic"), [1, 2], epochs=5, folds=2,
                                        tables={"materials": data.materials})
    fig = fl.latent_size_scan_figure(sweep, unit="a.u.")
    assert list(fig.data[0].x) == [1, 2]


def test_factor_recovery_and_credit_split_figures():
    corr = pd.DataFrame([[0.9, 0.1], [0.2, -0.8]], index=["z1", "z2"], columns=["true_z1", "true_z2"])
    fig = fl.factor_recovery_figure(corr, pd.Series({"true_z1": 0.95, "true_z2": 0.9}))
    assert np.asarray(fig.data[0].z) == pytest.approx(corr.to_numpy())
    assert "R² (dimensionless)" in _axis_titles(fig)
    split = pd.DataFrame({"model": ["a", "b"], "feature": ["x0", "x_dup"], "mean |SHAP| (a.u.)": [0.4, 0.1]})
    fig = fx.credit_split_figure(split, unit="a.u.")
    assert list(fig.data[0].y) == [0.4, 0.1] and fig.layout.yaxis.title.text == "mean |SHAP value| (a.u.)"


def test_site_fractions_and_phase_are_labelled():
    assert fx.feature_label("Sn") == "Sn fraction of the B site (mol/mol)" and fx.feature_unit("I") == "mol/mol"
    assert fx.feature_label("MA", with_unit=False) == "MA fraction of the A site"
    assert fx.feature_label("phase") == "crystal phase" and fx.feature_unit("phase") == "category"
