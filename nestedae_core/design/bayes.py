"""Bayesian optimisation on the composition lattice (BoTorch), the first phase of the ``auto`` optimiser.

Each evaluation gives several outputs: the first objective, the value of every constrained quantity and,
when proposals must be in domain, a 0/1 domain flag. One Gaussian process per output (BoTorch's
:class:`~botorch.models.SingleTaskGP`, noise fixed near zero: the chain is deterministic) is fitted on the
site fractions of the candidates evaluated so far, and the next candidate maximises the log expected
improvement of the objective times the probability that every constrained quantity lands in its range
(:class:`~botorch.acquisition.analytic.LogConstrainedExpectedImprovement`): the gap window is learnt as a
smooth function of composition, not as a flat penalty. The acquisition is scored on every lattice point not
yet evaluated when the lattice has at most :data:`LATTICE_LIMIT` points (Cs/FA/MA-Pb-Br/I at 0.05: 4851),
otherwise on a fresh random pool of :data:`POOL` lattice points per proposal, so a proposal is never a
repeat. The first :data:`N_INITIAL` candidates are a scrambled Sobol design of the cube. After
``switch_after`` evaluations an Optuna TPE study, told every evaluation so far, takes over (a Gaussian
process fit grows with the cube of the evaluations).
"""
from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..vocabulary import IONS
from .lattice import counts_from_unit, lattice_points, unit_from_counts
from .problem import DesignProblem

__all__ = ["LatticeBayes", "LATTICE_LIMIT", "POOL", "N_INITIAL", "NOISE_VARIANCE"]

logger = logging.getLogger(__name__)

#: Lattices up to this many compositions are enumerated and every point scored.
LATTICE_LIMIT = 20_000
#: Otherwise this many random cube points, rounded to the lattice, are scored per proposal.
POOL = 4096
#: Sobol points before the first Gaussian-process proposal (measured on ``nestedae benchmark design``).
N_INITIAL = 5
#: Observation noise variance of every output (in its own unit): the chain's predictions are deterministic.
NOISE_VARIANCE = 1e-6


class LatticeBayes:
    """Ask/tell search (:class:`nestedae_core.design.samplers.Search`): BoTorch on the lattice, one proposal at a time,
    then ``then`` (an Optuna search told every evaluation) after ``switch_after`` proposals (None: never)."""

    def __init__(self, problem: DesignProblem, names: Sequence[str], n_stacks: int, then: Any, switch_after: int | None) -> None:
        self.name = "bo" if switch_after is None else "bo-tpe"
        self.problem = problem
        self.names = list(names)
        self.n_stacks = n_stacks
        self.then = then
        self.switch_after = switch_after
        self.rng = np.random.default_rng(problem.seed)
        self.columns = [IONS.index(i) for s in ("A", "B", "X") for i in problem.site_ions(s)[:-1]]
        bounds: dict[str, tuple[float, float]] = {}
        for c in problem.constraints:  # one output per constrained column, the ranges on it intersected
            lo, hi = bounds.get(c.column, (-math.inf, math.inf))
            bounds[c.column] = (max(lo, -math.inf if c.minimum is None else c.minimum), min(hi, math.inf if c.maximum is None else c.maximum))
        self.bounds = bounds
        lattice = lattice_points(problem, LATTICE_LIMIT // max(1, n_stacks))
        #: the enumerated lattice (stack, steps) with its features, and which points are not evaluated yet; None: a pool per proposal
        self.lattice: tuple[np.ndarray, np.ndarray] | None = None
        if lattice is not None:
            self.lattice = (np.repeat(np.arange(n_stacks), len(lattice)), np.tile(lattice, (n_stacks, 1)))
            self._lattice_x = self._features(*self.lattice)
            self._free = np.ones(len(self.lattice[0]), dtype=bool)
            self._row = {(int(s), tuple(int(v) for v in c)): i for i, (s, c) in enumerate(zip(*self.lattice))}
        self.keys: set[tuple[int, tuple[int, ...]]] = set()
        self.X: list[np.ndarray] = []
        self.Y: list[list[float]] = []
        self.feasible: list[bool] = []
        self._pending: list[tuple[int, np.ndarray]] = []
        self._trials = 0
        self._initial = self._sobol(N_INITIAL)

    def _sobol(self, n: int) -> list[dict[str, float]]:
        from scipy.stats import qmc

        d = len(self.names) + (1 if self.n_stacks > 1 else 0)
        u = qmc.Sobol(d=max(1, d), scramble=True, seed=self.problem.seed).random_base2(max(0, math.ceil(math.log2(n))))[:n]
        points: list[dict[str, float]] = [dict(zip(self.names, (float(v) for v in r))) for r in u]
        if self.n_stacks > 1:
            for p, r in zip(points, u):
                p["stack"] = int(min(self.n_stacks - 1, math.floor(float(r[-1]) * self.n_stacks)))
        return points

    # ----------------------------------------------------------------- features and candidates
    def _features(self, stacks: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """(n, d) Gaussian-process inputs: the fractions of each site's first k - 1 ions, then the stack one-hot."""
        x = np.asarray(counts)[:, self.columns] / float(self.problem.divisions)
        if self.n_stacks > 1:
            x = np.concatenate([x, np.eye(self.n_stacks)[np.asarray(stacks)]], axis=1)
        return x

    def _candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(stacks, steps, features) of the points the next proposal is chosen among, none evaluated yet."""
        if self.lattice is not None:
            return self.lattice[0][self._free], self.lattice[1][self._free], self._lattice_x[self._free]
        u = self.rng.random((POOL, len(self.names)))
        counts = counts_from_unit(self.problem, [dict(zip(self.names, r)) for r in u])
        stacks = self.rng.integers(0, self.n_stacks, size=POOL)
        rows = np.unique(np.column_stack([stacks, counts]), axis=0)
        if self.keys:
            done = np.array([(k[0], *k[1]) for k in self.keys])
            rows = rows[~(rows[:, None, :] == done[None, :, :]).all(axis=2).any(axis=1)]
        return rows[:, 0], rows[:, 1:], self._features(rows[:, 0], rows[:, 1:])

    def _point(self, stack: int, counts: np.ndarray) -> dict[str, float]:
        point: dict[str, float] = unit_from_counts(self.problem, counts[None, :])[0]
        if self.n_stacks > 1:
            point["stack"] = stack
        return point

    # ----------------------------------------------------------------- ask / tell
    def ask(self, limit: int) -> list[dict[str, float]]:
        if limit <= 0:
            return []
        if self.switch_after is not None and self._trials >= self.switch_after:
            return list(self.then.ask(limit))
        if self._trials < N_INITIAL:
            n = min(N_INITIAL - self._trials, limit, self.problem.batch_size)
            points = self._initial[self._trials: self._trials + n]
        else:
            point = self._propose()
            if point is None:  # every lattice point evaluated
                return []
            points = [point]
        self._trials += len(points)
        counts = counts_from_unit(self.problem, points)
        self._pending = [(int(p.get("stack", 0)), c) for p, c in zip(points, counts)]
        for p in points:
            self.then.study.enqueue_trial(dict(p))
        return list(self.then.ask(len(points)))

    def tell(self, rows: Sequence[dict[str, object]]) -> None:
        if self._pending:
            for (stack, counts), row in zip(self._pending, rows):
                key = (stack, tuple(int(v) for v in counts))
                if key in self.keys:
                    continue
                self.keys.add(key)
                if self.lattice is not None and key in self._row:
                    self._free[self._row[key]] = False
                y = [-float(row["objectives"][0])]  # type: ignore[index]
                y += [float(row[c]) for c in self.bounds]  # type: ignore[arg-type]
                if self.problem.in_domain:
                    y.append(1.0 if bool(row["in_domain"]) else 0.0)
                if all(math.isfinite(v) for v in y):
                    self.X.append(self._features(np.array([stack]), counts[None, :])[0])
                    self.Y.append(y)
                    self.feasible.append(float(row["violation"]) <= 0)  # type: ignore[arg-type]
            self._pending = []
        self.then.tell(rows)

    def _propose(self) -> dict[str, float] | None:
        import torch
        from botorch.acquisition.analytic import LogConstrainedExpectedImprovement, LogExpectedImprovement
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms import Standardize
        from gpytorch.mlls import ExactMarginalLogLikelihood
        from gpytorch.utils.warnings import NumericalWarning

        stacks, counts, features = self._candidates()
        if not len(stacks):
            return None
        if len(self.Y) < 2:  # nothing to learn from yet: a random candidate
            i = int(self.rng.integers(len(stacks)))
            return self._point(int(stacks[i]), counts[i])
        with warnings.catch_warnings():  # gpytorch rounds the near-zero noise up to its floor, and says so
            warnings.simplefilter("ignore", NumericalWarning)
            X = torch.tensor(np.array(self.X), dtype=torch.float64)
            Y = torch.tensor(np.array(self.Y), dtype=torch.float64)
            with torch.random.fork_rng():  # seeded fits without touching the process's random state (training uses it)
                torch.manual_seed(self.problem.seed + len(self.Y))
                model = SingleTaskGP(X, Y, train_Yvar=torch.full_like(Y, NOISE_VARIANCE), outcome_transform=Standardize(m=Y.shape[1]))
                try:
                    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
                except Exception as exc:  # a failed fit keeps the initial hyperparameters; the proposal is still valid
                    logger.debug("Gaussian-process fit failed (%s); proposing with the initial hyperparameters", exc)
            constraints: dict[int, tuple[float | None, float | None]] = {
                1 + j: (None if not math.isfinite(lo) else lo, None if not math.isfinite(hi) else hi)
                for j, (lo, hi) in enumerate(self.bounds.values())
            }
            if self.problem.in_domain:
                constraints[Y.shape[1] - 1] = (0.5, None)
            feasible = [y[0] for y, f in zip(self.Y, self.feasible) if f]
            best = max(feasible) if feasible else min(y[0] for y in self.Y)
            cx = torch.tensor(features, dtype=torch.float64)
            with torch.no_grad():
                # one output (no constraint, domain not asked): plain log expected improvement
                acq = (LogConstrainedExpectedImprovement(model, best_f=best, objective_index=0, constraints=constraints)
                       if constraints else LogExpectedImprovement(model, best_f=best))
                values = torch.cat([acq(chunk.unsqueeze(1)) for chunk in torch.split(cx, 2048)])
        i = int(torch.argmax(values))
        return self._point(int(stacks[i]), counts[i])
