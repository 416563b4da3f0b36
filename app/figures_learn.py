"""Figures of the Learn page: explainers beside the ground truth, and the correlation study.

Only drawing: the numbers come from :mod:`nestedae_core.data.synthetic_truth`.
"""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures import style

_TRUTH_COLORS = {"truth: interventional": "#222222", "truth: observational": "#888888"}
_COLORS = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2")


def truth_comparison_figure(attributions: Mapping[str, pd.DataFrame], *, unit: str = "", title: str | None = None) -> go.Figure:
    """Grouped bars: mean |attribution| (output unit) per feature, the two ground truths first, then each explainer."""
    fig = go.Figure()
    others = [k for k in attributions if k not in _TRUTH_COLORS]
    for i, name in enumerate([k for k in _TRUTH_COLORS if k in attributions] + others):
        imp = attributions[name].abs().mean()
        fig.add_bar(x=list(imp.index), y=imp.to_numpy(), name=name,
                    marker_color=_TRUTH_COLORS.get(name, _COLORS[(i - 2) % len(_COLORS)]),
                    marker_pattern_shape="/" if name.startswith("truth") else "",
                    hovertemplate=f"{name}<br>%{{x}}: %{{y:.4g}} {unit}<extra></extra>")
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.2))
    fig.update_yaxes(title_text=f"mean |Shapley value| ({unit or 'dimensionless'})", rangemode="tozero")
    fig.update_xaxes(title_text="feature")
    return style(fig, height=420, title=title)


def correlation_figure(study: pd.DataFrame, chosen: float, *, unit: str = "", title: str | None = None) -> go.Figure:
    """Left: mean |Shapley value| of x0 and x_dup against their correlation, in both games. Right: validation MAE."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.65, 0.35], horizontal_spacing=0.12,
                        subplot_titles=("credit in the ground truth", "accuracy of a model using both"))
    styles = {"interventional": "solid", "observational": "dash"}
    for game, part in study.groupby("game", sort=False):
        for feature, color in (("x0", "#4C78A8"), ("x_dup", "#F58518")):
            fig.add_scatter(x=part["correlation"], y=part[feature], mode="lines+markers", name=f"{feature}, {game}",
                            line=dict(color=color, dash=styles.get(str(game), "dot")), row=1, col=1)
    acc = study.drop_duplicates("correlation")
    fig.add_scatter(x=acc["correlation"], y=acc["mae_with_pair"], mode="lines+markers", name="validation MAE",
                    line=dict(color="#54A24B"), row=1, col=2)
    for col in (1, 2):
        fig.add_vline(x=chosen, line=dict(color="#999", dash="dot"), row=1, col=col)  # type: ignore[arg-type]
        fig.update_xaxes(title_text="correlation of x_dup with x0", row=1, col=col)
    fig.update_yaxes(title_text=f"mean |Shapley value| ({unit})", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text=f"MAE ({unit})", rangemode="tozero", row=1, col=2)
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    return style(fig, height=420, title=title)
