"""Plotly figure builders of the Train, Predict, Screen and Compare pages.

Plain functions: data in, :class:`plotly.graph_objects.Figure` (or a tidy
DataFrame) out, no Streamlit, every axis titled with its unit. The
Shockley–Queisser curve comes from :func:`nestedae_core.physics.sq_limit`.

Targets are passed as :class:`TargetInfo` (column, label, unit); build them
from a model or a spec with :func:`target_infos`.
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

from app import quantities
from app.figures import style
from nestedae_core.api import (
    BANDGAP_PBE, PCE, column_label, column_unit, fidelity_label, quantity_key, regression_metrics, sq_limit,
    target_fidelity, target_key,
)
pass

__all__ = [
    "TargetInfo",
    "target_infos",
    "has_intervals",
    "events_frame",
    "loss_curves_figure",
    "fold_metrics_frame",
    "parity_figure",
    "residuals_figure",
    "fold_metrics_figure",
    "line_scan_figure",
    "pce_vs_gap_figure",
    "prediction_bars_figure",
    "screen_scatter_figure",
    "benchmark_frames",
    "benchmark_bars_figure",
    "benchmark_folds_figure",
    "split_comparison_figure",
    "paired_differences_figure",
]

FOLD_COLORS = qualitative.Plotly
_MEAN = "#1f2d3d"
_OURS = "#4C78A8"
_OTHER = "#9DA5AE"
_GAP_COLOR = "#4C78A8"
_PCE_COLOR = "#F58518"
_SQ = "#E45756"
LOSS_AXIS = "loss (standardised units, dimensionless)"


@dataclass(frozen=True)
class TargetInfo:
    """A predicted quantity: its column, a readable label and its unit ('' = dimensionless).

    ``fidelity``: for a band gap, which one ("measured", "PBE", "HSE"; see
    :func:`nestedae_core.model.config.target_fidelity`), else None. The label of
    :func:`target_infos` already names it (``band gap, DFT PBE (no SOC)``). ``key``: its name in
    prediction tables (``bandgap_eV``, ``pce_percent``; :mod:`nestedae_core.schema`).
    """

    column: str
    label: str
    unit: str
    stage: str = ""
    fidelity: str | None = None
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:  # its name in every output table (nestedae_core.schema)
            object.__setattr__(self, "key", quantity_key(self.column, self.unit, self.fidelity))

    @classmethod
    def of(cls, column: str) -> "TargetInfo":
        """The vocabulary's label and unit of ``column``, e.g. ``TargetInfo("Gap", "band gap", "eV")``."""
        return cls(column, column_label(column), column_unit(column))

    def title(self, prefix: str = "") -> str:
        """Axis title, e.g. ``measured band gap (eV)``."""
        name = f"{prefix} {self.label}".strip()
        return f"{name} ({self.unit or 'dimensionless'})"


def target_infos(spec: Any, phase: str | None = None) -> list[TargetInfo]:
    """Every target of a ChainSpec (or of a model's ``.spec``), in stage order; band gaps named with their fidelity,
    DFT gaps with ``phase`` when given (predictions at that phase, e.g. ``band gap, DFT HSE06+SOC (cubic)``)."""
    spec = getattr(spec, "spec", spec)
    return [TargetInfo(t.column, quantities.target_name(st, t, phase), t.unit, st.name, target_fidelity(st, t), target_key(st, t))
            for st in spec.stages for t in st.targets]


def _truth_word(t: TargetInfo) -> str:
    """What the data value of a target is: "DFT" for a computed (PBE, HSE) band gap, else "measured"."""
    return "DFT" if t.fidelity in ("PBE", "HSE") else "measured"


def _fmt_unit(unit: str) -> str:
    return f" {unit}" if unit else ""


# --------------------------------------------------------------------------- training


def events_frame(events: Sequence[Any]) -> pd.DataFrame:
    """Tidy frame of progress events: stage, stage_index, epoch, series ('mean', 'fold k', 'validation'), loss."""
    rows: list[dict[str, Any]] = []
    for e in events:
        base = {"stage": e.stage, "stage_index": e.stage_index, "epoch": e.epoch}
        rows.append({**base, "series": "mean", "loss": float(e.loss)})
        for m, v in enumerate(e.member_losses):
            rows.append({**base, "series": f"fold {m + 1}", "loss": float(v)})
        if e.val_loss is not None:
            rows.append({**base, "series": "validation", "loss": float(e.val_loss)})
    return pd.DataFrame(rows, columns=["stage", "stage_index", "epoch", "series", "loss"])


def loss_curves_figure(events: Sequence[Any] | pd.DataFrame, *, stages: Sequence[str] | None = None, show_folds: bool = True, log_y: bool = True) -> go.Figure:
    """Training loss against epoch, one panel per stage: the mean over folds, each fold member, validation.

    ``stages`` fixes the panels (so a panel exists before its stage starts).
    """
    df = events if isinstance(events, pd.DataFrame) else events_frame(events)
    names = list(stages) if stages else list(dict.fromkeys(df["stage"])) or ["(waiting)"]
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=[f"stage {i + 1}: {n}" for i, n in enumerate(names)], horizontal_spacing=0.08)
    shown: set[str] = set()
    for c, name in enumerate(names, start=1):
        part = df[df["stage"] == name]
        series = [s for s in dict.fromkeys(part["series"]) if show_folds or not s.startswith("fold")]
        for s in series:
            d = part[part["series"] == s]
            if s == "mean":
                line, color = dict(width=3, color=_MEAN), _MEAN
            elif s == "validation":
                line, color = dict(width=2, dash="dash", color=_SQ), _SQ
            else:
                k = int(s.split()[-1]) - 1
                color = FOLD_COLORS[k % len(FOLD_COLORS)]
                line = dict(width=1, color=color)
            fig.add_trace(
                go.Scatter(
                    x=d["epoch"], y=d["loss"], mode="lines" if len(d) > 2 else "lines+markers", name=s, legendgroup=s, showlegend=s not in shown,
                    line=line, opacity=1.0 if s in ("mean", "validation") else 0.55,
                    hovertemplate=f"{name} {s}<br>epoch %{{x}}<br>loss %{{y:.4g}}<extra></extra>",
                ),
                row=1, col=c,
            )
            shown.add(s)
        fig.update_xaxes(title_text="epoch (count)", row=1, col=c)
        fig.update_yaxes(title_text=LOSS_AXIS if c == 1 else None, type="log" if log_y else "linear", row=1, col=c)
    style(fig, height=370)
    # room above the stage titles for the plot toolbar (it covered the last stage's title)
    fig.update_layout(legend=dict(orientation="h", y=-0.25, x=0), margin=dict(t=TOOLBAR_MARGIN_PX))
    return fig


#: Top margin (px) of figures with subplot titles: the plot toolbar sits above them, not on them.
TOOLBAR_MARGIN_PX = 64


def fold_metrics_frame(metrics: Mapping[str, Mapping[str, Any]], targets: Sequence[TargetInfo]) -> pd.DataFrame:
    """Per-fold metrics table: stage, target, unit, fold (1-based; 'mean' row last), n, MAE, RMSE, R²."""
    rows = []
    for t in targets:
        m = metrics.get(t.stage, {}).get(t.column)
        if not m:
            continue
        for f in m.get("folds", []):
            rows.append({"stage": t.stage, "target": t.label, "unit": t.unit, "fold": str(int(f["fold"]) + 1), "n": int(f["n"]),
                         "MAE": f["mae"], "RMSE": f["rmse"], "R²": f["r2"]})
        rows.append({"stage": t.stage, "target": t.label, "unit": t.unit, "fold": "mean ± sd", "n": int(m.get("n", 0)),
                     "MAE": m["mae"], "MAE sd": m.get("mae_std", np.nan), "RMSE": m["rmse"], "R²": m["r2"]})
    cols = ["stage", "target", "unit", "fold", "n", "MAE", "MAE sd", "RMSE", "R²"]
    return pd.DataFrame(rows, columns=cols)


def _oof_ok(oof: pd.DataFrame, t: TargetInfo) -> pd.DataFrame:
    tc, pc = f"{t.column}_true", f"{t.column}_pred"
    if tc not in oof or pc not in oof:
        return pd.DataFrame(columns=["true", "pred", "fold", "label"])
    d = pd.DataFrame({"true": pd.to_numeric(oof[tc], errors="coerce"), "pred": pd.to_numeric(oof[pc], errors="coerce"),
                      "fold": oof["fold"].astype(int) + 1 if "fold" in oof else 1,
                      "label": oof["label"].astype(str) if "label" in oof else ""})
    return d.dropna(subset=["true", "pred"])


def parity_figure(oof: Mapping[str, pd.DataFrame], targets: Sequence[TargetInfo], *, max_points: int = 4000) -> go.Figure:
    """Out-of-fold predicted vs measured, one panel per target, coloured by fold, with the y = x line.

    ``oof``: stage -> out-of-fold frame (``<target>_true``, ``<target>_pred``, ``fold``, ``label``).
    """
    targets = [t for t in targets if t.stage in oof]
    fig = make_subplots(rows=1, cols=max(1, len(targets)), subplot_titles=[f"{t.label} ({t.stage})" for t in targets] or [""], horizontal_spacing=0.1)
    shown: set[int] = set()
    for c, t in enumerate(targets, start=1):
        d = _oof_ok(oof[t.stage], t)
        if len(d) > max_points:
            d = d.sample(max_points, random_state=0)
        for k in sorted(d["fold"].unique()):
            part = d[d["fold"] == k]
            fig.add_trace(
                go.Scattergl(
                    x=part["true"], y=part["pred"], mode="markers", name=f"fold {k}", legendgroup=f"fold {k}",
                    showlegend=k not in shown, marker=dict(size=5, opacity=0.6, color=FOLD_COLORS[(k - 1) % len(FOLD_COLORS)]),
                    text=part["label"],
                    hovertemplate=f"%{{text}}<br>{_truth_word(t)} %{{x:.3f}}{_fmt_unit(t.unit)}<br>predicted %{{y:.3f}}{_fmt_unit(t.unit)}<extra>fold {k}</extra>",
                ),
                row=1, col=c,
            )
            shown.add(k)
        if len(d):
            lo = float(min(d["true"].min(), d["pred"].min()))
            hi = float(max(d["true"].max(), d["pred"].max()))
            pad = 0.03 * (hi - lo or 1.0)
            fig.add_trace(go.Scatter(x=[lo - pad, hi + pad], y=[lo - pad, hi + pad], mode="lines", name="y = x",
                                     legendgroup="yx", showlegend=c == 1, line=dict(color=_MEAN, dash="dash", width=1.5),
                                     hoverinfo="skip"), row=1, col=c)
            mae = regression_metrics(d["true"].to_numpy(dtype=float), d["pred"].to_numpy(dtype=float))["mae"]
            fig.add_annotation(text=f"MAE {mae:.3g}{_fmt_unit(t.unit)} (n = {len(d)})", xref=f"x{c if c > 1 else ''} domain",
                               yref=f"y{c if c > 1 else ''} domain", x=0.02, y=0.98, showarrow=False, xanchor="left", yanchor="top",
                               bgcolor="rgba(255,255,255,0.8)")
        fig.update_xaxes(title_text=t.title(_truth_word(t)), row=1, col=c)
        fig.update_yaxes(title_text=t.title("predicted"), row=1, col=c)
    style(fig, height=420)
    fig.update_layout(legend=dict(orientation="h", y=-0.2, x=0))
    return fig


def residuals_figure(oof: Mapping[str, pd.DataFrame], targets: Sequence[TargetInfo], *, max_points: int = 4000) -> go.Figure:
    """Out-of-fold residual (predicted − measured) against the measured value, one panel per target, zero line."""
    targets = [t for t in targets if t.stage in oof]
    fig = make_subplots(rows=1, cols=max(1, len(targets)), subplot_titles=[f"{t.label} ({t.stage})" for t in targets] or [""], horizontal_spacing=0.1)
    for c, t in enumerate(targets, start=1):
        d = _oof_ok(oof[t.stage], t)
        if len(d) > max_points:
            d = d.sample(max_points, random_state=0)
        fig.add_trace(
            go.Scattergl(x=d["true"], y=d["pred"] - d["true"], mode="markers", name=t.label, showlegend=False,
                         marker=dict(size=5, opacity=0.5, color=[FOLD_COLORS[(k - 1) % len(FOLD_COLORS)] for k in d["fold"]]),
                         text=d["label"],
                         hovertemplate=f"%{{text}}<br>{_truth_word(t)} %{{x:.3f}}{_fmt_unit(t.unit)}<br>residual %{{y:+.3f}}{_fmt_unit(t.unit)}<extra></extra>"),
            row=1, col=c,
        )
        fig.add_hline(y=0, line=dict(color=_MEAN, dash="dash", width=1.5), row=1, col=c)
        fig.update_xaxes(title_text=t.title(_truth_word(t)), row=1, col=c)
        fig.update_yaxes(title_text=f"residual, predicted − {_truth_word(t)} ({t.unit or 'dimensionless'})", row=1, col=c)
    style(fig, height=360)
    return fig


def fold_metrics_figure(metrics: Mapping[str, Mapping[str, Any]], targets: Sequence[TargetInfo]) -> go.Figure:
    """Validation MAE of each fold as bars, plus the mean with the fold standard deviation as error bar; one panel per target."""
    targets = [t for t in targets if metrics.get(t.stage, {}).get(t.column)]
    fig = make_subplots(rows=1, cols=max(1, len(targets)), subplot_titles=[f"{t.label} ({t.stage})" for t in targets] or [""], horizontal_spacing=0.1)
    for c, t in enumerate(targets, start=1):
        m = metrics[t.stage][t.column]
        folds = m.get("folds", [])
        xs = [f"fold {int(f['fold']) + 1}" for f in folds]
        fig.add_trace(go.Bar(x=xs, y=[f["mae"] for f in folds], name="fold", showlegend=c == 1, marker_color=[FOLD_COLORS[i % len(FOLD_COLORS)] for i in range(len(xs))],
                             hovertemplate=f"%{{x}}: MAE %{{y:.4g}}{_fmt_unit(t.unit)}<extra></extra>"), row=1, col=c)
        fig.add_trace(go.Bar(x=["mean"], y=[m["mae"]], name="mean ± sd over folds", showlegend=c == 1, marker_color=_MEAN,
                             error_y=dict(type="data", array=[m.get("mae_std", 0.0)], visible=True),
                             hovertemplate=f"mean MAE %{{y:.4g}} ± {m.get('mae_std', 0.0):.3g}{_fmt_unit(t.unit)}<extra></extra>"), row=1, col=c)
        fig.update_xaxes(title_text="validation fold", row=1, col=c)
        fig.update_yaxes(title_text=f"MAE ({t.unit or 'dimensionless'})", row=1, col=c)
    style(fig, height=320)
    fig.update_layout(legend=dict(orientation="h", y=-0.3, x=0), bargap=0.25)
    return fig


# --------------------------------------------------------------------------- predictions


def _band(fig: go.Figure, x: np.ndarray, mean: np.ndarray, std: np.ndarray, color: str, name: str, *, secondary_y: bool, unit: str,
          lower: np.ndarray | None = None, upper: np.ndarray | None = None, level: float | None = None) -> None:
    """A line with a shaded band: the prediction interval when given, else ± 1 sd of the fold models (model disagreement)."""
    rgba = _rgba(color, 0.18)
    if lower is not None and upper is not None:
        lo, hi = lower, upper
        band = f"{name}, {100 * (level or 0.9):.0f} % interval"
    else:
        lo, hi = mean - std, mean + std
        band = f"{name} ± 1 sd (model disagreement)"
    fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([hi, lo[::-1]]), fill="toself",
                             fillcolor=rgba, line=dict(width=0), name=band, hoverinfo="skip", showlegend=True),
                  secondary_y=secondary_y)
    fig.add_trace(go.Scatter(x=x, y=mean, mode="lines+markers", name=name, line=dict(color=color, width=2.5), marker=dict(size=5),
                             customdata=std, hovertemplate=f"x = %{{x:.3f}}<br>{name} %{{y:.3f}}{_fmt_unit(unit)} (model disagreement ± %{{customdata:.3f}})<extra></extra>"),
                  secondary_y=secondary_y)


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def line_scan_figure(
    scan: pd.DataFrame,
    *,
    start: str,
    end: str,
    gap: TargetInfo | None = TargetInfo.of(BANDGAP_PBE),
    pce: TargetInfo | None = TargetInfo.of(PCE),
    level: float | None = None,
) -> go.Figure:
    """Band gap (left axis) and PCE (right axis) along a line scan, with uncertainty bands.

    ``scan``: :func:`nestedae_core.predict.line_scan` output (``x``, ``<col>_mean``/``_std``, ``in_domain``,
    and ``<col>_lower``/``_upper`` when the model is calibrated: then the band is that interval, at ``level``;
    otherwise ± 1 sd of the fold models, labelled model disagreement).
    Points outside the training domain are marked with open grey circles.
    """
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = scan["x"].to_numpy(dtype=float)
    for t, color, sec in ((gap, _GAP_COLOR, False), (pce, _PCE_COLOR, True)):
        if t is None or f"{t.key}_mean" not in scan:
            continue
        mean = scan[f"{t.key}_mean"].to_numpy(dtype=float)
        std = scan[f"{t.key}_std"].to_numpy(dtype=float)
        lower = upper = None
        if f"{t.key}_lower" in scan and f"{t.key}_upper" in scan and scan[f"{t.key}_lower"].notna().all():
            lower = scan[f"{t.key}_lower"].to_numpy(dtype=float)
            upper = scan[f"{t.key}_upper"].to_numpy(dtype=float)
        _band(fig, x, mean, std, color, t.label, secondary_y=sec, unit=t.unit, lower=lower, upper=upper, level=level)
        if "in_domain" in scan and (~scan["in_domain"].astype(bool)).any():
            out = ~scan["in_domain"].astype(bool).to_numpy()
            fig.add_trace(go.Scatter(x=x[out], y=mean[out], mode="markers", name="outside training domain",
                                     legendgroup="ood", showlegend=not sec or gap is None,
                                     marker=dict(symbol="circle-open", size=12, color="#666", line=dict(width=2)),
                                     hoverinfo="skip"), secondary_y=sec)
        fig.update_yaxes(title_text=t.title("predicted"), secondary_y=sec, color=color, showgrid=not sec, tickmode="auto", nticks=8)
    fig.update_xaxes(title_text=f"x in (1 − x) {start} + x {end} (fraction of {end}, dimensionless)", range=[-0.02, 1.02])
    style(fig, height=420)
    fig.update_layout(legend=dict(orientation="h", y=-0.22, x=0), hovermode="x unified")
    return fig


def pce_vs_gap_figure(points: pd.DataFrame, *, gap_range: tuple[float, float] | None = None, gap_label: str = "band gap",
                      sq_name: str = "Shockley–Queisser limit") -> go.Figure:
    """Predicted PCE against predicted band gap, with error bars, under the Shockley–Queisser limit.

    ``points``: columns ``label``, ``gap``, ``gap_std``, ``pce``, ``pce_std`` (eV and %); ``gap_label``
    names the gap (e.g. ``band gap (measured)``); ``sq_name`` the limit's curve (say at which gap it is drawn).
    With interval bounds (``gap_lower`` … ``pce_upper``, see :func:`has_intervals`) the error bars are the
    prediction intervals; otherwise ± 1 sd of the fold models (model disagreement).
    """
    fig = go.Figure()
    gaps = pd.to_numeric(points.get("gap", pd.Series(dtype=float)), errors="coerce").dropna()
    lo, hi = gap_range or ((float(gaps.min()) - 0.3, float(gaps.max()) + 0.3) if len(gaps) else (1.0, 2.5))
    grid = np.linspace(max(lo, 0.5), max(hi, lo + 0.2), 200)
    fig.add_trace(go.Scatter(x=grid, y=sq_limit(grid)["pce_percent"], mode="lines", name=sq_name,
                             line=dict(color=_SQ, width=2.5), hovertemplate="gap %{x:.3f} eV<br>limit %{y:.1f} %<extra></extra>"))
    names = _short_labels(points) if len(points) else []
    intervals = has_intervals(points)
    gap_up, gap_down = _error_bars(points, "gap", intervals) if len(points) else ([], [])
    pce_up, pce_down = _error_bars(points, "pce", intervals) if len(points) else ([], [])
    for i, row in enumerate(points.itertuples(index=False)):
        color = FOLD_COLORS[i % len(FOLD_COLORS)]
        if intervals:
            hover = (f"{row.label}<br>{gap_label} %{{x:.3f}} eV (interval {row.gap_lower:.3f}–{row.gap_upper:.3f})"
                     f"<br>PCE %{{y:.2f}} % (interval {row.pce_lower:.2f}–{row.pce_upper:.2f})<extra></extra>")
        else:
            hover = (f"{row.label}<br>{gap_label} %{{x:.3f}} ± {row.gap_std:.3f} eV<br>PCE %{{y:.2f}} ± {row.pce_std:.2f} %"
                     "<br>(± model disagreement)<extra></extra>")
        fig.add_trace(go.Scatter(
            x=[row.gap], y=[row.pce], mode="markers", name=names[i], marker=dict(size=12, color=color, line=dict(width=1, color="white")),
            error_x=dict(type="data", array=[gap_up[i]], arrayminus=[gap_down[i]], symmetric=not intervals, visible=True, color=color),
            error_y=dict(type="data", array=[pce_up[i]], arrayminus=[pce_down[i]], symmetric=not intervals, visible=True, color=color),
            hovertemplate=hover,
        ))
    fig.update_xaxes(title_text=f"predicted {gap_label} (eV)")
    fig.update_yaxes(title_text="predicted PCE (%)", rangemode="tozero")
    style(fig, height=400)
    fig.update_layout(legend=dict(orientation="h", y=-0.22, x=0))
    return fig


def has_intervals(table: pd.DataFrame) -> bool:
    """True when every plotted row of ``table`` carries interval bounds (``gap_lower`` … ``pce_upper``, not NaN)."""
    cols = ["gap_lower", "gap_upper", "pce_lower", "pce_upper"]
    return len(table) > 0 and all(c in table for c in cols) and bool(table[cols].notna().all().all())


def _error_bars(table: pd.DataFrame, col: str, intervals: bool) -> tuple[np.ndarray, np.ndarray]:
    """(above, below) the mean: to the interval bounds when ``intervals``, else ± the model disagreement (1 sd)."""
    mean = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float)
    if intervals:
        return (table[f"{col}_upper"].to_numpy(dtype=float) - mean, mean - table[f"{col}_lower"].to_numpy(dtype=float))
    sd = table[f"{col}_std"].to_numpy(dtype=float)
    return sd, sd


def _short_labels(table: pd.DataFrame) -> list[str]:
    col = "short" if "short" in table else "label"
    return [t if len(t) <= 24 else t[:23] + "…" for t in table[col].astype(str)]


def prediction_bars_figure(table: pd.DataFrame, *, gap_unit: str = "eV", pce_unit: str = "%", gap_label: str = "band gap") -> go.Figure:
    """Side-by-side predictions: band gap and PCE bars with error bars, one bar per entry.

    ``table``: columns ``label`` (full, for hovers), optionally ``short`` (tick labels), ``gap``,
    ``gap_std``, ``pce``, ``pce_std`` (NaN where not predicted); ``gap_label`` names the gap (``band gap (PBE)``).
    With ``gap_lower``/``gap_upper``/``pce_lower``/``pce_upper`` (a calibrated model, see :func:`has_intervals`)
    the error bars are the prediction intervals; otherwise ± 1 sd of the fold models (model disagreement).
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=[gap_label, "PCE"], horizontal_spacing=0.2)
    ticks = _short_labels(table)
    colors = [FOLD_COLORS[i % len(FOLD_COLORS)] for i in range(len(ticks))]
    intervals = has_intervals(table)
    for c, (col, unit) in enumerate((("gap", gap_unit), ("pce", pce_unit)), start=1):
        above, below = _error_bars(table, col, intervals)
        if intervals:
            extra = np.stack([table[f"{col}_lower"].to_numpy(dtype=float), table[f"{col}_upper"].to_numpy(dtype=float)], axis=1)
            hover = f"%{{customdata[1]}}<br>%{{y:.3f}} {unit}<br>interval %{{customdata[2]:.3f}}–%{{customdata[3]:.3f}} {unit}<extra></extra>"
        else:
            extra = np.empty((len(table), 0))
            hover = f"%{{customdata[1]}}<br>%{{y:.3f}} ± %{{customdata[0]:.3f}} {unit}<extra></extra>"
        custom = np.concatenate([np.stack([table[f"{col}_std"].to_numpy(dtype=float), table["label"].astype(str).to_numpy()], axis=1),
                                 extra.astype(object)], axis=1)
        fig.add_trace(go.Bar(x=ticks, y=table[col], marker_color=colors, showlegend=False,
                             error_y=dict(type="data", array=above, arrayminus=below, symmetric=not intervals, visible=True),
                             customdata=custom, hovertemplate=hover), row=1, col=c)
        fig.update_yaxes(title_text=f"predicted {gap_label if col == 'gap' else 'PCE'} ({unit})", row=1, col=c)
        fig.update_xaxes(title_text="entry (see the table)", tickangle=-25, row=1, col=c)
    style(fig, height=400)
    return fig


def screen_scatter_figure(
    ranked: pd.DataFrame,
    *,
    x: TargetInfo = TargetInfo.of(BANDGAP_PBE),
    y: TargetInfo = TargetInfo.of(PCE),
    top: int = 10,
    max_points: int = 20000,
    sq_curve: bool = True,
) -> go.Figure:
    """Screened candidates: predicted ``y`` against predicted ``x``, coloured by the ``y`` uncertainty; top ``top`` marked.

    ``ranked``: :func:`nestedae_core.predict.screen` output, best first.
    """
    fig = go.Figure()
    xm, ym = f"{x.key}_mean", f"{y.key}_mean"
    if xm not in ranked or ym not in ranked or ranked.empty:
        fig.add_annotation(text="no candidates to show", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_xaxes(title_text=x.title("predicted"))
        fig.update_yaxes(title_text=y.title("predicted"))
        return style(fig, height=420)
    d = ranked.head(max_points)
    ys = f"{y.key}_std"
    color = d[ys] if ys in d else None
    fig.add_trace(go.Scattergl(
        x=d[xm], y=d[ym], mode="markers", name="candidates",
        marker=dict(size=6, color=color, colorscale="Viridis", showscale=color is not None, opacity=0.75,
                    colorbar=dict(title=f"{y.label} model disagreement ({y.unit})" if y.unit else f"{y.label} model disagreement")),
        text=d["formula"],
        customdata=np.stack([d[ys] if ys in d else np.zeros(len(d)), d.get("tolerance_factor", pd.Series(np.nan, index=d.index))], axis=1),
        hovertemplate=(f"%{{text}}<br>{x.label} %{{x:.3f}}{_fmt_unit(x.unit)}<br>{y.label} %{{y:.2f}} ± %{{customdata[0]:.2f}}{_fmt_unit(y.unit)}"
                       "<br>tolerance factor %{customdata[1]:.3f}<extra></extra>"),
    ))
    t = d.head(top)
    fig.add_trace(go.Scatter(x=t[xm], y=t[ym], mode="markers", name=f"top {len(t)}",
                             marker=dict(size=13, symbol="star", color="#E45756", line=dict(width=1, color="white")),
                             text=t["formula"], hovertemplate="%{text}<extra>top</extra>"))
    if sq_curve and x.unit == "eV" and y.unit == "%":
        lo, hi = float(d[xm].min()), float(d[xm].max())
        grid = np.linspace(max(lo - 0.05, 0.5), hi + 0.05, 120)
        name = "Shockley–Queisser limit" + (f" (drawn at the {fidelity_label(x.fidelity)} gap: no measured gap)" if x.fidelity not in (None, "measured") else "")
        fig.add_trace(go.Scatter(x=grid, y=sq_limit(grid)["pce_percent"], mode="lines", name=name,
                                 line=dict(color=_SQ, width=2), hoverinfo="skip"))
    fig.update_xaxes(title_text=x.title("predicted"))
    fig.update_yaxes(title_text=y.title("predicted"))
    style(fig, height=460)
    fig.update_layout(legend=dict(orientation="h", y=1.08, x=0))
    return fig


# --------------------------------------------------------------------------- benchmarks


def benchmark_frames(bench: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summary and per-fold tables of a benchmark (the JSON shape of ``nestedae_core.benchmark``).

    Summary columns: task, dataset, target, unit, model, MAE, MAE sd, RMSE, R², seconds, folds and
    "MAE paper batches" (the NestedAE paper's batch-averaged scoring of the same predictions; NaN when absent).
    Per-fold columns: task, unit, model, fold (1-based), n, MAE, RMSE, R².
    """
    rows, frows = [], []
    for task, info in (bench.get("tasks") or {}).items():
        unit = info.get("unit", "")
        for model, m in (info.get("models") or {}).items():
            folds = m.get("folds") or []
            rows.append({"task": task, "dataset": info.get("dataset", ""), "target": info.get("target", ""), "unit": unit, "model": model,
                         "MAE": m.get("mae", np.nan), "MAE sd": m.get("mae_std", np.nan), "RMSE": m.get("rmse", np.nan),
                         "R²": m.get("r2", np.nan), "seconds": m.get("seconds", np.nan), "folds": len(folds),
                         "MAE paper batches": m.get("mae_paper_batches", np.nan)})
            for f in folds:
                frows.append({"task": task, "unit": unit, "model": model, "fold": int(f.get("fold", 0)) + 1, "n": f.get("n"),
                              "MAE": f.get("mae", np.nan), "RMSE": f.get("rmse", np.nan), "R²": f.get("r2", np.nan)})
    summary = pd.DataFrame(rows, columns=["task", "dataset", "target", "unit", "model", "MAE", "MAE sd", "RMSE", "R²", "seconds", "folds", "MAE paper batches"])
    per_fold = pd.DataFrame(frows, columns=["task", "unit", "model", "fold", "n", "MAE", "RMSE", "R²"])
    return summary, per_fold


#: Colours of the baselines, one per model (NestedAE keeps its own): ten distinct before any repeats.
BASELINE_COLORS = ("#F58518", "#54A24B", "#B279A2", "#72B7B2", "#EECA3B", "#9D755D", "#E45756", "#FF9DA6", "#79706E", "#BAB0AC")


def model_colors(models: Sequence[str]) -> dict[str, str]:
    """Model name -> colour, the same in every figure of a report: NestedAE blue, the baselines by sorted name."""
    others = sorted({m for m in models if m.lower() != "nestedae"})
    colors = {m: BASELINE_COLORS[i % len(BASELINE_COLORS)] for i, m in enumerate(others)}
    return {**colors, **{m: _OURS for m in models if m.lower() == "nestedae"}}


def benchmark_bars_figure(summary: pd.DataFrame, *, unit: str, title: str | None = None) -> go.Figure:
    """MAE per model (best first) with the fold standard deviation as error bars; NestedAE highlighted."""
    d = summary.sort_values("MAE")
    fig = go.Figure(go.Bar(
        x=d["model"], y=d["MAE"], error_y=dict(type="data", array=d["MAE sd"].fillna(0.0), visible=True),
        marker_color=[model_colors(list(d["model"]))[m] for m in d["model"]],
        customdata=d["MAE sd"], hovertemplate=f"%{{x}}<br>MAE %{{y:.4g}} ± %{{customdata:.3g}}{_fmt_unit(unit)}<extra></extra>",
    ))
    fig.update_xaxes(title_text="model")
    fig.update_yaxes(title_text=f"validation MAE ({unit or 'dimensionless'})", rangemode="tozero")
    return style(fig, height=360, title=title)


def benchmark_folds_figure(per_fold: pd.DataFrame, *, unit: str, title: str | None = None) -> go.Figure:
    """MAE of every model on each (identical) fold, one line per model."""
    fig = go.Figure()
    colors = model_colors(list(per_fold["model"].unique()))
    for model, d in per_fold.groupby("model", sort=False):
        d = d.sort_values("fold")
        ours = model.lower() == "nestedae"
        fig.add_trace(go.Scatter(x=d["fold"], y=d["MAE"], mode="lines+markers", name=model,
                                 line=dict(color=colors[model], width=3.5 if ours else 1.8),
                                 marker=dict(size=9 if ours else 6),
                                 hovertemplate=f"{model}<br>fold %{{x}}: MAE %{{y:.4g}}{_fmt_unit(unit)}<extra></extra>"))
    fig.update_xaxes(title_text="validation fold (identical for every model)", dtick=1)
    fig.update_yaxes(title_text=f"validation MAE ({unit or 'dimensionless'})")
    style(fig, height=360, title=title)
    # one column of model names right of the plot: a row of them under it ran into the fold axis's title
    fig.update_layout(legend=dict(orientation="v", x=1.02, xanchor="left", y=1.0, yanchor="top"))
    return fig


def split_comparison_figure(summaries: Mapping[str, pd.DataFrame], *, unit: str, title: str | None = None) -> go.Figure:
    """MAE of each model under each split (grouped bars): how much a random split flatters each model."""
    fig = go.Figure()
    colors = {"random": "#72B7B2", "grouped": "#4C78A8"}
    for split, d in summaries.items():
        fig.add_trace(go.Bar(x=d["model"], y=d["MAE"], name=f"{split} split", marker_color=colors.get(split, _OTHER),
                             error_y=dict(type="data", array=d["MAE sd"].fillna(0.0), visible=True),
                             hovertemplate=f"%{{x}}, {split}: MAE %{{y:.4g}}{_fmt_unit(unit)}<extra></extra>"))
    fig.update_xaxes(title_text="model")
    fig.update_yaxes(title_text=f"validation MAE ({unit or 'dimensionless'})", rangemode="tozero")
    style(fig, height=360, title=title)
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=1.1, x=0))
    return fig


def paired_differences_figure(comparison: Mapping[str, Any], *, unit: str, title: str | None = None) -> go.Figure:
    """Per-fold MAE difference, NestedAE minus the baseline (``PairedComparison.as_dict()``), with their mean.

    Bars below zero (NestedAE better on that fold) in NestedAE's colour, above zero in grey.
    """
    folds = [int(f) + 1 for f in comparison.get("folds", [])]
    diffs = list(comparison.get("differences", []))
    model, baseline = comparison.get("model", "nestedae"), comparison.get("baseline", "baseline")
    fig = go.Figure(go.Bar(
        x=folds, y=diffs, name="difference on the fold", marker_color=[_OURS if d < 0 else _OTHER for d in diffs],
        hovertemplate=f"fold %{{x}}: {model} − {baseline} = %{{y:+.4g}}{_fmt_unit(unit)}<extra></extra>",
    ))
    if diffs:
        mean = float(comparison.get("mean_difference", np.mean(diffs)))
        fig.add_hline(y=0.0, line=dict(color="#444", width=1))
        fig.add_hline(y=mean, line=dict(color="#E45756", dash="dash"))
        # the line's label right of the plot, where no fold's bar can sit under it
        fig.add_annotation(text=f"mean<br>{mean:+.3g}", x=1.0, xref="paper", xanchor="left", xshift=4, y=mean, yref="y",
                           showarrow=False, font=dict(color="#E45756"), align="left")
    else:
        fig.add_annotation(text="no shared fold to compare", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(title_text="validation fold (identical for both models)", dtick=1)
    fig.update_yaxes(title_text=f"MAE difference, {model} − {baseline} ({unit or 'dimensionless'})")
    style(fig, height=320, title=title)
    return fig.update_layout(margin=dict(r=70))  # room for the mean line's label
