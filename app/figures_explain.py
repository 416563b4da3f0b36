"""Plotly figure builders of the Explain, Latents and Learn pages.

Plain functions: data in, :class:`plotly.graph_objects.Figure` (or a tidy
DataFrame) out, no Streamlit, no matplotlib, every axis titled with its unit.
The numbers come from :mod:`nestedae_core.explain` (``Attribution`` objects, or
any :class:`shap.Explanation`) and :mod:`nestedae_core.explain.latents`; these
functions only draw them.

Attributions
    :func:`global_bar_figure` (mean |SHAP| per feature), :func:`beeswarm_figure`
    (SHAP value against feature, coloured by the feature's standardised value),
    :func:`waterfall_figure` (one row: base value -> prediction),
    :func:`explainer_comparison_figure` (fidelity panel).
Latents
    :func:`latent_map_figure` (2D/3D scatter coloured by a number or a
    category, the chosen composition highlighted), :func:`correlation_heatmap_figure`,
    :func:`traversal_figure`, :func:`active_latents_figure`,
    :func:`latent_size_scan_figure`.

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
from nestedae_core.vocabulary import (
    DESCRIPTOR_LABELS,
    DESCRIPTOR_UNITS,
    ETL,
    HTL,
    PHASE,
    PHASE_LABEL,
    SITE_FRACTION_LABELS,
    SITE_FRACTION_UNIT,
    label,
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
    "latent_map_figure",
    "correlation_heatmap_figure",
    "traversal_figure",
    "active_latents_figure",
    "latent_size_scan_figure",
    "factor_recovery_figure",
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
    ma = np.abs(view.values).mean(axis=0)
    order = np.argsort(-ma, kind="stable")
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
    ma = np.abs(view.values).mean(axis=0)
    order = np.argsort(-ma, kind="stable")[:top][::-1]
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
    ma = np.abs(view.values).mean(axis=0)
    order = np.argsort(-ma, kind="stable")[:top]
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


# --------------------------------------------------------------------------- latent space


def _axis_unit_title(name: str, extra: str = "") -> str:
    return f"{name} (dimensionless{', ' + extra if extra else ''})"


def latent_map_figure(
    coords: pd.DataFrame,
    *,
    x: str,
    y: str,
    z: str | None = None,
    color: pd.Series | None = None,
    color_title: str = "",
    categorical: bool = False,
    hover: Sequence[str] | pd.Series | None = None,
    highlight: pd.DataFrame | None = None,
    highlight_label: str = "chosen composition",
    axis_notes: Mapping[str, str] | None = None,
    title: str | None = None,
    max_categories: int = 10,
) -> go.Figure:
    """Scatter of rows in latent space (2D, or 3D when ``z`` is given).

    ``coords``: one column per latent or principal component (dimensionless);
    ``color``: values aligned with ``coords`` (numbers with a colour bar titled
    ``color_title``, or categories with one trace each, the rarest pooled as
    "other"); ``hover``: a label per row (formula); ``highlight``: one-row frame
    with the same columns, drawn as a large star; ``axis_notes``: column -> text
    added to the axis title (e.g. explained variance).
    """
    notes = dict(axis_notes or {})
    n = len(coords)
    labels = np.asarray(list(hover) if hover is not None else [str(i) for i in range(n)], dtype=object)
    three = z is not None
    Trace = go.Scatter3d if three else go.Scatter
    fig = go.Figure()

    def pos(frame: pd.DataFrame, mask: np.ndarray | slice = slice(None)) -> dict[str, Any]:
        d = {"x": frame[x].to_numpy()[mask], "y": frame[y].to_numpy()[mask]}
        if three:
            d["z"] = frame[z].to_numpy()[mask]
        return d

    coord_hover = f"{x} %{{x:.3f}}<br>{y} %{{y:.3f}}" + (f"<br>{z} %{{z:.3f}}" if three else "")
    size = 4 if three else 7
    if color is None:
        fig.add_trace(Trace(**pos(coords), mode="markers", name="rows", text=labels,
                            marker=dict(size=size, color=_BAR, opacity=0.7),
                            hovertemplate=f"%{{text}}<br>{coord_hover}<extra></extra>"))
    elif categorical:
        values = pd.Series(color).astype(str).fillna("(missing)").to_numpy()
        counts = pd.Series(values).value_counts()
        keep = list(counts.index[:max_categories])
        grouped = np.where(np.isin(values, keep), values, "other")
        order = keep + (["other"] if (grouped == "other").any() else [])
        for i, cat in enumerate(order):
            mask = grouped == cat
            fig.add_trace(Trace(**pos(coords, mask), mode="markers", name=f"{cat} ({int(mask.sum())})", text=labels[mask],
                                marker=dict(size=size, color=_GREY if cat == "other" else CATEGORY_COLORS[i % len(CATEGORY_COLORS)], opacity=0.75),
                                customdata=values[mask],
                                hovertemplate=f"%{{text}}<br>{color_title}: %{{customdata}}<br>{coord_hover}<extra></extra>"))
    else:
        c = pd.to_numeric(pd.Series(color), errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(c)
        if (~ok).any():
            fig.add_trace(Trace(**pos(coords, ~ok), mode="markers", name=f"no value ({int((~ok).sum())})", text=labels[~ok],
                                marker=dict(size=size, color="#D0D5DB", opacity=0.5),
                                hovertemplate=f"%{{text}}<br>{color_title}: missing<br>{coord_hover}<extra></extra>"))
        fig.add_trace(Trace(**pos(coords, ok), mode="markers", name="rows", text=labels[ok], customdata=c[ok],
                            marker=dict(size=size, color=c[ok], colorscale="Viridis", opacity=0.8, showscale=True,
                                        colorbar=dict(title=dict(text=color_title, side="right"), thickness=12)),
                            hovertemplate=f"%{{text}}<br>{color_title}: %{{customdata:.4g}}<br>{coord_hover}<extra></extra>"))
    if highlight is not None and len(highlight):
        fig.add_trace(Trace(**pos(highlight), mode="markers" if three else "markers+text", name=highlight_label,
                            text=[highlight_label] * len(highlight),
                            **({} if three else {"textposition": "top center", "textfont": dict(color=_HIGHLIGHT, size=13)}),
                            marker=dict(size=9 if three else 18, color=_HIGHLIGHT, symbol="diamond" if three else "star",
                                        line=dict(color="black", width=1.5)),
                            hovertemplate=f"<b>{highlight_label}</b><br>{coord_hover}<extra></extra>"))
    titles = {c: _axis_unit_title(c, notes.get(c, "")) for c in (x, y) + ((z,) if three else ())}
    if three:
        fig.update_layout(scene=dict(xaxis_title=titles[x], yaxis_title=titles[y], zaxis_title=titles[z]))
        style(fig, height=640, title=title)
    else:
        fig.update_xaxes(title_text=titles[x])
        fig.update_yaxes(title_text=titles[y])
        style(fig, height=560, title=title)
    fig.update_layout(legend=dict(orientation="h", y=-0.12, x=0), showlegend=categorical or (highlight is not None and len(highlight) > 0))
    return fig


def correlation_heatmap_figure(corr: pd.DataFrame, *, method: str = "pearson", labels: Mapping[str, str] | None = None,
                               categorical: Sequence[str] = (), title: str | None = None, annotate: bool | None = None) -> go.Figure:
    """Heatmap of latent (rows) x feature/target (columns) correlations in [-1, 1] (dimensionless).

    ``categorical`` columns hold the correlation ratio eta in [0, 1] (unsigned); their labels get "(η)".
    NaN cells (an inactive, constant latent) are left blank.
    """
    names = dict(labels or {})
    cats = set(categorical) | set(corr.attrs.get("categorical_columns", []))
    xl = [f"{names.get(c, feature_label(c, with_unit=False))}{' (η)' if c in cats else ''}" for c in corr.columns]
    yl = [str(i) for i in corr.index]
    Z = corr.to_numpy(dtype=float)
    symbol = "ρ" if method == "spearman" else "r"
    annotate = annotate if annotate is not None else Z.size <= 600
    text = np.where(np.isfinite(Z), np.vectorize(lambda v: f"{v:.2f}")(np.nan_to_num(Z)), "") if annotate else None
    fig = go.Figure(go.Heatmap(
        z=Z, x=xl, y=yl, zmin=-1, zmax=1, zmid=0, colorscale="RdBu_r",
        text=text, texttemplate="%{text}" if annotate else None, textfont=dict(size=9),
        colorbar=dict(title=dict(text=f"{method.capitalize()} {symbol}<br>(η for categories)<br>dimensionless", side="right"), thickness=12),
        hovertemplate=f"%{{y}} vs %{{x}}<br>{symbol} = %{{z:.3f}}<extra></extra>", hoverongaps=False,
    ))
    fig.update_xaxes(title_text="input or target (correlation is dimensionless)", tickangle=-40, automargin=True)
    fig.update_yaxes(title_text="latent (dimensionless)", autorange="reversed", automargin=True)
    style(fig, height=max(320, 26 * len(yl) + 220), title=title)
    return fig


def traversal_figure(trav: pd.DataFrame, *, targets: Sequence[tuple[str, str, str]], inputs: Sequence[tuple[str, str, str]],
                     current: float | None = None, start: float | None = None, title: str | None = None) -> go.Figure:
    """One latent moved over ``trav["value"]`` (x, dimensionless): the predicted targets and decoded inputs.

    ``targets``/``inputs``: (column, label, unit) to draw, one small panel each (targets first, 3 per row);
    ``current``: the slider's value (vertical red line); ``start``: the composition's own latent value (dotted).
    """
    panels = list(targets) + list(inputs)
    ncols = min(3, max(1, len(panels)))
    nrows = int(np.ceil(len(panels) / ncols)) or 1
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=[f"{lab}" + (" (predicted)" if k < len(targets) else " (decoded)")
                                                                 for k, (_, lab, _) in enumerate(panels)],
                        horizontal_spacing=0.09, vertical_spacing=0.16 if nrows > 1 else 0.1)
    latent = str(trav.attrs.get("latent", "latent"))
    xv = trav["value"].to_numpy(dtype=float)
    for k, (col, lab, unit) in enumerate(panels):
        r, c = divmod(k, ncols)
        color = "#F58518" if k < len(targets) else _BAR
        fig.add_trace(go.Scatter(x=xv, y=trav[col], mode="lines+markers", name=lab, line=dict(color=color, width=2),
                                 marker=dict(size=4), showlegend=False,
                                 hovertemplate=f"{latent} = %{{x:.3f}}<br>{lab} %{{y:.4g}} {unit}<extra></extra>"),
                      row=r + 1, col=c + 1)
        fig.update_yaxes(title_text=f"{lab[:28]} ({unit or 'dimensionless'})", row=r + 1, col=c + 1, title_font=dict(size=11))
        fig.update_xaxes(title_text=f"{latent} (dimensionless)" if r == nrows - 1 or k + ncols >= len(panels) else None,
                         row=r + 1, col=c + 1, title_font=dict(size=11))
    for v, dash, color in ((start, "dot", "#5A6B7B"), (current, "solid", _HIGHLIGHT)):
        if v is not None:
            for k in range(len(panels)):
                r, c = divmod(k, ncols)
                fig.add_vline(x=float(v), line=dict(color=color, width=1.5, dash=dash), row=r + 1, col=c + 1)
    style(fig, height=260 * nrows + 90, title=title)
    if title:
        fig.update_layout(margin=dict(t=95))
    return fig


def active_latents_figure(act: Any, member_index: int = 0, *, title: str | None = None) -> go.Figure:
    """Per latent of one fold model: variance over the rows and encoder-weight norm, each relative to the largest
    (log scale, dimensionless), with the thresholds of the rule; inactive latents in grey.

    ``act``: :class:`nestedae_core.explain.latents.ActiveLatents`; ``member_index`` indexes ``act.members``.
    """
    names = list(act.latent_names)
    rv = np.maximum(np.asarray(act.relative_variance[member_index], dtype=float), 1e-6)
    rw = np.maximum(np.asarray(act.relative_weight_norm[member_index], dtype=float), 1e-6)
    on = np.asarray(act.active[member_index], dtype=bool)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=names, y=rv, name="latent variance / largest", marker_color=np.where(on, _BAR, _GREY).tolist(),
                         hovertemplate="%{x}<br>variance ratio %{y:.3g}<extra></extra>"))
    fig.add_trace(go.Bar(x=names, y=rw, name="encoder weight norm / largest", marker_color=np.where(on, "#F58518", "#C9CED4").tolist(),
                         hovertemplate="%{x}<br>weight-norm ratio %{y:.3g}<extra></extra>"))
    # annotations placed by hand: plotly misplaces hline annotations on log axes
    fig.add_hline(y=float(act.threshold), line=dict(color=_HIGHLIGHT, dash="dash"))
    fig.add_annotation(x=1, xref="paper", y=float(np.log10(act.threshold)), yref="y", showarrow=False, xanchor="right",
                       yanchor="top", text=f"variance threshold {act.threshold:g}", font=dict(color=_HIGHLIGHT, size=11),
                       bgcolor="rgba(255,255,255,0.85)")
    if abs(float(act.weight_threshold) - float(act.threshold)) > 1e-12:
        fig.add_hline(y=float(act.weight_threshold), line=dict(color="#F58518", dash="dot"))
        fig.add_annotation(x=0, xref="paper", y=float(np.log10(act.weight_threshold)), yref="y", showarrow=False, xanchor="left",
                           yanchor="bottom", text=f"weight threshold {act.weight_threshold:g}", font=dict(color="#F58518", size=11),
                           bgcolor="rgba(255,255,255,0.85)")
    low = min(float(act.threshold), float(act.weight_threshold), float(rv.min()), float(rw.min()))
    fig.update_yaxes(type="log", dtick=1, range=[np.log10(low) - 0.5, 0.15],
                     title_text="ratio to the largest (dimensionless, log)")
    fig.update_xaxes(title_text=f"latent of fold model {act.members[member_index] + 1} (grey: inactive)")
    style(fig, height=420, title=title)
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0),
                      margin=dict(t=85 if title else 40))
    return fig


def latent_size_scan_figure(sweep: pd.DataFrame, *, unit: str = "", target_label: str | None = None,
                             true_size: int | None = None, title: str | None = None) -> go.Figure:
    """Validation MAE (mean over seeds, error bars: spread over folds/seeds) against the latent size, and the
    number of active latents (right axis); ``true_size``: a dashed line at the true number of factors."""
    d = sweep.copy()
    if "target" in d and d["target"].nunique() > 1:
        d = d[d["target"] == d["target"].iloc[0]]
    g = d.groupby("latent_size").agg(mae=("val_mae", "mean"), mae_sd=("val_mae_std", "mean"),
                                     seed_sd=("val_mae", "std"), active=("n_active", "mean")).reset_index()
    err = np.sqrt(np.nan_to_num(g["mae_sd"]) ** 2 + np.nan_to_num(g["seed_sd"]) ** 2)
    target_name = target_label or (str(d["target"].iloc[0]) if "target" in d and len(d) else "target")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=g["latent_size"], y=g["mae"], mode="lines+markers", name=f"validation MAE ({target_name})",
                             error_y=dict(type="data", array=err, visible=True), line=dict(color=_BAR, width=2.5),
                             hovertemplate=f"latent size %{{x}}<br>MAE %{{y:.4g}} {unit}<extra></extra>"), secondary_y=False)
    fig.add_trace(go.Scatter(x=g["latent_size"], y=g["active"], mode="lines+markers", name="active latents",
                             line=dict(color="#F58518", dash="dot"), marker=dict(symbol="square"),
                             hovertemplate="latent size %{x}<br>%{y:.1f} active<extra></extra>"), secondary_y=True)
    if true_size is not None:
        fig.add_vline(x=true_size, line=dict(color=_HIGHLIGHT, dash="dash"), annotation_text=f"true factors: {true_size}")
    fig.update_xaxes(title_text="latent size (number of latents)", dtick=1)
    fig.update_yaxes(title_text=f"validation MAE ({unit or 'dimensionless'})", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="active latents (count)", range=[0, float(np.nanmax(g["active"])) + 0.5 if len(g) else 1], dtick=1,
                     secondary_y=True, showgrid=False)
    style(fig, height=380, title=title)
    fig.update_layout(legend=dict(orientation="h", y=1.12, x=0))
    return fig


def factor_recovery_figure(corr: pd.DataFrame, r2: pd.Series, *, title: str | None = None) -> go.Figure:
    """Left: Pearson r between each latent (rows) and each true factor (columns), dimensionless.
    Right: R² of each true factor from all latents together (a linear fit, so recovery up to rotation)."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.2,
                        subplot_titles=["Pearson r: latent vs factor", "R² from all latents"])
    Z = corr.to_numpy(dtype=float)
    fig.add_trace(go.Heatmap(z=Z, x=list(corr.columns), y=list(corr.index), zmin=-1, zmax=1, zmid=0, colorscale="RdBu_r",
                             text=np.vectorize(lambda v: f"{v:.2f}")(np.nan_to_num(Z)), texttemplate="%{text}",
                             showscale=False, hovertemplate="%{y} vs %{x}<br>r = %{z:.3f} (dimensionless)<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=list(r2.index), y=r2.to_numpy(dtype=float), marker_color="#54A24B", showlegend=False,
                         text=[f"{v:.2f}" for v in r2], textposition="outside", cliponaxis=False,
                         hovertemplate="%{x}<br>R² %{y:.3f}<extra></extra>"), row=1, col=2)
    fig.update_xaxes(title_text="true factor (dimensionless)", row=1, col=1)
    fig.update_yaxes(title_text="model latent (dimensionless)", autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text="true factor", row=1, col=2)
    fig.update_yaxes(title_text="R² (dimensionless)", range=[0, 1.12], row=1, col=2)
    style(fig, height=max(380, 30 * len(corr) + 200), title=title)
    fig.update_layout(margin=dict(t=85 if title else 50))
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
