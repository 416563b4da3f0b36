"""Plotly figure builders of the latent space (the Latents, Explain and Learn pages).

Plain functions: data in, :class:`plotly.graph_objects.Figure` out, no Streamlit,
every axis titled with its unit. The numbers come from
:mod:`nestedae_core.explain.latents` and :mod:`nestedae_core.sweep.latent_size`;
these functions only draw them. Attribution figures are in :mod:`app.figures_explain`.

* :func:`latent_map_figure`: 2D/3D scatter coloured by a number or a category,
  the chosen composition highlighted;
* :func:`correlation_heatmap_figure`, :func:`traversal_figure`, :func:`active_latents_figure`;
* :func:`latent_size_scan_figure`: validation error and active latents against the latent size;
* :func:`factor_recovery_figure`: latents against known true factors (synthetic data).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures import style
from app.figures_explain import _BAR, _GREY, _HIGHLIGHT, CATEGORY_COLORS, feature_label

__all__ = [
    "latent_map_figure",
    "correlation_heatmap_figure",
    "traversal_figure",
    "active_latents_figure",
    "latent_size_scan_figure",
    "factor_recovery_figure",
]


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


def latent_size_scan_figure(scan: pd.DataFrame, *, unit: str = "", target_label: str | None = None,
                             true_size: int | None = None, title: str | None = None) -> go.Figure:
    """Validation MAE (mean over seeds, error bars: spread over folds/seeds) against the latent size, and the
    number of active latents (right axis), from the rows of :func:`~nestedae_core.sweep.latent_size.latent_size_scan`;
    ``true_size``: a dashed line at the true number of factors."""
    d = scan.copy()
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
