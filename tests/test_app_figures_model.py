"""Tests of the plotly builders in app/figures_model.py on small hand-made inputs."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from app import figures_model as fm
from nestedae_core.physics import sq_limit
from nestedae_core.perovskite.presets import preset
from nestedae_core.train import ProgressEvent

pytestmark = pytest.mark.unit

CATEGORICAL_AXES = {"model", "validation fold", "validation fold (identical for every model)", "entry (see the table)"}
GAP = fm.TargetInfo("Gap", "band gap", "eV", "materials", key="bandgap_pbe_eV")
PCE = fm.TargetInfo("JV_reverse_scan_PCE", "PCE", "%", "devices")


def axis_titles(fig: go.Figure) -> list[str]:
    out = []
    for name, axis in fig.to_dict()["layout"].items():
        if name.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            text = (axis.get("title") or {}).get("text")
            if text:
                out.append(text)
    return out


def assert_units(fig: go.Figure, n_axes: int | None = None) -> None:
    titles = axis_titles(fig)
    assert titles, "no axis titles"
    for t in titles:  # numeric axes carry a unit in parentheses; categorical axes name their categories
        assert re.search(r"\([^()]+\)$", t.strip()) or t in CATEGORICAL_AXES, t
    if n_axes is not None:
        assert len(titles) >= n_axes


def events(n_stages: int = 2, members: int = 3, epochs: int = 10, val: bool = False) -> list[ProgressEvent]:
    out = []
    for s in range(n_stages):
        for e in range(1, epochs + 1):
            losses = tuple(1.0 / e + 0.01 * m for m in range(members))
            out.append(ProgressEvent(stage=["materials", "devices"][s], stage_index=s, n_stages=n_stages, epoch=e, epochs=epochs,
                                     loss=float(np.mean(losses)), member_losses=losses, val_loss=(1.2 / e) if val else None,
                                     fraction=(s * epochs + e) / (n_stages * epochs), elapsed_s=0.1 * e))
    return out


def oof() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    n = 40
    gap = rng.uniform(1.2, 2.5, n)
    pce = rng.uniform(5, 22, n)
    return {
        "materials": pd.DataFrame({"row": range(n), "fold": np.arange(n) % 4, "label": [f"m{i}" for i in range(n)],
                                   "Gap_true": gap, "Gap_pred": gap + rng.normal(0, 0.1, n)}),
        "devices": pd.DataFrame({"row": range(n), "fold": np.arange(n) % 4, "label": [f"d{i}" for i in range(n)],
                                 "JV_reverse_scan_PCE_true": pce, "JV_reverse_scan_PCE_pred": pce + rng.normal(0, 2, n)}),
    }


def metrics() -> dict:
    def m(mae: float) -> dict:
        folds = [{"fold": i, "n": 10, "mae": mae + 0.01 * i, "rmse": mae * 1.3, "r2": 0.9} for i in range(4)]
        return {"mae": mae + 0.015, "mae_std": 0.013, "rmse": mae * 1.3, "r2": 0.9, "n": 40, "folds": folds}

    return {"materials": {"Gap": m(0.17)}, "devices": {"JV_reverse_scan_PCE": m(2.4)}}


def test_target_infos_from_spec_and_model_like():
    spec = preset("paper")
    infos = fm.target_infos(spec)
    assert [(t.column, t.unit, t.stage) for t in infos] == [("Gap", "eV", "materials"), ("JV_reverse_scan_PCE", "%", "devices")]
    assert fm.target_infos(type("M", (), {"spec": spec})()) == infos
    assert infos[0].title("measured") == "measured band gap, DFT PBE (no SOC) (eV)"  # the paper's band gap is DFT-PBE
    assert [t.fidelity for t in infos] == ["PBE", None] and infos[1].label == "PCE"
    assert fm.TargetInfo("FF", "FF", "").title() == "FF (dimensionless)"


def test_events_frame_and_loss_curves():
    ev = events(val=True)
    df = fm.events_frame(ev)
    assert set(df["series"]) == {"mean", "fold 1", "fold 2", "fold 3", "validation"}
    assert len(df) == len(ev) * 5
    fig = fm.loss_curves_figure(ev)
    names = {t.name for t in fig.data}
    assert {"mean", "fold 1", "validation"} <= names
    assert len(fig.data) == 2 * 5  # two stages x (mean, 3 folds, validation)
    assert fig.layout.yaxis.type == "log"
    assert_units(fig)
    assert "epoch (count)" in axis_titles(fig)
    # panels exist before their stage starts; no folds when asked
    early = fm.loss_curves_figure(ev[:3], stages=["materials", "devices"], show_folds=False)
    assert len(early.layout.annotations) == 2 and {t.name for t in early.data} == {"mean", "validation"}
    assert fm.loss_curves_figure([]).data == ()


def test_fold_metrics_frame_and_figure():
    table = fm.fold_metrics_frame(metrics(), [GAP, PCE])
    assert list(table["fold"]) == ["1", "2", "3", "4", "mean ± sd"] * 2
    assert set(table["unit"]) == {"eV", "%"}
    assert table.loc[table["fold"] == "mean ± sd", "MAE sd"].notna().all()
    fig = fm.fold_metrics_figure(metrics(), [GAP, PCE])
    assert_units(fig)
    assert "MAE (eV)" in axis_titles(fig) and "MAE (%)" in axis_titles(fig)
    means = [t for t in fig.data if t.name == "mean ± sd over folds"]
    assert len(means) == 2 and means[0].error_y.array[0] == pytest.approx(0.013)
    # a target without metrics is left out
    assert len(fm.fold_metrics_figure({"materials": metrics()["materials"]}, [GAP, PCE]).layout.annotations) == 1


def test_parity_and_residuals():
    o = oof()
    fig = fm.parity_figure(o, [GAP, PCE])
    assert_units(fig)
    titles = axis_titles(fig)
    assert "measured band gap (eV)" in titles and "predicted PCE (%)" in titles
    yx = [t for t in fig.data if t.name == "y = x"]
    assert len(yx) == 2 and list(yx[0].x) == list(yx[0].y)
    assert sum(len(t.x) for t in fig.data if t.name.startswith("fold")) == 80
    assert any("MAE" in a.text and "eV" in a.text for a in fig.layout.annotations)
    res = fm.residuals_figure(o, [GAP, PCE])
    assert_units(res)
    r = res.data[0]
    np.testing.assert_allclose(r.y, o["materials"]["Gap_pred"] - o["materials"]["Gap_true"])
    # a saved bundle's OOF has no *_true column: empty panels, no error
    no_true = {"materials": o["materials"].drop(columns=["Gap_true"])}
    assert fm.parity_figure(no_true, [GAP]).data == ()


def test_line_scan_figure_two_axes_and_bands():
    x = np.linspace(0, 1, 5)
    scan = pd.DataFrame({"x": x, "formula": list("abcde"), "bandgap_pbe_eV_mean": 1.6 + 0.7 * x, "bandgap_pbe_eV_std": np.full(5, 0.05),
                         "pce_percent_mean": 16 - 6 * x, "pce_percent_std": np.full(5, 0.8),
                         "in_domain": [True, True, True, False, True]})
    fig = fm.line_scan_figure(scan, start="MAPbI3", end="MAPbBr3")
    assert_units(fig)
    assert fig.layout.yaxis.title.text == "predicted band gap (eV)"
    assert fig.layout.yaxis2.title.text == "predicted PCE (%)"
    assert "MAPbBr3" in fig.layout.xaxis.title.text and "dimensionless" in fig.layout.xaxis.title.text
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 2
    upper = bands[0].y[:5]
    np.testing.assert_allclose(upper, scan["bandgap_pbe_eV_mean"] + 0.05)
    ood = [t for t in fig.data if t.name == "outside training domain"]
    assert ood and list(ood[0].x) == [0.75]
    # a band-gap-only model: one axis
    only_gap = fm.line_scan_figure(scan.drop(columns=["pce_percent_mean", "pce_percent_std"]), start="a", end="b", pce=None)
    assert len([t for t in only_gap.data if t.fill == "toself"]) == 1


def test_line_scan_band_is_the_interval_when_the_scan_has_one():
    x = np.linspace(0, 1, 5)
    scan = pd.DataFrame({"x": x, "formula": list("abcde"), "bandgap_pbe_eV_mean": 1.6 + 0.7 * x, "bandgap_pbe_eV_std": np.full(5, 0.05),
                         "bandgap_pbe_eV_lower": 1.5 + 0.7 * x, "bandgap_pbe_eV_upper": 1.75 + 0.7 * x, "in_domain": True})
    gap = fm.TargetInfo("Gap", "band gap, DFT PBE (no SOC)", "eV", "materials", "PBE")
    fig = fm.line_scan_figure(scan, start="a", end="b", gap=gap, pce=None, level=0.9)
    band = next(t for t in fig.data if t.fill == "toself")
    np.testing.assert_allclose(band.y[:5], scan["bandgap_pbe_eV_upper"])
    np.testing.assert_allclose(band.y[5:], scan["bandgap_pbe_eV_lower"][::-1])
    assert band.name == "band gap, DFT PBE (no SOC), 90 % interval"
    assert fig.layout.yaxis.title.text == "predicted band gap, DFT PBE (no SOC) (eV)"
    plain = fm.line_scan_figure(scan.drop(columns=["bandgap_pbe_eV_lower", "bandgap_pbe_eV_upper"]), start="a", end="b", gap=gap, pce=None)
    assert next(t for t in plain.data if t.fill == "toself").name == "band gap, DFT PBE (no SOC) ± 1 sd (model disagreement)"


def test_gap_figures_name_the_gap_they_draw():
    pts = pd.DataFrame({"label": ["MAPbI3"], "gap": [1.6], "gap_std": [0.02], "pce": [15.0], "pce_std": [0.5]})
    fig = fm.pce_vs_gap_figure(pts, gap_label="band gap, DFT PBE (no SOC)", sq_name="Shockley–Queisser limit (drawn at the DFT PBE (no SOC) gap: no measured gap)")
    assert fig.layout.xaxis.title.text == "predicted band gap, DFT PBE (no SOC) (eV)" and "DFT PBE (no SOC) gap" in fig.data[0].name
    bars = fm.prediction_bars_figure(pts, gap_label="band gap, measured")
    assert "predicted band gap, measured (eV)" in axis_titles(bars)
    ranked = pd.DataFrame({"formula": ["a", "b"], "bandgap_pbe_eV_mean": [1.5, 1.6], "bandgap_pbe_eV_std": 0.02, "pce_percent_mean": [15.0, 14.0],
                           "pce_percent_std": 0.5, "tolerance_factor": 0.9, "in_domain": True})
    pbe = fm.screen_scatter_figure(ranked, x=fm.TargetInfo("Gap", "band gap, DFT PBE (no SOC)", "eV", "materials", "PBE"))
    assert any(t.name.startswith("Shockley–Queisser limit (drawn at the DFT PBE (no SOC) gap") for t in pbe.data)
    assert pbe.layout.xaxis.title.text == "predicted band gap, DFT PBE (no SOC) (eV)"


def test_pce_vs_gap_with_sq_limit_and_bars():
    pts = pd.DataFrame({"label": ["MAPbI3", "FAPbI3"], "gap": [1.6, 1.5], "gap_std": [0.02, 0.03], "pce": [15.0, 17.0], "pce_std": [0.5, 0.7]})
    fig = fm.pce_vs_gap_figure(pts)
    assert_units(fig)
    sq = fig.data[0]
    assert sq.name == "Shockley–Queisser limit"
    np.testing.assert_allclose(sq.y, sq_limit(np.asarray(sq.x))["pce_percent"])
    assert [t.name for t in fig.data[1:]] == ["MAPbI3", "FAPbI3"]
    assert fig.data[1].error_x.array[0] == pytest.approx(0.02) and fig.data[1].error_y.array[0] == pytest.approx(0.5)
    bars = fm.prediction_bars_figure(pts)
    assert_units(bars)
    assert {"predicted band gap (eV)", "predicted PCE (%)"} <= set(axis_titles(bars))
    assert list(bars.data[1].error_y.array) == [0.5, 0.7]


def test_screen_scatter():
    ranked = pd.DataFrame({"formula": [f"c{i}" for i in range(30)], "bandgap_pbe_eV_mean": np.linspace(1.2, 1.8, 30), "bandgap_pbe_eV_std": 0.02,
                           "pce_percent_mean": np.linspace(20, 10, 30), "pce_percent_std": 0.5,
                           "tolerance_factor": 0.9, "in_domain": True})
    fig = fm.screen_scatter_figure(ranked, top=5)
    assert_units(fig)
    assert fig.data[0].name == "candidates" and len(fig.data[0].x) == 30
    top = next(t for t in fig.data if t.name == "top 5")
    assert list(top.text) == [f"c{i}" for i in range(5)]
    assert any(t.name == "Shockley–Queisser limit" for t in fig.data)
    empty = fm.screen_scatter_figure(ranked.iloc[0:0])
    assert empty.layout.annotations[0].text == "no candidates to show"
    assert_units(empty)


def bench(split: str = "random") -> dict:
    folds = lambda mae: [{"fold": i, "n": 10, "mae": mae + 0.1 * i, "rmse": mae, "r2": 0.5} for i in range(3)]  # noqa: E731
    return {"split": split, "folds": 3, "seed": 0, "created": "x", "tasks": {
        "pce-devices": {"dataset": "psc-devices", "target": "PCE", "unit": "%", "n": 30, "description": "d",
                        "models": {"nestedae": {"mae": 2.4, "mae_std": 0.1, "rmse": 3, "r2": 0.4, "seconds": 5, "folds": folds(2.3)},
                                   "rf": {"mae": 2.6, "mae_std": 0.2, "rmse": 3.3, "r2": 0.3, "seconds": 1, "folds": folds(2.5)}}}}}


def test_benchmark_frames_and_figures():
    summary, per_fold = fm.benchmark_frames(bench())
    assert list(summary["model"]) == ["nestedae", "rf"] and list(summary["folds"]) == [3, 3]
    assert list(per_fold["fold"]) == [1, 2, 3, 1, 2, 3]
    bars = fm.benchmark_bars_figure(summary, unit="%")
    assert_units(bars)
    assert list(bars.data[0].x) == ["nestedae", "rf"] and list(bars.data[0].error_y.array) == [0.1, 0.2]
    assert bars.data[0].marker.color[0] == "#4C78A8"  # ours highlighted
    lines = fm.benchmark_folds_figure(per_fold, unit="%")
    assert_units(lines)
    assert [t.name for t in lines.data] == ["nestedae", "rf"]
    assert lines.data[0].line.width > lines.data[1].line.width
    split = fm.split_comparison_figure({"random": summary, "grouped": fm.benchmark_frames(bench("grouped"))[0]}, unit="%")
    assert_units(split)
    assert [t.name for t in split.data] == ["random split", "grouped split"] and split.layout.barmode == "group"
    empty_summary, empty_folds = fm.benchmark_frames({"tasks": {}})
    assert empty_summary.empty and empty_folds.empty


def test_loss_curves_of_a_one_epoch_run_are_visible() -> None:
    import pandas as pd

    from app.figures_model import loss_curves_figure

    df = pd.DataFrame({"stage": ["materials"], "series": ["mean"], "epoch": [1], "loss": [0.8]})
    fig = loss_curves_figure(df, stages=["materials"])
    assert fig.data[0].mode == "lines+markers"


def test_paired_differences_figure() -> None:
    from nestedae_core.benchmark import paired_comparison

    models = bench()["tasks"]["pce-devices"]["models"]
    fig = fm.paired_differences_figure(paired_comparison(models).as_dict(), unit="%")
    assert_units(fig)
    assert list(fig.data[0].x) == [1, 2, 3] and list(fig.data[0].y) == pytest.approx([-0.2, -0.2, -0.2])
    assert set(fig.data[0].marker.color) == {"#4C78A8"}  # every fold below zero: NestedAE's colour
    assert "nestedae − rf" in fig.layout.yaxis.title.text
    empty = fm.paired_differences_figure({"folds": [], "differences": []}, unit="%")
    assert empty.layout.annotations[0].text == "no shared fold to compare"


def test_side_by_side_error_bars_are_the_intervals_when_calibrated():
    pts = pd.DataFrame({"label": ["MAPbI3"], "gap": [1.6], "gap_std": [0.02], "pce": [15.0], "pce_std": [0.5],
                        "gap_lower": [1.5], "gap_upper": [1.75], "pce_lower": [12.0], "pce_upper": [16.0]})
    assert fm.has_intervals(pts) and not fm.has_intervals(pts.drop(columns=["pce_upper"]))
    bars = fm.prediction_bars_figure(pts)
    assert list(bars.data[0].error_y.array) == pytest.approx([0.15]) and list(bars.data[0].error_y.arrayminus) == pytest.approx([0.1])
    assert list(bars.data[1].error_y.array) == pytest.approx([1.0]) and list(bars.data[1].error_y.arrayminus) == pytest.approx([3.0])
    sc = fm.pce_vs_gap_figure(pts)
    assert sc.data[1].error_y.array[0] == pytest.approx(1.0) and sc.data[1].error_y.arrayminus[0] == pytest.approx(3.0)
