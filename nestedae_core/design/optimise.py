"""Run a design: an optimiser (:mod:`.samplers`) over the lattice of compositions, candidates evaluated in batches.

The optimiser is a maintained one, ``auto`` by default (BoTorch's Gaussian processes on the lattice of small
problems, then TPE; TPE on large ones; chosen by ``nestedae benchmark design``), asked for batches of proposals so
every batch is predicted in one vectorised pass of the chain. ``ga`` is pymoo's genetic algorithm with
the published anchors' settings, ``random`` random search: the same search space and the same budget
for each, so they compare fairly.

Ranking (:func:`rank_proposals`): proposals that meet every constraint and sit inside every
stage's domain come first, ordered by Pareto rank then by the first objective; proposals
outside a stage's domain are shown apart, after them; candidates that miss a constraint are
not proposals. ``p_beats_next`` says how sure each rank is: the probability, from the
prediction intervals, that a proposal's first objective beats the next one's.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..model.chain import NestedAE
from .evaluate import Evaluator, Predictor
from .lattice import counts_from_unit, parameter_names
from .problem import COMPOSITION_QUANTITIES, DesignProblem
from .samplers import SAMPLERS, make_search

__all__ = ["SAMPLERS", "DesignInfeasible", "DesignResult", "run_design", "rank_proposals", "pareto_ranks", "nondominated", "live_rows"]

logger = logging.getLogger(__name__)

#: Called with (evaluations done, evaluation budget, best value of the first objective so far or None).
Progress = Callable[[int, int, float | None], None]


class DesignInfeasible(InputError):
    """No candidate met the problem's constraints within the budget; the message says how close it came."""


@dataclass
class DesignResult:
    """What a design run found.

    ``proposals``: ranked proposals (``status`` "ranked" first, then "out of domain"), one row each, with
    ``rank``, ``formula``, ``etl``, ``htl``, every predicted quantity (schema keys with
    ``_mean``/``_lower``/``_upper``/``_std``), the 14 site fractions (mol/mol), the tolerance and
    octahedral factors, ``in_domain``/``domain_stage``, ``pareto_rank``, ``p_beats_next``.
    ``history``: per model evaluation, the best feasible first objective so far (in its own unit and
    sense). ``evaluated``: every candidate predicted, in order.
    """

    problem: DesignProblem
    sampler: str
    proposals: pd.DataFrame
    history: pd.DataFrame
    evaluated: pd.DataFrame
    evaluations: int
    trials: int
    elapsed_s: float
    stopped: str = "budget"
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: problem, sampler, seed, counts, time, notes."""
        return {
            "problem": self.problem.model_dump(mode="json"),
            "sampler": self.sampler,
            "seed": self.problem.seed,
            "evaluations": self.evaluations,
            "trials": self.trials,
            "elapsed_s": round(self.elapsed_s, 3),
            "stopped": self.stopped,
            "ranked": int((self.proposals["status"] == "ranked").sum()) if len(self.proposals) else 0,
            "out_of_domain": int((self.proposals["status"] == "out of domain").sum()) if len(self.proposals) else 0,
            "notes": list(self.notes),
        }


def pareto_ranks(values: np.ndarray) -> np.ndarray:
    """Non-dominated sorting of (n, k) objective values, all minimised: 0 for the Pareto front, 1 for the next ..."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    ranks = np.full(n, -1, dtype=np.int64)
    remaining = np.arange(n)
    r = 0
    while remaining.size:
        sub = v[remaining]
        dominated = ((sub[None, :, :] <= sub[:, None, :]).all(axis=2) & (sub[None, :, :] < sub[:, None, :]).any(axis=2)).any(axis=1)
        ranks[remaining[~dominated]] = r
        remaining = remaining[dominated]
        r += 1
    return ranks


def nondominated(values: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Mask of the Pareto front (rank 0 of :func:`pareto_ranks`) of (n, k) objective values, all minimised, in one pass."""
    v = np.asarray(values, dtype=np.float64)
    out = np.ones(len(v), dtype=bool)
    for i in range(0, len(v), chunk):
        sub = v[i:i + chunk]
        le = (v[None, :, :] <= sub[:, None, :]).all(axis=2)
        lt = (v[None, :, :] < sub[:, None, :]).any(axis=2)
        out[i:i + chunk] = ~(le & lt).any(axis=1)
    return out


def _p_beats_next(table: pd.DataFrame, problem: DesignProblem) -> np.ndarray:
    """P(row i's first objective is better than row i+1's), from the intervals (or the spread), normal errors assumed
    (:func:`nestedae_core.model.ranking.beats_next_probability`); for a target, on the distance to the target."""
    from ..model.ranking import beats_next_probability, sd_from_interval

    o = problem.objectives[0]
    if o.quantity in COMPOSITION_QUANTITIES or f"{o.quantity}_mean" not in table:
        return np.full(len(table), np.nan)
    mean = table[f"{o.quantity}_mean"].to_numpy(dtype=float)
    if f"{o.quantity}_lower" in table and table[f"{o.quantity}_lower"].notna().all():
        sd = sd_from_interval(table[f"{o.quantity}_lower"].to_numpy(), table[f"{o.quantity}_upper"].to_numpy(), problem.level)
    else:
        sd = table[f"{o.quantity}_std"].to_numpy(dtype=float)
    score = mean if o.goal == "maximize" else -mean if o.goal == "minimize" else -np.abs(mean - float(o.target))  # type: ignore[arg-type]
    return beats_next_probability(score, sd)


def rank_proposals(evaluated: pd.DataFrame, problem: DesignProblem) -> pd.DataFrame:
    """The proposals of an evaluated table (see :class:`DesignResult`): feasible rows, in-domain first, ranked."""
    objs = [c for c in evaluated.columns if c.startswith("objective_")]
    meets = evaluated["range_violation"] <= 0
    ranked = evaluated[meets & evaluated["in_domain"].astype(bool)].copy()
    apart = evaluated[meets & ~evaluated["in_domain"].astype(bool)].copy()
    parts = []
    for part, status in ((ranked, "ranked"), (apart, "out of domain")):
        if not len(part):
            continue
        part["pareto_rank"] = pareto_ranks(part[objs].to_numpy()) if len(objs) > 1 else 0
        part = part.sort_values(["pareto_rank", objs[0], "evaluation"], kind="stable")
        part["status"] = status
        part["p_beats_next"] = _p_beats_next(part, problem)
        parts.append(part)
    if not parts:
        return evaluated.iloc[:0].assign(pareto_rank=0, status="", p_beats_next=np.nan, rank=pd.array([], dtype="Int64"))
    out = pd.concat(parts, ignore_index=True)
    ranked_count = int((out["status"] == "ranked").sum())
    # only in-domain proposals are ranked; those outside a stage's domain follow without a rank
    out.insert(0, "rank", pd.array(list(range(1, ranked_count + 1)) + [pd.NA] * (len(out) - ranked_count), dtype="Int64"))
    return out


def _closest_miss(evaluated: pd.DataFrame, problem: DesignProblem) -> str:
    row = evaluated.sort_values("range_violation", kind="stable").iloc[0]
    misses = []
    for c in problem.constraints:
        v = float(row[c.column])
        if c.minimum is not None and v < c.minimum:
            misses.append(f"{c.column} {v:.3g} below {c.minimum:g}")
        if c.maximum is not None and v > c.maximum:
            misses.append(f"{c.column} {v:.3g} above {c.maximum:g}")
    return f"the closest was {row['formula']} ({'; '.join(misses)})"


def run_design(
    model: NestedAE,
    problem: DesignProblem,
    *,
    sampler: str = "auto",
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    predictor: Predictor | None = None,
    stop_at: float | None = None,
    on_evaluated: Callable[[pd.DataFrame], None] | None = None,
) -> DesignResult:
    """Search the problem's compositions for the best predicted ones; see :class:`DesignResult`.

    Stops after ``problem.max_evals`` model evaluations (distinct candidates), or when ``should_stop()``
    says so (a cancelled job), or after 20 x ``max_evals`` proposals when the optimiser keeps proposing
    candidates already evaluated. Raises :class:`DesignInfeasible` when no candidate meets the constraints,
    naming the closest one and what it missed; :class:`InputError` for a quantity or stack the model lacks.
    ``stop_at``: stop as soon as a feasible first objective reaches this value (in its own sense; benchmarks).
    ``on_evaluated``: called after each batch with the batch's new candidates (:func:`live_rows`), to watch a
    run (the Pareto front filling).
    """
    start = time.perf_counter()
    evaluator = Evaluator(model, problem, predictor=predictor)
    search = make_search(sampler, problem, parameter_names(problem), len(evaluator.stacks))
    trials = 0
    stopped = "budget"
    history: list[tuple[int, float]] = []
    best = math.inf
    while evaluator.evaluations < problem.max_evals:
        if trials >= 20 * problem.max_evals:
            stopped = "no new candidates"
            break
        if should_stop is not None and should_stop():
            stopped = "cancelled"
            break
        points = search.ask(problem.max_evals - evaluator.evaluations)
        if not points:
            stopped = "optimiser finished"
            break
        trials += len(points)
        counts = counts_from_unit(problem, points)
        before = evaluator.evaluations
        rows = evaluator.evaluate(counts, [int(p.get("stack", 0)) for p in points])
        search.tell(rows)
        for k in evaluator.order[before:]:
            row = evaluator.cache[k]
            if float(row["violation"]) <= 0:  # type: ignore[arg-type]
                best = min(best, float(row["objectives"][0]))  # type: ignore[index]
            history.append((len(history) + 1, best))
        if on_evaluated is not None and evaluator.evaluations > before:
            on_evaluated(live_rows([evaluator.cache[k] for k in evaluator.order[before:]], problem, first=before + 1))
        if progress is not None:
            progress(evaluator.evaluations, problem.max_evals, _natural(best, problem))
        if stop_at is not None and _reached(best, stop_at, problem):
            stopped = "target reached"
            break
    evaluated = evaluator.table()
    if not (evaluated["range_violation"] <= 0).any():
        raise DesignInfeasible(
            f"no composition met the constraints in {evaluator.evaluations} model evaluations: {_closest_miss(evaluated, problem)}. "
            "Widen the window or the allowed ions, or raise --max-evals"
        )
    proposals = rank_proposals(evaluated, problem)
    notes = []
    if not (proposals["status"] == "ranked").any():
        notes.append("every candidate that meets the constraints lies outside the model's domain at some stage: none is ranked")
    hist = pd.DataFrame(history, columns=["evaluation", "best"])
    hist["best"] = [_natural(v, problem) for v in hist["best"]]
    return DesignResult(problem=problem, sampler=sampler if search.name == sampler else f"{sampler} ({search.name})", proposals=proposals, history=hist, evaluated=evaluated,
                        evaluations=evaluator.evaluations, trials=trials, elapsed_s=time.perf_counter() - start,
                        stopped=stopped, notes=notes)


def live_rows(rows: list[dict[str, object]], problem: DesignProblem, *, first: int = 1) -> pd.DataFrame:
    """Evaluated candidates, compact: ``evaluation`` (from ``first``), ``formula``, each objective's column (its
    quantity's unit), ``objective_<j>`` (minimised), ``in_domain`` and ``range_violation``."""
    cols = list(dict.fromkeys(o.column for o in problem.objectives))
    out = pd.DataFrame({"evaluation": range(first, first + len(rows)), "formula": [r["formula"] for r in rows]})
    for c in cols:
        out[c] = [float(r[c]) for r in rows]  # type: ignore[arg-type]
    for j in range(len(problem.objectives)):
        out[f"objective_{j}"] = [float(r["objectives"][j]) for r in rows]  # type: ignore[index]
    out["in_domain"] = [bool(r["in_domain"]) for r in rows]
    out["range_violation"] = [float(r["range_violation"]) for r in rows]  # type: ignore[arg-type]
    return out


def _reached(best: float, target: float, problem: DesignProblem) -> bool:
    value = _natural(best, problem)
    if value is None:
        return False
    return value >= target if problem.objectives[0].goal == "maximize" else value <= target


def _natural(value: float, problem: DesignProblem) -> float | None:
    """An internal (minimised) first-objective value in its quantity's own sense, None when none yet."""
    if not math.isfinite(value):
        return None
    return -value if problem.objectives[0].goal == "maximize" else value

