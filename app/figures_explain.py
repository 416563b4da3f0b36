"""Plotly figure builders of the attributions (the Explain and Learn pages).

Plain functions: data in, :class:`plotly.graph_objects.Figure` (or a tidy
DataFrame) out, no Streamlit, no matplotlib, every axis titled with its unit.
The numbers come from :mod:`nestedae_core.explain` (``Attribution`` objects, or
any :class:`shap.Explanation`); these functions only draw them. The latent-space
figures are in :mod:`app.figures_latents`.

Attributions
    :func:`global_bar_figure` (mean |SHAP| per feature), :func:`beeswarm_figure`
    (SHAP value against feature, coloured by the feature's standardised value),
    :func:`waterfall_figure` (one row: base value -> prediction),
    :func:`explainer_comparison_figure` (fidelity panel),
    :func:`credit_split_figure` (mean |SHAP| of a few (model, feature) pairs).

Feature names are turned into readable labels with units by
:func:`feature_label` (site descriptors from :mod:`nestedae_core.chemistry.features`,
latents dimensionless, categorical inputs by name).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from app.figures import style
from nestedae_core.api import (
    DESCRIPTOR_LABELS, DESCRIPTOR_UNITS, ETL, HTL, PHASE, PHASE_LABEL, SITE_FRACTION_LABELS, SITE_FRACTION_UNIT,
    column_label as label, global_importance,
)

__all__ = [
    "AttributionView",
    "as_view",
    "feature_unit",
    "feature_label",
    "format_value",
    "global_importance_frame",
    "global_bar_figure",
    "beeswarm_figure",
    "waterfall_frame",
    "waterfall_figure",
    "explainer_comparison_figure",
    "credit_split_figure",
]

_POS = "#E45756"  # pushes the output up
_NEG = "#4C78A8"  # pushes it down
_BAR = "#4C78A8"
_HIGHLIGHT = "#E45756"
_GREY = "#9DA5AE"
CATEGORY_COLORS = qualitative.Plotly + qualitative.D3
#: Label of each categorical input (the synthetic devices' ``stack`` keeps its name).
_CATEGORY_LABELS = {ETL: label(ETL), HTL: label(HTL), "stack": "stack", PHASE: PHASE_LABEL}


# --------------------------------------------------------------------------- attribution data


@dataclass
class AttributionView:
    """The arrays the figures need, from an ``Attribution`` or a ``shap.Explanation``.

    ``values`` (n, F) in the output's unit; ``base_values`` (n,); ``data`` (n, F)
    numeric inputs (category codes for categorical features); ``display`` (n, F)
    object array (category names); ``categorical``: names of categorical features.
    """

    values: np.ndarray
    base_values: np.ndarray
    data: np.ndarray
    display: np.ndarray
    feature_names: list[str]
    output: str
    unit: str
    categorical: set[str]
    row_labels: list[str]

    @property
    def predictions(self) -> np.ndarray:
        return self.base_values + self.values.sum(axis=1)


def as_view(att: Any, *, output: str | None = None, unit: str | None = None) -> AttributionView:
    """Normalise an ``Attribution`` (nestedae_core.explain) or a ``shap.Explanation`` to an :class:`AttributionView`."""
    values = np.atleast_2d(np.asarray(att.values, dtype=float))
    n, f = values.shape
    base = np.asarray(att.base_values, dtype=float).reshape(-1)
    if base.size == 1 and n > 1:
        base = np.repeat(base, n)
    data_raw = getattr(att, "data", None)
    data = np.full((n, f), np.nan) if data_raw is None else np.atleast_2d(np.asarray(data_raw, dtype=float))
    display = getattr(att, "display_data", None)
    display = data.astype(object) if display is None else np.atleast_2d(np.asarray(display, dtype=object))
    names = list(getattr(att, "feature_names", None) or [f"feature {j}" for j in range(f)])
    cats = set(getattr(att, "categories", {}) or {})
    out_name = output or getattr(att, "label", None) or getattr(att, "output", None) or getattr(att, "output_names", None) or "output"
    if isinstance(out_name, (list, tuple)):
        out_name = str(out_name[0]) if out_name else "output"
    labels = list(getattr(att, "row_labels", []) or [str(i) for i in range(n)])
    return AttributionView(values, base, data, display, names, str(out_name), str(unit if unit is not None else getattr(att, "unit", "") or ""), cats, labels)


def feature_unit(name: str, units: Mapping[str, str] | None = None) -> str:
    """Unit of an input feature: given ``units``, site descriptors' units, ``mol/mol`` for site fractions,
    ``dimensionless`` for latents, ``category`` for stacks and the crystal phase."""
    if units and name in units:
        return units[name]
    if name in DESCRIPTOR_UNITS:
        return DESCRIPTOR_UNITS[name] or "dimensionless"
    if name in SITE_FRACTION_LABELS:
        return SITE_FRACTION_UNIT
    if ".z" in name or name.startswith("z") and name[1:].isdigit() or name.startswith("PC") and name[2:].isdigit():
        return "dimensionless"
    if name in _CATEGORY_LABELS:
        return "category"
    return "a.u."


def feature_label(name: str, units: Mapping[str, str] | None = None, *, with_unit: bool = True) -> str:
    """Readable label of a feature: ``B-site ionic radius (Å)``, ``Sn fraction of the B site (mol/mol)``,
    ``materials.z3``, ``ETL stack``, ``crystal phase``."""
    text = DESCRIPTOR_LABELS.get(name) or SITE_FRACTION_LABELS.get(name) or _CATEGORY_LABELS.get(name) or name
    if not with_unit:
        return text
    unit = feature_unit(name, units)
    return text if unit == "category" else f"{text} ({unit})"


def format_value(value: Any, unit: str = "", digits: int = 3) -> str:
    """``1.234 eV`` (``digits + 1`` significant digits); strings (categories) unchanged."""
    if isinstance(value, str):
        return value
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    text = f"{v:.{digits + 1}g}"
    if text == "-0":
        text = "0"
    return f"{text} {unit}".strip() if unit and unit not in ("category", "dimensionless") else text


def _output_title(view: AttributionView) -> str:
    return view.output


def _unit_text(unit: str) -> str:
    return unit if unit else "dimensionless"


def global_importance_frame(att: Any, units: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Global importance table: feature, label, mean |SHAP|, mean SHAP (output unit), feature unit; largest first."""
    view = as_view(att)
    unit = _unit_text(view.unit)
    ma, order = global_importance(view.values)
    return pd.DataFrame({
        "feature": [view.feature_names[j] for j in order],
        "description": [feature_label(view.feature_names[j], units, with_unit=False) for j in order],
        "feature unit": [feature_unit(view.feature_names[j], units) for j in order],
        f"mean |SHAP| ({unit})": ma[order],
        f"mean SHAP ({unit})": view.values.mean(axis=0)[order],
        "share of total (%)": 100.0 * ma[order] / max(float(ma.sum()), 1e-300),
    })


def global_bar_figure(att: Any, *, top: int = 15, units: Mapping[str, str] | None = None, title: str | None = None,
                      highlight: Sequence[str] = ()) -> go.Figure:
    """Horizontal bars of mean |SHAP| per feature (largest on top), x axis in the output's unit.

    ``highlight``: features drawn in a second colour (e.g. the truly relevant ones on Learn).
    """
    view = as_view(att)
    ma, order = global_importance(view.values)
    order = order[:top][::-1]
    names = [view.feature_names[j] for j in order]
    colors = [_HIGHLIGHT if n in set(highlight) else _BAR for n in names]
    share = 100 * ma[order] / max(float(ma.sum()), 1e-300)
    fig = go.Figure(go.Bar(
        x=ma[order], y=[feature_label(n, units) for n in names], orientation="h", marker_color=colors,
        customdata=share, text=[format_value(v, "", digits=2) for v in ma[order]], textposition="outside", cliponaxis=False,
        hovertemplate=f"%{{y}}<br>mean |SHAP| %{{x:.4g}} {view.unit}<br>%{{customdata:.1f}} % of the total<extra></extra>",
    ))
    top_value = float(ma[order].max()) if len(order) else 1.0
    fig.update_xaxes(title_text=f"mean |SHAP| ({_unit_text(view.unit)})", range=[0, 1.18 * max(top_value, 1e-12)])
    fig.update_yaxes(title_text="feature (unit)", automargin=True)
    style(fig, height=max(260, 28 * len(names) + 110), title=title)
    fig.update_layout(showlegend=False)
    return fig


def _standardise_columns(data: np.ndarray) -> np.ndarray:
    """Each column mapped to [0, 1] by rank-robust min-max (5th–95th percentile), NaN kept."""
    out = np.full_like(data, np.nan, dtype=float)
    for j in range(data.shape[1]):
        col = data[:, j]
        ok = np.isfinite(col)
        if not ok.any():
            continue
        lo, hi = np.nanpercentile(col[ok], [5, 95])
        if hi - lo < 1e-12:
            lo, hi = float(col[ok].min()), float(col[ok].max())
        out[ok, j] = 0.5 if hi - lo < 1e-12 else np.clip((col[ok] - lo) / (hi - lo), 0, 1)
    return out


def _swarm_offsets(x: np.ndarray, *, bins: int = 60, width: float = 0.38) -> np.ndarray:
    """Vertical offsets that spread points sharing an x bin (a deterministic beeswarm)."""
    n = len(x)
    if n == 0:
        return np.zeros(0)
    lo, hi = float(np.min(x)), float(np.max(x))
    idx = np.zeros(n, dtype=int) if hi - lo < 1e-12 else np.minimum(((x - lo) / (hi - lo) * bins).astype(int), bins - 1)
    offsets = np.zeros(n)
    counts = np.bincount(idx, minlength=bins)
    peak = max(int(counts.max()), 1)
    seen = np.zeros(bins, dtype=int)
    for i in np.argsort(x, kind="stable"):
        k = seen[idx[i]]
        seen[idx[i]] += 1
        step = (k + 1) // 2 * (1 if k % 2 else -1)
        offsets[i] = step
    return offsets / max(peak / 2, 1) * width


#: Colour of categorical inputs' dots in the beeswarm (they have no low-to-high order).
CATEGORY_GREY = "#8c8c8c"


def beeswarm_figure(att: Any, *, top: int = 12, units: Mapping[str, str] | None = None, title: str | None = None,
                    max_points: int = 400) -> go.Figure:
    """SHAP value (x, output unit) of every row for each of the ``top`` features (y, most important on top),
    coloured by the feature's value scaled to its own range (blue low -> red high). Categorical inputs (ETL,
    HTL stacks, phase) have no low or high: their dots are grey (second trace, named in the legend) and the
    hover names the category.

    Hover: the row label (formula), the raw feature value with its unit, the SHAP value.
    """
    view = as_view(att)
    n = view.values.shape[0]
    rows = np.arange(n) if n <= max_points else np.linspace(0, n - 1, max_points).astype(int)
    ma, order = global_importance(view.values)
    order = order[:top]
    scaled = _standardise_columns(view.data)
    xs, ys, cs, texts = [], [], [], []
    cat_x, cat_y, cat_texts = [], [], []
    ticks = []
    for pos, j in enumerate(order[::-1]):
        name = view.feature_names[j]
        v = view.values[rows, j]
        unit = feature_unit(name, units)
        disp = view.display[rows, j]
        hover = [f"{view.row_labels[r] if r < len(view.row_labels) else r}<br>{feature_label(name, units, with_unit=False)} = {format_value(d, unit)}"
                 for r, d in zip(rows, disp)]
        if name in view.categorical:  # no order among categories: grey, not on the low-to-high scale
            cat_x.append(v)
            cat_y.append(pos + _swarm_offsets(v))
            cat_texts.extend(hover)
        else:
            xs.append(v)
            ys.append(pos + _swarm_offsets(v))
            cs.append(scaled[rows, j])
            texts.extend(hover)
        ticks.append(feature_label(name, units))
    x = np.concatenate(xs) if xs else np.zeros(0)
    y = np.concatenate(ys) if ys else np.zeros(0)
    c = np.concatenate(cs) if cs else np.zeros(0)
    fig = go.Figure(go.Scatter(
        x=x, y=y, mode="markers", text=texts,
        marker=dict(size=6, color=np.nan_to_num(c, nan=0.5), colorscale="RdBu_r", cmin=0, cmax=1, opacity=0.85,
                    line=dict(width=0),
                    colorbar=dict(title=dict(text="feature value<br>(scaled: low → high)", side="right"),
                                  tickvals=[0, 0.5, 1], ticktext=["low", "mid", "high"], thickness=12)),
        hovertemplate=f"%{{text}}<br>SHAP %{{x:.4g}} {view.unit}<extra></extra>", name="numeric input", showlegend=False,
    ))
    if cat_x:
        fig.add_trace(go.Scatter(
            x=np.concatenate(cat_x), y=np.concatenate(cat_y), mode="markers", text=cat_texts, name="categorical input (no low/high)",
            marker=dict(size=6, color=CATEGORY_GREY, opacity=0.85, line=dict(width=0)), showlegend=True,
            hovertemplate=f"%{{text}}<br>SHAP %{{x:.4g}} {view.unit}<extra></extra>",
        ))
    fig.add_vline(x=0, line=dict(color="#555", width=1))
    fig.update_yaxes(tickvals=list(range(len(ticks))), ticktext=ticks, title_text="input feature (unit)", automargin=True,
                     range=[-0.7, max(len(ticks), 1) - 0.3], zeroline=False, showgrid=False)
    fig.update_xaxes(title_text=f"SHAP value: effect on {_output_title(view)} ({_unit_text(view.unit)})")
    style(fig, height=max(300, 34 * len(ticks) + 120), title=title)
    fig.update_layout(showlegend=bool(cat_x), legend=dict(orientation="h", y=-0.25, x=0))
    return fig


def waterfall_frame(att: Any, row: int = 0, *, top: int = 10, units: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The waterfall of one row as a table: base value, the ``top`` features by |SHAP| (with their input
    values), the rest summed, the prediction. Columns: ``step``, ``input value``, ``SHAP (unit)``, ``running total (unit)``."""
    view = as_view(att)
    v = view.values[row]
    order = np.argsort(-np.abs(v), kind="stable")
    shown, rest = order[:top], order[top:]
    unit = _unit_text(view.unit)
    base = float(view.base_values[row])
    steps = [("base value (expected over the background)", "", base, base)]
    total = base
    for j in shown:
        total += float(v[j])
        name = view.feature_names[j]
        steps.append((feature_label(name, units, with_unit=False), format_value(view.display[row, j], feature_unit(name, units)), float(v[j]), total))
    if len(rest):
        s = float(v[rest].sum())
        total += s
        steps.append((f"{len(rest)} other features", "", s, total))
    steps.append(("prediction", "", total, total))
    return pd.DataFrame(steps, columns=["step", "input value", f"SHAP ({unit})", f"running total ({unit})"])


def waterfall_figure(att: Any, row: int = 0, *, top: int = 10, units: Mapping[str, str] | None = None,
                     title: str | None = None) -> go.Figure:
    """Horizontal waterfall for one row: from the base value (expected output over the background) through
    the ``top`` features (largest |SHAP| at the top) to the prediction, x axis in the output's unit."""
    view = as_view(att)
    frame = waterfall_frame(att, row, top=top, units=units)
    unit = _unit_text(view.unit)
    body = frame.iloc[1:-1]
    labels = [f"{s} = {val}" if val else s for s, val in zip(body["step"], body["input value"])]
    base = float(frame.iloc[0][f"SHAP ({unit})"])
    pred = float(frame.iloc[-1][f"SHAP ({unit})"])
    contributions = body[f"SHAP ({unit})"].to_numpy(dtype=float)
    y = ["base value"] + labels + ["prediction"]
    fig = go.Figure(go.Waterfall(
        orientation="h", measure=["absolute"] + ["relative"] * len(body) + ["total"],
        y=y, x=[base] + contributions.tolist() + [pred],
        base=0, connector=dict(line=dict(color="#AAB4BF", width=1, dash="dot")),
        increasing=dict(marker=dict(color=_POS)), decreasing=dict(marker=dict(color=_NEG)),
        totals=dict(marker=dict(color="#5A6B7B")),
        text=[format_value(base, view.unit)] + [("+" if c >= 0 else "") + format_value(c, view.unit, digits=2) for c in contributions]
             + [format_value(pred, view.unit)],
        textposition="outside", cliponaxis=False,
        hovertemplate=f"%{{y}}<br>%{{x:.4g}} {view.unit}<extra></extra>",
    ))
    lo = min(base, pred, *(base + np.cumsum(contributions)).tolist()) if len(contributions) else min(base, pred)
    hi = max(base, pred, *(base + np.cumsum(contributions)).tolist()) if len(contributions) else max(base, pred)
    pad = 0.25 * (hi - lo) + 1e-9
    fig.update_xaxes(title_text=f"{_output_title(view)} ({unit})", range=[lo - pad, hi + pad])
    fig.update_yaxes(autorange="reversed", title_text=None, automargin=True)
    style(fig, height=max(300, 30 * len(y) + 110), title=title)
    fig.update_layout(showlegend=False, waterfallgap=0.25)
    return fig


def explainer_comparison_figure(table: pd.DataFrame, *, top: int = 12, units: Mapping[str, str] | None = None,
                                title: str | None = None) -> go.Figure:
    """Fidelity panel: attributions of one row from each explainer side by side (left, grouped bars per
    feature, output unit) and each explainer's time and additivity error (right).

    ``table``: :func:`nestedae_core.explain.explainer_comparison` output.
    """
    meta = {"explainer", "is_exact", "base", "prediction", "additivity_error", "seconds", "max_abs_diff_vs_exact",
            "background_size", "unit"}
    feats = [c for c in table.columns if c not in meta]
    unit = str(table["unit"].iloc[0]) if "unit" in table and len(table) else ""
    if feats and len(table):
        mag = table[feats].abs().max(axis=0).sort_values(ascending=False)
        feats = list(mag.index[:top])
    fig = make_subplots(rows=1, cols=2, column_widths=[0.68, 0.32], horizontal_spacing=0.2,
                        subplot_titles=["attribution per feature", "time per explanation"])
    for i, r in enumerate(table.itertuples(index=False)):
        d = r._asdict()
        color = CATEGORY_COLORS[i % len(CATEGORY_COLORS)]
        fig.add_trace(go.Bar(
            y=[feature_label(f, units) for f in feats][::-1], x=[d[f] for f in feats][::-1], orientation="h",
            name=d["explainer"], marker_color=color, legendgroup=d["explainer"],
            hovertemplate=f"{d['explainer']}<br>%{{y}}<br>%{{x:.4g}} {unit}<extra></extra>",
        ), row=1, col=1)
        fig.add_trace(go.Bar(
            x=[d["explainer"]], y=[max(float(d["seconds"]), 1e-4)], marker_color=color, showlegend=False, legendgroup=d["explainer"],
            customdata=[[float(d["additivity_error"]), float(d.get("max_abs_diff_vs_exact", np.nan))]],
            text=[f"{float(d['seconds']):.2g} s"], textposition="outside", cliponaxis=False,
            hovertemplate=(f"{d['explainer']}<br>%{{y:.3g}} s<br>additivity error %{{customdata[0]:.2g}} {unit}"
                           f"<br>max |difference| vs exact %{{customdata[1]:.2g}} {unit}<extra></extra>"),
        ), row=1, col=2)
    fig.update_xaxes(title_text=f"SHAP value ({_unit_text(unit)})", row=1, col=1)
    fig.update_yaxes(automargin=True, row=1, col=1)
    fig.update_yaxes(title_text="wall time (s, log scale)", type="log", dtick=1, row=1, col=2)
    fig.update_xaxes(title_text="explainer", row=1, col=2)
    style(fig, height=max(340, 26 * len(feats) + 140), title=title)
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.15, x=0))
    return fig


def credit_split_figure(split: pd.DataFrame, *, unit: str = "", title: str | None = None) -> go.Figure:
    """Bars of mean |SHAP| (output unit) for a few (model, feature) pairs, e.g. x0 with and without its near copy.

    ``split``: columns ``model``, ``feature`` and one value column (the third).
    """
    col = [c for c in split.columns if c not in ("model", "feature")][0]
    colors = [_GREY, _HIGHLIGHT, "#F58518", _BAR, "#54A24B", "#B279A2"]
    fig = go.Figure(go.Bar(
        x=[f"{a}:<br>{b}" for a, b in zip(split["model"], split["feature"])], y=split[col],
        marker_color=[colors[i % len(colors)] for i in range(len(split))],
        text=[f"{v:.3f}" for v in split[col]], textposition="outside", cliponaxis=False,
        hovertemplate=f"%{{x}}<br>%{{y:.4g}} {unit}<extra></extra>",
    ))
    fig.update_yaxes(title_text=f"mean |SHAP value| ({unit or 'dimensionless'})", rangemode="tozero")
    fig.update_xaxes(title_text="model: feature")
    style(fig, height=380, title=title)
    return fig
