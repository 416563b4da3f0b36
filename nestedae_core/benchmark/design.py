"""``nestedae benchmark design``: optimisers compared on a design problem whose optimum is known.

The space is small enough to enumerate: A = Cs/FA/MA, B = Pb, X = Br/I on a 0.05 lattice
(231 x 21 = 4851 compositions). The chain predicts every point once; the grid optimum is the
best feasible point (the problem's gap window, inside every stage's domain). Each optimiser
(:data:`nestedae_core.design.SAMPLERS`: ours, and as references NSGA-II with the published
anchors' population of 100 and random search) then
runs the same problem on the same lattice for several seeds, its candidates looked up in the
precomputed grid (the same numbers the chain gives, without re-predicting), and we count the
model evaluations (distinct candidates) each needs to come within ``tolerance`` (relative) of
the grid optimum. A second figure: the time of a 14-ion, 500-evaluation design through the chain.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..design import DesignInfeasible, DesignProblem, Objective, QuantityRange, run_design
from ..design.lattice import counts_from_fractions
from ..model.chain import NestedAE
from ..predict import predict_fractions
from ..chemistry.composition import composition_grid

__all__ = ["grid_problem", "grid_optimum", "run_design_benchmark", "design_table"]

logger = logging.getLogger(__name__)


def grid_problem(*, max_evals: int = 2000, seed: int = 0, window: tuple[float, float] = (1.65, 1.75)) -> DesignProblem:
    """The benchmark's problem: maximise mean PCE (%) of Cs/FA/MA-Pb-Br/I at 0.05 steps, measured gap in ``window`` (eV)."""
    return DesignProblem(
        objectives=[Objective(quantity="pce_percent")],
        constraints=[QuantityRange(quantity="bandgap_eV", minimum=window[0], maximum=window[1])],
        a_ions=["Cs", "FA", "MA"], b_ions=["Pb"], x_ions=["Br", "I"], max_ions=3, resolution=0.05,
        max_evals=max_evals, seed=seed,
    )


def grid_optimum(model: NestedAE, problem: DesignProblem) -> tuple[pd.DataFrame, dict[tuple[int, ...], int], float, str]:
    """Every grid point predicted once: (table, counts -> row, best feasible first objective, its formula)."""
    grid = composition_grid(problem.site_ions("A"), problem.site_ions("B"), problem.site_ions("X"), problem.resolution)
    table = predict_fractions(model, grid, level=problem.level)
    counts = counts_from_fractions(grid, problem.divisions)
    index = {tuple(int(v) for v in row): i for i, row in enumerate(counts)}
    window = problem.constraints[0]
    gap = table[window.column]
    ok = (gap >= window.minimum) & (gap <= window.maximum) & table["in_domain"]
    if not ok.any():
        raise DesignInfeasible("the benchmark's gap window holds no in-domain grid point for this model")
    col = problem.objectives[0].column
    best = int(table.loc[ok, col].idxmax())
    return table, index, float(table.loc[best, col]), str(table.loc[best, "formula"])


def _lookup(table: pd.DataFrame, index: dict[tuple[int, ...], int], divisions: int) -> Callable[[np.ndarray, Any, Any], pd.DataFrame]:
    def predictor(fractions: np.ndarray, etl: Any, htl: Any) -> pd.DataFrame:
        rows = [index[tuple(int(v) for v in r)] for r in counts_from_fractions(fractions, divisions)]
        return table.iloc[rows].reset_index(drop=True)

    return predictor


def _evals_to_reach(history: pd.DataFrame, target: float) -> float:
    hit = history.loc[history["best"].notna() & (history["best"] >= target), "evaluation"]
    return float(hit.iloc[0]) if len(hit) else float("inf")


def run_design_benchmark(
    model: NestedAE,
    *,
    samplers: Sequence[str] = ("tpe", "ga", "random"),
    seeds: int = 10,
    max_evals: int = 2000,
    tolerance: float = 0.01,
    timing_evals: int = 500,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the comparison (see the module docstring); returns a JSON-ready report.

    ``report["optimisers"]``: per sampler, the evaluations each seed needed to reach within ``tolerance``
    (relative) of the grid optimum (``null`` when the budget ``max_evals`` ran out first), their median and
    the wall time. ``report["timing"]``: seconds of a 14-ion design of ``timing_evals`` evaluations
    through the chain with the default optimiser.
    """
    problem = grid_problem(max_evals=max_evals)
    table, index, optimum, formula = grid_optimum(model, problem)
    target = optimum - tolerance * abs(optimum)
    predictor = _lookup(table, index, problem.divisions)
    report: dict[str, Any] = {
        "problem": problem.model_dump(mode="json"),
        "grid_points": len(table),
        "grid_optimum": {"formula": formula, "value": optimum, "quantity": problem.objectives[0].column},
        "tolerance": tolerance,
        "seeds": seeds,
        "optimisers": {},
    }
    for name in samplers:
        reached: list[float] = []
        start = time.perf_counter()
        for seed in range(seeds):
            if progress is not None:
                progress(f"design benchmark: {name}, seed {seed + 1} of {seeds}")
            res = run_design(model, problem.model_copy(update={"seed": seed}), sampler=name, predictor=predictor,
                             stop_at=target)
            reached.append(_evals_to_reach(res.history, target))
        finite = np.array(reached)
        report["optimisers"][name] = {
            "evaluations_to_optimum": [None if not np.isfinite(v) else int(v) for v in reached],
            "median": None if not np.isfinite(np.median(finite)) else float(np.median(finite)),
            "reached": int(np.isfinite(finite).sum()),
            "seconds": round(time.perf_counter() - start, 2),
        }
    wide = DesignProblem(
        a_ions=["K", "Rb", "Cs", "MA", "FA"], b_ions=["Ca", "Sr", "Ba", "Ge", "Sn", "Pb"], x_ions=["Cl", "Br", "I"],
        constraints=[QuantityRange(quantity="bandgap_eV", minimum=1.3, maximum=1.4)], max_evals=timing_evals, seed=0,
    )
    start = time.perf_counter()
    if progress is not None:
        progress(f"design benchmark: 14-ion design, {timing_evals} evaluations")
    try:
        run_design(model, wide)
        report["timing"] = {"ions": 14, "evaluations": timing_evals, "seconds": round(time.perf_counter() - start, 2)}
    except DesignInfeasible as exc:
        report["timing"] = {"ions": 14, "evaluations": timing_evals, "seconds": round(time.perf_counter() - start, 2), "note": str(exc)}
    return report


def design_table(report: dict[str, Any]) -> str:
    """The report as a Markdown table (optimiser, median evaluations to the optimum, seeds reached, seconds)."""
    opt = report["grid_optimum"]
    lines = [
        f"grid optimum: {opt['formula']} {opt['quantity']} = {opt['value']:.3f} over {report['grid_points']} points "
        f"(within {report['tolerance']:.0%}; {report['seeds']} seeds)",
        "",
        "| optimiser | median evaluations to the optimum | seeds that reached it | seconds |",
        "| --- | --- | --- | --- |",
    ]
    for name, r in report["optimisers"].items():
        med = "not reached" if r["median"] is None else f"{r['median']:.0f}"
        lines.append(f"| {name} | {med} | {r['reached']} of {report['seeds']} | {r['seconds']:.1f} |")
    t = report.get("timing")
    if t:
        lines += ["", f"14-ion design, {t['evaluations']} evaluations through the chain: {t['seconds']:.1f} s"]
    return "\n".join(lines)
