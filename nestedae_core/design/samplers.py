"""The optimisers a design can run, behind one ask/tell interface; all of them maintained libraries.

* ``auto`` (the default): on problems with one objective and at most :data:`GP_MAX_PARAMS` coordinates,
  Bayesian optimisation on the lattice (:mod:`.bayes`: BoTorch Gaussian processes for the objective, each
  constrained quantity and the domain flag; constrained log expected improvement scored on every lattice point
  not yet evaluated) for the first :data:`BO_TRIALS` proposals, then multivariate TPE told every evaluation;
  TPE from the start on larger problems and on several objectives. Chosen by ``nestedae benchmark design``
  (Cs/FA/MA-Pb-Br/I at 0.05, 10 seeds): 14 evaluations to within 1 % of the grid optimum, median, against
  Optuna's GP then TPE 26 and the genetic algorithm 173.5; a 14-ion, 500-evaluation design stays on TPE and
  finishes in seconds. Without BoTorch installed, ``auto`` runs Optuna's GP (``gp``) then TPE.
* ``bo``: the same as ``auto`` on one objective (TPE on several).
* ``tpe``: multivariate TPE with constraints, batched with the constant-liar rule.
* ``gp``: Optuna's Gaussian-process sampler (:class:`optuna.samplers.GPSampler`, constraints modelled) for the whole
  budget (slow beyond a few hundred trials).
* ``ga``: pymoo's genetic algorithm with the published anchors' settings (population 100, at most 100
  generations; NSGA-II for several objectives), constraints by pymoo's feasibility-first rule.
* ``random``: Optuna's random search.

Each searches the same space (the unit cube of :mod:`.lattice`, plus a stack index when the problem
chooses among stacks), so they compare fairly on the same budget.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..errors import InputError
from .problem import DesignProblem

__all__ = ["SAMPLERS", "GP_MAX_PARAMS", "GP_TRIALS", "BO_TRIALS", "botorch_available", "GA_POPULATION", "GA_GENERATIONS",
           "Search", "make_search", "resolve_sampler"]

logger = logging.getLogger(__name__)

#: The optimisers a design can run, the default first.
SAMPLERS: tuple[str, ...] = ("auto", "tpe", "bo", "gp", "ga", "random")

#: ``auto`` uses the Gaussian process on problems with at most this many optimiser coordinates ...
GP_MAX_PARAMS = 8
#: ... for this many proposals (trials), then TPE.
GP_TRIALS = 60
#: ``auto`` and ``bo``: BoTorch on the lattice for this many proposals, then TPE (None: to the end of the budget).
BO_TRIALS = 60
#: The Gaussian process proposes at most this many points a batch (each proposal conditions on the batch's
#: earlier ones, qLogEI, whose cost grows with the batch).
GP_BATCH = 5
#: The genetic algorithm's population and generations (the published anchors' settings).
GA_POPULATION = 100
GA_GENERATIONS = 100


class Search(Protocol):
    """One optimiser run: ``ask`` proposes points of the cube, ``tell`` gives back their evaluated rows."""

    name: str

    def ask(self, limit: int) -> list[dict[str, float]]:
        """At most ``limit`` points (``{coordinate: value in [0, 1]}``, ``"stack"`` an int); empty when finished."""
        ...

    def tell(self, rows: Sequence[dict[str, object]]) -> None:
        """The evaluated rows of the last points asked, in order (``objectives``, ``range_violation``, ``violation``)."""
        ...


def botorch_available() -> bool:
    """Whether BoTorch (the ``bo`` optimiser's library) is installed."""
    import importlib.util

    return importlib.util.find_spec("botorch") is not None


def resolve_sampler(name: str, n_params: int, n_objectives: int = 1) -> str:
    """The optimiser ``name`` runs as: ``auto`` -> ``bo-tpe`` (BoTorch on the lattice, then TPE) for one objective
    over at most :data:`GP_MAX_PARAMS` coordinates (``gp-tpe``, Optuna's GP then TPE, when BoTorch is not
    installed), else ``tpe``; ``bo`` -> ``bo-tpe``, or ``tpe`` on several objectives; any other name as itself.
    Raises :class:`InputError` for an unknown name, or ``bo`` without BoTorch."""
    if name not in SAMPLERS:
        raise InputError(f"unknown optimiser '{name}': choose one of {', '.join(SAMPLERS)}")
    if name == "bo" and not botorch_available():
        raise InputError("optimiser 'bo' needs BoTorch: pip install botorch (or choose auto, tpe, gp, ga, random)")
    if name == "auto":
        if n_params > GP_MAX_PARAMS or n_objectives != 1:
            return "tpe"
        return "bo-tpe" if botorch_available() else "gp-tpe"
    if name == "bo":
        return "bo-tpe" if n_objectives == 1 else "tpe"
    return name


def _tpe(seed: int) -> Any:
    import optuna

    # 10 random start-up points, then 100 candidates scored per proposal (measured on the design benchmark:
    # fewer evaluations to the grid optimum than the defaults' 24)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True, n_startup_trials=10, n_ei_candidates=100)


class _OptunaSearch:
    """An Optuna study asked and told in batches of ``problem.batch_size``."""

    #: one constraint (the whole violation) instead of two (ranges, domain)
    single_constraint = False

    def __init__(self, name: str, problem: DesignProblem, names: Sequence[str], n_stacks: int) -> None:
        import optuna
        from optuna.distributions import FloatDistribution, IntDistribution

        self.name = name
        self.problem = problem
        self.dists: dict[str, Any] = {n: FloatDistribution(0.0, 1.0) for n in names}
        if n_stacks > 1:
            self.dists["stack"] = IntDistribution(0, n_stacks - 1)
        seed = problem.seed
        if name in ("gp", "gp-tpe"):
            sampler = optuna.samplers.GPSampler(seed=seed, n_startup_trials=10, warn_independent_sampling=False)
        elif name == "tpe":
            sampler = _tpe(seed)
        else:
            sampler = optuna.samplers.RandomSampler(seed=seed)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(directions=["minimize"] * len(problem.objectives), sampler=sampler)
        self._switch_after = GP_TRIALS if name == "gp-tpe" else None
        self._asked: list[Any] = []
        self._trials = 0

    def ask(self, limit: int) -> list[dict[str, float]]:
        if self._switch_after is not None and self._trials >= self._switch_after:
            self.study.sampler = _tpe(self.problem.seed)
            self._switch_after = None
        size = min(self.problem.batch_size, limit)
        if self.name == "gp" or self._switch_after is not None:
            size = min(size, GP_BATCH)
        self._asked = [self.study.ask(self.dists) for _ in range(max(0, size))]
        self._trials += len(self._asked)
        return [dict(t.params) for t in self._asked]

    def tell(self, rows: Sequence[dict[str, object]]) -> None:
        for t, row in zip(self._asked, rows):
            # Optuna's constraint protocol: a trial is feasible when every constraint value is <= 0
            if self.single_constraint:
                t.set_constraint("violation", float(row["violation"]))  # type: ignore[arg-type]
                self.study.tell(t, list(row["objectives"]))  # type: ignore[call-overload]
                continue
            # each end of each range signed (negative inside): the GP sampler models the smooth quantity, not a
            # flat zero inside the window (benchmark, gp-tpe: 21 to 23.5 evaluations to the grid optimum, 26 with the overshoot);
            # TPE and random search read only the positive parts, as before
            for i, c in enumerate(self.problem.constraints):
                v = float(row[c.column])  # type: ignore[arg-type]
                if c.minimum is not None:
                    t.set_constraint(f"range{i}:min", c.minimum - v if math.isfinite(v) else 1.0)
                if c.maximum is not None:
                    t.set_constraint(f"range{i}:max", v - c.maximum if math.isfinite(v) else 1.0)
            t.set_constraint("domain", float(row["violation"]) - float(row["range_violation"]))  # type: ignore[arg-type]
            self.study.tell(t, list(row["objectives"]))  # type: ignore[call-overload]
        self._asked = []


class _PymooSearch:
    """pymoo's GA (one objective) or NSGA-II (several) through its ask/tell interface.

    A generation is served in pieces of at most ``limit`` points and told to pymoo once every point of it
    has its row, so a budget that ends mid-generation is respected exactly.
    """

    def __init__(self, problem: DesignProblem, names: Sequence[str], n_stacks: int) -> None:
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.algorithms.soo.nonconvex.ga import GA
        from pymoo.core.problem import Problem

        self.name = "ga"
        self.names = list(names)
        self.n_stacks = n_stacks
        n_var = max(1, len(self.names) + (1 if n_stacks > 1 else 0))  # pymoo needs one variable at least
        k = len(problem.objectives)
        self.pymoo_problem = Problem(n_var=n_var, n_obj=k, n_ieq_constr=2, xl=0.0, xu=1.0)
        algo = GA(pop_size=GA_POPULATION) if k == 1 else NSGA2(pop_size=GA_POPULATION)
        algo.setup(self.pymoo_problem, termination=("n_gen", GA_GENERATIONS), seed=problem.seed, verbose=False)
        self.algo = algo
        self._pop: Any = None
        self._served = 0
        self._rows: list[dict[str, object]] = []

    def _params(self, x: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {n: float(v) for n, v in zip(self.names, x)}
        if self.n_stacks > 1:
            out["stack"] = int(min(self.n_stacks - 1, np.floor(float(x[len(self.names)]) * self.n_stacks)))
        return out

    def ask(self, limit: int) -> list[dict[str, float]]:
        if self._pop is None:
            if not self.algo.has_next():
                return []
            self._pop = self.algo.ask()
            self._served = 0
            self._rows = []
        X = self._pop.get("X")
        take = X[self._served: self._served + max(0, limit)]
        self._served += len(take)
        return [self._params(x) for x in take]

    def tell(self, rows: Sequence[dict[str, object]]) -> None:
        from pymoo.core.evaluator import Evaluator as PymooEvaluator
        from pymoo.problems.static import StaticProblem

        self._rows.extend(rows)
        if self._pop is None or len(self._rows) < len(self._pop):
            return
        F = np.array([list(r["objectives"]) for r in self._rows], dtype=np.float64)  # type: ignore[call-overload]
        rng = np.array([float(r["range_violation"]) for r in self._rows])  # type: ignore[arg-type]
        G = np.column_stack([rng, np.array([float(r["violation"]) for r in self._rows]) - rng])  # type: ignore[arg-type]
        F = np.where(np.isfinite(F), F, 1e12)
        PymooEvaluator().eval(StaticProblem(self.pymoo_problem, F=F, G=G), self._pop)
        self.algo.tell(infills=self._pop)
        self._pop = None


def make_search(name: str, problem: DesignProblem, names: Sequence[str], n_stacks: int) -> Search:
    """The optimiser ``name`` (one of :data:`SAMPLERS`) over ``names`` (cube coordinates) and ``n_stacks`` stacks."""
    resolved = resolve_sampler(name, len(names) + (1 if n_stacks > 1 else 0), len(problem.objectives))
    if resolved == "ga":
        return _PymooSearch(problem, names, n_stacks)
    if resolved == "bo-tpe":
        from .bayes import LatticeBayes

        return LatticeBayes(problem, names, n_stacks, then=_OptunaSearch("tpe", problem, names, n_stacks), switch_after=BO_TRIALS)
    return _OptunaSearch(resolved, problem, names, n_stacks)
