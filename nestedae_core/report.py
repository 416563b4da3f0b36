"""Shareable reports: one self-contained HTML file with interactive plotly figures.

A report opens in any browser without a server or a network: plotly.js is
embedded once in the file (about 4.6 MB), each figure is plotly's own HTML export,
and every figure has buttons that download it as PNG or SVG under a name that says
what it is (``<report>-<figure>.svg``; the modebar's camera gives the PNG too).
Every report names the model that produced it (:func:`nestedae_core.predict.model_provenance`:
name, SHA-256 of the bundle's manifest, package version) and when it was made.

Builders:

* :func:`prediction_report`: a prediction (:class:`~nestedae_core.predict.QueryResult`)
  with its chain, intervals, domain verdict and, optionally, attributions;
* :func:`screening_report`: a screening result (:func:`nestedae_core.predict.screen`);
* :func:`training_report`: a training run's metrics and out-of-fold parity plots;
* :func:`lesson_report`: a guided lesson (question, figure, one-sentence answer per step);
* :func:`render`: any list of :class:`Section` (text, tables, figures).

All return the HTML text; :func:`write_report` writes it atomically
(:mod:`nestedae_core.io_safe`). User text (formulas, stacks, model names, titles)
is HTML-escaped. Units: band gaps eV, PCE %, each target its own unit.
"""
from __future__ import annotations

import datetime as _dt
import html
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Section",
    "figure_filename",
    "lesson_report",
    "prediction_report",
    "render",
    "screening_report",
    "training_report",
    "write_report",
]

_PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D")


@dataclass
class Section:
    """A part of a report: a heading, paragraphs (plain text, escaped), tables and named figures.

    ``figures``: (name, plotly figure) pairs; the name becomes the download file name.
    """

    heading: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, Any]] = field(default_factory=list)


def figure_filename(*parts: str) -> str:
    """A file name stem from words: ``-`` between words, only ``[A-Za-z0-9._-]`` (case kept: ``Prediction-for-MAPbI3-chain``)."""
    text = "-".join(p for p in parts if p)
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", text)
    text = re.sub(r"-{2,}", "-", text).strip("-.")
    return (text or "figure")[:120]


def _table_html(caption: str, table: pd.DataFrame) -> str:
    body = table.to_html(index=False, escape=True, na_rep="", border=0, classes="data", float_format=lambda v: f"{v:.4g}")
    cap = f"<p class='caption'>{html.escape(caption)}</p>" if caption else ""
    return f"<div class='table'>{cap}{body}</div>"


def _figure_html(fig: Any, stem: str, div_id: str) -> str:
    import plotly.io as pio

    config = {"displaylogo": False, "responsive": True,
              "toImageButtonOptions": {"format": "png", "filename": stem, "scale": 2}}
    plot = pio.to_html(fig, full_html=False, include_plotlyjs=False, config=config, div_id=div_id)
    safe = html.escape(stem, quote=True)
    buttons = (f"<div class='dl'>download <button type='button' onclick=\"Plotly.downloadImage('{div_id}', "
               f"{{format: 'png', scale: 2, filename: '{safe}'}})\">PNG</button> "
               f"<button type='button' onclick=\"Plotly.downloadImage('{div_id}', {{format: 'svg', filename: '{safe}'}})\">SVG</button>"
               f" <span class='fname'>{safe}</span></div>")
    return f"<div class='figure'>{plot}{buttons}</div>"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.sub{color:#666;margin-top:0} table.data{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
table.data th,table.data td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left} table.data th{background:#f5f5f5}
.caption{color:#555;font-size:.9rem;margin-bottom:.2rem} .figure{margin:1rem 0}
.dl{font-size:.8rem;color:#666} .dl button{font-size:.8rem;margin-left:.2rem} .fname{font-family:monospace;margin-left:.5rem}
.prov td:first-child{font-weight:600}
"""


def render(title: str, sections: Sequence[Section], provenance: Mapping[str, Any] | None = None, *, subtitle: str = "",
           created: _dt.datetime | None = None) -> str:
    """The report as one self-contained HTML document (plotly.js embedded once, works offline).

    ``provenance``: :func:`~nestedae_core.predict.model_provenance` of the model
    (shown in a table at the top). All text is HTML-escaped.
    """
    from plotly.offline import get_plotlyjs

    when = (created or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class='sub'>{html.escape(subtitle + ' · ' if subtitle else '')}made {html.escape(when)} with nestedae</p>"]
    if provenance:
        rows = [("model", provenance.get("name")), ("bundle SHA-256 (manifest.json)", provenance.get("bundle_sha256") or "not saved as a bundle"),
                ("nestedae version", provenance.get("version"))]
        parts.append("<table class='data prov'>" + "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows) + "</table>")
    stem = figure_filename(title)
    n = 0
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.heading)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in sec.paragraphs]
        parts += [_table_html(c, t) for c, t in sec.tables]
        for name, fig in sec.figures:
            n += 1
            parts.append(_figure_html(fig, figure_filename(stem, name), f"fig{n}"))
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head>\n<body>\n{body}\n</body></html>\n")


def lesson_report(title: str, steps: Sequence[tuple[str, Any, str]], *, subtitle: str = "") -> str:
    """A guided lesson as one HTML file: per step a numbered question (heading), its figure and ``Answer: ...``.

    ``steps``: (question, plotly figure, one-sentence answer) triples, in order.
    """
    if not steps:
        from .errors import InputError

        raise InputError("a lesson needs at least one step")
    return render(title, [Section(f"Step {n}. {q}", [f"Answer: {a}"], figures=[(f"step-{n}", fig)])
                          for n, (q, fig, a) in enumerate(steps, start=1)], subtitle=subtitle)


def write_report(path: str | os.PathLike[str], text: str) -> Path:
    """Write a report atomically (temp file + rename): a failure leaves no partial file. Returns the path."""
    from .io_safe import atomic_write_text

    return atomic_write_text(path, text)


# --------------------------------------------------------------------------- figures


def _packed(values: Any) -> np.ndarray:
    """Point coordinates as float32 (7 significant digits, beyond what a hover or a screen shows): half the bytes of
    float64 in the report's packed arrays."""
    return np.asarray(values, dtype=np.float32)


def _style(fig: Any, height: int = 380) -> Any:
    fig.update_layout(template="plotly_white", height=height, margin=dict(l=60, r=20, t=50, b=50), font=dict(size=13))
    return fig


def _targets_figure(targets: Mapping[str, Mapping[str, Any]]) -> Any:
    """One panel per target: the prediction with its interval (or ± model disagreement)."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    items = list(targets.items())
    cols = min(4, max(1, len(items)))
    rows = (len(items) + cols - 1) // cols
    titles = [f"{t.get('name') or t['label']} · {t['stage']}" for _, t in items]  # a gap's fidelity (and phase) in its name
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.08, vertical_spacing=0.25)
    for k, (_, t) in enumerate(items):
        r, c = k // cols + 1, k % cols + 1
        mean = t["mean"]
        if t.get("lower") is not None and t.get("upper") is not None:
            plus, minus, what = t["upper"] - mean, mean - t["lower"], f"{100 * t['level']:.0f} % prediction interval"
        else:
            plus = minus = t.get("disagreement", t.get("std", 0.0))
            what = "± model disagreement (sd of the fold models)"
        fig.add_trace(go.Scatter(x=[t.get("name") or t["label"]], y=[mean], mode="markers", marker=dict(size=11, color=_PALETTE[k % len(_PALETTE)]),
                                 error_y=dict(type="data", array=[plus], arrayminus=[minus], visible=True, width=8), showlegend=False,
                                 hovertemplate=f"%{{y:.4g}} {t['unit']}<br>{what}<extra></extra>"), row=r, col=c)
        fig.update_yaxes(title_text=t["unit"] or "dimensionless", row=r, col=c)
        fig.update_xaxes(showticklabels=False, row=r, col=c)
    return _style(fig, height=300 * rows)


def _attribution_figure(att: Any, top: int = 12) -> Any:
    """Horizontal bars of one row's largest attributions (output unit), base value and prediction in the title."""
    import plotly.graph_objects as go

    v = att.values[0]
    order = np.argsort(-np.abs(v), kind="stable")[:top][::-1]
    disp = att.display_data[0]
    names = [f"{att.feature_names[j]} = {disp[j] if isinstance(disp[j], str) else format(float(disp[j]), '.4g')}" for j in order]
    colors = ["#E45756" if v[j] > 0 else "#4C78A8" for j in order]
    fig = go.Figure(go.Bar(x=v[order], y=names, orientation="h", marker_color=colors,
                           hovertemplate=f"%{{y}}<br>%{{x:+.4g}} {att.unit}<extra></extra>"))
    unit = f" {att.unit}" if att.unit else ""
    fig.update_layout(title=f"{att.label}: base {att.base_values[0]:.4g}{unit} → prediction {att.predictions[0]:.4g}{unit} ({att.explainer})")
    fig.update_xaxes(title_text=f"attribution ({att.unit or 'dimensionless'})")
    return _style(fig, height=max(320, 28 * len(order) + 120))


# --------------------------------------------------------------------------- builders


def _prediction_table(result: Any) -> pd.DataFrame:
    rows = []
    for t in result.targets.values():
        interval = (f"{t['lower']:.4g} – {t['upper']:.4g}" if t.get("lower") is not None and t.get("upper") is not None else "")
        rows.append({"stage": t["stage"], "quantity": t.get("name") or t["label"], "fidelity": t.get("fidelity") or "",
                     "phase": t.get("phase") or "", "prediction": t["mean"],
                     f"interval ({100 * t['level']:.0f} %)": interval, "model disagreement (sd)": t["disagreement"], "unit": t["unit"]})
    return pd.DataFrame(rows)


def prediction_report(result: Any, *, attributions: Mapping[str, Any] | None = None, provenance: Mapping[str, Any] | None = None,
                      title: str | None = None) -> str:
    """Report of one prediction: the query, every stage's targets with intervals, the domain verdict and attributions.

    ``result``: a :class:`~nestedae_core.predict.QueryResult`; ``attributions``:
    name -> one-row :class:`~nestedae_core.explain.Attribution` (e.g.
    :func:`nestedae_core.batch.explain_outputs`); ``provenance``: defaults to
    ``result.model``.
    """
    prov = provenance if provenance is not None else result.model
    stacks = ", ".join(f"{k.split('_')[0]} {v}{' (default)' if k in result.defaulted else ''}" for k, v in result.categorical.items())
    query = Section("Query", [f"Composition {result.formula}" + (f"; {stacks}" if stacks else "") + "."])
    chain = " → ".join(dict.fromkeys(t["stage"] for t in result.targets.values()))
    calibrated = any(t.get("lower") is not None for t in result.targets.values())
    note = ("Error bars are prediction intervals (CV+)." if calibrated else
            "This model has no calibrated prediction interval; error bars are the disagreement of its fold models, not an error bar.")
    pred = Section("Prediction through the chain", [f"Stages: {chain}. {note}"], tables=[("", _prediction_table(result))],
                   figures=[("chain", _targets_figure(result.targets))])
    if result.in_domain:
        verdict = "The query lies inside the training domain of every stage."
    else:
        verdict = f"Outside the training domain from stage '{result.domain_stage}': {result.domain_message} Treat the prediction as an extrapolation."
    dist = pd.DataFrame({"stage": list(result.domain_distance), "distance": list(result.domain_distance.values()),
                         "inside": ["yes" if result.stage_in_domain.get(s) else "no" for s in result.domain_distance]})
    dom = Section("Applicability domain", [verdict], tables=[("distance to the training data per stage", dist)])
    sections = [query, pred, dom]
    if attributions:
        sec = Section("Why: attributions", ["Each bar is an input's contribution; base value + sum of the contributions = prediction "
                                            "(in the output's unit). The base value is the model's expected output over its stored background; "
                                            "the exact and the permutation explainers estimate it differently, so it can differ slightly between them."])
        for key, att in attributions.items():
            sec.figures.append((f"attributions-{key}", _attribution_figure(att)))
            top = att.top(len(att.feature_names), row=0)
            sec.tables.append((f"{att.label} ({att.unit}), explainer {att.explainer}: all attributions", top[["feature", "data", "value", "unit"]]
                               .rename(columns={"data": "input value", "value": "attribution"})))
        sections.append(sec)
    return render(title or f"Prediction for {result.formula}", sections, prov, subtitle="prediction")


def screening_report(ranked: pd.DataFrame, *, provenance: Mapping[str, Any] | None, settings: Mapping[str, Any] | None = None,
                     top: int = 50, title: str = "Screening result") -> str:
    """Report of a screening run: its settings, the ranking (``top`` rows) and a scatter of the candidates.

    ``ranked``: :func:`nestedae_core.predict.screen` output (best first, in-domain first).
    """
    import plotly.graph_objects as go

    settings = dict(settings or {})
    paras = [f"{len(ranked)} candidates kept; {int(ranked['in_domain'].sum()) if 'in_domain' in ranked else len(ranked)} inside the training domain. "
             "Ranking: in-domain candidates first, then by the ranking target."]
    sec = [Section("Settings", paras, tables=[("", pd.DataFrame({"setting": list(settings), "value": [str(v) for v in settings.values()]}))] if settings else [])]
    means = [c for c in ranked.columns if c.endswith("_mean")]
    gap = ranked.attrs.get("bandgap_key")
    x = f"{gap}_mean" if gap and f"{gap}_mean" in ranked else (means[0] if means else None)
    y = means[-1] if means else None
    figs = []
    if x and y and len(ranked):
        d = ranked.head(20000)
        inside = d["in_domain"].astype(bool) if "in_domain" in d else pd.Series(True, index=d.index)
        fig = go.Figure()
        for mask, name, color in ((inside, "inside the training domain", "#4C78A8"), (~inside, "outside", "#BBBBBB")):
            part = d[mask]
            if len(part):
                fig.add_trace(go.Scattergl(x=_packed(part[x]), y=_packed(part[y]), mode="markers", name=name, text=part.get("formula"),
                                           marker=dict(size=6, color=color, opacity=0.7),
                                           hovertemplate="%{text}<br>%{x:.3f}, %{y:.3f}<extra></extra>"))
        fig.update_xaxes(title_text=x[:-5])
        fig.update_yaxes(title_text=y[:-5])
        figs.append(("candidates", _style(fig, height=420)))
    shown = ranked.head(top).drop(columns=[c for c in ranked.columns if c in ("K", "Rb", "Cs", "MA", "FA", "Ca", "Sr", "Ba", "Ge", "Sn", "Pb", "Cl", "Br", "I")])
    sec.append(Section("Candidates", [], tables=[(f"the best {min(top, len(ranked))} of {len(ranked)}", shown)], figures=figs))
    return render(title, sec, provenance, subtitle="screening")


def training_report(
    name: str,
    metrics: Mapping[str, Mapping[str, Any]],
    oof: Mapping[str, pd.DataFrame] | None = None,
    *,
    provenance: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    figures: Sequence[tuple[str, Any]] = (),
) -> str:
    """Report of a training run: per target the validation MAE of every fold, and out-of-fold parity plots.

    ``metrics``: stage -> target column -> ``{"mae", "mae_std", "folds": [{"fold", "mae"}, ...], ...}``
    (:attr:`CrossValidationResult.metrics`); ``oof``: stage -> out-of-fold frame with
    ``<target>_true`` / ``<target>_pred`` / ``fold`` columns; ``figures``: extra
    (name, figure) pairs the caller already drew (e.g. the dashboard's own).
    """
    import plotly.graph_objects as go

    rows = []
    for stage, per in metrics.items():
        for col, m in per.items():
            if not isinstance(m, Mapping):
                continue
            rows.append({"stage": stage, "target": col, "MAE (mean over folds)": m.get("mae"), "MAE sd over folds": m.get("mae_std"),
                         "R²": m.get("r2"), "folds": len(m.get("folds", []))})
    secs = [Section("Settings", [], tables=[("", pd.DataFrame({"setting": list(settings), "value": [str(v) for v in settings.values()]}))])] if settings else []
    secs.append(Section("Validation metrics", ["Mean absolute error of each target on the held-out folds (the target's unit)."],
                        tables=[("", pd.DataFrame(rows))]))
    figs: list[tuple[str, Any]] = list(figures)
    for stage, frame in (oof or {}).items():
        for col in [c[:-5] for c in frame.columns if c.endswith("_true")]:
            if f"{col}_pred" not in frame:
                continue
            d = frame[[f"{col}_true", f"{col}_pred"] + (["fold"] if "fold" in frame else [])].dropna()
            if d.empty:
                continue
            fig = go.Figure()
            for k, part in (d.groupby("fold") if "fold" in d else [(0, d)]):
                fig.add_trace(go.Scattergl(x=_packed(part[f"{col}_true"]), y=_packed(part[f"{col}_pred"]), mode="markers", name=f"fold {int(k) + 1}",
                                           marker=dict(size=5, opacity=0.6, color=_PALETTE[int(k) % len(_PALETTE)])))
            lo = float(min(d[f"{col}_true"].min(), d[f"{col}_pred"].min()))
            hi = float(max(d[f"{col}_true"].max(), d[f"{col}_pred"].max()))
            fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x", line=dict(dash="dash", color="#555")))
            fig.update_layout(title=f"{col} ({stage}): out-of-fold predicted vs measured")
            fig.update_xaxes(title_text=f"measured {col}")
            fig.update_yaxes(title_text=f"predicted {col}")
            figs.append((f"parity-{stage}-{col}", _style(fig, height=420)))
    if figs:
        secs.append(Section("Out-of-fold predictions", [], figures=figs))
    return render(f"Training run {name}", secs, provenance, subtitle="training")
