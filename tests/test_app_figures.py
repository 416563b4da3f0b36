"""Tests of the plotly figure builders in app/figures.py, on small hand-made frames and on the real data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from app import figures
from nestedae_core import data
from nestedae_core.chemistry.composition import IONS, parse_formula
from nestedae_core.chemistry.features import OCTAHEDRAL_RANGE, TOLERANCE_RANGE
from nestedae_core.physics import sq_limit

pytestmark = pytest.mark.unit

UNIT_MARKERS = ("(eV)", "(%)", "(V)", "(mA/cm2)", "(fraction", "(count)", "(eV/f.u.)", "(mol/mol)", "(dimensionless)")


def _axis_titles(fig: go.Figure) -> list[str]:
    titles = []
    layout = fig.to_dict()["layout"]
    for name, axis in layout.items():
        if name.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            text = (axis.get("title") or {}).get("text")
            if text:
                titles.append(text)
    return titles


def _fractions(formulas: list[str]) -> pd.DataFrame:
    return pd.DataFrame([parse_formula(f).fraction_vector() for f in formulas], columns=list(IONS))


def _devices() -> pd.DataFrame:
    return pd.DataFrame({
        "Perovskite_band_gap": [1.6, 1.6, 1.55, np.nan, 1.7],
        "JV_reverse_scan_PCE": [18.0, 15.0, 20.0, 12.0, 10.0],
        "JV_reverse_scan_Voc": [1.1, 1.0, 1.12, 0.9, 1.2],
        "JV_reverse_scan_Jsc": [22.0, 21.0, np.nan, 20.0, 17.0],
        "JV_reverse_scan_FF": [0.75, 0.7, 0.78, 0.66, 0.6],
        "ETL_stack_sequence": ["TiO2-c", "TiO2-c", "SnO2-np", "PCBM-60", "SnO2-np"],
        "HTL_stack_sequence": ["Spiro-MeOTAD", "PTAA", "Spiro-MeOTAD", "PEDOT:PSS", "PTAA"],
    })


# --------------------------------------------------------------------------- helpers


def test_axis_title_known_and_unknown():
    assert figures.axis_title("Gap") == "band gap (DFT) (eV)"
    assert figures.axis_title("JV_reverse_scan_Jsc") == "Jsc (mA/cm2)"
    assert figures.axis_title("mystery") == "mystery (a.u.)"
    assert figures.axis_title("x", {"x": ("length", "")}) == "length"


def test_every_unit_in_column_info_is_nonempty():
    assert all(unit for _, unit in figures.COLUMN_INFO.values())


# --------------------------------------------------------------------------- Data


def test_target_histograms_one_per_column_with_units():
    df = pd.DataFrame({"Gap": [1.0, 2.0, np.nan, 3.0], "Decomp": [0.1, -0.2, 0.3, 0.0], "SLME": [0.1, 0.2, 0.0, 0.05]})
    fig = figures.target_histograms_figure(df, ["Gap", "Decomp", "SLME", "absent"])
    assert [t.type for t in fig.data] == ["histogram"] * 3
    assert len(fig.data[0].x) == 3  # NaN dropped
    titles = _axis_titles(fig)
    assert "band gap (DFT) (eV)" in titles and "decomposition energy (eV/f.u.)" in titles
    assert "SLME (dimensionless)" in titles and titles.count("rows (count)") == 3


def test_target_histograms_layout_grows_in_rows():
    df = pd.DataFrame({c: [1.0, 2.0] for c in figures.COLUMN_INFO if c.startswith("JV_")} | {"Perovskite_band_gap": [1.5, 1.6]})
    fig = figures.target_histograms_figure(df, list(df.columns))
    assert len(fig.data) == 5
    assert fig.layout.height == 560  # 2 rows of 3


def test_x_site_ternary_counts_distinct_mixes():
    fr = _fractions(["MAPbI3", "MAPbI3", "FAPbI3", "MAPbBr3", "CsPbI2Br", "MAPbCl3"])
    fig = figures.x_site_ternary_figure(fr)
    (trace,) = fig.data
    assert trace.type == "scatterternary"
    assert len(trace.a) == 4  # I3 (x3), Br3, I2Br, Cl3
    pure_iodide = list(trace.a).index(1.0)
    assert trace.customdata[pure_iodide] == 3
    assert np.allclose(np.array(trace.a) + np.array(trace.b) + np.array(trace.c), 1.0)
    ternary = fig.layout.ternary
    assert "fraction of X site" in ternary.aaxis.title.text and ternary.aaxis.title.text.startswith("I")
    assert ternary.baxis.title.text.startswith("Br") and ternary.caxis.title.text.startswith("Cl")


def test_site_occupancy_alone_vs_mixed():
    fr = _fractions(["MAPbI3", "MAPbI3", "FAPbI3", "Cs0.05FA0.79MA0.16PbBr0.51I2.49", "FA0.6MA0.4Pb0.4Sn0.6I3"])
    fig = figures.site_occupancy_figure(fr, "A")
    alone, mixed = fig.data
    assert [t.type for t in fig.data] == ["bar", "bar"]
    assert list(alone.x) == ["Cs", "MA", "FA"]  # K, Rb never occur
    assert dict(zip(alone.x, alone.y)) == {"Cs": 0, "MA": 2, "FA": 1}
    assert dict(zip(mixed.x, mixed.y)) == {"Cs": 1, "MA": 2, "FA": 2}
    assert fig.layout.barmode == "stack"
    assert _axis_titles(fig) == ["A-site ion", "rows containing the ion (count)"]
    b = figures.site_occupancy_figure(fr, "B")
    assert dict(zip(b.data[0].x, b.data[0].y)) == {"Sn": 0, "Pb": 4}


def test_device_vs_bandgap_has_sq_curve_on_each_panel():
    df = _devices()
    fig = figures.device_vs_bandgap_figure(df)
    markers = [t for t in fig.data if t.mode == "markers"]
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(markers) == 4 and len(lines) == 4
    assert all(t.name == "Shockley–Queisser limit" for t in lines)
    assert len(markers[0].x) == 4  # the device without a band gap is left out
    assert len(markers[2].x) == 3  # ... and the one without Jsc on the Jsc panel
    # the PCE curve is the library's limit on the drawn grid
    grid = np.array(lines[0].x)
    assert np.allclose(lines[0].y, sq_limit(grid)["pce_percent"])
    assert np.allclose(lines[2].y, sq_limit(grid)["jsc_mA_per_cm2"])
    assert grid.min() == pytest.approx(1.5) and grid.max() == pytest.approx(1.75)
    titles = _axis_titles(fig)
    assert titles.count("measured band gap (eV)") == 4
    for expected in ("PCE (%)", "Voc (V)", "Jsc (mA/cm2)", "FF (dimensionless)"):
        assert expected in titles


def test_device_vs_bandgap_without_curve_and_without_gaps():
    df = _devices().assign(Perovskite_band_gap=np.nan)
    fig = figures.device_vs_bandgap_figure(df, sq_curve=False)
    assert len(fig.data) == 4 and all(t.mode == "markers" and len(t.x) == 0 for t in fig.data)


def test_stack_breakdown_counts_and_medians():
    fig = figures.stack_breakdown_figure(_devices(), "ETL_stack_sequence", label="ETL stack")
    counts, medians = fig.data
    assert counts.type == medians.type == "bar" and counts.orientation == "h"
    assert dict(zip(counts.y, counts.x)) == {"TiO2-c": 2, "SnO2-np": 2, "PCBM-60": 1}
    assert dict(zip(medians.y, medians.x)) == {"TiO2-c": 16.5, "SnO2-np": 15.0, "PCBM-60": 12.0}
    assert list(counts.y)[-1] in ("TiO2-c", "SnO2-np")  # sorted by count, largest on top
    titles = _axis_titles(fig)
    assert "devices (count)" in titles and "median PCE (%)" in titles and "ETL stack" in titles


# --------------------------------------------------------------------------- Compose


def test_site_fractions_bars_by_site():
    comp = parse_formula("Cs0.05FA0.79MA0.16PbBr0.51I2.49")
    fig = figures.site_fractions_figure(comp)
    assert [t.name for t in fig.data] == ["A site", "B site", "X site"]
    a, b, x = fig.data
    assert list(a.x) == ["Cs", "MA", "FA"] and list(b.x) == ["Pb"] and list(x.x) == ["Br", "I"]
    assert sum(a.y) == pytest.approx(1) and sum(x.y) == pytest.approx(1)
    assert dict(zip(x.x, x.y))["Br"] == pytest.approx(0.17)
    assert _axis_titles(fig) == ["ion", "fraction of its site (mol/mol)"]


def test_factor_bullets_show_values_and_windows():
    fig = figures.factor_bullet_figure(0.95, 0.35, tolerance_range=TOLERANCE_RANGE, octahedral_range=OCTAHEDRAL_RANGE)
    t, mu = fig.data
    assert t.type == mu.type == "indicator"
    assert t.value == 0.95 and mu.value == 0.35
    assert tuple(t.gauge.steps[0].range) == TOLERANCE_RANGE
    assert tuple(mu.gauge.steps[0].range) == OCTAHEDRAL_RANGE
    assert "dimensionless" in t.title.text and "dimensionless" in mu.title.text
    assert t.gauge.bar.color != mu.gauge.bar.color  # inside vs outside the window
    assert mu.gauge.axis.range[0] <= 0.3  # axis widened to show an out-of-range value


# --------------------------------------------------------------------------- on the real data


def test_builders_on_the_device_table(data_dir):
    from nestedae_core.chemistry.features import featurize_table

    df = data.load("psc-devices", download=False)
    fig = figures.device_vs_bandgap_figure(df)
    assert len(fig.data[0].x) == int(df["JV_reverse_scan_PCE"].notna().mul(df["Perovskite_band_gap"].notna()).sum())
    table, failed = featurize_table(df[["Perovskite_composition_long_form"]], "Perovskite_composition_long_form")
    assert failed == 0
    ternary = figures.x_site_ternary_figure(table[list(IONS)])
    assert sum(ternary.data[0].customdata) == len(df)
    etl = figures.stack_breakdown_figure(df, "ETL_stack_sequence")
    assert len(etl.data[0].y) == 7 and sum(etl.data[0].x) == len(df)


def test_figure_downloads_name_the_figure_and_offer_png_or_svg():
    import plotly.graph_objects as go

    from app import figure_export

    fig = go.Figure(layout=dict(title="Why <b>band gap (PBE)</b> = 1.77 eV for MAPbI3"))
    cfg = figure_export.chart_config(fig, "explain.waterfall", "svg")
    assert cfg["displaylogo"] is False
    assert cfg["toImageButtonOptions"] == {"format": "svg", "filename": "explain-waterfall-Why-band-gap-PBE-1.77-eV-for-MAPbI3"}
    png = figure_export.chart_config(go.Figure(), "predict.bars", "png")["toImageButtonOptions"]
    assert png == {"format": "png", "filename": "predict-bars", "scale": 2}
    assert figure_export.chart_config(go.Figure())["toImageButtonOptions"]["filename"] == "nestedae-figure"
