"""``nestedae benchmark design``: optimisers compared on a design problem whose optimum is known.

The space is small enough to enumerate: A = Cs/FA/MA, B = Pb, X = Br/I on a 0.05 lattice
(231 x 21 = 4851 compositions). The chain predicts every point once; the grid optimum is the
best feasible point (the problem's gap window, inside every stage's domain). Each optimiser
(:data:`nestedae_core.design.SAMPLERS`: ours, ``auto``, and as references pymoo's genetic algorithm
with the published anchors' settings, population 100, and random search) then
runs the same problem on the same lattice for several seeds, its candidates looked up in the
precomputed grid (the same numbers the chain gives, without re-predicting), and we count the
model evaluations (distinct candidates) each needs to come within ``tolerance`` (relative) of
the grid optimum. A second figure: the time of a 14-ion, 500-evaluation design through the chain.

A third: hypervolume against evaluations on a two-objective problem on the same grid (maximise
PCE, bring the measured gap close to :data:`HV_GAP_TARGET`; in-domain points only). The reference
front is the grid's Pareto front; an optimiser's hypervolume after N evaluations (pymoo's
indicator, reference point the worst in-domain grid point) is given as a fraction of the front's.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..design import DesignInfeasible, DesignProblem, Objective, QuantityRange, run_design
from ..design.optimise import nondominated
from ..design.lattice import counts_from_fractions, parameter_names
from ..design.samplers import resolve_sampler
from ..model.chain import NestedAE
from ..predict import predict_fractions
from ..chemistry.composition import composition_grid

__all__ = ["grid_problem", "grid_optimum", "pareto_problem", "hypervolume_curve", "run_design_benchmark", "design_table"]

#: The two-objective problem's gap target (eV): the top cell of a tandem.
HV_GAP_TARGET = 1.70
#: Evaluations after which the two-objective problem's hypervolume is reported.
HV_CHECKPOINTS: tuple[int, ...] = (20, 50, 100, 200)

logger = logging.getLogger(__name__)

#: How evaluations are counted, the same for every optimiser (in the report and under its table).
COUNTING = ("an evaluation is one distinct composition through the model; a composition an optimiser proposes again "
            "is answered from the run's cache and not counted again, for every optimiser alike")


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


def pareto_problem(*, max_evals: int = 200, seed: int = 0, gap_target: float = HV_GAP_TARGET) -> DesignProblem:
    """The two-objective problem: maximise mean PCE (%) and bring the mean measured gap close to ``gap_target`` (eV),
    on the grid of :func:`grid_problem`, in-domain candidates only."""
    return grid_problem(max_evals=max_evals, seed=seed).model_copy(update={
        "objectives": [Objective(quantity="pce_percent"), Objective(quantity="bandgap_eV", goal="target", target=gap_target)],
        "constraints": [],
    })


def _objective_matrix(table: pd.DataFrame, problem: DesignProblem) -> np.ndarray:
    """(n, k) objective values of prediction rows, each minimised (as the optimisers see them)."""
    cols = []
    for o in problem.objectives:
        v = table[o.column].to_numpy(dtype=np.float64)
        cols.append(-v if o.goal == "maximize" else np.abs(v - float(o.target)) if o.goal == "target" else v)  # type: ignore[arg-type]
    return np.column_stack(cols)


def hypervolume_curve(evaluated: pd.DataFrame, reference_point: np.ndarray, front_hv: float, checkpoints: Sequence[int]) -> list[float]:
    """Hypervolume of the feasible candidates among the first N evaluations, for each N of ``checkpoints``,
    as a fraction of ``front_hv`` (the reference front's); objectives ``objective_<j>``, minimised."""
    from pymoo.indicators.hv import Hypervolume

    indicator = Hypervolume(ref_point=np.asarray(reference_point, dtype=np.float64))
    objs = sorted(c for c in evaluated.columns if c.startswith("objective_"))
    out = []
    for n in checkpoints:
        part = evaluated[(evaluated["evaluation"] <= n) & (evaluated["violation"] <= 0)]
        F = part[objs].to_numpy(dtype=np.float64)
        F = F[(F < reference_point).all(axis=1)]
        out.append(float(indicator(F)) / front_hv if len(F) else 0.0)
    return out


def _pareto_report(model: NestedAE, table: pd.DataFrame, index: dict[tuple[int, ...], int], samplers: Sequence[str], seeds: int,
                   checkpoints: Sequence[int], progress: Callable[[str], None] | None) -> dict[str, Any]:
    from pymoo.indicators.hv import Hypervolume

    problem = pareto_problem(max_evals=max(checkpoints))
    F = _objective_matrix(table, problem)[table["in_domain"].to_numpy(dtype=bool)]
    reference_point = F.max(axis=0)
    front = F[nondominated(F)]
    front_hv = float(Hypervolume(ref_point=reference_point)(front))
    predictor = _lookup(table, index, problem.divisions)
    out: dict[str, Any] = {
        "objectives": [o.label for o in problem.objectives],
        "reference_point": [float(v) for v in reference_point],
        "front_points": int(len(front)),
        "front_hypervolume": front_hv,
        "checkpoints": list(checkpoints),
        "optimisers": {},
    }
    for name in samplers:
        curves = []
        start = time.perf_counter()
        for seed in range(seeds):
            if progress is not None:
                progress(f"design benchmark, two objectives: {name}, seed {seed + 1} of {seeds}")
            res = run_design(model, problem.model_copy(update={"seed": seed}), sampler=name, predictor=predictor)
            curves.append(hypervolume_curve(res.evaluated, reference_point, front_hv, checkpoints))
        arr = np.array(curves)
        out["optimisers"][name] = {
            "hypervolume_fraction": [[round(v, 4) for v in c] for c in curves],
            "median": [round(float(v), 4) for v in np.median(arr, axis=0)],
            "seconds": round(time.perf_counter() - start, 2),
        }
    return out


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
    samplers: Sequence[str] = ("auto", "tpe", "ga", "random"),
    seeds: int = 10,
    max_evals: int = 2000,
    tolerance: float = 0.01,
    timing_evals: int = 500,
    hv_checkpoints: Sequence[int] = HV_CHECKPOINTS,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the comparison (see the module docstring); returns a JSON-ready report.

    ``report["optimisers"]``: per sampler, the evaluations each seed needed to reach within ``tolerance``
    (relative) of the grid optimum (``null`` when the budget ``max_evals`` ran out first), their median and
    the wall time (all seeds, and the median run). ``report["timing"]``: seconds of a 14-ion design of
    ``timing_evals`` evaluations through the chain with the default optimiser (``timing_evals`` 0: skipped).
    ``report["pareto"]``: the two-objective problem's hypervolume fractions after each of ``hv_checkpoints``
    evaluations, per seed and their median (empty ``hv_checkpoints``: skipped).
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
        "counting": COUNTING,
        "optimisers": {},
    }
    for name in samplers:
        reached: list[float] = []
        proposed: list[int] = []
        run_seconds: list[float] = []
        start = time.perf_counter()
        for seed in range(seeds):
            if progress is not None:
                progress(f"design benchmark: {name}, seed {seed + 1} of {seeds}")
            began = time.perf_counter()
            try:
                res = run_design(model, problem.model_copy(update={"seed": seed}), sampler=name, predictor=predictor,
                                 stop_at=target)
                reached.append(_evals_to_reach(res.history, target))
                proposed.append(res.trials)
            except DesignInfeasible:  # nothing feasible within the budget: the optimum not reached either
                reached.append(float("inf"))
            run_seconds.append(time.perf_counter() - began)
        finite = np.array(reached)
        report["optimisers"][name] = {
            "evaluations_to_optimum": [None if not np.isfinite(v) else int(v) for v in reached],
            "median": None if not np.isfinite(np.median(finite)) else float(np.median(finite)),
            "reached": int(np.isfinite(finite).sum()),
            "seconds": round(time.perf_counter() - start, 2),
            "median_run_seconds": round(float(np.median(run_seconds)), 3),
            "runs_as": resolve_sampler(name, len(parameter_names(problem)), len(problem.objectives)),
            "median_proposals": float(np.median(proposed)) if proposed else None,
        }
    if hv_checkpoints:
        report["pareto"] = _pareto_report(model, table, index, samplers, seeds, sorted(set(int(c) for c in hv_checkpoints)), progress)
    if not timing_evals:
        return report
    wide = DesignProblem(
        a_ions=["K", "Rb", "Cs", "MA", "FA"], b_ions=["Ca", "Sr", "Ba", "Ge", "Sn", "Pb"], x_ions=["Cl", "Br", "I"],
        constraints=[QuantityRange(quantity="bandgap_eV", minimum=1.3, maximum=1.4)], max_evals=timing_evals, seed=0,
    )
    start = time.perf_counter()
    if progress is not None:
        progress(f"design benchmark: 14-ion design, {timing_evals} evaluations")
    try:
        res = run_design(model, wide)
        report["timing"] = {"ions": 14, "evaluations": res.evaluations, "optimiser": res.sampler, "seconds": round(time.perf_counter() - start, 2)}
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
        "| optimiser | runs as | median evaluations to the optimum | seeds that reached it | median proposals (repeats included) "
        "| median s per run | seconds, all seeds |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in report["optimisers"].items():
        med = "not reached" if r["median"] is None else f"{r['median']:.1f}".removesuffix(".0")
        props = r.get("median_proposals")
        lines.append(f"| {name} | {r.get('runs_as', name)} | {med} | {r['reached']} of {report['seeds']} "
                     f"| {'-' if props is None else f'{props:.1f}'.removesuffix('.0')} "
                     f"| {r.get('median_run_seconds', float('nan')):.2f} | {r['seconds']:.1f} |")
    if report.get("counting"):
        lines.append(f"\n{report['counting']}")
    ga = report["optimisers"].get("ga", {}).get("median")
    for name in ("auto", "bo", "tpe", "gp"):
        ours = report["optimisers"].get(name, {}).get("median")
        if ours and ga:
            lines.append(f"\n{name} needs {ours / ga:.1%} of the genetic algorithm's evaluations (target: at most 10 %)")
            break
    pareto = report.get("pareto")
    if pareto:
        lines += ["", f"two objectives ({'; '.join(pareto['objectives'])}): hypervolume as a fraction of the grid's Pareto front "
                      f"({pareto['front_points']} points), median over {report['seeds']} seeds", "",
                  "| optimiser | " + " | ".join(f"after {n}" for n in pareto["checkpoints"]) + " | seconds |",
                  "| --- |" + " --- |" * (len(pareto["checkpoints"]) + 1)]
        for name, r in pareto["optimisers"].items():
            lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in r["median"]) + f" | {r['seconds']:.1f} |")
    t = report.get("timing")
    if t:
        lines += ["", f"14-ion design, {t['evaluations']} evaluations through the chain ({t.get('optimiser', 'default optimiser')}): {t['seconds']:.1f} s"]
    return "\n".join(lines)
