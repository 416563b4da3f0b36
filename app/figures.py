"""Plotly figure builders of the Data and Compose pages.

Plain functions: data in, :class:`plotly.graph_objects.Figure` out, no Streamlit,
every axis titled with its unit. Science comes from nestedae_core (e.g. the
Shockley–Queisser curve from :func:`nestedae_core.physics.sq_limit`); these
functions only draw. Other pages put their builders in ``app/figures_<page>.py``
and may reuse :data:`COLUMN_INFO`, :func:`axis_title`, :data:`SITE_COLORS` and
:func:`style`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nestedae_core.api import (
    BANDGAP_HSE, BANDGAP_PBE, BANDGAP_PBE_DFT, DECOMPOSITION, DEVICE_OCTAHEDRAL_FACTOR, DEVICE_TARGETS,
    DEVICE_TOLERANCE_FACTOR, FF, JSC, MEASURED_BANDGAP, PCE, SITE_IONS, SITE_OF_ION, SLME, VOC, Composition,
    column_label, column_unit, sq_limit,
)

__all__ = [
    "COLUMN_INFO",
    "SITE_COLORS",
    "axis_title",
    "style",
    "target_histograms_figure",
    "x_site_ternary_figure",
    "site_occupancy_figure",
    "device_vs_bandgap_figure",
    "stack_breakdown_figure",
    "site_fractions_figure",
    "factor_bullet_figure",
]

#: Display name and unit of the data columns the app plots, from the one vocabulary
#: (:func:`nestedae_core.vocabulary.label` / :func:`~nestedae_core.vocabulary.unit`; "" unit = dimensionless).
COLUMN_INFO: dict[str, tuple[str, str]] = {
    c: (column_label(c), column_unit(c) or "dimensionless")
    for c in (BANDGAP_PBE_DFT, BANDGAP_HSE, DECOMPOSITION, SLME, MEASURED_BANDGAP, PCE, VOC, JSC, FF,
              DEVICE_TOLERANCE_FACTOR, DEVICE_OCTAHEDRAL_FACTOR)
}
#: The alloy tables' ``Gap`` is a DFT value (PBE or HSE06 by file): said so wherever it is plotted.
COLUMN_INFO[BANDGAP_PBE] = (f"{column_label(BANDGAP_PBE)} (DFT)", column_unit(BANDGAP_PBE))

#: One colour per perovskite site, used wherever sites are shown.
SITE_COLORS: dict[str, str] = {"A": "#4C78A8", "B": "#F58518", "X": "#54A24B"}

_POINT = "#4C78A8"
_SQ = "#E45756"


def axis_title(column: str, info: Mapping[str, tuple[str, str]] | None = None) -> str:
    """``"band gap (DFT) (eV)"``-style title of a column; the raw name plus "(a.u.)" when unknown."""
    label, unit = (info or COLUMN_INFO).get(column, (column, "a.u."))
    return f"{label} ({unit})" if unit else label


def style(fig: go.Figure, *, height: int | None = None, title: str | None = None) -> go.Figure:
    """The app's common layout: white template, compact margins, optional height and title."""
    fig.update_layout(
        template="plotly_white",
        margin=dict(l=10, r=10, t=50 if title else 30, b=10),
        **({"height": height} if height else {}),
        **({"title": dict(text=title, x=0.0, xanchor="left")} if title else {}),
    )
    return fig


# --------------------------------------------------------------------------- Data


def target_histograms_figure(
    df: pd.DataFrame,
    columns: Sequence[str],
    *,
    info: Mapping[str, tuple[str, str]] | None = None,
    bins: int = 40,
) -> go.Figure:
    """One histogram per column (missing values dropped), x axes titled with units, y = row count."""
    columns = [c for c in columns if c in df.columns]
    n = max(len(columns), 1)
    ncols = min(3, n)
    nrows = int(np.ceil(n / ncols))
    fig = make_subplots(rows=nrows, cols=ncols, horizontal_spacing=0.08, vertical_spacing=0.2)
    for i, column in enumerate(columns):
        row, col = divmod(i, ncols)
        values = pd.to_numeric(df[column], errors="coerce").dropna()
        fig.add_trace(
            go.Histogram(x=values, nbinsx=bins, name=axis_title(column, info), marker_color=_POINT,
                         hovertemplate="%{x}<br>%{y} rows<extra></extra>"),
            row=row + 1, col=col + 1,
        )
        fig.update_xaxes(title_text=axis_title(column, info), row=row + 1, col=col + 1)
        fig.update_yaxes(title_text="rows (count)", row=row + 1, col=col + 1)
    style(fig, height=280 * nrows)
    fig.update_layout(showlegend=False, bargap=0.05)
    return fig


def _unique_counts(fractions: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    sub = fractions.loc[:, list(columns)].dropna().round(4)
    return sub.value_counts().rename("count").reset_index()


def x_site_ternary_figure(fractions: pd.DataFrame) -> go.Figure:
    """X-site I/Br/Cl ternary: one marker per distinct X-site mix, size growing with its row count.

    ``fractions`` holds columns ``Cl``, ``Br``, ``I`` as fractions of the X site (sum 1).
    """
    counts = _unique_counts(fractions, ["I", "Br", "Cl"])
    size = 7 + 18 * np.sqrt(counts["count"] / max(counts["count"].max(), 1))
    fig = go.Figure(
        go.Scatterternary(
            a=counts["I"], b=counts["Br"], c=counts["Cl"], mode="markers",
            marker=dict(size=size, color=SITE_COLORS["X"], opacity=0.7, line=dict(color="white", width=0.5)),
            customdata=counts["count"],
            hovertemplate="I %{a:.3f}<br>Br %{b:.3f}<br>Cl %{c:.3f}<br>%{customdata} rows<extra></extra>",
            name="X-site mixes",
        )
    )
    fig.update_layout(
        ternary=dict(
            sum=1,
            aaxis=dict(title=dict(text="I (fraction of X site)")),
            baxis=dict(title=dict(text="Br (fraction of X site)")),
            caxis=dict(title=dict(text="Cl (fraction of X site)")),
        ),
    )
    style(fig, height=400)
    fig.update_layout(margin=dict(l=90, r=90, t=50, b=50))
    return fig


def site_occupancy_figure(fractions: pd.DataFrame, site: str) -> go.Figure:
    """Stacked bars per ion of ``site``: rows where the ion fills the site alone vs shares it (mixed).

    ``fractions`` holds the ion columns of the site (amounts or fractions of the
    site; each site sums to 1). Ions that never occur are left out.
    """
    ions = [ion for ion in SITE_IONS[site] if ion in fractions.columns]
    sub = fractions.loc[:, ions].dropna()
    present = sub > 1e-9
    alone = (sub >= 1 - 1e-6) & present
    mixed = present & ~alone
    totals = present.sum()
    shown = [ion for ion in ions if totals[ion] > 0]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=shown, y=[int(alone[ion].sum()) for ion in shown], name="alone on the site",
                         marker_color=SITE_COLORS[site], hovertemplate="%{x}: %{y} rows alone<extra></extra>"))
    fig.add_trace(go.Bar(x=shown, y=[int(mixed[ion].sum()) for ion in shown], name="mixed with other ions",
                         marker_color=SITE_COLORS[site], marker_pattern_shape="/", opacity=0.55,
                         hovertemplate="%{x}: %{y} rows mixed<extra></extra>"))
    fig.update_layout(barmode="stack", legend=dict(orientation="h", y=1.12, x=0))
    fig.update_xaxes(title_text=f"{site}-site ion")
    fig.update_yaxes(title_text="rows containing the ion (count)")
    return style(fig, height=360)


#: Key of :func:`~nestedae_core.physics.sq_limit`'s result for each device outcome.
_SQ_KEYS: dict[str, str] = {PCE: "pce_percent", VOC: "voc_V", JSC: "jsc_mA_per_cm2", FF: "ff"}


def device_vs_bandgap_figure(
    df: pd.DataFrame,
    *,
    gap_column: str = MEASURED_BANDGAP,
    targets: Sequence[str] = DEVICE_TARGETS,
    sq_curve: bool = True,
) -> go.Figure:
    """PCE, Voc, Jsc and FF against the measured band gap (2 x 2), with the Shockley–Queisser limit.

    Devices without a band gap are left out. The limit comes from
    :func:`nestedae_core.physics.sq_limit` (5778 K blackbody sun scaled to
    1000 W/m², cell at 300 K), drawn over the gap range of the data.
    """
    targets = [t for t in targets if t in df.columns]
    gaps = pd.to_numeric(df[gap_column], errors="coerce")
    has_gap = gaps.notna()
    ncols = 2
    nrows = int(np.ceil(len(targets) / ncols)) or 1
    fig = make_subplots(rows=nrows, cols=ncols, horizontal_spacing=0.1, vertical_spacing=0.16)
    if has_gap.any():
        lo, hi = float(gaps[has_gap].min()), float(gaps[has_gap].max())
    else:
        lo, hi = 1.1, 2.4
    grid = np.linspace(max(lo - 0.05, 0.3), hi + 0.05, 200)
    limit = sq_limit(grid) if sq_curve else None
    for i, target in enumerate(targets):
        row, col = divmod(i, ncols)
        y = pd.to_numeric(df[target], errors="coerce")
        ok = has_gap & y.notna()
        fig.add_trace(
            go.Scatter(x=gaps[ok], y=y[ok], mode="markers", name="devices", legendgroup="devices",
                       showlegend=i == 0, marker=dict(size=6, color=_POINT, opacity=0.35),
                       hovertemplate="gap %{x:.3f} eV<br>%{y}<extra></extra>"),
            row=row + 1, col=col + 1,
        )
        if limit is not None:
            fig.add_trace(
                go.Scatter(x=grid, y=limit[_SQ_KEYS[target]], mode="lines", name="Shockley–Queisser limit",
                           legendgroup="sq", showlegend=i == 0, line=dict(color=_SQ, width=2.5),
                           hovertemplate="gap %{x:.3f} eV<br>limit %{y:.3g}<extra></extra>"),
                row=row + 1, col=col + 1,
            )
        fig.update_xaxes(title_text=axis_title(gap_column), row=row + 1, col=col + 1)
        fig.update_yaxes(title_text=axis_title(target), row=row + 1, col=col + 1)
    style(fig, height=300 * nrows + 60)
    fig.update_layout(legend=dict(orientation="h", y=1.06, x=0))
    return fig


def stack_breakdown_figure(
    df: pd.DataFrame,
    stack_column: str,
    *,
    target: str = PCE,
    label: str | None = None,
) -> go.Figure:
    """Two horizontal bar charts per stack: device count and median ``target``, stacks sorted by count."""
    name = label or stack_column
    grouped = df.groupby(stack_column, dropna=True)[target]
    summary = pd.DataFrame({"count": grouped.size(), "median": grouped.median()}).sort_values("count")
    stacks = [str(s) for s in summary.index]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=("devices", f"median {axis_title(target)}"))
    fig.add_trace(go.Bar(y=stacks, x=summary["count"], orientation="h", marker_color=_POINT, name="devices",
                         hovertemplate="%{y}: %{x} devices<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(y=stacks, x=summary["median"], orientation="h", marker_color=SITE_COLORS["B"],
                         name=f"median {axis_title(target)}",
                         hovertemplate="%{y}: median %{x:.3g}<extra></extra>"), row=1, col=2)
    fig.update_xaxes(title_text="devices (count)", row=1, col=1)
    fig.update_xaxes(title_text=f"median {axis_title(target)}", row=1, col=2)
    fig.update_yaxes(title_text=name, row=1, col=1)
    style(fig, height=70 + 34 * max(len(stacks), 3))
    fig.update_layout(showlegend=False)
    return fig


# --------------------------------------------------------------------------- Compose


def site_fractions_figure(comp: Composition) -> go.Figure:
    """Bar per ion present: its fraction of its site (A and B amounts, X amount / 3), coloured by site."""
    fractions = comp.fractions()
    ions = [ion for ion, value in fractions.items() if value > 0]
    fig = go.Figure()
    for site in SITE_IONS:
        site_ions = [ion for ion in ions if SITE_OF_ION[ion] == site]
        fig.add_trace(go.Bar(
            x=site_ions, y=[fractions[ion] for ion in site_ions], name=f"{site} site",
            marker_color=SITE_COLORS[site], text=[f"{fractions[ion]:.3g}" for ion in site_ions],
            textposition="outside", hovertemplate="%{x}: %{y:.4g} of the site<extra></extra>",
        ))
    fig.update_xaxes(title_text="ion")
    fig.update_yaxes(title_text="fraction of its site (mol/mol)", range=[0, 1.15])
    style(fig, height=320)
    fig.update_layout(legend=dict(orientation="h", y=1.12, x=0), bargap=0.3)
    return fig


def factor_bullet_figure(
    tolerance: float,
    octahedral: float,
    *,
    tolerance_range: tuple[float, float],
    octahedral_range: tuple[float, float],
) -> go.Figure:
    """Two bullet gauges (Goldschmidt t, octahedral mu), each with its stability window shaded."""
    fig = go.Figure()
    rows = (
        # each gauge leaves room below it for its own tick labels (they sat on the next gauge's frame)
        ("tolerance factor t<br>(dimensionless)", tolerance, tolerance_range, (0.6, 1.2), [0.66, 1.0]),
        ("octahedral factor μ<br>(dimensionless)", octahedral, octahedral_range, (0.2, 1.0), [0.14, 0.48]),
    )
    for title, value, window, axis, domain in rows:
        lo = min(axis[0], value - 0.05) if np.isfinite(value) else axis[0]
        hi = max(axis[1], value + 0.05) if np.isfinite(value) else axis[1]
        inside = np.isfinite(value) and window[0] <= value <= window[1]
        fig.add_trace(go.Indicator(
            mode="number+gauge", value=value, number=dict(valueformat=".3f", font=dict(size=20)),
            title=dict(text=title, font=dict(size=12)),
            domain=dict(x=[0.3, 0.88], y=domain),
            gauge=dict(
                shape="bullet",
                axis=dict(range=[lo, hi], nticks=7, ticks="outside", tickfont=dict(size=10)),
                bar=dict(color="#2E7D32" if inside else "#C62828", thickness=0.35),
                steps=[dict(range=list(window), color="#DCEFD9")],
                threshold=dict(line=dict(color="#1F2A36", width=3), thickness=0.8, value=value),
            ),
        ))
    style(fig, height=250)
    fig.update_layout(margin=dict(l=10, r=20, t=20, b=24))
    return fig
