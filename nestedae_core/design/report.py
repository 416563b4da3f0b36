"""A design's shareable report: the problem, how the search went, the proposals (self-contained HTML)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..errors import InputError
from ..report import Section, render
from .optimise import DesignResult, nondominated
from .problem import DesignProblem

__all__ = ["design_figures", "design_report", "pareto_figure"]


def design_figures(result: DesignResult) -> list[tuple[str, Any]]:
    """(name, plotly figure) pairs: the best first objective against model evaluations, and every evaluated
    candidate in the plane of the first two objectives' quantities (ranked, out of domain, missing a constraint)."""
    import plotly.graph_objects as go

    p = result.problem
    figs: list[tuple[str, Any]] = []
    o = p.objectives[0]
    h = result.history.dropna()
    if len(h):
        fig = go.Figure(go.Scatter(x=h["evaluation"], y=h["best"], mode="lines", name="best so far", line=dict(color="#4C78A8")))
        fig.update_layout(height=320, margin=dict(l=60, r=20, t=50, b=50), template="plotly_white",
                          title_text=f"Search progress: the best {o.column} meeting every constraint so far")
        fig.update_xaxes(title_text="model evaluations")
        fig.update_yaxes(title_text=f"best {o.column}")
        figs.append(("search progress", fig))
    ev = result.evaluated
    quantities = [c for c in (o.column, *(x.column for x in p.objectives[1:]), *(c.column for c in p.constraints)) if c in ev]
    cols = list(dict.fromkeys(quantities))
    if len(cols) >= 2:
        x, y = cols[1], cols[0]
        fig = go.Figure()
        meets = ev["range_violation"] <= 0
        inside = ev["in_domain"].astype(bool)
        for mask, name, color in ((meets & inside, "meets every constraint, in domain", "#4C78A8"),
                                  (meets & ~inside, "meets the constraints, out of domain", "#F58518"),
                                  (~meets, "misses a constraint", "#BBBBBB")):
            part = ev[mask]
            if len(part):
                fig.add_trace(go.Scattergl(x=part[x], y=part[y], mode="markers", name=name, text=part["formula"],
                                           marker=dict(size=6, color=color, opacity=0.75),
                                           hovertemplate="%{text}<br>%{x:.3f}, %{y:.3f}<extra></extra>"))
        fig.update_layout(height=420, margin=dict(l=60, r=20, t=50, b=50), template="plotly_white",
                          title_text="Every candidate the search evaluated")
        fig.update_xaxes(title_text=x)
        fig.update_yaxes(title_text=y)
        figs.append(("candidates", fig))
    if len(p.objectives) >= 2 and len(ev):
        figs.append(("pareto front", pareto_figure(ev, p)))
    return figs


def pareto_figure(evaluated: pd.DataFrame, problem: DesignProblem, *, title: str = "Pareto front") -> Any:
    """The evaluated candidates in the plane of the first two objectives, the Pareto front of those that meet every
    constraint inside the domain highlighted (a line through its points); ``evaluated`` has each objective's column and
    ``objective_0``/``objective_1`` (minimised), ``in_domain``, ``range_violation`` and ``formula``
    (:attr:`DesignResult.evaluated` or a running job's :func:`~nestedae_core.design.job.design_live`). Needs two objectives."""
    import plotly.graph_objects as go

    if len(problem.objectives) < 2:
        raise InputError("a Pareto front needs two objectives")
    o1, o2 = problem.objectives[0], problem.objectives[1]
    x, y = o2.column, o1.column
    ok = (evaluated["range_violation"] <= 0) & evaluated["in_domain"].astype(bool)
    good = evaluated[ok]
    front = good[nondominated(good[["objective_0", "objective_1"]].to_numpy())] if len(good) else good
    front = front.sort_values(x, kind="stable")
    fig = go.Figure()
    for part, name, color in ((evaluated[~ok], "misses a constraint or out of domain", "#BBBBBB"),
                              (good, "meets every constraint, in domain", "#9ECAE9")):
        if len(part):
            fig.add_trace(go.Scattergl(x=part[x], y=part[y], mode="markers", name=name, text=part["formula"],
                                       marker=dict(size=5, color=color, opacity=0.7),
                                       hovertemplate="%{text}<br>%{x:.3f}, %{y:.3f}<extra></extra>"))
    if len(front):
        fig.add_trace(go.Scatter(x=front[x], y=front[y], mode="lines+markers", name=f"Pareto front ({len(front)})", text=front["formula"],
                                 line=dict(color="#E45756", width=2),
                                 marker=dict(size=9, color="#E45756", line=dict(color="white", width=1)),
                                 hovertemplate="%{text}<br>%{x:.3f}, %{y:.3f}<extra></extra>"))
    fig.update_layout(height=420, margin=dict(l=60, r=20, t=50, b=50), template="plotly_white",
                      title_text=f"{title}: {o1.label} against {o2.label}, {len(evaluated)} candidates evaluated")
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=y)
    return fig


def design_report(result: DesignResult, table: pd.DataFrame, *, provenance: Mapping[str, Any] | None = None, top: int = 50) -> str:
    """HTML report of a design: settings, search progress, the ranked proposals (``top`` rows of ``table``,
    :func:`nestedae_core.design.proposal_table`) and the notes."""
    s = result.summary()
    p = result.problem
    settings = pd.DataFrame({
        "setting": ["objectives", "constraints", "ions (A | B | X)", "at most ions per site", "Pb", "resolution", "in domain required",
                    "optimiser", "model evaluations", "seed", "seconds"],
        "value": ["; ".join(o.label for o in p.objectives), "; ".join(c.label for c in p.constraints) or "none",
                  " | ".join(", ".join(p.site_ions(site)) for site in "ABX"), str(p.max_ions),
                  "none (Pb-free)" if p.pb_free else (f"at most {p.max_pb:g} of the B site" if p.max_pb is not None else "allowed"),
                  f"{p.resolution:g}", "yes" if p.in_domain else "no", result.sampler, str(result.evaluations), str(p.seed),
                  f"{result.elapsed_s:.1f}"],
    })
    paras = [f"{s['ranked']} proposals meet every constraint inside the model's domain; {s['out_of_domain']} more meet them outside it "
             "(shown after, never ranked among them). A design is a ranked hypothesis for the lab, on our data's coverage: "
             "check the nearest measured composition and the intervals.", *result.notes]
    sections = [Section("Problem", paras, tables=[("", settings)]),
                Section("Search", [], figures=design_figures(result)),
                Section("Proposals", [], tables=[(f"the best {min(top, len(table))} of {len(table)}", table.head(top))])]
    return render("Design", sections, provenance, subtitle="inverse design")
